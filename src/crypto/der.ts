/**
 * Just enough DER (X.690) to write a certificate or a certificate request: the placeholder and the CSR are made
 * with node:crypto keys and signatures around these few hundred bytes, without an ASN.1 library on the hot path.
 */
import { type KeyObject, sign } from 'node:crypto';
import { isIP } from 'node:net';

function len(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v >>= 8) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}
export function tlv(tag: number, ...content: Buffer[]): Buffer {
  const body = Buffer.concat(content);
  return Buffer.concat([Buffer.from([tag]), len(body.length), body]);
}
export const seq = (...c: Buffer[]) => tlv(0x30, ...c);
export const set = (...c: Buffer[]) => tlv(0x31, ...c);
export const octets = (b: Buffer) => tlv(0x04, b);
export const bits = (b: Buffer, unused = 0) => tlv(0x03, Buffer.from([unused]), b);
export const utf8 = (s: string) => tlv(0x0c, Buffer.from(s, 'utf8'));
export const bool = (v: boolean) => tlv(0x01, Buffer.from([v ? 0xff : 0]));

export function oid(dotted: string): Buffer {
  const parts = dotted.split('.').map(Number);
  const out: number[] = [40 * parts[0]! + parts[1]!];
  for (const p of parts.slice(2)) {
    const b: number[] = [p & 0x7f];
    for (let v = p >>> 7; v > 0; v >>>= 7) b.unshift(0x80 | (v & 0x7f));
    out.push(...b);
  }
  return tlv(0x06, Buffer.from(out));
}

/** UTCTime through 2049, GeneralizedTime from 2050 (RFC 5280 4.1.2.5), whole seconds, Z. */
export function time(d: Date): Buffer {
  const iso = d.toISOString(); // 2026-12-02T01:02:03.456Z
  const digits = iso.slice(0, 19).replace(/[-:T]/g, ''); // 20261202010203
  const year = d.getUTCFullYear();
  return year < 2050
    ? tlv(0x17, Buffer.from(`${digits.slice(2)}Z`, 'ascii'))
    : tlv(0x18, Buffer.from(`${digits}Z`, 'ascii'));
}

export function ipOctets(ip: string): Buffer {
  if (isIP(ip) === 4) return Buffer.from(ip.split('.').map(Number));
  // IPv6: an IPv4 tail (::ffff:192.0.2.1) as two groups, then "::" expanded to the missing zero groups
  const v4 = /^(.*:)(\d+\.\d+\.\d+\.\d+)$/.exec(ip);
  if (v4) {
    const b = ipOctets(v4[2]!);
    return ipOctets(`${v4[1]}${b.readUInt16BE(0).toString(16)}:${b.readUInt16BE(2).toString(16)}`);
  }
  const [head, tail] = ip.includes('::') ? ip.split('::') : [ip, undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => {
    out.writeUInt16BE(Number.parseInt(g || '0', 16), i * 2);
  });
  return out;
}

export function extension(id: string, critical: boolean, value: Buffer): Buffer {
  return seq(oid(id), ...(critical ? [bool(true)] : []), octets(value));
}

/** The BIT STRING's content of a SubjectPublicKeyInfo (what the key identifier hashes). */
export function publicKeyBits(spki: Buffer): Buffer {
  // SEQUENCE { AlgorithmIdentifier, BIT STRING }: skip the outer header and the algorithm, then the BIT STRING's
  // header and its unused-bits byte
  const header = (at: number) => {
    const first = spki[at + 1]!;
    const n = first & 0x80 ? first & 0x7f : 0;
    let length = first;
    if (n) {
      length = 0;
      for (let i = 0; i < n; i++) length = length * 256 + spki[at + 2 + i]!;
    }
    return { start: at + 2 + n, length };
  };
  const outer = header(0);
  const alg = header(outer.start);
  const bitString = header(alg.start + alg.length);
  return spki.subarray(bitString.start + 1, bitString.start + bitString.length);
}

export function pem(label: string, der: Buffer): string {
  const b64 = der.toString('base64').replace(/.{64}/g, '$&\n');
  return `-----BEGIN ${label}-----\n${b64}${b64.endsWith('\n') ? '' : '\n'}-----END ${label}-----\n`;
}

/** A subjectAltName extension's value: dNSName for names, iPAddress for address literals. */
export function subjectAltNames(names: string[]): Buffer {
  return seq(...names.map((n) => (isIP(n) ? tlv(0x87, ipOctets(n)) : tlv(0x82, Buffer.from(n, 'ascii')))));
}

/**
 * The signatureAlgorithm for a private key and the digest it signs with: ecdsa-with-SHA256/384/512 by curve,
 * sha256WithRSAEncryption (NULL parameters) for RSA.
 */
export function signatureAlgorithm(key: KeyObject): { id: Buffer; digest: string } {
  if (key.asymmetricKeyType === 'ec') {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    if (curve === 'secp384r1') return { id: seq(oid('1.2.840.10045.4.3.3')), digest: 'sha384' };
    if (curve === 'secp521r1') return { id: seq(oid('1.2.840.10045.4.3.4')), digest: 'sha512' };
    return { id: seq(oid('1.2.840.10045.4.3.2')), digest: 'sha256' };
  }
  if (key.asymmetricKeyType === 'rsa')
    return { id: seq(oid('1.2.840.113549.1.1.11'), Buffer.from([0x05, 0x00])), digest: 'sha256' };
  throw new Error(`cannot sign with a ${key.asymmetricKeyType} key`);
}

/** `tbs` signed on libuv's thread pool; ECDSA signatures come DER-encoded, as X.509 and PKCS#10 carry them. */
export function signDer(digest: string, tbs: Buffer, key: KeyObject): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    sign(digest, tbs, key, (err, sig) => (err ? reject(err) : resolve(sig))),
  );
}
