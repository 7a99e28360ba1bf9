import { createPrivateKey, createPublicKey, X509Certificate } from 'node:crypto';

const PEM_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

export function splitPemChain(pem: string): string[] {
  return (pem.match(PEM_BLOCK) ?? []).map((b) => `${b}\n`);
}

export interface CertInfo {
  serial: string;
  notBefore: Date;
  notAfter: Date;
  subjectAltNames: string[];
  issuer: string;
  fingerprint256: string;
}

export function certInfo(pem: string): CertInfo {
  const x = new X509Certificate(pem);
  const sans = (x.subjectAltName ?? '')
    .split(/,\s*/)
    .filter((s) => s.startsWith('DNS:'))
    .map((s) => s.slice(4).toLowerCase());
  return {
    serial: x.serialNumber.toUpperCase(),
    notBefore: new Date(x.validFrom),
    notAfter: new Date(x.validTo),
    subjectAltNames: sans,
    issuer: x.issuer,
    fingerprint256: x.fingerprint256,
  };
}

/** True when the private key belongs to the leaf certificate. */
export function keyMatchesCert(keyPem: string, certPem: string): boolean {
  const x = new X509Certificate(certPem);
  return x.checkPrivateKey(createPrivateKey(keyPem));
}

export function publicKeyPemOf(keyPem: string): string {
  return createPublicKey(createPrivateKey(keyPem)).export({ type: 'spki', format: 'pem' }).toString();
}
