import { createPrivateKey, createPublicKey, X509Certificate } from 'node:crypto';
import { canonicalIp } from '../config/ip.js';

const PEM_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

export function splitPemChain(pem: string): string[] {
  return (pem.match(PEM_BLOCK) ?? []).map((b) => `${b}\n`);
}

export interface CertInfo {
  serial: string;
  notBefore: Date;
  notAfter: Date;
  /** DNS names (lower case) and IP addresses (canonical, see config/ip.ts). */
  subjectAltNames: string[];
  issuer: string;
  fingerprint256: string;
}

export function certInfo(pem: string): CertInfo {
  const x = new X509Certificate(pem);
  const sans = (x.subjectAltName ?? '').split(/,\s*/).flatMap((s) => {
    if (s.startsWith('DNS:')) return [s.slice(4).toLowerCase()];
    // node prints IPv6 SANs expanded ("0:0:0:0:0:0:0:1"): keep the one spelling config and state use ("::1").
    if (s.startsWith('IP Address:')) return [canonicalIp(s.slice(11).toLowerCase())];
    return [];
  });
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
