/**
 * Issue #9, privacy in the log: a real gateway stores secrets in arguments as
 * keyed HMACs (`[REDACTED:<kind>:hmac-sha256:<hex>]`), never in clear; an
 * auditor finds them again through `POST /admin/v1/audit/hmac` and through
 * `warden audit hmac` (a separate process with the same key), and each lookup
 * is audited without the value.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuditHmac, hmacKeyBytes } from '../../src/audit/index.js';
import { resolveSecret } from '../../src/config/index.js';
import { request, withApprovals } from '../helpers/approvals.js';
import { runWarden } from '../helpers/cli-process.js';
import { makeTarget } from '../helpers/dialects.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';

const AWS_KEY = 'AKIAZ7QH4KD2LMN3PQ5T';
const PASSWORD = 'correct-horse-battery-staple';

describe('audit HMAC of sensitive values', () => {
  const target = makeTarget('sqlite');
  let t: TestGateway;
  let hmac: AuditHmac;
  let auditor: string;
  let approver: string;

  beforeAll(async () => {
    t = await startTestGateway(target, (config) => withApprovals(config));
    const ref = t.gw.config.audit.hmac.key.ref;
    hmac = new AuditHmac(hmacKeyBytes(await resolveSecret(ref)));
    auditor = (await t.gw.operatorTokens.issue('carol', 3_600_000)).token;
    approver = (await t.gw.operatorTokens.issue('alice', 3_600_000)).token;
  }, 60_000);
  afterAll(async () => {
    await t?.close();
    await target.cleanup();
  });

  it('stores secrets in arguments as HMACs; the upstream still gets the arguments as sent', async () => {
    const token = await t.operatorToken('demo-support');
    const r = await request(`${t.gw.url}/v1/tool-calls`, {
      token,
      json: {
        toolName: 'create_support_ticket',
        parameters: { orderId: 'ORD-4F8K2P1Z', subject: `key ${AWS_KEY}`, body: 'hi', password: PASSWORD },
        traceId: 'hmac-e2e-1',
      },
    });
    const entries = await t.gw.audit.read({ traceId: 'hmac-e2e-1' });
    expect(entries.length, r.text).toBeGreaterThan(0);
    const text = JSON.stringify(entries);
    expect(text).not.toContain(AWS_KEY);
    expect(text).not.toContain(PASSWORD);
    expect(text).toContain(`[REDACTED:password:${hmac.of(PASSWORD)}]`);
    expect(text).toContain(hmac.of(AWS_KEY));
  });

  it('an auditor looks a value up by its HMAC; the lookup is audited without the value', async () => {
    const r = await request(`${t.gw.url}/admin/v1/audit/hmac`, {
      token: auditor,
      json: { value: PASSWORD, search: true },
    });
    expect(r.status, r.text).toBe(200);
    expect(r.body.hmac).toBe(hmac.of(PASSWORD));
    expect(r.body.matches.map((m: { traceId: string }) => m.traceId)).toContain('hmac-e2e-1');
    const [queried] = await t.gw.audit.read({ event: 'AUDIT_QUERIED' });
    expect(queried).toMatchObject({ actorType: 'HUMAN', actorId: 'carol', result: 'success' });
    expect(queried?.data).toMatchObject({ hmac: hmac.of(PASSWORD), matches: r.body.matches.length });
    expect(JSON.stringify(queried)).not.toContain(PASSWORD);
  });

  it('approvers may not look values up; a bad body is a clean 400', async () => {
    const denied = await request(`${t.gw.url}/admin/v1/audit/hmac`, {
      token: approver,
      json: { value: 'x' },
    });
    expect(denied.status).toBe(403);
    const bad = await request(`${t.gw.url}/admin/v1/audit/hmac`, { token: auditor, json: { value: '' } });
    expect([bad.status, bad.error?.code]).toEqual([400, 'INVALID_REQUEST']);
  });

  it('warden audit hmac, a separate process with the same key, agrees and searches', async () => {
    const dir = t.gw.config.dataDir;
    const config = join(dir, 'hmac-cli.yaml');
    const keyRef = t.gw.config.audit.hmac.key.ref as { file: string };
    writeFileSync(
      config,
      `store:\n  url: ${target.url}\naudit:\n  hmac:\n    key: { file: ${keyRef.file} }\n`,
    );
    const r = await runWarden(['audit', 'hmac', PASSWORD, '--search', '--json', '-c', config], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { hmac: string; matches: Array<{ traceId: string }> };
    expect(out.hmac).toBe(hmac.of(PASSWORD));
    expect(out.matches.map((m) => m.traceId)).toContain('hmac-e2e-1');
    const help = await runWarden(['audit', 'hmac', '--help'], { cwd: dir });
    expect(help.stdout).toContain('warden audit hmac - --search');
  }, 60_000);
});
