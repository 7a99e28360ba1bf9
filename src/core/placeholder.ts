import { X509Certificate } from 'node:crypto';

/**
 * A placeholder someone else left: certbot's `init-letsencrypt.sh` writes a one-day self-signed dummy with
 * CN=localhost and no other names, so nginx can start before the first real certificate. It counts as a
 * placeholder (due at once, never "valid"), not as a certificate to keep.
 */
export function isForeignPlaceholder(leafPem: string): boolean {
  const x = readX509(leafPem);
  if (!x) return false;
  const cn = /(?:^|\n)CN=([^\n]*)/.exec(x.subject)?.[1]?.trim().toLowerCase();
  if (cn !== 'localhost') return false;
  const names = (x.subjectAltName ?? '')
    .split(/,\s*/)
    .filter(Boolean)
    .map((s) => s.replace(/^DNS:/, '').toLowerCase());
  const selfSigned = x.issuer === x.subject;
  return selfSigned && names.every((n) => n === 'localhost');
}

/**
 * certkeeper's own placeholder, known without its state file: self-signed, and its subject names the organisation
 * "certkeeper placeholder" (src/crypto/placeholder-cert.ts). A placeholder is written without fsync, so a power cut
 * may keep its files and lose the state saying what they are.
 */
export function isOwnPlaceholder(leafPem: string): boolean {
  const x = readX509(leafPem);
  return !!x && x.issuer === x.subject && /(?:^|\n)O=certkeeper placeholder(?:\n|$)/.test(x.subject);
}

function readX509(pem: string): X509Certificate | undefined {
  try {
    return new X509Certificate(pem);
  } catch {
    return undefined;
  }
}
