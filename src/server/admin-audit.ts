/**
 * The admin API's tamper-evidence routes (issue #9): signed checkpoints, proof
 * bundles, and the checkpoint key's public half. Auditors and admins read;
 * signing a checkpoint on demand (e.g. before an export or a prune) is an
 * admin's. Bundles are self-contained: `warden audit check-proof` checks one
 * with the public key alone.
 */
import type { Hono } from 'hono';
import { z } from 'zod';
import type { Checkpointer, CheckpointSigner, MerkleTree } from '../audit/index.js';
import { consistencyBundle, inclusionBundle } from '../audit/index.js';
import { WardenError } from '../errors.js';
import type { Store } from '../store/index.js';
import type { AdminHelpers } from './admin-tools.js';
import type { NodeBindings } from './request.js';

export interface AdminAuditDeps {
  store: Store;
  tree: MerkleTree;
  checkpoints: Checkpointer;
  signer: Pick<CheckpointSigner, 'publicJwk'>;
}

const size = z.coerce.number().int().min(1).max(Number.MAX_SAFE_INTEGER);
const ListQuery = z.strictObject({
  before: size.optional(),
  limit: z.coerce.number().int().min(1).max(1000).optional(),
});
const InclusionQuery = z.strictObject({ seq: size, size: size.optional() });
const ConsistencyQuery = z.strictObject({ from: size, to: size.optional() });

function query<T>(schema: z.ZodType<T>, q: Record<string, string>): T {
  const parsed = schema.safeParse(q);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new WardenError('INVALID_REQUEST', `${issue?.path.join('.') || 'query'}: ${issue?.message}`, {
      rule: 'request.shape',
    });
  }
  return parsed.data;
}

export function mountAdminAudit(
  app: Hono<{ Bindings: NodeBindings }>,
  deps: AdminAuditDeps,
  h: AdminHelpers,
): void {
  const readers = ['admin', 'auditor'] as const;

  app.get(
    '/admin/v1/audit/checkpoints',
    h.asOperator([...readers], async (c) => {
      const q = query(ListQuery, c.req.query());
      const list = await deps.checkpoints.list({
        ...(q.before !== undefined ? { beforeSize: q.before } : {}),
        limit: q.limit ?? 100,
      });
      return c.json({ checkpoints: list, next: list.length > 0 ? list.at(-1)!.size : null });
    }),
  );

  app.get(
    '/admin/v1/audit/checkpoints/latest',
    h.asOperator([...readers], async (c) => {
      const latest = await deps.checkpoints.latest();
      if (latest === undefined) throw new WardenError('NOT_FOUND', 'No checkpoint has been signed yet');
      return c.json({ checkpoint: latest });
    }),
  );

  app.post(
    '/admin/v1/audit/checkpoints',
    h.asOperator(['admin'], async (c) => {
      const checkpoint = await deps.checkpoints.checkpointNow();
      return c.json({ checkpoint }, 201);
    }),
  );

  app.get(
    '/admin/v1/audit/proof/inclusion',
    h.asOperator([...readers], async (c) => {
      const q = query(InclusionQuery, c.req.query());
      return c.json(await inclusionBundle(deps.store, deps.tree, deps.checkpoints, q.seq, q.size));
    }),
  );

  app.get(
    '/admin/v1/audit/proof/consistency',
    h.asOperator([...readers], async (c) => {
      const q = query(ConsistencyQuery, c.req.query());
      return c.json(await consistencyBundle(deps.tree, deps.checkpoints, q.from, q.to));
    }),
  );

  app.get(
    '/admin/v1/audit/keys',
    h.asOperator([...readers], async (c) => c.json({ keys: [deps.signer.publicJwk] })),
  );
}
