/**
 * The ACME Renewal Information certificate identifier (RFC 9773 §4.1):
 *   base64url(AuthorityKeyIdentifier.keyIdentifier) "." base64url(serialNumber DER INTEGER content octets)
 * The serial keeps its DER content bytes exactly (including a leading 0x00 that keeps it positive), which is why this
 * reads the DER itself instead of trusting a hex rendering of the number.
 */
import { X509Certificate } from 'node:crypto';
import { CertkeeperError } from '../errors.js';

interface Tlv {
  tag: number;
  /** Offset of the content octets. */
  start: number;
  /** Offset just past the content octets. */
  end: number;
}

function readTlv(der: Uint8Array, pos: number, limit: number): Tlv {
  if (pos + 2 > limit) throw new Error('truncated DER');
  const tag = der[pos] as number;
  if ((tag & 0x1f) === 0x1f) throw new Error('multi-byte DER tags are not used in certificates');
  let len = der[pos + 1] as number;
  let start = pos + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4 || start + n > limit) throw new Error('bad DER length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + (der[start + i] as number);
    start += n;
  }
  const end = start + len;
  if (end > limit) throw new Error('DER element runs past its container');
  return { tag, start, end };
}

function children(der: Uint8Array, parent: Tlv): Tlv[] {
  const out: Tlv[] = [];
  for (let pos = parent.start; pos < parent.end; ) {
    const t = readTlv(der, pos, parent.end);
    out.push(t);
    pos = t.end;
  }
  return out;
}

const AKI_OID = Uint8Array.from([0x55, 0x1d, 0x23]); // 2.5.29.35

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

/** Serial content octets and AKI keyIdentifier of a DER certificate. */
export function ariParts(der: Uint8Array): { keyIdentifier?: Buffer; serial: Buffer } {
  const cert = readTlv(der, 0, der.length);
  const tbs = children(der, cert)[0];
  if (tbs?.tag !== 0x30) throw new Error('not an X.509 certificate');
  const fields = children(der, tbs);
  let i = fields[0]?.tag === 0xa0 ? 1 : 0; // [0] EXPLICIT version
  const serialTlv = fields[i];
  if (serialTlv?.tag !== 0x02) throw new Error('certificate has no serial number');
  const serial = Buffer.from(der.subarray(serialTlv.start, serialTlv.end));
  i += 6; // signature, issuer, validity, subject, subjectPublicKeyInfo
  let keyIdentifier: Buffer | undefined;
  for (const f of fields.slice(i)) {
    if (f.tag !== 0xa3) continue; // [3] EXPLICIT extensions
    const seq = children(der, f)[0];
    if (!seq) break;
    for (const ext of children(der, seq)) {
      const parts = children(der, ext);
      const oid = parts[0];
      const value = parts[parts.length - 1];
      if (!oid || !value || oid.tag !== 0x06 || value.tag !== 0x04) continue;
      if (!sameBytes(der.subarray(oid.start, oid.end), AKI_OID)) continue;
      const akiSeq = readTlv(der, value.start, value.end);
      const keyId = children(der, akiSeq).find((c) => c.tag === 0x80); // [0] IMPLICIT KeyIdentifier
      if (keyId) keyIdentifier = Buffer.from(der.subarray(keyId.start, keyId.end));
    }
  }
  return { keyIdentifier, serial };
}

/** certID from the two parts, both as raw bytes. */
export function ariCertIdFromParts(keyIdentifier: Uint8Array, serialContent: Uint8Array): string {
  return `${Buffer.from(keyIdentifier).toString('base64url')}.${Buffer.from(serialContent).toString('base64url')}`;
}

/** RFC 9773 certID of a PEM certificate (the first one when given a chain). */
export function ariCertId(certPem: string, context: { cert?: string } = {}): string {
  let parts: ReturnType<typeof ariParts>;
  try {
    parts = ariParts(new X509Certificate(certPem).raw);
  } catch (err) {
    throw new CertkeeperError(
      'acme',
      `cannot read the certificate to ask the CA for renewal information: ${(err as Error).message}`,
      {
        ...context,
        hint: 'Check that the stored cert.pem is a valid PEM certificate; re-issue it with `certkeeper renew --force` if it is damaged.',
        cause: err,
      },
    );
  }
  if (!parts.keyIdentifier) {
    throw new CertkeeperError(
      'acme',
      'the certificate has no Authority Key Identifier, so it has no ARI certID',
      {
        ...context,
        hint: 'Renewal information (ARI) only works for certificates from a CA that sets the Authority Key Identifier; certkeeper falls back to expiry-based renewal.',
        permanent: true,
      },
    );
  }
  return ariCertIdFromParts(parts.keyIdentifier, parts.serial);
}
