/**
 * The offline commands, black box: `node bin/warden.js …` as a child process in
 * a temp directory with its own warden.yaml and SQLite store — exit codes,
 * stdout and stderr exactly as an operator (or a script) sees them.
 *
 * Each command spends over a second of CPU loading modules, so the groups run
 * side by side (runWarden caps how many children run at once). Inside a group
 * the tests are a sequence on one store (it.sequential); only neighbours that
 * do not depend on each other run concurrently.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateAgentKeyPair } from '../../src/identity/index.js';
import {
  type CliResult,
  describeResult,
  killAllWardens,
  runWarden,
  STACK_FRAME,
  TIME_SCALE,
} from '../helpers/cli-process.js';
import {
  CONFIG_AGENT_EXPIRY,
  createWorkspace,
  jwtPayload,
  type Workspace,
} from '../helpers/cli-workspace.js';

const DAY = 86_400_000;
const JWT = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

/** A command that failed the way the CLI promises: exit 2, `warden: CODE: message` on stderr, nothing on stdout, no stack. */
function expectCliError(r: CliResult, code: string): void {
  expect(r.code, describeResult(r)).toBe(2);
  expect(r.stderr).toContain(`warden: ${code}: `);
  expect(r.stdout).toBe('');
  expect(r.stderr).not.toMatch(STACK_FRAME);
}

function expectOk(r: CliResult): void {
  expect(r.code, describeResult(r)).toBe(0);
  expect(r.stderr).not.toMatch(STACK_FRAME);
}

function json<T>(r: CliResult): T {
  expectOk(r);
  return JSON.parse(r.stdout) as T;
}

/** `agents list|show|register --json`: an agent with ISO times. */
interface AgentView {
  id: string;
  type: string;
  version: string;
  environment: string;
  owner: string;
  createdAt: string;
  expiresAt: string;
  maxConcurrentSessions: number;
  allowedTools: string[];
  deniedTools: string[];
  publicJwk: Record<string, unknown> | null;
  constraints: { maxToolCalls?: number; allowedCidrs?: string[] };
  status: string;
  disabledReason: string | null;
  source: string;
  activeSessions?: number;
}

afterAll(async () => {
  await killAllWardens();
});

describe('warden --help', { concurrent: true, timeout: 120_000 * TIME_SCALE }, () => {
  let ws: Workspace;
  beforeAll(async () => {
    ws = await createWorkspace([{ id: 'help-bot', allowedTools: ['lookup_order'] }]);
  });
  afterAll(() => ws?.cleanup());

  // Each command, its usage line, and the options its help must list.
  const commands: Array<{ path: string[]; usage: string; lists: string[] }> = [
    {
      path: [],
      usage: 'Usage: warden [options] [command]',
      lists: [
        '-V, --version',
        '-h, --help',
        'agents',
        'approvals',
        'audit',
        'demo',
        'grants',
        'inspect',
        'operator',
        'policy',
        'start',
        'token',
        'tools',
        'users',
      ],
    },
    {
      path: ['start'],
      usage: 'Usage: warden start [options]',
      lists: ['-c, --config <file>', '--host <host>', '--port <port>', '-h, --help'],
    },
    { path: ['demo'], usage: 'Usage: warden demo [options]', lists: ['--json', '--verbose', '-h, --help'] },
    { path: ['token'], usage: 'Usage: warden token [options] [command]', lists: ['issue', '-h, --help'] },
    {
      path: ['token', 'issue'],
      usage: 'Usage: warden token issue [options]',
      lists: [
        '-a, --agent <id>',
        '--ttl <duration>',
        '--user <id>',
        '-c, --config <file>',
        '--json',
        '-h, --help',
      ],
    },
    {
      path: ['agents'],
      usage: 'Usage: warden agents [options] [command]',
      lists: ['disable', 'enable', 'list', 'register', 'show', '-h, --help'],
    },
    {
      path: ['agents', 'list'],
      usage: 'Usage: warden agents list [options]',
      lists: ['-c, --config <file>', '--json', '-h, --help'],
    },
    {
      path: ['agents', 'show'],
      usage: 'Usage: warden agents show [options] <id>',
      lists: ['-c, --config <file>', '--json', '-h, --help'],
    },
    {
      path: ['agents', 'register'],
      usage: 'Usage: warden agents register [options]',
      lists: [
        '--id <id>',
        '--type <type>',
        '--owner <team>',
        '--expires <when>',
        '--agent-version <version>',
        '--environment <env>',
        '--max-sessions <n>',
        '--allow <tools>',
        '--deny <tools>',
        '--public-key <file>',
        '--max-tool-calls <n>',
        '--cidr <cidrs>',
        '-c, --config <file>',
        '--json',
        '-h, --help',
      ],
    },
    {
      path: ['agents', 'disable'],
      usage: 'Usage: warden agents disable [options] <id>',
      lists: ['--reason <text>', '-c, --config <file>', '--json', '-h, --help'],
    },
    {
      path: ['agents', 'enable'],
      usage: 'Usage: warden agents enable [options] <id>',
      lists: ['-c, --config <file>', '--json', '-h, --help'],
    },
    {
      path: ['audit'],
      usage: 'Usage: warden audit [options] [command]',
      lists: [
        'tail',
        'verify',
        'checkpoint',
        'checkpoints',
        'prove',
        'consistency',
        'check-proof',
        'keys',
        'archive',
        'hmac',
        'export',
        '-h, --help',
      ],
    },
    {
      path: ['audit', 'verify'],
      usage: 'Usage: warden audit verify [options]',
      lists: [
        '-c, --config <file>',
        '--public-key <file...>',
        '--checkpoints <file...>',
        '--chain-only',
        '--archive <file>',
        '--json',
        '-h, --help',
      ],
    },
    {
      path: ['audit', 'archive'],
      usage: 'Usage: warden audit archive [options]',
      lists: [
        '--through <seq>',
        '--before <when>',
        '-o, --out <file>',
        '--prune',
        '-c, --config <file>',
        '--json',
        '-h, --help',
      ],
    },
    {
      path: ['audit', 'checkpoint'],
      usage: 'Usage: warden audit checkpoint [options]',
      lists: ['-c, --config <file>', '--json', '-h, --help'],
    },
    {
      path: ['audit', 'checkpoints'],
      usage: 'Usage: warden audit checkpoints [options]',
      lists: ['-n, --limit <n>', '-c, --config <file>', '--json', '-h, --help'],
    },
    {
      path: ['audit', 'prove'],
      usage: 'Usage: warden audit prove [options] <seq>',
      lists: [
        '--size <n>',
        '--archive <file>',
        '-o, --out <file>',
        '-c, --config <file>',
        '--json',
        '-h, --help',
      ],
    },
    {
      path: ['audit', 'consistency'],
      usage: 'Usage: warden audit consistency [options] <from> [to]',
      lists: ['-o, --out <file>', '-c, --config <file>', '--json', '-h, --help'],
    },
    {
      path: ['audit', 'check-proof'],
      usage: 'Usage: warden audit check-proof [options] <file>',
      lists: ['--public-key <file...>', '-c, --config <file>', '--json', '-h, --help'],
    },
    {
      path: ['audit', 'keys'],
      usage: 'Usage: warden audit keys [options]',
      lists: ['-c, --config <file>', '--json', '-h, --help'],
    },
    {
      path: ['audit', 'tail'],
      usage: 'Usage: warden audit tail [options]',
      lists: ['-n, --lines <n>', '-f, --follow', '-c, --config <file>', '--json', '-h, --help'],
    },
    {
      path: ['audit', 'hmac'],
      usage: 'Usage: warden audit hmac [options] [value]',
      lists: ['-c, --config <file>', '--search', '--limit <n>', '--json', '-h, --help'],
    },
    {
      path: ['audit', 'export'],
      usage: 'Usage: warden audit export [options]',
      lists: [
        '--since <time>',
        '--until <time>',
        '--after-seq <n>',
        '--event <name>',
        '--agent <id>',
        '--format <format>',
        '--out <file>',
        '-c, --config <file>',
        '--json',
        '-h, --help',
      ],
    },
    {
      path: ['policy'],
      usage: 'Usage: warden policy [options] [command]',
      lists: ['test', 'validate', '-h, --help'],
    },
    {
      path: ['policy', 'validate'],
      usage: 'Usage: warden policy validate [options]',
      lists: ['-c, --config <file>', '--json', '-h, --help'],
    },
    {
      path: ['policy', 'test'],
      usage: 'Usage: warden policy test [options] [files...]',
      lists: ['-c, --config <file>', '--json', '-h, --help'],
    },
    {
      path: ['operator'],
      usage: 'Usage: warden operator [options] [command]',
      lists: ['token', '-h, --help'],
    },
    {
      path: ['operator', 'token'],
      usage: 'Usage: warden operator token [options]',
      lists: [
        '-o, --operator <id>',
        '--ttl <duration>',
        '--url <url>',
        '-c, --config <file>',
        '--json',
        '-h, --help',
      ],
    },
    {
      path: ['approvals'],
      usage: 'Usage: warden approvals [options] [command]',
      lists: ['approve', 'deny', 'list', 'review', 'show', '-h, --help'],
    },
    {
      path: ['approvals', 'list'],
      usage: 'Usage: warden approvals list [options]',
      lists: [
        '--status <status>',
        '--kind <kind>',
        '--agent <id>',
        '--limit <n>',
        '--url <url>',
        '--token <token>',
        '--as <operator>',
        '-c, --config <file>',
        '--json',
        '-h, --help',
      ],
    },
    {
      path: ['approvals', 'show'],
      usage: 'Usage: warden approvals show [options] <id>',
      lists: [
        '--url <url>',
        '--token <token>',
        '--as <operator>',
        '-c, --config <file>',
        '--json',
        '-h, --help',
      ],
    },
    {
      path: ['approvals', 'approve'],
      usage: 'Usage: warden approvals approve [options] <id>',
      lists: [
        '--comment <text>',
        '--set <key=value>',
        '--arguments <json>',
        '--url <url>',
        '--token <token>',
        '--as <operator>',
        '-c, --config <file>',
        '--json',
        '-h, --help',
      ],
    },
    {
      path: ['approvals', 'deny'],
      usage: 'Usage: warden approvals deny [options] <id>',
      lists: [
        '--comment <text>',
        '--url <url>',
        '--token <token>',
        '--as <operator>',
        '-c, --config <file>',
        '--json',
        '-h, --help',
      ],
    },
    {
      path: ['approvals', 'review'],
      usage: 'Usage: warden approvals review [options] <id>',
      lists: [
        '--verdict <verdict>',
        '--comment <text>',
        '--url <url>',
        '--token <token>',
        '--as <operator>',
        '-c, --config <file>',
        '--json',
        '-h, --help',
      ],
    },
    {
      path: ['users'],
      usage: 'Usage: warden users [options] [command]',
      lists: ['add', 'disable', 'enable', 'list', 'passwd', 'remove', 'show', 'unlock', '-h, --help'],
    },
    {
      path: ['users', 'add'],
      usage: 'Usage: warden users add [options] <id>',
      lists: [
        '--name <name>',
        '--email <email>',
        '--password-stdin',
        '--no-password',
        '-c, --config <file>',
        '--json',
        '-h, --help',
      ],
    },
    {
      path: ['users', 'list'],
      usage: 'Usage: warden users list [options]',
      lists: ['-c, --config <file>', '--json', '-h, --help'],
    },
    {
      path: ['users', 'show'],
      usage: 'Usage: warden users show [options] <id>',
      lists: ['-c, --config <file>', '--json', '-h, --help'],
    },
    {
      path: ['users', 'disable'],
      usage: 'Usage: warden users disable [options] <id>',
      lists: ['-c, --config <file>', '--json', '-h, --help'],
    },
    {
      path: ['users', 'enable'],
      usage: 'Usage: warden users enable [options] <id>',
      lists: ['-c, --config <file>', '--json', '-h, --help'],
    },
    {
      path: ['users', 'unlock'],
      usage: 'Usage: warden users unlock [options] <id>',
      lists: ['-c, --config <file>', '--json', '-h, --help'],
    },
    {
      path: ['users', 'remove'],
      usage: 'Usage: warden users remove [options] <id>',
      lists: ['-c, --config <file>', '--json', '-h, --help'],
    },
    {
      path: ['inspect'],
      usage: 'Usage: warden inspect [options] [file]',
      lists: ['--json', '--jsonl', '--source <kind>', '-h, --help'],
    },
    {
      path: ['tools'],
      usage: 'Usage: warden tools [options] [command]',
      lists: ['approve', 'list', 'show', '-h, --help'],
    },
    {
      path: ['tools', 'list'],
      usage: 'Usage: warden tools list [options]',
      lists: [
        '--status <status>',
        '--url <url>',
        '--token <token>',
        '--as <operator>',
        '-c, --config <file>',
        '--json',
        '-h, --help',
      ],
    },
    {
      path: ['tools', 'show'],
      usage: 'Usage: warden tools show [options] <name>',
      lists: [
        '--url <url>',
        '--token <token>',
        '--as <operator>',
        '-c, --config <file>',
        '--json',
        '-h, --help',
      ],
    },
    {
      path: ['tools', 'approve'],
      usage: 'Usage: warden tools approve [options] <name>',
      lists: [
        '--hash <sha256>',
        '--comment <text>',
        '--url <url>',
        '--token <token>',
        '--as <operator>',
        '-c, --config <file>',
        '--json',
        '-h, --help',
      ],
    },
    {
      path: ['grants'],
      usage: 'Usage: warden grants [options] [command]',
      lists: ['list', 'revoke', '-h, --help'],
    },
    {
      path: ['grants', 'list'],
      usage: 'Usage: warden grants list [options]',
      lists: [
        '--user <id>',
        '--agent <id>',
        '--revoked',
        '--limit <n>',
        '--url <url>',
        '--token <token>',
        '--as <operator>',
        '-c, --config <file>',
        '--json',
        '-h, --help',
      ],
    },
    {
      path: ['grants', 'revoke'],
      usage: 'Usage: warden grants revoke [options] <id>',
      lists: [
        '--reason <text>',
        '--url <url>',
        '--token <token>',
        '--as <operator>',
        '-c, --config <file>',
        '--json',
        '-h, --help',
      ],
    },
    {
      path: ['kill'],
      usage: 'Usage: warden kill [options] [agent]',
      lists: [
        '-r, --reason <text>',
        '--session <id>',
        '--url <url>',
        '--token <token>',
        '--as <operator>',
        '-c, --config <file>',
        '--json',
        '-h, --help',
      ],
    },
    {
      path: ['breakers'],
      usage: 'Usage: warden breakers [options] [command]',
      lists: ['list', 'reset', '-h, --help'],
    },
    {
      path: ['breakers', 'list'],
      usage: 'Usage: warden breakers list [options]',
      lists: ['--as <operator>', '--json'],
    },
    {
      path: ['breakers', 'reset'],
      usage: 'Usage: warden breakers reset [options]',
      lists: ['--agent <id>', '--session <id>', '--as <operator>', '--json'],
    },
    {
      path: ['revive'],
      usage: 'Usage: warden revive [options] <agent>',
      lists: ['-r, --reason <text>', '--url <url>', '--as <operator>', '--json', '-h, --help'],
    },
    {
      path: ['users', 'passwd'],
      usage: 'Usage: warden users passwd [options] <id>',
      lists: ['--password-stdin', '-c, --config <file>', '--json', '-h, --help'],
    },
  ];

  /** The command names a help text lists under "Commands:" (without `help`). */
  const subcommandsIn = (help: string): string[] => {
    // The section ends at the first blank line (help text after it, such as examples, is not a command list).
    const section = (help.split(/^Commands:$/m)[1] ?? '').split(/\n\s*\n/)[0] ?? '';
    return [...section.matchAll(/^ {2}([a-z][\w-]*)/gm)].map((m) => m[1]!).filter((c) => c !== 'help');
  };

  it('every command and subcommand has --help: exit 0, its usage and all its options', {
    timeout: 180_000 * TIME_SCALE,
  }, async () => {
    const results = await Promise.all(
      commands.map((c) => runWarden([...c.path, '--help'], { cwd: ws.dir, priority: 'low' })),
    );
    for (const [i, c] of commands.entries()) {
      const r = results[i]!;
      const name = `warden ${c.path.join(' ')} --help`;
      expect(r.code, `${name}: ${describeResult(r)}`).toBe(0);
      expect(r.stdout, name).toContain(c.usage);
      for (const option of c.lists) expect(r.stdout, `${name} lists ${option}`).toContain(option);
      expect(r.stderr, name).not.toMatch(STACK_FRAME);
      // Every command a group lists is itself covered above (a new command needs its help checked too).
      for (const sub of subcommandsIn(r.stdout)) {
        expect(
          commands.some((x) => x.path.join(' ') === [...c.path, sub].join(' ')),
          `${name} lists "${sub}", which this test does not cover`,
        ).toBe(true);
      }
    }
    // --help only prints: no command ran, so nothing opened the workspace's store.
    expect(existsSync(join(ws.dir, 'data'))).toBe(false);
  });

  it('an unknown command or option exits non-zero with a readable message and no stack', async () => {
    const [command, option] = await Promise.all([
      runWarden(['frobnicate'], { cwd: ws.dir }),
      runWarden(['agents', 'list', '--jsn'], { cwd: ws.dir }),
    ]);
    for (const r of [command!, option!]) {
      expect(r.code, describeResult(r)).not.toBe(0);
      expect(r.code, describeResult(r)).not.toBeNull();
      expect(r.stdout).toBe('');
      expect(r.stderr).not.toMatch(STACK_FRAME);
      expect(r.stderr).toContain('--help');
    }
    expect(command!.stderr).toContain("error: unknown command 'frobnicate'");
    expect(option!.stderr).toContain("error: unknown option '--jsn'");
    expect(option!.stderr).toContain('--json'); // the suggestion
  });
});

describe('warden agents (SQLite)', { concurrent: true, timeout: 120_000 * TIME_SCALE }, () => {
  let ws: Workspace;
  const run = (...args: string[]) => runWarden([...args, '--config', ws.configFile], { cwd: ws.dir });

  beforeAll(async () => {
    ws = await createWorkspace([
      {
        id: 'support-bot',
        allowedTools: ['lookup_order', 'check_shipping_status', 'bulk_message'],
        deniedTools: ['bulk_message', 'delete_account'],
      },
    ]);
  });
  afterAll(() => ws?.cleanup());

  let registered: AgentView;

  it.sequential('agents register takes every option and prints the agent with --json', async () => {
    const pair = await generateAgentKeyPair();
    const keyFile = ws.writeFile('reg-full.pub.jwk', JSON.stringify(pair.publicJwk));
    const before = Date.now();
    registered = json<AgentView>(
      await run(
        'agents',
        'register',
        '--id',
        'reg-full',
        '--type',
        'data-analyst',
        '--owner',
        'analytics-team',
        '--expires',
        '30d',
        '--agent-version',
        '2.7.1',
        '--environment',
        'staging',
        '--max-sessions',
        '3',
        '--allow',
        'lookup_order,check_shipping_status',
        '--allow',
        'create_support_ticket',
        '--deny',
        'bulk_message',
        '--deny',
        'delete_account, issue_refund',
        '--public-key',
        keyFile,
        '--max-tool-calls',
        '7',
        '--cidr',
        '10.0.0.0/8,127.0.0.0/8',
        '--cidr',
        '::1/128',
        '--json',
      ),
    );
    const after = Date.now();
    expect(registered).toMatchObject({
      id: 'reg-full',
      type: 'data-analyst',
      version: '2.7.1',
      environment: 'staging',
      owner: 'analytics-team',
      maxConcurrentSessions: 3,
      allowedTools: ['lookup_order', 'check_shipping_status', 'create_support_ticket'],
      deniedTools: ['bulk_message', 'delete_account', 'issue_refund'],
      constraints: { maxToolCalls: 7, allowedCidrs: ['10.0.0.0/8', '127.0.0.0/8', '::1/128'] },
      status: 'active',
      disabledReason: null,
      source: 'cli',
    });
    expect(registered.publicJwk).toMatchObject({ kty: 'OKP', crv: 'Ed25519', x: pair.publicJwk.x });
    expect(registered.publicJwk).not.toHaveProperty('d');
    const expires = Date.parse(registered.expiresAt);
    expect(expires).toBeGreaterThanOrEqual(before + 30 * DAY - 1000);
    expect(expires).toBeLessThanOrEqual(after + 30 * DAY + 1000);
  });

  it('agents register --expires takes an ISO date-time (and the defaults fill the rest)', async () => {
    const r = await run(
      'agents',
      'register',
      '--id',
      'reg-iso',
      '--type',
      'ops',
      '--owner',
      'sre',
      '--expires',
      '2031-05-04T03:02:01Z',
    );
    expectOk(r);
    expect(r.stdout).toBe('Registered agent reg-iso (expires 2031-05-04T03:02:01.000Z).\n');
  });

  it('registering a taken id fails with CONFLICT, exit 2, message on stderr', async () => {
    const r = await run(
      'agents',
      'register',
      '--id',
      'reg-full',
      '--type',
      'intruder',
      '--owner',
      'nobody',
      '--expires',
      '1d',
      '--allow',
      'delete_account',
    );
    expectCliError(r, 'CONFLICT');
    expect(r.stderr).toContain('reg-full');
  });

  let privateD: unknown;
  it('--public-key holding a PRIVATE JWK is refused, without echoing the key', async () => {
    const pair = await generateAgentKeyPair();
    privateD = pair.privateJwk.d;
    const keyFile = ws.writeFile('oops.private.jwk', JSON.stringify(pair.privateJwk));
    const r = await run(
      'agents',
      'register',
      '--id',
      'reg-private',
      '--type',
      'ops',
      '--owner',
      'sre',
      '--expires',
      '7d',
      '--public-key',
      keyFile,
    );
    expectCliError(r, 'INVALID_REQUEST');
    expect(r.stderr).toContain('PRIVATE');
    expect(r.stderr).not.toContain(String(privateD));
  });

  it('agents show of an unknown id → NOT_FOUND, exit 2', async () => {
    const r = await run('agents', 'show', 'nope');
    expectCliError(r, 'NOT_FOUND');
    expect(r.stderr).toContain('No agent "nope"');
  });

  it.sequential('agents list --json and agents show --json report every field; refused registrations left no trace', async () => {
    const [listed, shown] = await Promise.all([
      run('agents', 'list', '--json'),
      run('agents', 'show', 'reg-full', '--json'),
    ]);
    const all = json<AgentView[]>(listed!);
    // reg-private was refused; the CONFLICT attempt did not overwrite reg-full.
    expect(all.map((a) => a.id).sort()).toEqual(['reg-full', 'reg-iso', 'support-bot']);
    expect(all.find((a) => a.id === 'reg-full')).toEqual(registered);
    expect(all.find((a) => a.id === 'reg-iso')).toMatchObject({
      type: 'ops',
      owner: 'sre',
      expiresAt: '2031-05-04T03:02:01.000Z',
      version: '1.0.0',
      environment: 'development',
      maxConcurrentSessions: 5,
      allowedTools: [],
      deniedTools: [],
      publicJwk: null,
      constraints: {},
      status: 'active',
      source: 'cli',
    });
    expect(all.find((a) => a.id === 'support-bot')).toMatchObject({
      source: 'config',
      version: '1.4.2',
      owner: 'qa-team',
      expiresAt: CONFIG_AGENT_EXPIRY,
      allowedTools: ['lookup_order', 'check_shipping_status', 'bulk_message'],
      deniedTools: ['bulk_message', 'delete_account'],
      publicJwk: expect.objectContaining({ x: ws.publicKeys['support-bot']!.x }),
    });
    expect(json<AgentView>(shown!)).toEqual({ ...registered, activeSessions: 0 });
    expect(listed!.stdout + shown!.stdout).not.toContain(String(privateD));
  });
});

describe('warden token and audit (SQLite)', { concurrent: true, timeout: 120_000 * TIME_SCALE }, () => {
  let ws: Workspace;
  const run = (...args: string[]) => runWarden([...args, '--config', ws.configFile], { cwd: ws.dir });

  beforeAll(async () => {
    ws = await createWorkspace([
      {
        id: 'support-bot',
        allowedTools: ['lookup_order', 'check_shipping_status', 'bulk_message'],
        deniedTools: ['bulk_message', 'delete_account'],
      },
    ]);
  });
  afterAll(() => ws?.cleanup());

  it.sequential('token issue prints exactly one line: a JWT with sub, sid and only the allowed, non-denied scopes', async () => {
    const r = await run('token', 'issue', '--agent', 'support-bot');
    expectOk(r);
    const lines = r.stdout.split('\n');
    expect(lines, r.stdout).toHaveLength(2); // one line and its newline
    expect(lines[1]).toBe('');
    const token = lines[0]!;
    expect(token).toMatch(JWT);
    const claims = jwtPayload(token);
    expect(claims.sub).toBe('support-bot');
    expect(claims.sid).toEqual(expect.stringMatching(/\S{8,}/));
    const scopes = String(claims.scope).split(' ');
    expect(scopes).toContain('tool:lookup_order:execute');
    expect(scopes).toContain('tool:check_shipping_status:execute');
    expect(scopes).not.toContain('tool:bulk_message:execute');
    expect(scopes).not.toContain('tool:delete_account:execute');
    expect(scopes).toHaveLength(2);
    const lifetime = Number(claims.exp) - Number(claims.iat);
    expect(lifetime).toBeGreaterThan(0);
    expect(lifetime).toBeLessThanOrEqual(900);
  });

  it('token issue --json --ttl 5m prints token, sessionId, expiresAt and scopes, for 300 s', async () => {
    const out = json<{
      token: string;
      sessionId: string;
      agentId: string;
      expiresAt: string;
      scopes: string[];
    }>(await run('token', 'issue', '--agent', 'support-bot', '--ttl', '5m', '--json'));
    expect(out.token).toMatch(JWT);
    const claims = jwtPayload(out.token);
    expect(Number(claims.exp) - Number(claims.iat)).toBe(300);
    expect(out.agentId).toBe('support-bot');
    expect(out.sessionId).toBe(claims.sid);
    expect(Date.parse(out.expiresAt)).toBe(Number(claims.exp) * 1000);
    expect([...out.scopes].sort()).toEqual(String(claims.scope).split(' ').sort());
    expect(out.scopes).toContain('tool:lookup_order:execute');
    expect(out.scopes).not.toContain('tool:bulk_message:execute');
  });

  it('token issue --ttl 20m is refused: above the 15m maximum', async () => {
    const r = await run('token', 'issue', '--agent', 'support-bot', '--ttl', '20m');
    expectCliError(r, 'INVALID_REQUEST');
    expect(r.stderr).toContain('--ttl');
    expect(r.stderr).toMatch(/15 minutes|15m/);
  });

  it.sequential('agents disable blocks token issue with AGENT_DISABLED and revokes open sessions; enable restores it', async () => {
    const disabled = json<AgentView & { sessionsRevoked: number }>(
      await run('agents', 'disable', 'support-bot', '--reason', 'key leaked in a ticket', '--json'),
    );
    expect(disabled).toMatchObject({
      id: 'support-bot',
      status: 'disabled',
      disabledReason: 'key leaked in a ticket',
    });
    // The two tokens issued above (the refused --ttl 20m made none).
    expect(disabled.sessionsRevoked).toBe(2);

    // support-bot is declared in warden.yaml and every command syncs the file: it must stay disabled.
    expectCliError(await run('token', 'issue', '--agent', 'support-bot'), 'AGENT_DISABLED');

    const enabled = await run('agents', 'enable', 'support-bot');
    expectOk(enabled);
    expect(enabled.stdout).toBe('Enabled agent support-bot.\n');
    const again = await run('token', 'issue', '--agent', 'support-bot');
    expectOk(again);
    expect(again.stdout.trim()).toMatch(JWT);
    expect(jwtPayload(again.stdout.trim()).sub).toBe('support-bot');
  });

  interface TailEntry {
    seq: number;
    event: string;
    actorType: string;
    actorId: string | null;
    agentId: string | null;
    hash: string;
    prevHash: string;
  }

  it.sequential('audit tail -n 5 --json prints the latest entries as JSON lines, seq ascending; audit verify says intact', async () => {
    const [tail, verify] = await Promise.all([
      run('audit', 'tail', '-n', '5', '--json'),
      run('audit', 'verify'),
    ]);
    expectOk(tail!);
    expectOk(verify!);
    const m = /audit log intact: (\d+) entries, head (\d+)/.exec(verify!.stdout);
    expect(m, verify!.stdout).not.toBeNull();
    const total = Number(m![1]);
    expect(total).toBeGreaterThan(5);

    const lines = tail!.stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(5);
    const entries = lines.map((l) => JSON.parse(l) as TailEntry);
    for (const [i, e] of entries.entries()) {
      if (i === 0) continue;
      expect(e.seq).toBe(entries[i - 1]!.seq + 1);
      expect(e.prevHash).toBe(entries[i - 1]!.hash);
    }
    // What happened last, in order: the disable, the enable, and the token it allowed.
    const events = entries.map((e) => e.event);
    expect(events.indexOf('AGENT_DISABLED'), events.join()).toBeGreaterThanOrEqual(0);
    expect(events.lastIndexOf('AGENT_UPDATED')).toBeGreaterThan(events.indexOf('AGENT_DISABLED'));
    expect(events.at(-1)).toBe('SESSION_CREATED');
    expect(entries.at(-1)?.agentId).toBe('support-bot');
    // The operator is on record as a human (USER is set for the children by the helper).
    expect(entries.find((e) => e.event === 'AGENT_DISABLED')).toMatchObject({
      actorType: 'HUMAN',
      actorId: 'operator:warden-e2e',
    });
    // The tail ends at the head the verifier walked to.
    expect(Number(m![2])).toBe(entries.at(-1)!.seq);
    expect(total).toBe(entries.at(-1)!.seq);
  });

  it.sequential('audit verify exits 1 naming the entry whose row was edited in the database', async () => {
    const db = new Database(ws.dbFile);
    let target: number;
    try {
      const row = db
        .prepare("SELECT seq FROM audit_log WHERE event = 'AGENT_DISABLED' ORDER BY seq LIMIT 1")
        .get() as { seq: number } | undefined;
      expect(row).toBeDefined();
      target = Number(row!.seq);
      // The database refuses the edit (the second layer); an attacker with the file drops the trigger first.
      expect(() => db.prepare("UPDATE audit_log SET data = '{}' WHERE seq = ?").run(target)).toThrow(
        /append-only/,
      );
      db.exec('DROP TRIGGER audit_log_no_update');
      const changed = db
        .prepare(
          `UPDATE audit_log SET data = '{"reason":"routine rotation","sessionsRevoked":0}' WHERE seq = ?`,
        )
        .run(target);
      expect(changed.changes).toBe(1);
    } finally {
      db.close();
    }
    const [plain, asJson] = await Promise.all([run('audit', 'verify'), run('audit', 'verify', '--json')]);
    expect(plain!.code, describeResult(plain!)).toBe(1);
    expect(plain!.stdout).toContain(`audit log BROKEN at entry ${target}`);
    expect(plain!.stderr).not.toMatch(STACK_FRAME);
    expect(asJson!.code, describeResult(asJson!)).toBe(1);
    const r = JSON.parse(asJson!.stdout) as { ok: boolean; problem?: { seq: number; kind: string } };
    expect(r.ok).toBe(false);
    expect(r.problem?.seq).toBe(target);
    expect(r.problem?.kind).toBe('modified');
  });
});

describe('a config file with mistakes', { concurrent: true, timeout: 120_000 * TIME_SCALE }, () => {
  let ws: Workspace;
  let yaml: string;
  beforeAll(async () => {
    ws = await createWorkspace([
      {
        id: 'typo-bot',
        allowedTools: ['lookup_order'],
        extraLines: ['    alowedTools: [check_shipping_status]'],
      },
    ]);
    yaml = ws.yaml.replace('  ttl: 15m', '  ttl: 1h');
    writeFileSync(ws.configFile, yaml);
  });
  afterAll(() => ws?.cleanup());

  /** 1-based `line:col` of `needle` in the file. */
  const position = (needle: string): string => {
    const lines = yaml.split('\n');
    const i = lines.findIndex((l) => l.includes(needle));
    if (i < 0) throw new Error(`${needle} is not in the config`);
    return `${i + 1}:${lines[i]!.indexOf(needle) + 1}`;
  };

  it('makes every command exit 2 naming warden.yaml:line:col for each problem, with no stack', async () => {
    const typo = `warden.yaml:${position('alowedTools')}: agents[0].alowedTools: unknown key "alowedTools" (did you mean "allowedTools"?)`;
    const ttl = `warden.yaml:${position('1h')}: tokens.ttl: `;
    // The three ways a command finds its config: --config, $WARDEN_CONFIG, ./warden.yaml.
    const results = await Promise.all([
      runWarden(['agents', 'list', '--config', 'warden.yaml'], { cwd: ws.dir }),
      runWarden(['token', 'issue', '--agent', 'typo-bot'], {
        cwd: ws.dir,
        env: { WARDEN_CONFIG: ws.configFile },
      }),
      runWarden(['start', '--port', '0'], { cwd: ws.dir }),
    ]);
    for (const r of results) {
      expectCliError(r, 'CONFIG_INVALID');
      expect(r.stderr).toContain(typo);
      expect(r.stderr).toContain(ttl);
      // Sorted by position: the ttl (line 6) before the agent's key.
      expect(r.stderr.indexOf(ttl)).toBeLessThan(r.stderr.indexOf(typo));
      expect(r.stderr).not.toContain('Warden is running');
    }
    expect(existsSync(join(ws.dir, 'data'))).toBe(false);
  });
});
