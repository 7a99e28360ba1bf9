import { createHash, createPublicKey, generateKeyPair, type KeyObject } from 'node:crypto';
import type { KeyType } from '../config/schema.js';

/** A new private key of the configured type, as unencrypted PKCS#8 PEM. */
export async function createPrivateKey(keyType: KeyType): Promise<string> {
  const pem = {
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    publicKeyEncoding: { type: 'spki', format: 'pem' },
  } as const;
  return new Promise((resolve, reject) => {
    const done = (err: Error | null, _pub: string, priv: string) => (err ? reject(err) : resolve(priv));
    if (keyType.startsWith('ecdsa-')) {
      generateKeyPair('ec', { namedCurve: keyType === 'ecdsa-p384' ? 'P-384' : 'P-256', ...pem }, done);
    } else {
      generateKeyPair('rsa', { modulusLength: Number(keyType.slice(4)), ...pem }, done);
    }
  });
}

/** RFC 7638 JWK thumbprint (base64url SHA-256) of the account key. */
export function jwkThumbprint(accountKeyPem: string): string {
  const jwk = (createPublicKey(accountKeyPem) as KeyObject).export({ format: 'jwk' }) as Record<
    string,
    string
  >;
  const members =
    jwk.kty === 'EC'
      ? { crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y }
      : { e: jwk.e, kty: jwk.kty, n: jwk.n };
  return createHash('sha256').update(JSON.stringify(members)).digest('base64url');
}

export function dns01Value(keyAuthorization: string): string {
  return createHash('sha256').update(keyAuthorization).digest('base64url');
}
