/**
 * What the bundle gives acme-client in place of its own `src/crypto` module (scripts/build.mjs swaps it in): the
 * functions acme-client's client, HTTP signer and chain selection call, written on node:crypto, so a start loads
 * neither @peculiar/x509, asn1js, tsyringe nor reflect-metadata (~35 ms of a cold start on Node 20, ~250 KB of
 * bundled code). Equality with acme-client's own functions is tested (acme-client-crypto.test.ts); run from source
 * (tests, tsx), acme-client keeps its module. certkeeper makes its keys and CSRs itself (keys.ts, csr.ts), so the
 * key and CSR helpers here exist only for completeness; TLS-ALPN-01 helpers are not part of the bundle.
 */
import { createPublicKey, generateKeyPair as generateKeyPairCb, X509Certificate } from 'node:crypto';
import { promisify } from 'node:util';
import { createCsrPem } from './csr.js';

const generateKeyPair = promisify(generateKeyPairCb);
const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n([A-Za-z0-9+/=\r\n]+?)-----END \1-----/g;
type Pem = string | Buffer;
const text = (p: Pem) => (Buffer.isBuffer(p) ? p.toString() : p);

/** The PEM objects of a chain, each re-encoded as `-----BEGIN X-----\n<64-column base64>\n-----END X-----`. */
export function splitPemChain(chainPem: Pem): string[] {
  return [...text(chainPem).matchAll(PEM_BLOCK)].map((m) => {
    const body = Buffer.from(m[2]!.replace(/\s+/g, ''), 'base64').toString('base64');
    return `-----BEGIN ${m[1]}-----\n${body.replace(/.{64}(?=.)/g, '$&\n')}\n-----END ${m[1]}-----`;
  });
}

export function getPemBodyAsB64u(pem: Pem): string {
  const first = [...text(pem).matchAll(PEM_BLOCK)][0];
  if (!first) throw new Error('Unable to parse PEM body from string');
  return Buffer.from(first[2]!.replace(/\s+/g, ''), 'base64').toString('base64url');
}

/** The public JWK with its members sorted (RFC 7638 order), as the JWS header carries it. */
export function getJwk(keyPem: Pem): Record<string, string> {
  const jwk = createPublicKey(keyPem).export({ format: 'jwk' }) as Record<string, string>;
  return Object.fromEntries(
    Object.keys(jwk)
      .sort()
      .map((k) => [k, jwk[k]!]),
  );
}

export function getPublicKey(keyPem: Pem): Buffer {
  const key = createPublicKey(keyPem);
  return Buffer.from(
    key.export({ type: key.asymmetricKeyType === 'ec' ? 'spki' : 'pkcs1', format: 'pem' }) as string,
  );
}

function cnOf(dn: string): string | null {
  const cns = dn.split('\n').filter((l) => l.startsWith('CN='));
  return cns.length ? cns[cns.length - 1]!.slice(3) : null;
}

export function readCertificateInfo(certPem: Pem): {
  issuer: { commonName: string | null };
  domains: { commonName: string | null; altNames: string[] };
  notBefore: Date;
  notAfter: Date;
} {
  const x = new X509Certificate(text(certPem));
  const altNames = (x.subjectAltName ?? '')
    .split(', ')
    .filter((e) => e.startsWith('DNS:') || e.startsWith('IP Address:'))
    .map((e) => e.slice(e.indexOf(':') + 1));
  return {
    issuer: { commonName: cnOf(x.issuer) },
    domains: { commonName: cnOf(x.subject), altNames },
    notBefore: new Date(x.validFrom),
    notAfter: new Date(x.validTo),
  };
}

export async function createPrivateRsaKey(modulusLength = 2048): Promise<Buffer> {
  const { privateKey } = await generateKeyPair('rsa', {
    modulusLength,
    privateKeyEncoding: { type: 'pkcs1', format: 'pem' },
    publicKeyEncoding: { type: 'spki', format: 'pem' },
  });
  return Buffer.from(privateKey);
}
export const createPrivateKey = createPrivateRsaKey;

export async function createPrivateEcdsaKey(namedCurve = 'P-256'): Promise<Buffer> {
  const { privateKey } = await generateKeyPair('ec', {
    namedCurve,
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    publicKeyEncoding: { type: 'spki', format: 'pem' },
  });
  return Buffer.from(privateKey);
}

export async function createCsr(
  data: { commonName?: string; altNames?: string[] },
  keyPem?: Pem,
): Promise<[Buffer, Buffer]> {
  const key = keyPem ? Buffer.from(text(keyPem)) : await createPrivateRsaKey();
  const csr = await createCsrPem(
    { commonName: data.commonName, altNames: data.altNames ?? [] },
    key.toString(),
  );
  return [key, Buffer.from(csr)];
}

const notBundled = (what: string) => () => {
  throw new Error(`acme-client's ${what} is not part of the certkeeper bundle`);
};
export const readCsrDomains = notBundled('crypto.readCsrDomains');
export const createAlpnCertificate = notBundled('crypto.createAlpnCertificate');
export const isAlpnCertificateAuthorizationValid = notBundled('crypto.isAlpnCertificateAuthorizationValid');
