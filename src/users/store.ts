/**
 * The embedded user store: people who log in at Warden's consent page to let an
 * agent act for them (docs/users.md). Users of an external identity provider
 * (`corp:alice`) have no row here. Password logins fail with one fixed message
 * whatever the reason; the reason travels on the error for the audit log only.
 */
import { type Selectable, sql } from 'kysely';
import { WardenError } from '../errors.js';
import type { Store, UsersTable } from '../store/index.js';
import { type Clock, systemClock } from '../util/clock.js';
import { hashPassword, passwordProblem, verifyPassword } from './password.js';

/** A login name: lower case, digits, `.`, `_`, `-`; never a colon (external users are `<provider>:<sub>`). */
export const USERNAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;

/** Consecutive failed password logins that lock an account. */
export const MAX_FAILED_LOGINS = 5;
/** How long a locked account refuses every password login. */
export const LOCKOUT_MS = 15 * 60_000;
/** The one public message of every failed login: it must not tell an unknown user from a wrong password. */
export const LOGIN_FAILED_MESSAGE = 'the user name or password is wrong, or the account cannot log in now';

/**
 * A fixed hash (the current scrypt parameters, of a password nobody has) that an
 * unknown user's login is checked against, so it costs what a known user's does
 * and its timing does not reveal which users exist.
 */
export const DUMMY_HASH = 'scrypt$15$8$1$d6h6EGrYwGa6QvXfP8N20A$sVyVJfXlam_YzzdHkgEpck35wBtFPoVtBB41Fs2uypM';

const MAX_DISPLAY_NAME = 200;
const MAX_EMAIL = 254;
// Loose on purpose: one @, something on each side, a dot in the domain, no spaces.
const EMAIL = /^[^\s@]+@[^\s@.]+(\.[^\s@.]+)+$/;
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

/** A user, as the store shows it: never the password hash. Times are epoch ms. */
export interface User {
  id: string;
  displayName: string;
  email: string | null;
  status: 'active' | 'disabled';
  /** Consecutive failed password logins (reset by a successful one, `unlock` and `setPassword`). */
  failedLogins: number;
  /** Password logins are refused until then; null (or past) = not locked. */
  lockedUntil: number | null;
  createdAt: number;
  updatedAt: number;
  lastLoginAt: number | null;
  /** False for a user who can only log in through an external provider or not at all. */
  hasPassword: boolean;
}

/** What `create` takes. */
export interface NewUser {
  id: string;
  /** Default: the id. */
  displayName?: string;
  email?: string;
  /** Omitted: the user cannot log in with a password. */
  password?: string;
}

/** Why a login failed: for the audit log and the server's log, never for the person logging in. */
export type LoginFailureReason = 'unknown_user' | 'no_password' | 'wrong_password' | 'disabled' | 'locked';

/** LOGIN_FAILED, with its private reason. `message` is always LOGIN_FAILED_MESSAGE. */
export class LoginFailedError extends WardenError {
  constructor(
    readonly userId: string,
    readonly reason: LoginFailureReason,
    /** After a wrong password: the consecutive failures now counted. */
    readonly failedLogins?: number,
  ) {
    super('LOGIN_FAILED', LOGIN_FAILED_MESSAGE, {
      detail: `login as ${JSON.stringify(userId)} refused: ${reason}${failedLogins === undefined ? '' : ` (${failedLogins} consecutive failures)`}`,
    });
    this.name = 'LoginFailedError';
  }
}

/** Maps a `users` row to a User. */
function rowToUser(row: Selectable<UsersTable>): User {
  return {
    id: row.id,
    displayName: row.display_name,
    email: row.email,
    status: row.status === 'active' ? 'active' : 'disabled',
    failedLogins: Number(row.failed_logins),
    lockedUntil: row.locked_until === null ? null : Number(row.locked_until),
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
    lastLoginAt: row.last_login_at === null ? null : Number(row.last_login_at),
    hasPassword: row.password_hash !== null,
  };
}

function invalid(message: string): WardenError {
  return new WardenError('INVALID_REQUEST', `Invalid user: ${message}`);
}

/** The checked display name and email of `input`. */
function checkProfile(input: NewUser): { displayName: string; email: string | null } {
  if (typeof input.id !== 'string' || !USERNAME.test(input.id)) {
    throw invalid(
      'id must be 1-64 characters of a-z, 0-9, ".", "_" and "-", starting with a letter or digit (no colon: external users need no row)',
    );
  }
  const displayName = input.displayName === undefined ? input.id : input.displayName.trim();
  if (displayName === '' || [...displayName].length > MAX_DISPLAY_NAME || CONTROL.test(displayName)) {
    throw invalid(`displayName must be 1-${MAX_DISPLAY_NAME} characters, without control characters`);
  }
  if (input.email === undefined) return { displayName, email: null };
  const email = input.email.trim();
  if (email.length > MAX_EMAIL || !EMAIL.test(email)) {
    throw invalid(`email must look like name@example.com (got ${JSON.stringify(input.email)})`);
  }
  return { displayName, email };
}

/** Embedded users, backed by the store. */
export class UserStore {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock = systemClock,
  ) {}

  /** Creates a user; USER_EXISTS when the id is taken, INVALID_REQUEST (naming the field) when the input is invalid. */
  async create(input: NewUser): Promise<User> {
    const { displayName, email } = checkProfile(input);
    let passwordHash: string | null = null;
    if (input.password !== undefined) {
      const problem = passwordProblem(input.password);
      if (problem) throw invalid(`password: ${problem}`);
      passwordHash = await hashPassword(input.password);
    }
    const now = this.clock.now();
    const inserted = await this.store.db
      .insertInto('users')
      .values({
        id: input.id,
        display_name: displayName,
        email,
        password_hash: passwordHash,
        status: 'active',
        locked_until: null,
        created_at: now,
        updated_at: now,
        last_login_at: null,
      })
      .onConflict((oc) => oc.column('id').doNothing())
      .executeTakeFirst();
    if (Number(inserted.numInsertedOrUpdatedRows ?? 0) !== 1) {
      throw new WardenError('USER_EXISTS', `User ${input.id} already exists`);
    }
    return (await this.get(input.id))!;
  }

  /** The user with `id`, or undefined. */
  async get(id: string): Promise<User | undefined> {
    const row = await this.row(id);
    return row ? rowToUser(row) : undefined;
  }

  /** Every user, ordered by id (byte order, the same in SQLite and PostgreSQL whatever the collation). */
  async list(): Promise<User[]> {
    const rows = await this.store.db.selectFrom('users').selectAll().execute();
    return rows.map(rowToUser).sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  /** Sets a new password (and clears the failure count and any lock: they were about the old one). */
  async setPassword(id: string, password: string): Promise<User> {
    const problem = passwordProblem(password);
    if (problem) throw invalid(`password: ${problem}`);
    const hash = await hashPassword(password);
    return this.update(id, { password_hash: hash, failed_logins: 0, locked_until: null });
  }

  /** Enables or disables the user; a disabled user cannot log in. */
  async setStatus(id: string, status: User['status']): Promise<User> {
    if (status !== 'active' && status !== 'disabled') throw invalid('status must be active or disabled');
    return this.update(id, { status });
  }

  /** Clears the failure count and the lock. */
  async unlock(id: string): Promise<User> {
    return this.update(id, { failed_logins: 0, locked_until: null });
  }

  /** Deletes the user. */
  async remove(id: string): Promise<void> {
    const res = await this.store.db.deleteFrom('users').where('id', '=', id).executeTakeFirst();
    if (Number(res.numDeletedRows) === 0) throw unknownUser(id);
  }

  /**
   * The user, when `password` is theirs and the account may log in now; the
   * successful login resets the failure count and records last_login_at.
   * Throws LoginFailedError (LOGIN_FAILED, one message) otherwise; a wrong
   * password counts towards the lock, MAX_FAILED_LOGINS in a row lock it for LOCKOUT_MS.
   */
  async authenticate(id: string, password: string): Promise<User> {
    const row = typeof id === 'string' && USERNAME.test(id) ? await this.row(id) : undefined;
    const hash = row?.password_hash ?? null;
    // Always one scrypt, so unknown users and users without a password cost what the others do.
    const matches = await verifyPassword(typeof password === 'string' ? password : '', hash ?? DUMMY_HASH);
    if (!row) throw new LoginFailedError(String(id), 'unknown_user');
    if (hash === null) throw new LoginFailedError(id, 'no_password');
    if (row.status !== 'active') throw new LoginFailedError(id, 'disabled');
    const now = this.clock.now();
    if (row.locked_until !== null && Number(row.locked_until) > now) throw new LoginFailedError(id, 'locked');
    if (!matches) throw new LoginFailedError(id, 'wrong_password', await this.countFailure(id, now));

    // The row may have changed since it was read (locked by parallel failures, disabled, a new
    // password): the update holds only if it is still the account the password was checked against.
    const res = await this.store.db
      .updateTable('users')
      .set({ failed_logins: 0, locked_until: null, last_login_at: now, updated_at: now })
      .where('id', '=', id)
      .where('status', '=', 'active')
      .where('password_hash', '=', hash)
      .where((eb) => eb.or([eb('locked_until', 'is', null), eb('locked_until', '<=', now)]))
      .executeTakeFirst();
    if (Number(res.numUpdatedRows) === 0) {
      const current = await this.row(id);
      const reason: LoginFailureReason = !current
        ? 'unknown_user'
        : current.status !== 'active'
          ? 'disabled'
          : current.password_hash !== hash
            ? 'wrong_password'
            : 'locked';
      throw new LoginFailedError(id, reason);
    }
    return (await this.get(id))!;
  }

  /**
   * Counts a wrong password in one statement, so parallel attempts all count:
   * the count restarts after an expired lock, and reaching MAX_FAILED_LOGINS
   * sets a lock (an active lock is kept, never extended). Returns the new count.
   */
  private async countFailure(id: string, now: number): Promise<number> {
    const expired = sql<boolean>`locked_until is not null and locked_until <= ${now}`;
    const count = sql<number>`case when ${expired} then 1 else failed_logins + 1 end`;
    const row = await this.store.db
      .updateTable('users')
      .set({
        failed_logins: count,
        locked_until: sql<number | null>`case
          when locked_until is not null and locked_until > ${now} then locked_until
          when ${count} >= ${MAX_FAILED_LOGINS} then ${now + LOCKOUT_MS}
          else null end`,
        updated_at: now,
      })
      .where('id', '=', id)
      .returning('failed_logins')
      .executeTakeFirst();
    return Number(row?.failed_logins ?? 0);
  }

  private async row(id: string): Promise<Selectable<UsersTable> | undefined> {
    return this.store.db.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirst();
  }

  private async update(
    id: string,
    set: Partial<Pick<UsersTable, 'password_hash' | 'status' | 'locked_until'>> & { failed_logins?: number },
  ): Promise<User> {
    const res = await this.store.db
      .updateTable('users')
      .set({ ...set, updated_at: this.clock.now() })
      .where('id', '=', id)
      .executeTakeFirst();
    if (Number(res.numUpdatedRows) === 0) throw unknownUser(id);
    return (await this.get(id))!;
  }
}

function unknownUser(id: string): WardenError {
  return new WardenError('USER_UNKNOWN', `No user "${id}"`);
}
