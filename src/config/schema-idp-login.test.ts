import { describe, expect, it } from 'vitest';
import { loadYaml } from '../../test/helpers/config-yaml.js';

/** Load a config with one identity provider written as a YAML flow mapping. */
const load = (provider: string) => loadYaml(`identityProviders:\n  - ${provider}\n`);

const CORP = 'name: corp, issuer: "https://login.example.com", jwksUri: "https://login.example.com/jwks"';

describe('identityProviders[].login', () => {
  it('defaults to a public client asking for openid, labelled with the provider name', async () => {
    const r = await load(`{ ${CORP}, login: { clientId: warden } }`);
    if ('error' in r) throw new Error(r.error);
    expect(r.config.identityProviders[0]?.login).toEqual({
      clientId: 'warden',
      scopes: ['openid'],
      label: 'Log in with corp',
    });
  });

  it('keeps the secret reference, scopes, endpoint overrides and label', async () => {
    const r = await load(
      `{ ${CORP}, login: { clientId: warden, clientSecret: { env: CORP_OIDC_SECRET }, scopes: [openid, email, profile, email], authorizationEndpoint: "https://login.example.com/authorize", tokenEndpoint: "https://login.example.com/token", label: "  Corp SSO " } }`,
    );
    if ('error' in r) throw new Error(r.error);
    expect(r.config.identityProviders[0]?.login).toEqual({
      clientId: 'warden',
      clientSecret: { env: 'CORP_OIDC_SECRET' },
      scopes: ['openid', 'email', 'profile'],
      authorizationEndpoint: 'https://login.example.com/authorize',
      tokenEndpoint: 'https://login.example.com/token',
      label: 'Corp SSO',
    });
  });

  it('allows plain HTTP for a loopback provider', async () => {
    const r = await load(
      '{ name: dev, issuer: "http://127.0.0.1:9000", jwksUri: "http://127.0.0.1:9000/jwks", login: { clientId: w, tokenEndpoint: "http://localhost:9000/token" } }',
    );
    if ('error' in r) throw new Error(r.error);
    expect(r.config.identityProviders[0]?.login?.tokenEndpoint).toBe('http://localhost:9000/token');
  });

  it('leaves a provider without login as it was (token exchange only)', async () => {
    const r = await load('{ name: corp, issuer: "corp-idp", jwksUri: "http://idp.internal/jwks" }');
    if ('error' in r) throw new Error(r.error);
    expect(r.config.identityProviders[0]).not.toHaveProperty('login');
  });

  it.each([
    ['a literal client secret', `{ ${CORP}, login: { clientId: w, clientSecret: "s3cret" } }`, /reference/],
    ['no client id', `{ ${CORP}, login: { scopes: [openid] } }`, /clientId/],
    ['scopes without openid', `{ ${CORP}, login: { clientId: w, scopes: [email] } }`, /must include openid/],
    ['a malformed scope', `{ ${CORP}, login: { clientId: w, scopes: [openid, "a b"] } }`, /scope token/],
    [
      'an HTTP issuer off loopback',
      '{ name: corp, issuer: "http://login.example.com", jwksUri: "https://login.example.com/jwks", login: { clientId: w } }',
      /issuer: expected the issuer as an https:\/\/ URL/,
    ],
    [
      'an issuer that is not a URL',
      '{ name: corp, issuer: "corp-idp", jwksUri: "https://login.example.com/jwks", login: { clientId: w } }',
      /issuer: expected the issuer as an https/,
    ],
    [
      'an HTTP jwksUri off loopback',
      '{ name: corp, issuer: "https://login.example.com", jwksUri: "http://login.example.com/jwks", login: { clientId: w } }',
      /jwksUri: expected jwksUri as an https/,
    ],
    [
      'an HTTP token endpoint off loopback',
      `{ ${CORP}, login: { clientId: w, tokenEndpoint: "http://login.example.com/token" } }`,
      /tokenEndpoint: expected the token endpoint as an https/,
    ],
    [
      'an endpoint with credentials',
      `{ ${CORP}, login: { clientId: w, authorizationEndpoint: "https://u:p@login.example.com/a" } }`,
      /credentials/,
    ],
    ['an empty label', `{ ${CORP}, login: { clientId: w, label: "  " } }`, /label/],
    ['a misspelt key', `{ ${CORP}, login: { clientId: w, scope: [openid] } }`, /did you mean "scopes"/],
  ])('refuses %s', async (_why, provider, message) => {
    const r = await load(provider);
    expect('error' in r ? r.error : 'loaded').toMatch(message);
  });

  it('never echoes a secret-looking endpoint value', async () => {
    const r = await load(
      `{ ${CORP}, login: { clientId: w, tokenEndpoint: "https://u:hunter2@x.example/t" } }`,
    );
    expect('error' in r ? r.error : 'loaded').not.toContain('hunter2');
  });
});
