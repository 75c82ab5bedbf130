/**
 * `warden users …`, black box: the built CLI as a child process in a temp
 * workspace, a password piped to stdin (or typed at a pseudo-terminal), and the
 * store checked afterwards with the library itself (the password really logs in).
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore } from '../../src/store/index.js';
import { type LoginFailedError, type User, UserStore } from '../../src/users/index.js';
import {
  type CliResult,
  childEnv,
  describeResult,
  killAllWardens,
  runWarden,
  STACK_FRAME,
  TIME_SCALE,
  WARDEN_BIN,
} from '../helpers/cli-process.js';
import { createWorkspace, type Workspace } from '../helpers/cli-workspace.js';

const PW = 'correct horse battery staple';

/** A user as `--json` prints it. */
type UserView = Omit<User, 'createdAt' | 'updatedAt' | 'lastLoginAt' | 'lockedUntil'> & {
  createdAt: string;
  updatedAt: string;
  lastLoginAt: string | null;
  lockedUntil: string | null;
  locked: boolean;
};

/**
 * `warden …args` with `input` on stdin (runWarden gives its children no stdin).
 * With `tty`, the command runs under `script` on a pseudo-terminal and `answers`
 * are typed one by one, each when the output shows its prompt.
 */
function runWithInput(
  args: string[],
  cwd: string,
  input: { stdin: string } | { tty: Array<{ after: string; type: string }> },
): Promise<CliResult> {
  const started = Date.now();
  const tty = 'tty' in input;
  const command = tty
    ? spawn('script', ['-qec', [process.execPath, WARDEN_BIN, ...args].map(quote).join(' '), '/dev/null'], {
        cwd,
        env: childEnv(),
      })
    : spawn(process.execPath, [WARDEN_BIN, ...args], { cwd, env: childEnv() });
  let stdout = '';
  let stderr = '';
  const answers = tty ? [...input.tty] : [];
  command.stdout.setEncoding('utf8').on('data', (d: string) => {
    stdout += d;
    const next = answers[0];
    if (next && stdout.includes(next.after)) {
      answers.shift();
      command.stdin.write(next.type);
    }
  });
  command.stderr.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
  });
  if (!tty) command.stdin.end(input.stdin);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    command.kill('SIGKILL');
  }, 30_000 * TIME_SCALE);
  return new Promise((resolve, reject) => {
    command.once('error', reject);
    command.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, timedOut, ms: Date.now() - started });
    });
  });
}

/** The commands of the first `sh` block of docs/users.md, with `npx warden` as written. */
function docExamples(): string[] {
  const doc = readFileSync(new URL('../../docs/users.md', import.meta.url), 'utf8');
  const block = /```sh\n([\s\S]*?)```/.exec(doc)?.[1] ?? '';
  return block.split('\n').filter((l) => l.startsWith('npx warden users '));
}

const quote = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;

function expectOk(r: CliResult): void {
  expect(r.code, describeResult(r)).toBe(0);
  expect(r.stderr).not.toMatch(STACK_FRAME);
}

function json<T>(r: CliResult): T {
  expectOk(r);
  return JSON.parse(r.stdout) as T;
}

/** Exit 2, `warden: CODE: …` on stderr, nothing on stdout, no stack. */
function expectCliError(r: CliResult, code: string, message?: RegExp): void {
  expect(r.code, describeResult(r)).toBe(2);
  expect(r.stderr).toContain(`warden: ${code}: `);
  if (message) expect(r.stderr).toMatch(message);
  expect(r.stdout).toBe('');
  expect(r.stderr).not.toMatch(STACK_FRAME);
}

afterAll(async () => {
  await killAllWardens();
});

describe('warden users', { timeout: 120_000 * TIME_SCALE }, () => {
  let ws: Workspace;
  const warden = (...args: string[]) => runWarden(args, { cwd: ws.dir });
  /** Log in with the library against the workspace's store. */
  const login = async (id: string, password: string): Promise<User | LoginFailedError> => {
    const store = await openStore(`sqlite:${ws.dbFile}`);
    try {
      return await new UserStore(store).authenticate(id, password).catch((e: LoginFailedError) => e);
    } finally {
      await store.close();
    }
  };

  beforeAll(async () => {
    ws = await createWorkspace([{ id: 'users-bot', allowedTools: ['lookup_order'] }]);
  });
  afterAll(() => ws?.cleanup());

  it('every users command has --help with its options', async () => {
    const cases: Array<[string[], string, string[]]> = [
      [
        [],
        'Usage: warden users [options] [command]',
        ['add', 'list', 'show', 'passwd', 'disable', 'enable', 'unlock', 'remove'],
      ],
      [
        ['add'],
        'Usage: warden users add [options] <id>',
        ['--name <name>', '--email <email>', '--password-stdin', '--no-password'],
      ],
      [['list'], 'Usage: warden users list [options]', []],
      [['show'], 'Usage: warden users show [options] <id>', []],
      [['passwd'], 'Usage: warden users passwd [options] <id>', ['--password-stdin']],
      [['disable'], 'Usage: warden users disable [options] <id>', []],
      [['enable'], 'Usage: warden users enable [options] <id>', []],
      [['unlock'], 'Usage: warden users unlock [options] <id>', []],
      [['remove'], 'Usage: warden users remove [options] <id>', []],
    ];
    const results = await Promise.all(cases.map(([path]) => warden('users', ...path, '--help')));
    for (const [i, [path, usage, lists]] of cases.entries()) {
      const r = results[i]!;
      expectOk(r);
      expect(r.stdout).toContain(usage);
      const options = path.length ? [...lists, '-c, --config <file>', '--json', '-h, --help'] : lists;
      for (const o of options) expect(r.stdout, `users ${path.join(' ')} --help lists ${o}`).toContain(o);
      // The refused --password <value> is not advertised.
      expect(r.stdout).not.toMatch(/--password </);
    }
    const root = await warden('--help');
    expect(root.stdout).toMatch(/^ {2}users /m);
  });

  it.sequential('add --password-stdin creates a user who can log in; list --json shows it without a hash', async () => {
    const added = await runWithInput(
      [
        'users',
        'add',
        'alice',
        '--name',
        'Alice Liddell',
        '--email',
        'alice@example.com',
        '--password-stdin',
        '--json',
      ],
      ws.dir,
      { stdin: `${PW}\n` },
    );
    expect(json<UserView>(added)).toMatchObject({ id: 'alice', hasPassword: true, status: 'active' });

    const listed = json<UserView[]>(await warden('users', 'list', '--json'));
    expect(listed).toEqual([
      {
        id: 'alice',
        displayName: 'Alice Liddell',
        email: 'alice@example.com',
        status: 'active',
        failedLogins: 0,
        lockedUntil: null,
        locked: false,
        createdAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
        updatedAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
        lastLoginAt: null,
        hasPassword: true,
      },
    ]);
    expect(JSON.stringify(listed)).not.toContain('scrypt');
    expect((await login('alice', PW)) as User).toMatchObject({ id: 'alice' });
    // The operator's change is in the audit log (who, what), the password is not.
    const store = await openStore(`sqlite:${ws.dbFile}`);
    try {
      const rows = await store.db
        .selectFrom('audit_log')
        .select(['actor_type', 'data'])
        .where('event', '=', 'USER_UPDATED')
        .execute();
      expect(
        rows.map((r) => JSON.parse(String(r.data)) as { userId: string; action: string }),
      ).toContainEqual(expect.objectContaining({ userId: 'alice', action: 'created' }));
      expect(rows.every((r) => r.actor_type === 'HUMAN' && !String(r.data).includes(PW))).toBe(true);
    } finally {
      await store.close();
    }

    const human = await warden('users', 'list');
    expectOk(human);
    expect(human.stdout).toMatch(
      /^alice\s+active\s+password\s+last login \S+\s+Alice Liddell <alice@example.com>$/m,
    );

    const again = await runWithInput(['users', 'add', 'alice', '--password-stdin'], ws.dir, { stdin: PW });
    expectCliError(again, 'USER_EXISTS');
  });

  it.sequential('disable refuses the login; enable restores it; show tells', async () => {
    const disabled = json<UserView>(await warden('users', 'disable', 'alice', '--json'));
    expect(disabled.status).toBe('disabled');
    expect(((await login('alice', PW)) as LoginFailedError).reason).toBe('disabled');
    const shown = await warden('users', 'show', 'alice');
    expectOk(shown);
    expect(shown.stdout).toMatch(/^status\s+disabled$/m);
    expect(json<UserView>(await warden('users', 'enable', 'alice', '--json')).status).toBe('active');
    expect(((await login('alice', PW)) as User).id).toBe('alice');
  });

  it.sequential('refuses a password given as an argument, and creates nothing', async () => {
    for (const args of [
      ['users', 'add', 'mallory', '--password', PW],
      [`users`, 'add', 'mallory', `--password=${PW}`],
      ['users', 'passwd', 'alice', '--password', 'another password entirely'],
    ]) {
      expectCliError(await warden(...args), 'INVALID_REQUEST', /never accepted on the command line/);
    }
    // A positional password is just one argument too many.
    const extra = await warden('users', 'add', 'mallory', PW);
    expect(extra.code, describeResult(extra)).not.toBe(0);
    const ids = json<UserView[]>(await warden('users', 'list', '--json')).map((u) => u.id);
    expect(ids).toEqual(['alice']);
    expect(((await login('alice', PW)) as User).id).toBe('alice');
  });

  it.sequential('without a terminal and without --password-stdin, add and passwd refuse; --no-password adds a passwordless user', async () => {
    // runWarden's children have no stdin at all: not a terminal.
    expectCliError(await warden('users', 'add', 'bob'), 'INVALID_REQUEST', /--password-stdin.*--no-password/);
    expectCliError(await warden('users', 'passwd', 'alice'), 'INVALID_REQUEST', /--password-stdin/);
    const weak = await runWithInput(['users', 'add', 'bob', '--password-stdin'], ws.dir, {
      stdin: 'short\n',
    });
    expectCliError(weak, 'INVALID_REQUEST', /password: the password is too short/);
    const bob = json<UserView>(await warden('users', 'add', 'bob', '--no-password', '--json'));
    expect(bob).toMatchObject({ id: 'bob', hasPassword: false });
    expect(json<UserView[]>(await warden('users', 'list', '--json')).map((u) => u.id)).toEqual([
      'alice',
      'bob',
    ]);
  });

  it.sequential('passwd --password-stdin sets a new password; unlock and remove', async () => {
    const changed = await runWithInput(['users', 'passwd', 'bob', '--password-stdin'], ws.dir, {
      stdin: 'a fresh passphrase for bob\r\n',
    });
    expectOk(changed);
    expect(changed.stdout).toBe('Set the password of bob.\n');
    expect(((await login('bob', 'a fresh passphrase for bob')) as User).id).toBe('bob');
    for (let i = 0; i < 5; i++) await login('bob', 'wrong password, again');
    expect(json<UserView>(await warden('users', 'show', 'bob', '--json'))).toMatchObject({ locked: true });
    expect(json<UserView>(await warden('users', 'unlock', 'bob', '--json'))).toMatchObject({
      locked: false,
      failedLogins: 0,
    });
    expectOk(await warden('users', 'remove', 'bob'));
    expectCliError(await warden('users', 'show', 'bob'), 'USER_UNKNOWN');
    expectCliError(await warden('users', 'remove', 'bob'), 'USER_UNKNOWN');
    const jsonError = await warden('users', 'disable', 'bob', '--json');
    expect(jsonError.code).toBe(2);
    expect(JSON.parse(jsonError.stdout)).toEqual({
      error: { code: 'USER_UNKNOWN', message: 'No user "bob"' },
    });
  });

  it('the examples in docs/users.md run as written, in order', async () => {
    const docWs = await createWorkspace([{ id: 'docs-bot', allowedTools: ['lookup_order'] }]);
    try {
      docWs.writeFile('alice.password', `${PW}\n`);
      docWs.writeFile('new.password', 'a new, longer passphrase\n');
      const lines = docExamples();
      expect(lines.length).toBeGreaterThanOrEqual(9);
      for (const line of lines) {
        const shell = `${quote(process.execPath)} ${quote(WARDEN_BIN)} ${line.slice('npx warden '.length)}`;
        const r = await new Promise<CliResult>((resolve, reject) => {
          const child = spawn('sh', ['-c', shell], { cwd: docWs.dir, env: childEnv() });
          let stdout = '';
          let stderr = '';
          child.stdout.setEncoding('utf8').on('data', (d: string) => {
            stdout += d;
          });
          child.stderr.setEncoding('utf8').on('data', (d: string) => {
            stderr += d;
          });
          child.once('error', reject);
          child.once('close', (code, signal) =>
            resolve({ code, signal, stdout, stderr, timedOut: false, ms: 0 }),
          );
        });
        expect(r.code, `${line}\n${describeResult(r)}`).toBe(0);
      }
      const store = await openStore(`sqlite:${docWs.dbFile}`);
      try {
        const users = new UserStore(store);
        expect((await users.list()).map((u) => u.id)).toEqual(['alice']);
        expect((await users.authenticate('alice', 'a new, longer passphrase')).displayName).toBe(
          'Alice Liddell',
        );
      } finally {
        await store.close();
      }
    } finally {
      docWs.cleanup();
    }
  });

  it.sequential('on a terminal, asks twice without echoing what is typed', async () => {
    const typed = 'typed at the prompt 1';
    const r = await runWithInput(['users', 'add', 'carol'], ws.dir, {
      tty: [
        { after: 'New password for carol: ', type: `${typed}\r` },
        { after: 'Type it again: ', type: `${typed}\r` },
      ],
    });
    expectOk(r);
    expect(r.stdout).toContain('Added user carol.');
    expect(r.stdout).not.toContain(typed);
    expect(((await login('carol', typed)) as User).id).toBe('carol');

    const differ = await runWithInput(['users', 'passwd', 'carol'], ws.dir, {
      tty: [
        { after: 'New password for carol: ', type: 'one long password\r' },
        { after: 'Type it again: ', type: 'another long password\r' },
      ],
    });
    expect(differ.code, describeResult(differ)).toBe(2);
    expect(differ.stdout).toContain('The two passwords differ');
    expect(((await login('carol', typed)) as User).id).toBe('carol');
  });
});
