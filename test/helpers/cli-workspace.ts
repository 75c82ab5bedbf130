/**
 * A throw-away Warden installation for CLI tests: a temp directory holding a
 * `warden.yaml` (SQLite store under its data directory, the support desk as a
 * stdio upstream) and agents with real key pairs.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { supportDeskCommand } from '../../examples/support-desk/command.js';
import { generateAgentKeyPair, type JWK } from '../../src/identity/index.js';

/** An agent to declare in the config file. */
export interface WorkspaceAgent {
  id: string;
  type?: string;
  allowedTools: string[];
  deniedTools?: string[];
  /** Extra lines under the agent (already indented by 4), e.g. to plant a mistake. */
  extraLines?: string[];
}

export interface Workspace {
  /** The temp directory: the commands' cwd. */
  dir: string;
  /** Absolute path of warden.yaml. */
  configFile: string;
  /** The config file's text. */
  yaml: string;
  /** Absolute path of the SQLite database (exists once a command has run). */
  dbFile: string;
  /** Each agent's private JWK (only the public half is in the file). */
  keys: Record<string, JWK>;
  /** Each agent's public JWK. */
  publicKeys: Record<string, JWK>;
  /** Write a file into the workspace; returns its absolute path. */
  writeFile(name: string, content: string): string;
  cleanup(): void;
}

/** Far enough ahead that no test run meets it, fixed so tests can compare it. */
export const CONFIG_AGENT_EXPIRY = '2099-01-01T00:00:00.000Z';

/** Create a workspace with `agents` declared in its warden.yaml. */
export async function createWorkspace(agents: WorkspaceAgent[]): Promise<Workspace> {
  const dir = mkdtempSync(join(tmpdir(), 'warden-cli-'));
  const keys: Record<string, JWK> = {};
  const publicKeys: Record<string, JWK> = {};
  for (const a of agents) {
    const pair = await generateAgentKeyPair();
    keys[a.id] = pair.privateJwk;
    publicKeys[a.id] = pair.publicJwk;
  }
  const desk = supportDeskCommand();
  // JSON is YAML flow syntax: quoted strings and inline keys stay exact whatever they hold.
  const j = (v: unknown) => JSON.stringify(v);
  const lines = [
    '# Warden config written by the CLI end-to-end tests',
    'dataDir: data',
    'store:',
    '  url: sqlite:warden.db',
    'tokens:',
    '  ttl: 15m',
    'upstreams:',
    '  - name: support-desk',
    '    transport: stdio',
    `    command: ${j(desk.command)}`,
    `    args: ${j(desk.args)}`,
    '    connectTimeout: 15s',
    'agents:',
  ];
  for (const a of agents) {
    lines.push(
      `  - id: ${a.id}`,
      `    type: ${a.type ?? 'customer-support'}`,
      '    version: 1.4.2',
      '    environment: development',
      '    owner: qa-team',
      `    expiresAt: ${CONFIG_AGENT_EXPIRY}`,
      '    maxConcurrentSessions: 5',
      `    allowedTools: ${j(a.allowedTools)}`,
      `    deniedTools: ${j(a.deniedTools ?? [])}`,
      `    publicKey: ${j(publicKeys[a.id])}`,
      ...(a.extraLines ?? []),
    );
  }
  const yaml = `${lines.join('\n')}\n`;
  const configFile = join(dir, 'warden.yaml');
  writeFileSync(configFile, yaml);
  return {
    dir,
    configFile,
    yaml,
    dbFile: join(dir, 'data', 'warden.db'),
    keys,
    publicKeys,
    writeFile(name, content) {
      const path = join(dir, name);
      writeFileSync(path, content);
      return path;
    },
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** The decoded payload of a JWT (no signature check: the tests read what the CLI printed). */
export function jwtPayload(token: string): Record<string, unknown> {
  const parts = token.split('.');
  if (parts.length !== 3) throw new Error(`not a JWT: ${parts.length} parts`);
  return JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8')) as Record<string, unknown>;
}
