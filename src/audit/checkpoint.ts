/**
 * Signed checkpoints of the audit log (issue #9): at intervals, the Merkle tree's
 * size and root, with the chain hash at that size, signed as a compact JWS
 * (EdDSA, Ed25519) with a key that is not the token keys' and does not live in
 * the database. Someone who can rewrite the database can rebuild a consistent
 * chain and tree, but not sign for them; and a checkpoint published outside the
 * database (a file on another volume, a webhook to a SIEM) still names the size
 * the log had, so a truncated log fails `warden audit verify` against it.
 *
 * The JWS is the authority. Its payload:
 *   { "v": 1, "log": <log id>, "size": N, "root": <hex MTH of entries 1..N>,
 *     "head": <hex chain hash of entry N>, "ts": <epoch ms> }
 * with protected header { alg: "EdDSA", kid: <RFC 7638 thumbprint>, typ: CHECKPOINT_TYP }.
 * The table's columns repeat it for queries; the verifier checks they agree.
 *
 * Several processes may checkpoint one store: each checkpoint row is keyed by its
 * size (insert-or-ignore), and they must share the signing key (or list each
 * other's public keys in `audit.checkpoints.trustedKeys`) for verify to trust them.
 */
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, open, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import {
  CompactSign,
  type CryptoKey,
  calculateJwkThumbprint,
  compactVerify,
  decodeProtectedHeader,
  importJWK,
  type JWK,
} from 'jose';
import { describeRef, resolveSecret } from '../config/secrets.js';
import type { AuditConfig, AuditKeyRef } from '../config/types.js';
import { WardenError } from '../errors.js';
import { generateJwkPair } from '../identity/jwk.js';
import type { SecurityAlert } from '../notify/types.js';
import { signWebhook } from '../notify/webhook-signature.js';
import type { Store } from '../store/index.js';
import { type Clock, systemClock } from '../util/clock.js';
import { readOrCreateKey } from '../util/key-file.js';
import { toHex } from './merkle.js';
import { ChainBreakError, type MerkleTree } from './tree.js';

export const CHECKPOINT_TYP = 'warden-audit-checkpoint+jws';
/** How often the background task looks at the log (it signs only when a checkpoint is due). */
const TICK_MS = 1_000;
const PUBLISH_ATTEMPTS = 3;

/** A signed tree head, as stored, listed and published. */
export interface Checkpoint {
  log: string;
  size: number;
  root: string;
  head: string;
  ts: number;
  kid: string;
  jws: string;
}

/** What the JWS signs. */
export interface CheckpointPayload {
  v: 1;
  log: string;
  size: number;
  root: string;
  head: string;
  ts: number;
}

/** The signing half of the checkpoint key. */
export interface CheckpointSigner {
  kid: string;
  publicJwk: JWK;
  sign(payload: CheckpointPayload): Promise<string>;
}

/** Public keys a verifier trusts, by kid. */
export type TrustedKeys = Map<string, { jwk: JWK; key: Promise<CryptoKey> }>;

const HEX64 = /^[0-9a-f]{64}$/;

function publicPart(jwk: JWK): JWK {
  return { kty: jwk.kty, crv: jwk.crv, x: jwk.x };
}

function isEd25519(jwk: unknown): jwk is JWK {
  const j = jwk as JWK | null;
  return (
    typeof j === 'object' && j !== null && j.kty === 'OKP' && j.crv === 'Ed25519' && typeof j.x === 'string'
  );
}

/** The checkpoint signing key: loaded from its reference, created first when it is the default file. */
export async function loadCheckpointSigner(keyRef: AuditKeyRef): Promise<CheckpointSigner> {
  const text = await readOrCreateKey(
    keyRef,
    async () => `${JSON.stringify((await generateJwkPair('EdDSA')).privateJwk)}\n`,
  );
  let jwk: unknown;
  try {
    jwk = JSON.parse(text);
  } catch {
    throw new WardenError(
      'CONFIG_INVALID',
      `audit.checkpoints.signingKey ${describeRef(keyRef.ref)}: not a JSON Web Key`,
    );
  }
  if (!isEd25519(jwk) || typeof jwk.d !== 'string') {
    throw new WardenError(
      'CONFIG_INVALID',
      `audit.checkpoints.signingKey ${describeRef(keyRef.ref)}: expected a private Ed25519 JWK ({"kty":"OKP","crv":"Ed25519","x":…,"d":…})`,
    );
  }
  const publicJwk = publicPart(jwk);
  const kid = await calculateJwkThumbprint(publicJwk);
  Object.assign(publicJwk, { kid, alg: 'EdDSA', use: 'sig' });
  const privateKey = await importJWK({ ...publicPart(jwk), d: jwk.d }, 'EdDSA');
  return {
    kid,
    publicJwk,
    sign: (payload) =>
      new CompactSign(new TextEncoder().encode(JSON.stringify(payload)))
        .setProtectedHeader({ alg: 'EdDSA', kid, typ: CHECKPOINT_TYP })
        .sign(privateKey),
  };
}

/** Add public keys (a JWK, or a JWKS `{keys: [...]}`) to `into`; private members are ignored. */
export async function addTrustedKeys(into: TrustedKeys, value: unknown, source: string): Promise<void> {
  const list =
    typeof value === 'object' && value !== null && 'keys' in value
      ? (value as { keys: unknown }).keys
      : [value];
  if (!Array.isArray(list) || list.length === 0) {
    throw new WardenError('CONFIG_INVALID', `${source}: expected a JWK or a JWKS with Ed25519 public keys`);
  }
  for (const k of list) {
    if (!isEd25519(k)) throw new WardenError('CONFIG_INVALID', `${source}: every key must be an Ed25519 JWK`);
    const jwk = publicPart(k);
    const kid = await calculateJwkThumbprint(jwk);
    into.set(kid, {
      jwk: { ...jwk, kid, alg: 'EdDSA', use: 'sig' },
      key: importJWK(jwk, 'EdDSA') as Promise<CryptoKey>,
    });
  }
}

/** The keys `verify` trusts: the signing key's public half (when it can be read) and the listed files. */
export async function loadTrustedKeys(
  config: AuditConfig['checkpoints'],
  extraFiles: readonly string[] = [],
): Promise<TrustedKeys> {
  const keys: TrustedKeys = new Map();
  const ref = config.signingKey;
  // The default key not created yet (no gateway has started): nothing was signed with it. Any
  // other failure — a configured key unreadable or malformed — is the operator's to see.
  const notYetCreated = ref.generate && 'file' in ref.ref && !existsSync(ref.ref.file);
  if (!notYetCreated) {
    // Never create the key here: a verifier must not invent the key it then trusts.
    const signer = await loadCheckpointSigner({ ...ref, generate: false });
    await addTrustedKeys(keys, signer.publicJwk, 'audit.checkpoints.signingKey');
  }
  for (const file of [...config.trustedKeyFiles, ...extraFiles]) {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (e) {
      throw new WardenError(
        'CONFIG_INVALID',
        `trusted checkpoint key ${file}: cannot read it (${(e as NodeJS.ErrnoException).code ?? e})`,
      );
    }
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      throw new WardenError('CONFIG_INVALID', `trusted checkpoint key ${file}: not JSON`);
    }
    await addTrustedKeys(keys, value, `trusted checkpoint key ${file}`);
  }
  return keys;
}

/** The outcome of checking a checkpoint's JWS. */
export type OpenedCheckpoint =
  | { ok: true; payload: CheckpointPayload; kid: string }
  | { ok: false; reason: string };

/** Check a checkpoint JWS against the trusted keys and decode its payload. */
export async function openCheckpoint(jws: string, trusted: TrustedKeys): Promise<OpenedCheckpoint> {
  let kid: unknown;
  let typ: unknown;
  try {
    ({ kid, typ } = decodeProtectedHeader(jws));
  } catch {
    return { ok: false, reason: 'not a compact JWS' };
  }
  if (typ !== CHECKPOINT_TYP) return { ok: false, reason: `typ is ${String(typ)}, not ${CHECKPOINT_TYP}` };
  const key = typeof kid === 'string' ? trusted.get(kid) : undefined;
  if (key === undefined)
    return { ok: false, reason: `signed by a key that is not trusted (kid ${String(kid)})` };
  let payload: unknown;
  try {
    const r = await compactVerify(jws, await key.key, { algorithms: ['EdDSA'] });
    payload = JSON.parse(new TextDecoder().decode(r.payload));
  } catch {
    return { ok: false, reason: `the signature does not verify with key ${String(kid)}` };
  }
  const p = payload as Partial<CheckpointPayload>;
  if (
    p.v !== 1 ||
    typeof p.log !== 'string' ||
    !Number.isSafeInteger(p.size) ||
    (p.size as number) < 1 ||
    typeof p.root !== 'string' ||
    !HEX64.test(p.root) ||
    typeof p.head !== 'string' ||
    !HEX64.test(p.head) ||
    !Number.isSafeInteger(p.ts)
  ) {
    return { ok: false, reason: 'the signed payload is not a checkpoint' };
  }
  return { ok: true, payload: p as CheckpointPayload, kid: kid as string };
}

/** A checkpoint from an untrusted JSON value (a published line, an API answer); undefined if malformed. */
export function parseCheckpoint(value: unknown): Checkpoint | undefined {
  const c = value as Partial<Checkpoint> | null;
  if (
    typeof c !== 'object' ||
    c === null ||
    typeof c.jws !== 'string' ||
    typeof c.log !== 'string' ||
    !Number.isSafeInteger(c.size) ||
    typeof c.root !== 'string' ||
    typeof c.head !== 'string' ||
    !Number.isSafeInteger(c.ts) ||
    typeof c.kid !== 'string'
  ) {
    return undefined;
  }
  return {
    log: c.log,
    size: c.size as number,
    root: c.root,
    head: c.head,
    ts: c.ts as number,
    kid: c.kid,
    jws: c.jws,
  };
}

/** Whether the payload says what the checkpoint's plain fields say. */
export function payloadMatches(c: Checkpoint, p: CheckpointPayload): boolean {
  return p.log === c.log && p.size === c.size && p.root === c.root && p.head === c.head && p.ts === c.ts;
}

export interface CheckpointerDeps {
  store: Store;
  tree: MerkleTree;
  signer: CheckpointSigner;
  config: AuditConfig['checkpoints'];
  clock?: Clock;
  log: {
    info(o: object, msg: string): void;
    warn(o: object, msg: string): void;
    error(o: object, msg: string): void;
  };
  alert?(a: SecurityAlert): void;
  /** The fetch publish webhooks are posted with (default: the global fetch). */
  fetch?: typeof fetch;
}

interface CheckpointRow {
  tree_size: number | string;
  root_hash: string;
  head_hash: string;
  ts: number | string;
  kid: string;
  jws: string;
}

/** The tree and its checkpoints as of the checkpointer's last round. */
export interface CheckpointerStatus {
  /** The log's last seq. */
  headSeq: number;
  treeSize: number;
  checkpoint: { size: number; ts: number } | null;
  /** The seq where the chain stopped linking (the tree stops before it), or null. */
  brokenAt: number | null;
}

/** Builds the tree in the background, signs checkpoints when due, publishes them. */
export class Checkpointer {
  private readonly clock: Clock;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private closed = false;
  /** The chain break the tree stopped at, alerted once. */
  private breakAlerted: number | undefined;
  private lastStatus: CheckpointerStatus | null = null;
  private logId: string | undefined;

  constructor(private readonly deps: CheckpointerDeps) {
    this.clock = deps.clock ?? systemClock;
  }

  start(): void {
    if (this.timer !== undefined || !this.deps.config.enabled) return;
    this.timer = setInterval(() => void this.tick(), Math.min(TICK_MS, this.deps.config.intervalMs));
    this.timer.unref();
  }

  /** Stop; sign a last checkpoint if the log grew since the last one (a clean shutdown leaves none unsigned). */
  async close(): Promise<void> {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
    if (this.closed || !this.deps.config.enabled) return;
    this.closed = true;
    try {
      const state = await this.deps.tree.advance();
      const last = await this.latest();
      if (state.size > (last?.size ?? 0)) await this.sign(state.size);
    } catch (e) {
      this.deps.log.warn({ err: (e as Error).message }, 'audit: no checkpoint at shutdown');
    }
  }

  /** One round: extend the tree; sign when `interval` passed or `maxEntries` accumulated. */
  tick(): Promise<void> {
    if (this.running) return this.running;
    this.running = this.round().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  /**
   * What operators watch (metrics): the tree built so far, the newest checkpoint, and the chain
   * break the tree stopped at, as of the last round. Null before the first round.
   */
  status(): CheckpointerStatus | null {
    return this.lastStatus;
  }

  private async round(): Promise<void> {
    const done = await this.signRound();
    if (done === undefined) return;
    try {
      const head = await this.deps.store.db
        .selectFrom('audit_head')
        .select('seq')
        .where('id', '=', 1)
        .executeTakeFirst();
      this.lastStatus = {
        headSeq: Number(head?.seq ?? done.size),
        treeSize: done.size,
        checkpoint: done.last === undefined ? null : { size: done.last.size, ts: done.last.ts },
        brokenAt: this.breakAlerted ?? null,
      };
    } catch {
      // The store is down: the audit health tracker says so; keep the last status.
    }
  }

  /**
   * Extend the tree and sign when due. Returns the tree's size and the newest checkpoint after
   * the round (for `status`), or undefined when the store could not be read.
   */
  private async signRound(): Promise<{ size: number; last: Checkpoint | undefined } | undefined> {
    let size: number;
    try {
      size = (await this.deps.tree.advance()).size;
      this.breakAlerted = undefined;
    } catch (e) {
      if (!(e instanceof ChainBreakError)) {
        this.deps.log.warn({ err: (e as Error).message }, 'audit: the Merkle tree could not be extended');
        return undefined;
      }
      if (this.breakAlerted !== e.seq) {
        this.breakAlerted = e.seq;
        this.deps.log.error({ seq: e.seq, err: e.message }, 'audit chain broken: checkpoints stopped');
        this.deps.alert?.({
          kind: 'audit.chain-broken',
          severity: 'critical',
          traceId: `audit-${randomUUID()}`,
          agentId: null,
          sessionId: null,
          tool: null,
          summary: `The audit chain does not link at entry ${e.seq}: no checkpoint will cover it. Run warden audit verify.`,
          data: { seq: e.seq },
        });
      }
      // What linked before the break is built: a checkpoint may still cover it.
      size = e.seq - 1;
    }
    try {
      const last = await this.latest();
      const grown = size - (last?.size ?? 0);
      const due = last === undefined || this.clock.now() - last.ts >= this.deps.config.intervalMs;
      if (grown > 0 && (due || grown >= this.deps.config.maxEntries))
        return { size, last: await this.sign(size) };
      return { size, last };
    } catch (e) {
      this.deps.log.warn({ err: (e as Error).message }, 'audit: checkpoint failed');
      return undefined;
    }
  }

  /**
   * Sign (and store, and publish) a checkpoint at `size` entries — default, all entries now in
   * the log. The tree is brought up to date first. Idempotent per size.
   */
  async checkpointNow(size?: number): Promise<Checkpoint> {
    const state = await this.deps.tree.advance();
    const at = size ?? state.size;
    if (!Number.isSafeInteger(at) || at < 1) {
      throw new WardenError('INVALID_REQUEST', 'the audit log is empty: there is nothing to checkpoint');
    }
    if (at > state.size) {
      throw new WardenError('INVALID_REQUEST', `size ${at} is beyond the log's ${state.size} entries`);
    }
    const existing = await this.get(at);
    return existing ?? this.sign(at);
  }

  private async sign(size: number): Promise<Checkpoint> {
    const reader = await this.deps.tree.reader();
    const [root, headRow] = await Promise.all([
      reader.root(size),
      size === reader.pruned?.throughSeq
        ? Promise.resolve({ hash: reader.pruned.throughHash })
        : this.deps.store.db
            .selectFrom('audit_log')
            .select('hash')
            .where('seq', '=', size)
            .executeTakeFirst(),
    ]);
    if (headRow === undefined) throw new Error(`audit entry ${size} is missing`);
    this.logId ??= (await this.deps.tree.state()).logId;
    const payload: CheckpointPayload = {
      v: 1,
      log: this.logId,
      size,
      root: toHex(root),
      head: headRow.hash,
      ts: Math.trunc(this.clock.now()),
    };
    const jws = await this.deps.signer.sign(payload);
    const inserted = await this.deps.store.db
      .insertInto('audit_checkpoint')
      .values({
        tree_size: size,
        root_hash: payload.root,
        head_hash: payload.head,
        ts: payload.ts,
        kid: this.deps.signer.kid,
        jws,
      })
      .onConflict((oc) => oc.column('tree_size').doNothing())
      .executeTakeFirst();
    if (inserted.numInsertedOrUpdatedRows === 0n) {
      // Another process signed this size first: theirs stands (and they publish it).
      const theirs = await this.get(size);
      if (theirs) return theirs;
    }
    const cp: Checkpoint = { ...payload, kid: this.deps.signer.kid, jws };
    delete (cp as Partial<CheckpointPayload>).v;
    this.deps.log.info({ size, root: payload.root }, 'audit checkpoint signed');
    await this.publish(cp);
    return cp;
  }

  /** Publish to the configured file and webhooks; failures are logged and alerted, never thrown. */
  private async publish(cp: Checkpoint): Promise<void> {
    const { file, webhooks } = this.deps.config.publish;
    const line = `${JSON.stringify(cp)}\n`;
    const failures: string[] = [];
    if (file !== undefined) {
      try {
        await mkdir(dirname(file), { recursive: true });
        const fh = await open(file, 'a', 0o644);
        try {
          await fh.writeFile(line);
          await fh.sync();
        } finally {
          await fh.close();
        }
      } catch (e) {
        failures.push(`file ${file}: ${(e as Error).message}`);
      }
    }
    for (const hook of webhooks) {
      const body = JSON.stringify({ type: 'audit.checkpoint', checkpoint: cp });
      let ok = false;
      let last = '';
      for (let attempt = 1; attempt <= PUBLISH_ATTEMPTS && !ok; attempt++) {
        try {
          const id = `cp_${cp.size}_${attempt}`;
          const timestamp = Math.floor(this.clock.now() / 1000);
          const headers: Record<string, string> = { 'content-type': 'application/json' };
          if (hook.secret !== undefined) {
            const secret = await resolveSecret(hook.secret);
            Object.assign(headers, {
              'webhook-id': id,
              'webhook-timestamp': String(timestamp),
              'webhook-signature': signWebhook(secret, id, timestamp, body),
            });
          }
          const res = await (this.deps.fetch ?? fetch)(hook.url, {
            method: 'POST',
            headers,
            body,
            redirect: 'manual',
            signal: AbortSignal.timeout(hook.timeoutMs),
          });
          ok = res.status >= 200 && res.status < 300;
          last = `HTTP ${res.status}`;
          await res.body?.cancel().catch(() => {});
        } catch (e) {
          last = (e as Error).message;
        }
        if (!ok && attempt < PUBLISH_ATTEMPTS)
          await new Promise((r) => setTimeout(r, 200 * 4 ** (attempt - 1)));
      }
      if (!ok) failures.push(`webhook ${new URL(hook.url).origin}: ${last}`);
    }
    if (failures.length > 0) {
      this.deps.log.error({ size: cp.size, failures }, 'audit checkpoint could not be published');
      this.deps.alert?.({
        kind: 'audit.checkpoint-unpublished',
        severity: 'high',
        traceId: `audit-${randomUUID()}`,
        agentId: null,
        sessionId: null,
        tool: null,
        summary: `Audit checkpoint ${cp.size} could not be published: ${failures.join('; ')}`,
        data: { size: cp.size, failures },
      });
    }
  }

  /** The newest checkpoint, if any. */
  async latest(): Promise<Checkpoint | undefined> {
    const row = await this.deps.store.db
      .selectFrom('audit_checkpoint')
      .selectAll()
      .orderBy('tree_size', 'desc')
      .limit(1)
      .executeTakeFirst();
    return row === undefined ? undefined : await this.fromRow(row);
  }

  /** The checkpoint at exactly `size`. */
  async get(size: number): Promise<Checkpoint | undefined> {
    const row = await this.deps.store.db
      .selectFrom('audit_checkpoint')
      .selectAll()
      .where('tree_size', '=', size)
      .executeTakeFirst();
    return row === undefined ? undefined : await this.fromRow(row);
  }

  /** The first checkpoint covering entry `seq` (its size ≥ seq). */
  async covering(seq: number): Promise<Checkpoint | undefined> {
    const row = await this.deps.store.db
      .selectFrom('audit_checkpoint')
      .selectAll()
      .where('tree_size', '>=', seq)
      .orderBy('tree_size', 'asc')
      .limit(1)
      .executeTakeFirst();
    return row === undefined ? undefined : await this.fromRow(row);
  }

  /** Checkpoints in descending size, paged with `beforeSize`. */
  async list(opts: { beforeSize?: number; limit?: number } = {}): Promise<Checkpoint[]> {
    const rows = await this.deps.store.db
      .selectFrom('audit_checkpoint')
      .selectAll()
      .$if(opts.beforeSize !== undefined, (q) => q.where('tree_size', '<', opts.beforeSize as number))
      .orderBy('tree_size', 'desc')
      .limit(Math.min(Math.max(opts.limit ?? 100, 1), 1000))
      .execute();
    return Promise.all(rows.map((r) => this.fromRow(r)));
  }

  private async fromRow(row: CheckpointRow): Promise<Checkpoint> {
    this.logId ??= (await this.deps.tree.state()).logId;
    return checkpointFromRow(row, this.logId);
  }
}

/** A stored checkpoint row as a Checkpoint (the log id comes from the JWS payload when readable). */
export function checkpointFromRow(row: CheckpointRow, logId: string): Checkpoint {
  let log = logId;
  try {
    const part = row.jws.split('.')[1] ?? '';
    const p = JSON.parse(Buffer.from(part, 'base64url').toString('utf8')) as { log?: unknown };
    if (typeof p.log === 'string') log = p.log;
  } catch {
    // A mangled JWS: verify reports it; listing still shows the row.
  }
  return {
    log,
    size: Number(row.tree_size),
    root: row.root_hash,
    head: row.head_hash,
    ts: Number(row.ts),
    kid: row.kid,
    jws: row.jws,
  };
}
