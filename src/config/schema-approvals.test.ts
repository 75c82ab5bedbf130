import { describe, expect, it } from 'vitest';
import { loadYaml } from '../../test/helpers/config-yaml.js';

const load = loadYaml;

describe('approvals, operators, notifiers and identity providers in warden.yaml', () => {
  it('resolves every section with its units and defaults', async () => {
    const r = await load(
      [
        'approvals: { timeout: 10m, mode: pending, progressInterval: 20s, allowSelfApproval: true }',
        'operators:',
        '  - { id: corp:alice, roles: [approver, approver], slackUserId: U024BE7LH }',
        'notifiers:',
        '  slack: { botToken: { env: SLACK_BOT_TOKEN }, signingSecret: { file: slack.secret }, channel: C1 }',
        '  webhooks: [{ name: soc, url: "https://hooks.example.com/w", secret: { env: WH } }]',
        'identityProviders:',
        '  - { name: corp, issuer: "https://idp.example.com", jwksUri: "https://idp.example.com/jwks", actors: [bot] }',
        'tools: { issue_refund: { risk: high, approval: { timeout: 2m } } }',
        '',
      ].join('\n'),
    );
    if ('error' in r) throw new Error(r.error);
    const c = r.config;
    expect(c.approvals).toEqual({
      timeoutMs: 600_000,
      mode: 'pending',
      progressIntervalMs: 20_000,
      allowSelfApproval: true,
      operatorTokenTtlMs: 8 * 3_600_000,
    });
    expect(c.operators).toEqual([{ id: 'corp:alice', roles: ['approver'], slackUserId: 'U024BE7LH' }]);
    expect(c.notifiers.slack).toMatchObject({
      channel: 'C1',
      apiUrl: 'https://slack.com/api',
      timestampToleranceMs: 300_000,
    });
    expect((c.notifiers.slack!.signingSecret as { file: string }).file).toMatch(/\/slack\.secret$/);
    expect(c.notifiers.webhooks[0]).toMatchObject({ name: 'soc', maxAttempts: 8, timeoutMs: 10_000 });
    expect(c.identityProviders).toEqual([
      {
        name: 'corp',
        issuer: 'https://idp.example.com',
        jwksUri: 'https://idp.example.com/jwks',
        userClaim: 'sub',
        actors: ['bot'],
        algorithms: ['RS256', 'ES256', 'EdDSA'],
        jwksCacheMaxAgeMs: 600_000,
      },
    ]);
    expect(c.tools.issue_refund?.approval).toEqual({ timeoutMs: 120_000 });
  });

  it.each([
    [
      'a literal secret',
      'notifiers: { webhooks: [{ name: a, url: "https://x.example", secret: "s3cret" }] }',
      /secret/,
    ],
    ['an approval timeout past 24h', 'approvals: { timeout: 2d }', /hard maximum/],
    ['a progress interval past 55s', 'approvals: { progressInterval: 1m }', /hard maximum/],
    ['an unknown role', 'operators: [{ id: x, roles: [root] }]', /roles/],
    [
      'duplicate operators',
      'operators: [{ id: x, roles: [admin] }, { id: x, roles: [auditor] }]',
      /duplicate operator id/,
    ],
    [
      'duplicate provider issuers',
      'identityProviders: [{ name: a, issuer: i, jwksUri: "https://a/j" }, { name: b, issuer: i, jwksUri: "https://b/j" }]',
      /duplicate identity provider issuer/,
    ],
    [
      'duplicate webhook names',
      'notifiers: { webhooks: [{ name: a, url: "https://x.example", secret: { env: S } }, { name: a, url: "https://y.example", secret: { env: S } }] }',
      /duplicate webhook name "a" \(already used by notifiers\.webhooks\[0\]\)/,
    ],
    ['an unknown key', 'approvals: { timout: 5m }', /timout/],
  ])('refuses %s', async (_why, yaml, message) => {
    const r = await load(`${yaml}\n`);
    expect('error' in r ? r.error : 'loaded').toMatch(message);
  });
});
