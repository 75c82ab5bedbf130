/**
 * `warden users add|list|show|passwd|disable|enable|unlock|remove`: the embedded
 * user store from the command line. A password never comes from the command
 * line (shell history, `ps`): it is typed at a hidden prompt or piped to stdin.
 */
import { createInterface } from 'node:readline';
import { Writable } from 'node:stream';
import { type Command, Option } from 'commander';
import { WardenError } from '../errors.js';
import type { Services } from '../server/services.js';
import type { User, UserStore } from '../users/index.js';
import { loadForCli } from './context.js';
import { iso, printJson, reportError } from './output.js';

interface CommonOptions {
  config?: string;
  json?: boolean;
}

interface PasswordOptions {
  passwordStdin?: boolean;
  /** A string only when someone typed `--password <value>` (refused); false for `add --no-password`. */
  password?: string | boolean;
}

/** More than any password could need: stops `--password-stdin < big-file` early. */
const MAX_STDIN_BYTES = 64 * 1024;

/** Run `fn` with the user store open; errors are reported, never thrown. `check` runs first, before the store opens. */
async function withUsers(
  opts: CommonOptions,
  fn: (users: UserStore, now: () => number, services: Services) => Promise<void>,
  check?: () => void,
): Promise<void> {
  try {
    check?.();
    const { config } = await loadForCli(opts);
    // Loaded on use: the store is heavy, and `--help` should not pay for it.
    const { openServices } = await import('../server/services.js');
    const { UserStore } = await import('../users/index.js');
    const s = await openServices(config);
    try {
      await fn(new UserStore(s.store, s.clock), () => s.clock.now(), s);
    } finally {
      await s.store.close();
    }
  } catch (e) {
    reportError(e, opts.json);
  }
}

/** Refuse a password given as an argument: by now it is in the shell history and was visible in `ps`. */
function refuseArgvPassword(opts: PasswordOptions): void {
  if (typeof opts.password === 'string') {
    throw new WardenError(
      'INVALID_REQUEST',
      '--password: a password is never accepted on the command line (shell history, process list); type it at the prompt or pipe it in with --password-stdin. Change the one you typed.',
    );
  }
}

/** `--password-stdin`: everything on stdin, less one trailing newline. */
async function readStdinPassword(): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of process.stdin as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_STDIN_BYTES)
      throw new WardenError('INVALID_REQUEST', '--password-stdin: stdin is too long');
    chunks.push(chunk);
  }
  const password = Buffer.concat(chunks)
    .toString('utf8')
    .replace(/\r?\n$/, '');
  if (password === '') throw new WardenError('INVALID_REQUEST', '--password-stdin: stdin was empty');
  return password;
}

/** Ask on the terminal without echoing what is typed (the prompt goes to stderr, keeping stdout for output). */
function promptHidden(question: string): Promise<string> {
  let muted = false;
  const output = new Writable({
    write(chunk, encoding, done) {
      if (!muted) process.stderr.write(chunk, encoding);
      done();
    },
  });
  const rl = createInterface({ input: process.stdin, output, terminal: true });
  return new Promise((resolve, reject) => {
    let answered = false;
    rl.on('SIGINT', () => rl.close());
    rl.on('close', () => {
      if (answered) return;
      process.stderr.write('\n');
      reject(new WardenError('INVALID_REQUEST', 'Cancelled: no password entered'));
    });
    rl.question(question, (answer) => {
      answered = true;
      process.stderr.write('\n');
      rl.close();
      resolve(answer);
    });
    muted = true;
  });
}

/** The new password for `id`: from stdin with --password-stdin, else typed twice at a hidden prompt. */
async function newPassword(id: string, opts: PasswordOptions, problem: (pw: string) => string | null) {
  const check = (pw: string) => {
    const p = problem(pw);
    if (p) throw new WardenError('INVALID_REQUEST', `Invalid user: password: ${p}`);
    return pw;
  };
  if (opts.passwordStdin) return check(await readStdinPassword());
  if (!process.stdin.isTTY) {
    throw new WardenError(
      'INVALID_REQUEST',
      `No password for ${id}: stdin is not a terminal to ask on; pipe it in with --password-stdin${opts.password === undefined ? '' : ', or use --no-password for a user who never logs in with one'}`,
    );
  }
  const first = check(await promptHidden(`New password for ${id}: `));
  const again = await promptHidden('Type it again: ');
  if (again !== first) throw new WardenError('INVALID_REQUEST', 'The two passwords differ: nothing changed');
  return first;
}

function isoOrNull(ms: number | null): string | null {
  return ms === null ? null : iso(ms);
}

/** A user as JSON for people and machines: times ISO, and whether the lock holds now. */
function view(u: User, now: number) {
  return {
    ...u,
    locked: u.lockedUntil !== null && u.lockedUntil > now,
    lockedUntil: isoOrNull(u.lockedUntil),
    createdAt: iso(u.createdAt),
    updatedAt: iso(u.updatedAt),
    lastLoginAt: isoOrNull(u.lastLoginAt),
  };
}

function state(u: User, now: number): string {
  if (u.status === 'disabled') return 'disabled';
  return u.lockedUntil !== null && u.lockedUntil > now ? 'locked' : 'active';
}

/** Common to every subcommand. */
function common(cmd: Command): Command {
  return cmd.option('-c, --config <file>', 'config file').option('--json', 'JSON output');
}

/** A hidden `--password <value>`, so giving one is refused with a reason instead of "unknown option". */
const argvPassword = () => new Option('--password <password>').hideHelp();

/** Register the `users` command group. */
export function registerUsers(program: Command): void {
  const users = program
    .command('users')
    .description(
      "People who log in at Warden's consent page to let agents act for them (embedded user store)",
    );

  common(
    users
      .command('add <id>')
      .description('Add a user; the password is typed at a hidden prompt, or piped in with --password-stdin')
      .option('--name <name>', 'display name (default: the id)')
      .option('--email <email>', 'email address')
      .option('--password-stdin', 'read the password from stdin (one trailing newline is dropped)')
      .option('--no-password', 'no password: the user cannot log in with one (e.g. logs in through an IdP)')
      .addOption(argvPassword()),
  ).action((id: string, opts: CommonOptions & PasswordOptions & { name?: string; email?: string }) =>
    withUsers(
      opts,
      async (store, now, s) => {
        const { passwordProblem } = await import('../users/index.js');
        // Before asking for a password: an id that cannot be added should not cost typing one.
        if (await store.get(id)) throw new WardenError('USER_EXISTS', `User ${id} already exists`);
        const password = opts.password === false ? undefined : await newPassword(id, opts, passwordProblem);
        const user = await store.create({
          id,
          ...(opts.name === undefined ? {} : { displayName: opts.name }),
          ...(opts.email === undefined ? {} : { email: opts.email }),
          ...(password === undefined ? {} : { password }),
        });
        await auditUser(s, id, 'created');
        if (opts.json) return printJson(view(user, now()));
        process.stdout.write(
          `Added user ${user.id}${user.hasPassword ? '.' : ' without a password (cannot log in with one).'}\n`,
        );
      },
      () => {
        refuseArgvPassword(opts);
        if (opts.password === false && opts.passwordStdin) {
          throw new WardenError(
            'INVALID_REQUEST',
            '--password-stdin and --no-password contradict each other',
          );
        }
      },
    ),
  );

  common(users.command('list').description('List users')).action((opts: CommonOptions) =>
    withUsers(opts, async (store, now) => {
      const all = await store.list();
      const t = now();
      if (opts.json) return printJson(all.map((u) => view(u, t)));
      if (all.length === 0) return void process.stdout.write('No users.\n');
      for (const u of all) {
        const contact = u.email ? `${u.displayName} <${u.email}>` : u.displayName;
        process.stdout.write(
          `${u.id.padEnd(24)} ${state(u, t).padEnd(9)} ${(u.hasPassword ? 'password' : 'no password').padEnd(12)} last login ${iso(u.lastLoginAt).padEnd(24)}  ${contact}\n`,
        );
      }
    }),
  );

  common(users.command('show <id>').description('Show one user')).action((id: string, opts: CommonOptions) =>
    withUsers(opts, async (store, now) => {
      const u = await store.get(id);
      if (!u) throw new WardenError('USER_UNKNOWN', `No user "${id}"`);
      const t = now();
      if (opts.json) return printJson(view(u, t));
      const rows: Array<[string, string]> = [
        ['id', u.id],
        ['name', u.displayName],
        ['email', u.email ?? '-'],
        ['status', state(u, t)],
        ['password', u.hasPassword ? 'set' : 'none'],
        ['failed logins', String(u.failedLogins)],
        ['locked until', u.lockedUntil !== null && u.lockedUntil > t ? iso(u.lockedUntil) : '-'],
        ['last login', iso(u.lastLoginAt)],
        ['created', iso(u.createdAt)],
        ['updated', iso(u.updatedAt)],
      ];
      for (const [k, val] of rows) process.stdout.write(`${k.padEnd(14)} ${val}\n`);
    }),
  );

  common(
    users
      .command('passwd <id>')
      .description(
        "Set a user's password (clears failed logins and any lock); hidden prompt or --password-stdin",
      )
      .option('--password-stdin', 'read the password from stdin (one trailing newline is dropped)')
      .addOption(argvPassword()),
  ).action((id: string, opts: CommonOptions & PasswordOptions) =>
    withUsers(
      opts,
      async (store, now, s) => {
        const { passwordProblem } = await import('../users/index.js');
        if (!(await store.get(id))) throw new WardenError('USER_UNKNOWN', `No user "${id}"`);
        const user = await store.setPassword(id, await newPassword(id, opts, passwordProblem));
        await auditUser(s, id, 'password-set');
        if (opts.json) return printJson(view(user, now()));
        process.stdout.write(`Set the password of ${id}.\n`);
      },
      () => refuseArgvPassword(opts),
    ),
  );

  const simple = (
    name: string,
    description: string,
    act: (store: UserStore, id: string) => Promise<User>,
    done: string,
    revoke = false,
  ) =>
    common(users.command(`${name} <id>`).description(description)).action((id: string, opts: CommonOptions) =>
      withUsers(opts, async (store, now, s) => {
        const user = await act(store, id);
        await auditUser(s, id, name === 'disable' ? 'disabled' : name === 'enable' ? 'enabled' : 'unlocked');
        const revoked = revoke ? await revokeGrantsOf(s, id) : 0;
        if (opts.json)
          return printJson({ ...view(user, now()), ...(revoke ? { grantsRevoked: revoked } : {}) });
        process.stdout.write(
          `${done} ${id}${revoke ? ` (${revoked} grant${revoked === 1 ? '' : 's'} revoked)` : ''}.\n`,
        );
      }),
    );

  simple(
    'disable',
    'Disable a user: no login until enabled again, and every grant they gave is revoked (their sessions end)',
    (store, id) => store.setStatus(id, 'disabled'),
    'Disabled user',
    true,
  );
  simple('enable', 'Enable a disabled user', (store, id) => store.setStatus(id, 'active'), 'Enabled user');
  simple(
    'unlock',
    'Unlock a user locked out by failed logins (and reset the count)',
    (store, id) => store.unlock(id),
    'Unlocked user',
  );

  common(
    users.command('remove <id>').description('Delete a user from the store and revoke every grant they gave'),
  ).action((id: string, opts: CommonOptions) =>
    withUsers(opts, async (store, _now, s) => {
      await store.remove(id);
      await auditUser(s, id, 'removed');
      const revoked = await revokeGrantsOf(s, id);
      if (opts.json) return printJson({ id, removed: true, grantsRevoked: revoked });
      process.stdout.write(`Removed user ${id} (${revoked} grant${revoked === 1 ? '' : 's'} revoked).\n`);
    }),
  );
}

/** An operator changed a user: audited with the operating system user who did it. */
async function auditUser(s: Services, userId: string, action: string): Promise<void> {
  await s.audit.append({
    traceId: `cli-${s.clock.now()}`,
    event: 'USER_UPDATED',
    actorType: 'HUMAN',
    actorId: `operator:${process.env.USER ?? 'cli'}`,
    triggerUserId: userId,
    result: 'success',
    data: { userId, action, via: 'cli' },
  });
}

/** Revokes every live grant of `userId` (their tokens and sessions end); audited; returns how many. */
async function revokeGrantsOf(s: Services, userId: string): Promise<number> {
  const { UserGrants } = await import('../oauth/index.js');
  const grants = new UserGrants(s.store, s.sessions, s.clock);
  let count = 0;
  for (const g of await grants.listForUser(userId)) {
    const out = await grants.revoke(g.id, `operator:${process.env.USER ?? 'cli'}`);
    if (!out.changed) continue;
    count++;
    await s.audit.append({
      traceId: `cli-${s.clock.now()}`,
      event: 'GRANT_REVOKED',
      actorType: 'HUMAN',
      actorId: `operator:${process.env.USER ?? 'cli'}`,
      agentId: g.agentId,
      triggerUserId: userId,
      triggerSource: 'user',
      result: 'success',
      data: {
        grantId: g.id,
        clientId: g.clientId,
        by: 'operator',
        reason: 'user disabled or removed',
        sessionsRevoked: out.sessions.length,
      },
    });
  }
  return count;
}
