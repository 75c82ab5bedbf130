/**
 * Issue #9 through a real gateway on both dialects: tool calls land in the log,
 * the background builder and signer checkpoint them, the admin API hands out
 * proof bundles that check against the key it publishes, roles are enforced,
 * bad queries get clean errors, and closing the gateway signs a last checkpoint.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { addTrustedKeys, checkBundle, type TrustedKeys, verifyChain } from '../../src/audit/index.js';
import { request, withApprovals } from '../helpers/approvals.js';
import { describeEachDialect } from '../helpers/dialects.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { until } from '../helpers/wait.js';

describeEachDialect('audit checkpoints and proofs through the gateway', (target) => {
  let t: TestGateway;
  let published = '';
  const operator = async (id: string) => (await t.gw.operatorTokens.issue(id, 600_000)).token;
  const get = async (path: string, token?: string) => request(`${t.gw.url}${path}`, { token });

  beforeAll(async () => {
    t = await startTestGateway(target, (config) => {
      withApprovals(config);
      config.audit.checkpoints.intervalMs = 1_000;
      config.audit.checkpoints.maxEntries = 5;
      published = `${config.dataDir}/published.jsonl`;
      config.audit.checkpoints.publish.file = published;
    });
  });
  afterAll(async () => {
    await t?.close();
    await target.cleanup();
  });

  it('checkpoints tool calls in the background and proves them to an auditor', async () => {
    const token = await t.operatorToken('demo-support');
    for (let i = 0; i < 6; i++) {
      const r = await request(`${t.gw.url}/v1/tool-calls`, {
        token,
        json: { toolName: 'lookup_order', parameters: { orderId: 'ORD-ABCD1234' } },
      });
      expect(r.status).toBe(200);
    }
    const head = await t.gw.audit.head();
    // More than maxEntries were appended: the background task signs within a tick or two.
    await until(async () => (((await t.gw.checkpoints.latest())?.size ?? 0) >= 5 ? true : undefined));

    const auditor = await operator('carol');
    const keys = await get('/admin/v1/audit/keys', auditor);
    expect(keys.status).toBe(200);
    const trusted: TrustedKeys = new Map();
    await addTrustedKeys(trusted, keys.body, 'admin api');

    const signed = await get('/admin/v1/audit/checkpoints', await operator('root'));
    expect(signed.status).toBe(200);
    expect(signed.body.checkpoints.length).toBeGreaterThan(0);

    const now = await request(`${t.gw.url}/admin/v1/audit/checkpoints`, {
      token: await operator('root'),
      json: {},
    });
    expect(now.status).toBe(201);
    expect(now.body.checkpoint.size).toBeGreaterThanOrEqual(head.seq);

    const inc = await get(`/admin/v1/audit/proof/inclusion?seq=2&size=${now.body.checkpoint.size}`, auditor);
    expect(inc.status).toBe(200);
    expect(inc.body.entry.seq).toBe(2);
    expect(await checkBundle(inc.body, trusted)).toMatchObject({ ok: true });

    const first = signed.body.checkpoints.at(-1).size as number;
    if (first < now.body.checkpoint.size) {
      const con = await get(`/admin/v1/audit/proof/consistency?from=${first}`, auditor);
      expect(con.status).toBe(200);
      expect(await checkBundle(con.body, trusted)).toMatchObject({ ok: true });
    }
    // Operators see the tamper-evidence layer in /metrics: built, signed, recent, not broken.
    const gauge = (text: string, name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1]);
    const scrape = await until(async () => {
      const text = await (await fetch(`${t.gw.url}/metrics`)).text();
      return gauge(text, 'warden_audit_tree_entries') >= now.body.checkpoint.size ? text : undefined;
    });
    expect(gauge(scrape, 'warden_audit_chain_broken')).toBe(0);
    expect(gauge(scrape, 'warden_audit_checkpoint_age_seconds')).toBeGreaterThanOrEqual(0);
    expect(gauge(scrape, 'warden_audit_unsigned_entries')).toBeGreaterThanOrEqual(0);
    // Every signed checkpoint was published to the file, and the log verifies against it.
    const lines = readFileSync(published, 'utf8').trim().split('\n');
    expect(lines.length).toBeGreaterThanOrEqual(signed.body.checkpoints.length);
    const v = await verifyChain(t.gw.store, { tree: { trusted, publishedFiles: [published] } });
    expect(v.ok, JSON.stringify(v.problem)).toBe(true);
    expect(v.tree?.published).toBeGreaterThan(0);
  });

  it('enforces roles and answers bad queries with clean errors', async () => {
    const approver = await operator('alice');
    expect((await get('/admin/v1/audit/checkpoints', approver)).status).toBe(403);
    expect((await get('/admin/v1/audit/keys')).status).toBe(401);
    const agent = await t.operatorToken('demo-support');
    expect((await get('/admin/v1/audit/proof/inclusion?seq=1', agent)).status).toBe(403);
    const auditor = await operator('carol');
    const post = await request(`${t.gw.url}/admin/v1/audit/checkpoints`, { token: auditor, json: {} });
    expect(post.status).toBe(403);
    const bad = await get('/admin/v1/audit/proof/inclusion?seq=abc', auditor);
    expect(bad.status).toBe(400);
    expect(bad.error).toMatchObject({ code: 'INVALID_REQUEST' });
    expect(bad.error?.traceId).toBeTruthy();
    expect(bad.text).not.toMatch(/at .*\.ts:\d+/);
    const far = await get('/admin/v1/audit/proof/inclusion?seq=999999', auditor);
    expect(far.status).toBe(409);
    expect(far.error).toMatchObject({ code: 'AUDIT_NOT_CHECKPOINTED' });
    const unknownSize = await get('/admin/v1/audit/proof/consistency?from=3&to=999999', auditor);
    expect(unknownSize.status).toBe(409);
  });
});
