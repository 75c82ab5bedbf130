import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { WardenError } from '../errors.js';
import { toolDefaults } from './constants.js';
import { embeddedDefault } from './defaults.js';
import { type LocatedIssue, loadConfig } from './load.js';

const NOW = Date.UTC(2026, 10, 25, 12, 0, 0);
const publicJwk = generateKeyPairSync('ed25519').publicKey.export({ format: 'jwk' });
const privateJwk = generateKeyPairSync('ed25519').privateKey.export({ format: 'jwk' });

/** The example file of the brief; line numbers below refer to it. */
const FULL = `dataDir: .warden
server: { host: 127.0.0.1, port: 8787, publicUrl: http://127.0.0.1:8787, bodyLimit: 1mb, maxJsonDepth: 32, trustProxy: false }
store: { url: "sqlite:warden.db" }
tokens: { ttl: 15m, alg: EdDSA, rotateAfter: 24h, maxToolCalls: 50, clockSkew: 30s }
upstreams:
  - name: support-desk
    transport: stdio
    command: node
    args: [examples/support-desk/server.js]
    cwd: .
    env: { LOG_LEVEL: info }
    credentials: { env: { SUPPORT_API_KEY: { env: SUPPORT_DESK_KEY } } }
    timeout: 30s
    connectTimeout: 10s
  - name: billing
    transport: http
    url: http://127.0.0.1:9000/mcp
    credentials: { headers: { Authorization: { env: BILLING_TOKEN, prefix: "Bearer " } } }
agents:
  - id: demo-support
    type: customer-support
    version: 2.4.1
    environment: production
    owner: support-team
    expiresAt: 2027-01-01T00:00:00Z
    maxConcurrentSessions: 5
    allowedTools: [lookup_order]
    deniedTools: [bulk_message]
    publicKey: { kty: OKP, crv: Ed25519, x: ${publicJwk.x} }
    constraints: { maxToolCalls: 50, allowedCidrs: [127.0.0.0/8, "::1/128"] }
tools:
  issue_refund: { risk: high }
log: { level: info }
`;

const AGENT = `agents:
  - id: a1
    type: t
    version: "1"
    environment: dev
    owner: o
    expiresAt: 2027-01-01T00:00:00Z
`;

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'warden-config-'));
}

function writeConfig(text: string, dir = tempDir()): { dir: string; file: string } {
  const file = join(dir, 'warden.yaml');
  writeFileSync(file, text);
  return { dir, file };
}

async function load(text: string, env: NodeJS.ProcessEnv = {}) {
  const { dir } = writeConfig(text);
  return { dir, ...(await loadConfig('warden.yaml', { cwd: dir, env, now: NOW })) };
}

async function loadError(text: string, env: NodeJS.ProcessEnv = {}): Promise<WardenError> {
  const { dir } = writeConfig(text);
  try {
    await loadConfig('warden.yaml', { cwd: dir, env, now: NOW });
  } catch (e) {
    expect(e).toBeInstanceOf(WardenError);
    expect((e as WardenError).code).toBe('CONFIG_INVALID');
    return e as WardenError;
  }
  throw new Error('expected loadConfig to reject');
}

describe('loadConfig: a valid file', () => {
  it('loads the full example into the resolved shape', async () => {
    const { dir, config, warnings } = await load(FULL);
    expect(warnings).toEqual([]);
    expect(config.source).toBe(join(dir, 'warden.yaml'));
    expect(config.dataDir).toBe(join(dir, '.warden'));
    expect(config.server).toEqual({
      host: '127.0.0.1',
      port: 8787,
      publicUrl: 'http://127.0.0.1:8787',
      bodyLimitBytes: 1024 * 1024,
      headerLimitBytes: 64 * 1024,
      maxJsonDepth: 32,
      trustProxy: false,
      metrics: true,
    });
    expect(config.store.url).toBe(`sqlite:${join(dir, '.warden', 'warden.db')}`);
    expect(config.tokens).toEqual({
      ttlMs: 900_000,
      alg: 'EdDSA',
      rotateAfterMs: 86_400_000,
      maxToolCalls: 50,
      clockSkewMs: 30_000,
    });
    expect(config.upstreams).toEqual([
      {
        name: 'support-desk',
        transport: 'stdio',
        command: 'node',
        args: ['examples/support-desk/server.js'],
        cwd: dir,
        env: { LOG_LEVEL: 'info' },
        credentials: { env: { SUPPORT_API_KEY: { env: 'SUPPORT_DESK_KEY' } } },
        timeoutMs: 30_000,
        connectTimeoutMs: 10_000,
      },
      {
        name: 'billing',
        transport: 'http',
        url: 'http://127.0.0.1:9000/mcp',
        credentials: { headers: { Authorization: { env: 'BILLING_TOKEN', prefix: 'Bearer ' } } },
        timeoutMs: 30_000,
        connectTimeoutMs: 10_000,
      },
    ]);
    expect(config.agents).toEqual([
      {
        id: 'demo-support',
        type: 'customer-support',
        version: '2.4.1',
        environment: 'production',
        owner: 'support-team',
        expiresAt: Date.UTC(2027, 0, 1),
        maxConcurrentSessions: 5,
        allowedTools: ['lookup_order'],
        deniedTools: ['bulk_message'],
        publicJwk: { kty: 'OKP', crv: 'Ed25519', x: publicJwk.x },
        constraints: { maxToolCalls: 50, allowedCidrs: ['127.0.0.0/8', '::1/128'] },
      },
    ]);
    expect(config.tools).toEqual({ issue_refund: toolDefaults('high') });
    expect(config.log).toEqual({ level: 'info' });
  });

  it('fills absent sections with the embedded defaults, but no upstreams or agents', async () => {
    const { dir, config } = await load('log: { level: warn }\n');
    const def = embeddedDefault({ cwd: dir, now: NOW });
    expect(config.server).toEqual(def.server);
    expect(config.tokens).toEqual(def.tokens);
    expect(config.tools).toEqual(def.tools);
    expect(config.store.url).toBe(def.store.url);
    expect(config.dataDir).toBe(def.dataDir);
    expect(config.upstreams).toEqual([]);
    expect(config.agents).toEqual([]);
    expect(config.log.level).toBe('warn');
  });

  it('treats an empty file as all defaults', async () => {
    const { config } = await load('');
    expect(config.tokens.ttlMs).toBe(900_000);
    expect(config.agents).toEqual([]);
  });

  it('derives publicUrl from host and port when absent, and accepts integer units', async () => {
    const { config } = await load(
      'server: { host: 0.0.0.0, port: 9999, bodyLimit: 2048 }\ntokens: { ttl: 60000 }\n',
    );
    expect(config.server.publicUrl).toBe('http://127.0.0.1:9999');
    expect(config.server.bodyLimitBytes).toBe(2048);
    expect(config.tokens.ttlMs).toBe(60_000);
  });

  it('defaults agent fields and keeps constraints absent when unset', async () => {
    const { config } = await load(AGENT);
    expect(config.agents[0]).toEqual({
      id: 'a1',
      type: 't',
      version: '1',
      environment: 'dev',
      owner: 'o',
      expiresAt: Date.UTC(2027, 0, 1),
      maxConcurrentSessions: 5,
      allowedTools: [],
      deniedTools: [],
      constraints: {},
    });
  });

  it('reads publicKey {file} into publicJwk and makes file refs absolute', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'agent.pub.jwk'), JSON.stringify(publicJwk));
    const text = `${AGENT}    publicKey: { file: ./agent.pub.jwk }
upstreams:
  - { name: s, transport: stdio, command: node, credentials: { env: { K: { file: secrets/k } } } }
`;
    writeConfig(text, dir);
    const { config } = await loadConfig('warden.yaml', { cwd: dir, now: NOW });
    expect(config.agents[0]?.publicJwk).toEqual(publicJwk);
    const up = config.upstreams[0];
    expect(up?.transport === 'stdio' && up.credentials.env.K).toEqual({ file: join(dir, 'secrets', 'k') });
    expect(up?.transport === 'stdio' && up.cwd).toBeUndefined();
  });

  it('resolves the store url from an env ref (a password is fine there) and from a file ref', async () => {
    const pg = 'postgres://warden:s3cret@db.internal:5432/warden';
    const fromEnv = await load('store: { url: { env: DATABASE_URL } }\n', { DATABASE_URL: pg });
    expect(fromEnv.config.store.url).toBe(pg);

    const dir = tempDir();
    writeFileSync(join(dir, 'db-url'), '  sqlite:state/w.db\n');
    writeConfig('dataDir: /var/lib/warden\nstore: { url: { file: ./db-url } }\n', dir);
    const fromFile = await loadConfig('warden.yaml', { cwd: dir, env: {}, now: NOW });
    expect(fromFile.config.store.url).toBe('sqlite:/var/lib/warden/state/w.db');
  });

  it('keeps sqlite::memory: and absolute sqlite paths as written', async () => {
    expect((await load('store: { url: "sqlite::memory:" }\n')).config.store.url).toBe('sqlite::memory:');
    expect((await load('store: { url: "sqlite:/srv/w.db" }\n')).config.store.url).toBe('sqlite:/srv/w.db');
  });

  it('accepts a postgres URL without a password', async () => {
    const { config } = await load('store: { url: "postgres://warden@db/warden" }\n');
    expect(config.store.url).toBe('postgres://warden@db/warden');
  });

  it('loads an already-expired agent but warns about it with its position', async () => {
    const text = AGENT.replace('2027-01-01T00:00:00Z', '2020-01-01T00:00:00Z');
    const { config, warnings } = await load(text);
    expect(config.agents[0]?.expiresAt).toBe(Date.UTC(2020, 0, 1));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(
      /^warden\.yaml:7:16: agents\[0\]\.expiresAt: agent "a1" expired at 2020-01-01/,
    );
  });

  it('warns about a tool both allowed and denied, and a secret-looking plain env var', async () => {
    const text = `${AGENT}    allowedTools: [x]
    deniedTools: [x]
upstreams:
  - { name: s, transport: stdio, command: node, env: { API_TOKEN: abc } }
`;
    const { warnings } = await load(text);
    expect(warnings.some((w) => w.includes('"x" is in both allowedTools and deniedTools'))).toBe(true);
    const envWarning = warnings.find((w) => w.includes('API_TOKEN'));
    expect(envWarning).toMatch(/looks like a secret/);
    expect(envWarning).not.toContain('abc');
  });

  it('supports YAML anchors with merge keys for shared upstream settings', async () => {
    const text = `upstreams:
  - &base { name: one, transport: stdio, command: node, timeout: 5s }
  - { <<: *base, name: two }
`;
    const { config } = await load(text);
    expect(config.upstreams.map((u) => [u.name, u.timeoutMs])).toEqual([
      ['one', 5000],
      ['two', 5000],
    ]);
  });

  it('returns the embedded default when no path is given', async () => {
    const { config, warnings } = await loadConfig(undefined, { cwd: '/srv/app', now: NOW });
    expect(warnings).toEqual([]);
    expect(config).toEqual(embeddedDefault({ cwd: '/srv/app', now: NOW }));
  });
});

describe('loadConfig: rejections', () => {
  it('reports an unknown key at its own line:col with a suggestion', async () => {
    const e = await loadError(FULL.replace('allowedTools: [lookup_order]', 'alowedTools: [lookup_order]'));
    expect(e.message).toBe(
      'warden.yaml:27:5: agents[0].alowedTools: unknown key "alowedTools" (did you mean "allowedTools"?)',
    );
    const issues = (e.data?.issues ?? []) as LocatedIssue[];
    expect(issues).toEqual([
      expect.objectContaining({ file: 'warden.yaml', line: 27, col: 5, path: 'agents[0].alowedTools' }),
    ]);
  });

  it('suggests the intended key for a transposed typo', async () => {
    const e = await loadError('log: { levle: info }\n');
    expect(e.message).toBe('warden.yaml:1:8: log.levle: unknown key "levle" (did you mean "level"?)');
  });

  it('rejects a token ttl over the 15m hard maximum, naming it', async () => {
    const e = await loadError(FULL.replace('ttl: 15m', 'ttl: 1h'));
    expect(e.message).toBe(
      'warden.yaml:4:16: tokens.ttl: "1h" exceeds the hard maximum of 15m (session tokens are short-lived by design)',
    );
    await expect(loadError('tokens: { ttl: 900001 }\n')).resolves.toHaveProperty(
      'message',
      expect.stringContaining('hard maximum of 15m'),
    );
  });

  it('rejects a literal secret in credentials without echoing it', async () => {
    const stdio = await loadError(FULL.replace('{ env: SUPPORT_DESK_KEY }', 'sk-live-abc123'));
    expect(stdio.message).toMatch(
      /^warden\.yaml:12:44: upstreams\[0\]\.credentials\.env\.SUPPORT_API_KEY: secrets must be references/,
    );
    expect(stdio.message).not.toContain('sk-live-abc123');

    const http = await loadError(
      FULL.replace('{ env: BILLING_TOKEN, prefix: "Bearer " }', '"Bearer tok-999"'),
    );
    expect(http.message).toContain(
      'upstreams[1].credentials.headers.Authorization: secrets must be references',
    );
    expect(http.message).not.toContain('tok-999');
  });

  it('rejects a literal postgres URL carrying a password, without echoing it', async () => {
    const e = await loadError(FULL.replace('"sqlite:warden.db"', '"postgres://warden:hunter2@db/warden"'));
    expect(e.message).toMatch(/^warden\.yaml:3:15: store\.url: the postgres URL contains a password/);
    expect(e.message).toContain('{env: DATABASE_URL}');
    expect(e.message).not.toContain('hunter2');
    const q = await loadError('store: { url: "postgres://db/warden?password=hunter2" }\n');
    expect(q.message).toContain('contains a password');
    expect(q.message).not.toContain('hunter2');
  });

  it('rejects a JWK with private members, inline or from a file', async () => {
    const inline = await loadError(
      FULL.replace(`x: ${publicJwk.x} }`, `x: ${publicJwk.x}, d: ${privateJwk.d} }`),
    );
    expect(inline.message).toMatch(
      /^warden\.yaml:29:16: agents\[0\]\.publicKey: the JWK contains private key member/,
    );
    expect(inline.message).not.toContain(String(privateJwk.d));

    const dir = tempDir();
    writeFileSync(join(dir, 'agent.jwk'), JSON.stringify(privateJwk));
    writeConfig(`${AGENT}    publicKey: { file: agent.jwk }\n`, dir);
    const fromFile = await loadConfig('warden.yaml', { cwd: dir, now: NOW }).catch((e: unknown) => e);
    expect(fromFile).toBeInstanceOf(WardenError);
    expect((fromFile as Error).message).toMatch(
      /^warden\.yaml:8:24: agents\[0\]\.publicKey\.file: .*private key member/,
    );
    expect((fromFile as Error).message).not.toContain(String(privateJwk.d));
  });

  it('rejects a public key that is not a valid key', async () => {
    const e = await loadError(FULL.replace(`x: ${publicJwk.x}`, 'x: AAAA'));
    expect(e.message).toContain('agents[0].publicKey: not a valid public JWK');
  });

  it('rejects a bad CIDR and a bare address', async () => {
    const e = await loadError(FULL.replace('[127.0.0.0/8, "::1/128"]', '[10.0.0.0/33, 10.1.2.3, "::1/128"]'));
    expect(e.message.split('\n')).toEqual([
      'warden.yaml:30:53: agents[0].constraints.allowedCidrs[0]: expected a CIDR range such as 10.0.0.0/8 or ::1/128, got "10.0.0.0/33"',
      'warden.yaml:30:66: agents[0].constraints.allowedCidrs[1]: expected a CIDR range such as 10.0.0.0/8 or ::1/128, got "10.1.2.3"',
    ]);
  });

  it('rejects a date that is not ISO-8601 or not a real date', async () => {
    const e = await loadError(FULL.replace('2027-01-01T00:00:00Z', 'tomorrow'));
    expect(e.message).toBe(
      'warden.yaml:25:16: agents[0].expiresAt: expected an ISO-8601 date-time such as 2027-01-01T00:00:00Z, got "tomorrow"',
    );
    for (const bad of ['2027-02-30T00:00:00Z', '2027-01-01T00:00:00', '2027-13-01']) {
      const err = await loadError(AGENT.replace('2027-01-01T00:00:00Z', bad));
      expect(err.message).toContain(`agents[0].expiresAt: expected an ISO-8601 date-time`);
    }
    const missing = await loadError(AGENT.replace('    expiresAt: 2027-01-01T00:00:00Z\n', ''));
    expect(missing.message).toContain('agents[0].expiresAt: missing required key');
  });

  it('rejects duplicate agent ids and upstream names, pointing at the second', async () => {
    const text = `upstreams:
  - { name: desk, transport: stdio, command: node }
  - { name: desk, transport: http, url: "http://localhost:1/mcp" }
${AGENT}  - { id: a1, type: t, version: "2", environment: e, owner: o, expiresAt: 2027-01-01T00:00:00Z }
`;
    const e = await loadError(text);
    expect(e.message.split('\n')).toEqual([
      'warden.yaml:3:13: upstreams[1].name: duplicate upstream name "desk" (already used by upstreams[0])',
      'warden.yaml:11:11: agents[1].id: duplicate agent id "a1" (already used by agents[0])',
    ]);
  });

  it('reports YAML syntax errors with their position', async () => {
    const e = await loadError('log:\n  level: info\n    x: 1\n');
    expect(e.message.split('\n')[0]).toBe(
      'warden.yaml:2:10: YAML syntax error: Nested mappings are not allowed in compact mappings',
    );
    const dup = await loadError('log: { level: info }\nlog: { level: warn }\n');
    expect(dup.message).toMatch(/^warden\.yaml:2:1: YAML syntax error: .*unique/);
  });

  it('reports every problem at once, one per line, in file order', async () => {
    const text = FULL.replace('port: 8787', 'port: 99999')
      .replace('alg: EdDSA', 'alg: RS256')
      .replace('transport: http', 'transport: ftp')
      .replace('version: 2.4.1', 'version: 2.4.1\n    colour: blue')
      .replace('risk: high', 'risk: extreme');
    const e = await loadError(text);
    const lines = e.message.split('\n');
    expect(lines).toEqual([
      'warden.yaml:2:34: server.port: expected at most 65535, got 99999',
      'warden.yaml:4:26: tokens.alg: expected "EdDSA" | "ES256", got "RS256"',
      'warden.yaml:16:16: upstreams[1].transport: expected "stdio" | "http", got "ftp"',
      'warden.yaml:23:5: agents[0].colour: unknown key "colour"',
      'warden.yaml:33:25: tools.issue_refund.risk: expected "low" | "medium" | "high" | "critical", got "extreme"',
    ]);
    expect(e.data?.issues).toHaveLength(5);
  });

  it('names a missing store-url variable without leaking other secrets', async () => {
    const env = { DATABASE_URL_OLD: 'postgres://u:leaky@db/x', SUPPORT_DESK_KEY: 'k-123' };
    const e = await loadError(FULL.replace('"sqlite:warden.db"', '{ env: DATABASE_URL }'), env);
    expect(e.message).toBe(
      'warden.yaml:3:15: store.url: secret reference {env: DATABASE_URL}: environment variable DATABASE_URL is not set',
    );
    expect(e.message).not.toMatch(/leaky|k-123/);
  });

  it('rejects a store URL from a secret that is not a store URL, without echoing it', async () => {
    const e = await loadError('store: { url: { env: DB } }\n', { DB: 'mysql://root:topsecret@h/db' });
    expect(e.message).toContain(
      'store.url: the URL from {env: DB} is invalid: expected sqlite:PATH or a postgres:// URL',
    );
    expect(e.message).not.toContain('topsecret');
  });

  it('rejects a missing config file clearly', async () => {
    const dir = tempDir();
    const e = await loadConfig('nope.yaml', { cwd: dir }).catch((err: unknown) => err);
    expect(e).toBeInstanceOf(WardenError);
    expect((e as WardenError).code).toBe('CONFIG_INVALID');
    expect((e as WardenError).message).toBe('nope.yaml: cannot read the config file (file not found)');
  });

  it('rejects a non-mapping document and wrong types with what was expected', async () => {
    expect((await loadError('- a\n- b\n')).message).toBe(
      'warden.yaml:1:1: (top level): expected a mapping, got a list',
    );
    const e = await loadError(
      'server: { trustProxy: "yes", maxJsonDepth: 1.5 }\nupstreams:\n  - { transport: stdio }\n',
    );
    expect(e.message.split('\n')).toEqual([
      'warden.yaml:1:23: server.trustProxy: expected true or false, got "yes"',
      'warden.yaml:1:44: server.maxJsonDepth: expected an integer, got 1.5',
      'warden.yaml:3:5: upstreams[0].name: missing required key (expected a string)',
      'warden.yaml:3:5: upstreams[0].command: missing required key (expected a string)',
    ]);
  });
});
