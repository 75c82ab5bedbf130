import { calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK } from 'jose';
import type { SigningAlg } from './types.js';

/**
 * A fresh Ed25519 (EdDSA) or P-256 (ES256) key pair as JWKs carrying `kid`
 * (the RFC 7638 thumbprint), `alg` and `use: 'sig'`; the public half holds
 * nothing but public members.
 */
export async function generateJwkPair(
  alg: SigningAlg,
): Promise<{ kid: string; publicJwk: JWK; privateJwk: JWK }> {
  const pair =
    alg === 'EdDSA'
      ? await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true })
      : await generateKeyPair('ES256', { extractable: true });
  const pub = await exportJWK(pair.publicKey);
  const priv = await exportJWK(pair.privateKey);
  const publicJwk: JWK = {
    kty: pub.kty,
    crv: pub.crv,
    x: pub.x,
    ...(pub.y === undefined ? {} : { y: pub.y }),
  };
  const kid = await calculateJwkThumbprint(publicJwk);
  Object.assign(publicJwk, { kid, alg, use: 'sig' });
  return { kid, publicJwk, privateJwk: { ...publicJwk, d: priv.d } };
}
