/**
 * Human in the loop (issue #5), the approvers' side, on an in-process gateway: who may decide,
 * the first decision wins, bad input on the admin API, the `warden approvals` CLI, and
 * approvals.allowSelfApproval.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OperatorTokens } from '../../src/approvals/index.js';
import { ManualClock } from '../../src/util/clock.js';
import {
  type Answer,
  aboutApproval,
  approvalsSuite,
  byEvent,
  dataOf,
  expectCleanError,
  OPERATORS,
  refund,
  request,
  TIMEOUT_MS,
  withApprovals,
} from '../helpers/approvals.js';
import { describeResult, runWarden, STACK_FRAME, TIME_SCALE } from '../helpers/cli-process.js';
import { makeTarget } from '../helpers/dialects.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';

describe('approvals: who decides, and how', { timeout: 60_000 * TIME_SCALE }, () => {
  const s = approvalsSuite();

  describe('who may decide', () => {
    const routes = (id: string): Array<[string, string, unknown]> => [
      ['GET', '/whoami', undefined],
      ['GET', '/approvals', undefined],
      ['GET', `/approvals/${id}`, undefined],
      ['POST', `/approvals/${id}/approve`, {}],
      ['POST', `/approvals/${id}/deny`, {}],
      ['POST', `/approvals/${id}/review`, { verdict: 'ok' }],
    ];

    it('an agent token is refused by name on every admin route, and each refusal is audited', async () => {
      const id = await s.held(refund('agent tries', 320));
      for (const [method, path, json] of routes(id)) {
        const r = await s.admin(path, s.agentToken, { method, ...(json === undefined ? {} : { json }) });
        const error = expectCleanError(r, 403, 'AGENT_TOKEN_REFUSED');
        expect(error.rule).toBe('admin.no-agents');
        const [entry] = await s.t.gw.audit.read({ traceId: error.traceId });
        expect(entry, `${method} ${path}`).toMatchObject({
          event: 'REQUEST_REJECTED',
          actorType: 'AI_AGENT',
          result: 'denied',
          decision: { allowed: false, code: 'AGENT_TOKEN_REFUSED' },
        });
        expect(dataOf(entry)).toMatchObject({ face: 'admin', route: `${method} /admin/v1${path}` });
      }
      expect((await s.t.gw.approvals.get(id))?.status).toBe('pending');
    });

    it('no token, a garbage token, an unknown or an expired operator: 401 OPERATOR_UNAUTHENTICATED', async () => {
      const id = await s.held(refund('strangers', 330));
      for (const [method, path, json] of routes(id)) {
        const r = await s.admin(path, undefined, { method, ...(json === undefined ? {} : { json }) });
        expectCleanError(r, 401, 'OPERATOR_UNAUTHENTICATED');
      }
      expectCleanError(await s.decide(id, 'not.a.token', 'approve'), 401, 'OPERATOR_UNAUTHENTICATED');

      // Signed with the gateway's own keys, but for someone not (or no longer) in operators:.
      const base = {
        keys: s.t.gw.keys,
        issuer: `${s.t.gw.url}/oauth`,
        audience: `${s.t.gw.url}/admin`,
        operators: [{ id: 'mallory', roles: ['admin' as const] }, ...OPERATORS],
      };
      const ghost = await new OperatorTokens({ ...base, clock: s.t.clock }).issue('mallory', 600_000);
      expectCleanError(await s.decide(id, ghost.token, 'approve'), 401, 'OPERATOR_UNAUTHENTICATED');
      // A real operator's token that expired an hour ago (well past the allowed skew).
      const past = new ManualClock(s.t.clock.now() - 2 * 3_600_000);
      const expired = await new OperatorTokens({ ...base, clock: past }).issue('alice', 3_600_000);
      expectCleanError(await s.decide(id, expired.token, 'approve'), 401, 'OPERATOR_UNAUTHENTICATED');
      // A token for another gateway (audience) is no better.
      const elsewhere = await new OperatorTokens({
        ...base,
        audience: 'http://127.0.0.1:1/admin',
        clock: s.t.clock,
      }).issue('alice', 600_000);
      expectCleanError(await s.decide(id, elsewhere.token, 'approve'), 401, 'OPERATOR_UNAUTHENTICATED');
      expect((await s.t.gw.approvals.get(id))?.status).toBe('pending');
    });

    it('an auditor may look but not decide (APPROVER_FORBIDDEN, audited)', async () => {
      const id = await s.held(refund('auditor', 340));
      const who = await s.admin('/whoami', 'carol');
      expect([who.status, who.body.operator]).toEqual([200, { id: 'carol', roles: ['auditor'] }]);
      expect((await s.admin('/approvals?status=pending', 'carol')).status).toBe(200);
      expect((await s.admin(`/approvals/${id}`, 'carol')).body.approval.id).toBe(id);
      for (const action of ['approve', 'deny'] as const) {
        const error = expectCleanError(await s.decide(id, 'carol', action), 403, 'APPROVER_FORBIDDEN');
        const [entry] = await s.t.gw.audit.read({ traceId: error.traceId });
        expect(entry).toMatchObject({ event: 'REQUEST_REJECTED', actorType: 'HUMAN' });
      }
      expect((await s.t.gw.approvals.get(id))?.status).toBe('pending');
      // An admin may decide.
      expect((await s.decide(id, 'root', 'deny')).body.approval).toMatchObject({
        decidedBy: 'operator:root',
      });
    });

    it('separation of duties: the user an agent acts for may not approve its request; someone else may', async () => {
      const forAlice = (await s.t.gw.tokens.issue('demo-support', { userId: 'alice' })).token;
      const id = await s.held(refund('on behalf of alice', 350), forAlice);
      expect((await s.t.gw.approvals.get(id))?.userId).toBe('alice');

      for (const action of ['approve', 'deny'] as const) {
        const error = expectCleanError(await s.decide(id, 'alice', action), 403, 'SELF_APPROVAL_FORBIDDEN');
        expect(error.rule).toBe('approval.separation-of-duties');
        const [entry] = await s.t.gw.audit.read({ traceId: error.traceId });
        expect(entry).toMatchObject({
          event: 'REQUEST_REJECTED',
          actorType: 'HUMAN',
          actorId: 'operator:alice',
          decision: { code: 'SELF_APPROVAL_FORBIDDEN' },
        });
      }
      const bob = await s.decide(id, 'bob', 'approve');
      expect([bob.status, bob.body.approval?.decidedBy]).toEqual([200, 'operator:bob']);
      const ran = await s.rest(
        'issue_refund',
        refund('on behalf of alice', 350),
        { approvalId: id },
        { token: forAlice },
      );
      expect(ran.status, ran.text).toBe(200);
    });
  });

  describe('the first decision wins', () => {
    it('concurrent decisions by different operators: exactly one 200, the others 409', async () => {
      const id = await s.held(refund('race', 360));
      const answers = await Promise.all([
        s.decide(id, 'alice', 'approve'),
        s.decide(id, 'bob', 'deny'),
        s.decide(id, 'root', 'approve'),
      ]);
      const won = answers.filter((a) => a.status === 200);
      expect(answers.map((a) => a.status).sort()).toEqual([200, 409, 409]);
      for (const lost of answers.filter((a) => a.status !== 200))
        expectCleanError(lost, 409, 'APPROVAL_ALREADY_DECIDED');
      const winner = won[0]!.body.approval as { status: string; decidedBy: string };
      expect((await s.t.gw.approvals.get(id))?.status).toBe(winner.status);
      const decisions = aboutApproval(await s.audit(), id).filter(
        (e) => e.event === 'APPROVAL_GRANTED' || e.event === 'APPROVAL_DENIED',
      );
      expect(decisions.map((e) => e.actorId)).toEqual([winner.decidedBy]);

      // The winner repeating itself is told so; changing its mind is not allowed.
      const who = winner.decidedBy.slice('operator:'.length);
      const action = winner.status === 'approved' ? 'approve' : 'deny';
      const repeat = await s.decide(id, who, action);
      expect([repeat.status, repeat.body.repeated, repeat.body.approval?.status]).toEqual([
        200,
        true,
        winner.status,
      ]);
      expectCleanError(
        await s.decide(id, who, action === 'approve' ? 'deny' : 'approve'),
        409,
        'APPROVAL_ALREADY_DECIDED',
      );
    });

    it('an unknown or malformed id is 404; a request past its time is 409 APPROVAL_EXPIRED', async () => {
      expectCleanError(
        await s.decide('apr_0123456789abcdefXYZ', 'alice', 'approve'),
        404,
        'APPROVAL_NOT_FOUND',
      );
      expectCleanError(await s.decide('not-an-id', 'alice', 'approve'), 404, 'APPROVAL_NOT_FOUND');
      expectCleanError(await s.admin('/approvals/apr_nope', 'alice'), 404, 'APPROVAL_NOT_FOUND');

      const id = await s.held(refund('too late', 370));
      s.t.clock.advance(TIMEOUT_MS + 1);
      expectCleanError(await s.decide(id, 'alice', 'approve'), 409, 'APPROVAL_EXPIRED');
      expectCleanError(await s.decide(id, 'bob', 'deny'), 409, 'APPROVAL_EXPIRED');
      const timeouts = byEvent(aboutApproval(await s.audit(), id), 'APPROVAL_DENIED');
      expect(timeouts.map((e) => dataOf(e).reason)).toEqual(['timeout']);
      // And the agent that comes back with the id hears that it timed out.
      const late = await s.rest('issue_refund', refund('too late', 370), { approvalId: id });
      expect([late.status, late.error?.code]).toEqual([403, 'APPROVAL_TIMEOUT']);
    });
  });

  describe('bad input on the admin API', () => {
    it('answers every malformed request with a clean coded error and leaves the request pending', async () => {
      const id = await s.held(refund('bad input', 380));
      const approve = `/approvals/${id}/approve`;
      const cases: Array<[string, Promise<Answer>, number, string]> = [
        ['malformed JSON', s.admin(approve, 'alice', { raw: '{"comment": ' }), 400, 'INVALID_JSON'],
        [
          'unknown key',
          s.admin(approve, 'alice', { json: { comment: 'ok', approve: true } }),
          400,
          'INVALID_REQUEST',
        ],
        [
          'oversize comment',
          s.admin(approve, 'alice', { json: { comment: 'x'.repeat(2_001) } }),
          400,
          'INVALID_REQUEST',
        ],
        [
          'comment not a string',
          s.admin(approve, 'alice', { json: { comment: 42 } }),
          400,
          'INVALID_REQUEST',
        ],
        [
          'arguments not an object',
          s.admin(approve, 'alice', { json: { arguments: [1] } }),
          400,
          'INVALID_REQUEST',
        ],
        ['body not an object', s.admin(approve, 'alice', { json: ['approve'] }), 400, 'INVALID_REQUEST'],
        [
          'arguments on deny',
          s.admin(`/approvals/${id}/deny`, 'alice', { json: { arguments: { amountCents: 1 } } }),
          400,
          'INVALID_REQUEST',
        ],
        [
          'nested too deep',
          s.admin(approve, 'alice', {
            raw: `{"comment":"x","arguments":${'{"a":'.repeat(40)}1${'}'.repeat(40)}}`,
          }),
          400,
          'NESTING_TOO_DEEP',
        ],
        [
          'too large',
          s.admin(approve, 'alice', { raw: JSON.stringify({ comment: 'y'.repeat(1_100_000) }) }),
          413,
          'PAYLOAD_TOO_LARGE',
        ],
        [
          'bad verdict',
          s.admin(`/approvals/${id}/review`, 'alice', { json: { verdict: 'maybe' } }),
          400,
          'INVALID_REQUEST',
        ],
        [
          'bad id',
          s.admin('/approvals/..%2F..%2Fetc/approve', 'alice', { json: {} }),
          404,
          'APPROVAL_NOT_FOUND',
        ],
        [
          'overlong id',
          s.admin(`/approvals/apr_${'a'.repeat(100)}/approve`, 'alice', { json: {} }),
          404,
          'APPROVAL_NOT_FOUND',
        ],
        ['bad status filter', s.admin('/approvals?status=maybe', 'alice'), 400, 'INVALID_REQUEST'],
        ['bad limit', s.admin('/approvals?limit=100000', 'alice'), 400, 'INVALID_REQUEST'],
        ['unknown filter', s.admin('/approvals?sort=asc', 'alice'), 400, 'INVALID_REQUEST'],
        ['unknown route', s.admin('/operators', 'alice'), 404, 'NOT_FOUND'],
      ];
      for (const [name, answer, status, code] of cases) {
        const a = await answer;
        expect([name, a.status, a.error?.code], a.text.slice(0, 300)).toEqual([name, status, code]);
        expectCleanError(a, status, code);
      }
      expect((await s.t.gw.approvals.get(id))?.status).toBe('pending');
      // The 2,000-character comment the schema allows is accepted.
      const fine = await s.decide(id, 'alice', 'approve', { comment: 'z'.repeat(2_000) });
      expect(fine.status, fine.text.slice(0, 300)).toBe(200);
      expect(fine.body.approval.comment).toHaveLength(2_000);
    });
  });

  describe('warden approvals (CLI) against this gateway', () => {
    let configFile: string;
    const cli = (args: string[]) =>
      runWarden(['approvals', ...args, '--url', s.t.gw.url, '--config', configFile], { cwd: s.dir });

    beforeAll(() => {
      const j = JSON.stringify;
      configFile = join(s.dir, 'warden.yaml');
      writeFileSync(
        configFile,
        [
          'store:',
          `  url: ${j(s.target.url)}`,
          'operators:',
          ...OPERATORS.flatMap((o) => [`  - id: ${o.id}`, `    roles: ${j(o.roles)}`]),
          '',
        ].join('\n'),
      );
    });

    it('list and show the held call; approve from the CLI wakes the waiting REST caller', async () => {
      const args = refund('cli approve', 390);
      const waiting = s.rest('issue_refund', args, { approval: 'wait' });
      const request = await s.pendingInStore(args.reason);

      const [list, show] = await Promise.all([
        cli(['list', '--status', 'pending', '--as', 'carol', '--json']),
        cli(['show', request.id, '--as', 'carol']),
      ]);
      expect(list.code, describeResult(list)).toBe(0);
      const listed = JSON.parse(list.stdout) as { approvals: Array<{ id: string; status: string }> };
      expect(listed.approvals.find((a) => a.id === request.id)).toMatchObject({ status: 'pending' });
      expect(show.code, describeResult(show)).toBe(0);
      expect(show.stdout).toMatch(new RegExp(`^id\\s+${request.id}$`, 'm'));
      expect(show.stdout).toMatch(/^tool\s+issue_refund$/m);
      expect(show.stdout).toContain(args.reason);

      const approved = await cli(['approve', request.id, '--as', 'bob', '--comment', 'checked by phone']);
      expect(approved.code, describeResult(approved)).toBe(0);
      expect(approved.stdout).toContain(`approved: ${request.id}`);
      const answer = await waiting;
      expect(answer.status, answer.text).toBe(200);
      expect(answer.body.result.structuredContent).toMatchObject({ amountCents: 390 });

      const [granted] = byEvent(aboutApproval(await s.audit(), request.id), 'APPROVAL_GRANTED');
      expect(granted).toMatchObject({ actorId: 'operator:bob' });
      expect(dataOf(granted)).toMatchObject({ via: 'cli', comment: 'checked by phone' });

      // Deciding again from the CLI: the first decision stands, said plainly with exit 2.
      const again = await cli(['deny', request.id, '--as', 'alice']);
      expect(again.code, describeResult(again)).toBe(2);
      expect(again.stderr).toContain('warden: APPROVAL_ALREADY_DECIDED: ');
      expect(again.stderr).not.toMatch(STACK_FRAME);
    });

    it('deny from the CLI answers the waiting caller with APPROVAL_DENIED', async () => {
      const args = refund('cli deny', 395);
      const waiting = s.rest('issue_refund', args);
      const request = await s.pendingInStore(args.reason);
      const denied = await cli(['deny', request.id, '--as', 'alice', '--comment', 'duplicate', '--json']);
      expect(denied.code, describeResult(denied)).toBe(0);
      expect(JSON.parse(denied.stdout)).toMatchObject({
        repeated: false,
        approval: { id: request.id, status: 'denied', decidedVia: 'cli' },
      });
      const answer = await waiting;
      expect([answer.status, answer.error?.code, answer.error?.comment]).toEqual([
        403,
        'APPROVAL_DENIED',
        'duplicate',
      ]);
      // An auditor cannot decide from the CLI either.
      const auditor = await cli(['approve', request.id, '--as', 'carol']);
      expect(auditor.code).toBe(2);
      expect(auditor.stderr).toContain('warden: APPROVER_FORBIDDEN: ');
    });
  });
});

describe('approvals.allowSelfApproval: true', { timeout: 60_000 * TIME_SCALE }, () => {
  const target = makeTarget('sqlite');
  let t: TestGateway;
  beforeAll(async () => {
    t = await startTestGateway(target, (config) => {
      withApprovals(config);
      config.approvals.allowSelfApproval = true;
    });
  });
  afterAll(async () => {
    await t?.close();
    await target.cleanup();
  });

  it('lets the user the agent acts for approve its request, and the call runs', async () => {
    const forAlice = (await t.gw.tokens.issue('demo-support', { userId: 'alice' })).token;
    const args = refund('self approved', 400);
    const call = (extra: object) =>
      request(`${t.gw.url}/v1/tool-calls`, {
        token: forAlice,
        json: { toolName: 'issue_refund', parameters: args, ...extra },
      });
    const held = await call({ approval: 'pending' });
    expect(held.status, held.text).toBe(202);
    const id = held.error?.approvalId as string;
    const alice = (await t.gw.operatorTokens.issue('alice', 600_000)).token;
    const approved = await request(`${t.gw.url}/admin/v1/approvals/${id}/approve`, {
      token: alice,
      json: {},
    });
    expect(approved.status, approved.text).toBe(200);
    expect(approved.body.approval).toMatchObject({
      status: 'approved',
      decidedBy: 'operator:alice',
      userId: 'alice',
    });
    const ran = await call({ approvalId: id });
    expect(ran.status, ran.text).toBe(200);
  });
});
