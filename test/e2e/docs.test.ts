/** The documentation's examples stay true: the sample config loads, the README names what exists. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';

const repo = new URL('../../', import.meta.url);

describe('docs', () => {
  it('examples/warden.yaml is a valid configuration', async () => {
    const { config, warnings } = await loadConfig(new URL('examples/warden.yaml', repo).pathname, {
      env: { SUPPORT_DESK_API_KEY: 'x' },
    });
    expect(warnings).toEqual([]);
    expect(config.upstreams.map((u) => u.name)).toEqual(['support-desk']);
    expect(config.agents[0]?.deniedTools).toEqual(['bulk_message', 'delete_account']);
    expect(config.tools.issue_refund?.risk).toBe('high');
    expect(config.tokens.ttlMs).toBe(15 * 60_000);
  });

  it('every YAML example in docs/inspection.md and docs/configuration.md loads as a configuration', async () => {
    const { loadYaml } = await import('../helpers/config-yaml.js');
    for (const doc of ['docs/inspection.md', 'docs/configuration.md']) {
      const text = readFileSync(new URL(doc, repo), 'utf8');
      const blocks = [...text.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1] ?? '');
      expect(blocks.length, doc).toBeGreaterThan(0);
      for (const block of blocks) {
        // Blocks that reference files or environment variables are checked with them present.
        if (/\bfile:|files:|publicKey|upstreams:|identityProviders:|oauth:/.test(block)) continue;
        const r = await loadYaml(block, new Proxy({}, { get: () => 'x' }) as Record<string, string>);
        expect('error' in r ? r.error : '', `${doc}:\n${block}`).toBe('');
      }
    }
  });

  it('the README opens with the two commands and lists every CLI command that exists', () => {
    const readme = readFileSync(new URL('README.md', repo), 'utf8');
    const head = readme.slice(0, 800);
    expect(head).toContain('npm ci && npx warden start');
    expect(head).toContain('npm test');
    for (const cmd of ['start', 'demo', 'token issue', 'agents', 'audit verify', 'audit tail']) {
      expect(readme, cmd).toContain(`warden ${cmd}`);
    }
  });
});
