/**
 * Users' own tokens at upstream authorization servers, kept encrypted at
 * rest (issue #6): one sealed token set per user and issuer. Sealing is a
 * compact JWE (`dir`, `A256GCM`, via jose) whose protected header names the
 * user and the issuer, so a sealed value copied onto another row does not open.
 */
import { CompactEncrypt, compactDecrypt } from 'jose';
import { WardenError } from '../errors.js';
import type { Store } from '../store/index.js';
import { type Clock, systemClock } from '../util/clock.js';

/** What Warden keeps of a user's grant at an upstream. */
export interface UpstreamTokenSet {
  accessToken: string;
  refreshToken?: string;
  /** Epoch ms; absent = the server did not say. */
  expiresAt?: number;
  scope?: string;
}

/** Decodes a token key: exactly 32 bytes, written as base64 or base64url. */
export function decodeTokenKey(text: string): Uint8Array {
  const trimmed = text.trim();
  const bytes = Buffer.from(trimmed.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
  if (bytes.length !== 32 || !/^[A-Za-z0-9+/_-]{43}=?$/.test(trimmed)) {
    throw new WardenError('CONFIG_INVALID', 'Invalid configuration', {
      detail: 'oauth.tokenKey must be 32 random bytes in base64 (openssl rand -base64 32)',
    });
  }
  return new Uint8Array(bytes);
}

/** The `upstream_tokens` table, sealed with one key. */
export class UpstreamTokenVault {
  constructor(
    private readonly store: Store,
    /** The current key (resolved on use, so a key file can be provisioned after start). */
    private readonly key: () => Promise<Uint8Array>,
    private readonly clock: Clock = systemClock,
  ) {}

  async put(userId: string, issuer: string, set: UpstreamTokenSet): Promise<void> {
    const sealed = await new CompactEncrypt(new TextEncoder().encode(JSON.stringify(set)))
      .setProtectedHeader({ alg: 'dir', enc: 'A256GCM', 'warden.user': userId, 'warden.iss': issuer })
      .encrypt(await this.key());
    const now = this.clock.now();
    const row = { sealed, expires_at: set.expiresAt ?? null, updated_at: now };
    await this.store.db
      .insertInto('upstream_tokens')
      .values({ user_id: userId, issuer, created_at: now, ...row })
      .onConflict((oc) => oc.columns(['user_id', 'issuer']).doUpdateSet(row))
      .execute();
  }

  /** The user's token set at `issuer`; undefined when none, or when it does not open (then it is deleted). */
  async get(userId: string, issuer: string): Promise<UpstreamTokenSet | undefined> {
    const row = await this.store.db
      .selectFrom('upstream_tokens')
      .select('sealed')
      .where('user_id', '=', userId)
      .where('issuer', '=', issuer)
      .executeTakeFirst();
    if (!row) return undefined;
    try {
      const { plaintext, protectedHeader } = await compactDecrypt(row.sealed, await this.key());
      if (protectedHeader['warden.user'] !== userId || protectedHeader['warden.iss'] !== issuer) {
        throw new Error('sealed for another user or issuer');
      }
      return JSON.parse(new TextDecoder().decode(plaintext)) as UpstreamTokenSet;
    } catch {
      // Tampered, moved, or sealed with a key since replaced: unusable; the user connects again.
      await this.delete(userId, issuer);
      return undefined;
    }
  }

  async delete(userId: string, issuer: string): Promise<boolean> {
    const res = await this.store.db
      .deleteFrom('upstream_tokens')
      .where('user_id', '=', userId)
      .where('issuer', '=', issuer)
      .executeTakeFirst();
    return Number(res.numDeletedRows) > 0;
  }

  /** Issuers the user has tokens at. */
  async issuersOf(userId: string): Promise<string[]> {
    const rows = await this.store.db
      .selectFrom('upstream_tokens')
      .select('issuer')
      .where('user_id', '=', userId)
      .execute();
    return rows.map((r) => r.issuer);
  }

  /** Some users with tokens at `issuer` (most recently updated first). */
  async usersAt(issuer: string, limit: number): Promise<string[]> {
    const rows = await this.store.db
      .selectFrom('upstream_tokens')
      .select('user_id')
      .where('issuer', '=', issuer)
      .orderBy('updated_at', 'desc')
      .limit(limit)
      .execute();
    return rows.map((r) => r.user_id);
  }
}
