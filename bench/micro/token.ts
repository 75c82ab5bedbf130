/**
 * Token verification: TokenService.verify with nothing cached (jose signature
 * and claims, then the session and agent rows read live from SQLite) and with
 * the token seen before, against its floors — bare jose over the public key
 * alone, and the two row reads alone.
 */
import { importJWK, type JWK, jwtVerify } from 'jose';
import { TokenService } from '../../src/identity/index.js';
import { AGENT_ID, openWorld } from './fixtures.js';
import { type BenchContext, type MicroResult, run, usRow } from './harness.js';

const G = 'token';

/** The token group. */
export async function tokenBench(ctx: BenchContext): Promise<MicroResult[]> {
  const out: MicroResult[] = [];
  for (const alg of ['EdDSA', 'ES256'] as const) {
    const world = await openWorld({ alg });
    try {
      const { store, tokens, keys, sessions, agents, issuer, audience, clock } = world.services;
      const { token } = world;
      const sid = (await tokens.verify(token)).session.id;
      // A TokenService as openServices builds one: a fresh instance has verified nothing yet.
      const deps = {
        store,
        agents,
        sessions,
        keys,
        config: { issuer, audience, tokens: world.config.tokens },
        clock,
      };

      ctx.progress(`token: verify ${alg}, cache cold`);
      const cold = await run(() => new TokenService(deps).verify(token), ctx.timing);
      out.push(
        usRow(
          G,
          `verify ${alg} token (cache cold)`,
          cold,
          'TokenService.verify on a fresh instance: signature and claims checked, session and agent rows read',
        ),
      );
      ctx.progress(`token: verify ${alg}, cache warm`);
      const warm = await run(() => tokens.verify(token), ctx.timing);
      out.push(
        usRow(
          G,
          `verify ${alg} token (cache warm)`,
          warm,
          'the same token again on one instance (what a client reusing its token costs); rows still read live',
        ),
      );

      const [jwk] = (await keys.publicJwks()).keys;
      const publicKey = await importJWK(jwk as JWK, alg);
      ctx.progress(`token: bare jose ${alg}`);
      const bare = await run(() => jwtVerify(token, publicKey), ctx.timing);
      out.push(
        usRow(G, `jose jwtVerify ${alg}, public key only (floor)`, bare, 'signature + exp only, no store'),
      );

      if (alg === 'EdDSA') {
        ctx.progress('token: session + agent reads');
        const reads = await run(() => Promise.all([sessions.get(sid), agents.get(AGENT_ID)]), ctx.timing);
        out.push(usRow(G, 'session + agent row reads (SQLite)', reads, 'the store part of verify, alone'));
      }
    } finally {
      await world.close();
    }
  }
  return out;
}
