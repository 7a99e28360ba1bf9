/**
 * The self-signed placeholder (nginx's first boot), made with node:crypto alone: the key pair is generated and the
 * certificate signed on libuv's thread pool, and the DER around them is a few hundred bytes written here. Building
 * it with @peculiar/x509 over WebCrypto took ~6 ms of main-thread time per certificate (asn1js, tsyringe,
 * reflect-metadata), which a `renew` of 50 new certificates paid before its first order, next to the ACME work it
 * competes with for the CPU.
 *
 * What it holds is what the @peculiar version held: X.509 v3, a random positive 16-byte serial, subject = issuer =
 * "CN=<first name>, O=certkeeper placeholder", valid from a minute ago for `days`, critical basicConstraints (not a
 * CA), critical keyUsage (digitalSignature, keyEncipherment), extKeyUsage serverAuth, the subjectAltName (DNS names
 * and IP addresses) and a subjectKeyIdentifier (SHA-1 of the public key, RFC 5280 4.2.1.2 method 1).
 */
import { createHash, generateKeyPair, type KeyObject, randomBytes, sign } from 'node:crypto';
import { isIP } from 'node:net';

export type PlaceholderKeyType = 'ecdsa-p256' | 'ecdsa-p384' | 'rsa-2048' | 'rsa-3072' | 'rsa-4096';

// ---- DER (X.690), only what a certificate needs -------------------------------------------------------------

function len(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v >>= 8) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}
function tlv(tag: number, ...content: Buffer[]): Buffer {
  const body = Buffer.concat(content);
  return Buffer.concat([Buffer.from([tag]), len(body.length), body]);
}
const seq = (...c: Buffer[]) => tlv(0x30, ...c);
const set = (...c: Buffer[]) => tlv(0x31, ...c);
const octets = (b: Buffer) => tlv(0x04, b);
const bits = (b: Buffer, unused = 0) => tlv(0x03, Buffer.from([unused]), b);
const utf8 = (s: string) => tlv(0x0c, Buffer.from(s, 'utf8'));
const bool = (v: boolean) => tlv(0x01, Buffer.from([v ? 0xff : 0]));

function oid(dotted: string): Buffer {
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
function time(d: Date): Buffer {
  const iso = d.toISOString(); // 2026-12-02T01:02:03.456Z
  const digits = iso.slice(0, 19).replace(/[-:T]/g, ''); // 20261202010203
  const year = d.getUTCFullYear();
  return year < 2050
    ? tlv(0x17, Buffer.from(`${digits.slice(2)}Z`, 'ascii'))
    : tlv(0x18, Buffer.from(`${digits}Z`, 'ascii'));
}

function ipOctets(ip: string): Buffer {
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

function extension(id: string, critical: boolean, value: Buffer): Buffer {
  return seq(oid(id), ...(critical ? [bool(true)] : []), octets(value));
}

// ---- keys and signatures ------------------------------------------------------------------------------------

function keyPair(keyType: PlaceholderKeyType): Promise<{ publicKey: KeyObject; privateKey: KeyObject }> {
  return new Promise((resolve, reject) => {
    const done = (err: Error | null, publicKey: KeyObject, privateKey: KeyObject) =>
      err ? reject(err) : resolve({ publicKey, privateKey });
    if (keyType === 'ecdsa-p256' || keyType === 'ecdsa-p384')
      generateKeyPair('ec', { namedCurve: keyType === 'ecdsa-p384' ? 'P-384' : 'P-256' }, done);
    else if (keyType === 'rsa-2048' || keyType === 'rsa-3072' || keyType === 'rsa-4096')
      generateKeyPair('rsa', { modulusLength: Number(keyType.slice(4)), publicExponent: 0x10001 }, done);
    else reject(new Error(`unknown key type "${String(keyType)}"`));
  });
}

/** signatureAlgorithm and the digest for it: ecdsa-with-SHA256/384, sha256WithRSAEncryption (NULL parameters). */
function signatureAlgorithm(keyType: PlaceholderKeyType): { id: Buffer; digest: string } {
  if (keyType === 'ecdsa-p384') return { id: seq(oid('1.2.840.10045.4.3.3')), digest: 'sha384' };
  if (keyType === 'ecdsa-p256') return { id: seq(oid('1.2.840.10045.4.3.2')), digest: 'sha256' };
  return { id: seq(oid('1.2.840.113549.1.1.11'), Buffer.from([0x05, 0x00])), digest: 'sha256' };
}

function signAsync(digest: string, data: Buffer, key: KeyObject): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    sign(digest, data, key, (err, sig) => (err ? reject(err) : resolve(sig))),
  );
}

/** The BIT STRING's content of a SubjectPublicKeyInfo (what the key identifier hashes). */
function publicKeyBits(spki: Buffer): Buffer {
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

function pem(label: string, der: Buffer): string {
  const b64 = der.toString('base64').replace(/.{64}/g, '$&\n');
  return `-----BEGIN ${label}-----\n${b64}${b64.endsWith('\n') ? '' : '\n'}-----END ${label}-----\n`;
}

export interface PlaceholderOptions {
  commonName: string;
  /** DNS names and IP addresses for the subjectAltName extension; empty: the common name. */
  altNames: string[];
  days: number;
  keyType?: PlaceholderKeyType;
}

/** A self-signed server certificate saying "certkeeper placeholder", and its PKCS#8 key, as PEM. */
export async function createPlaceholderCert(
  opts: PlaceholderOptions,
): Promise<{ certPem: string; keyPem: string }> {
  if (!(opts.days > 0))
    throw new Error(`certificate lifetime must be a positive number of days, got ${opts.days}`);
  const keyType = opts.keyType ?? 'ecdsa-p256';
  const { publicKey, privateKey } = await keyPair(keyType);
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  const serial = randomBytes(16);
  serial[0] = (serial[0]! & 0x7f) | 0x01; // positive, and no leading zero byte to strip
  const now = Date.now();
  const name = seq(
    set(seq(oid('2.5.4.3'), utf8(opts.commonName))),
    set(seq(oid('2.5.4.10'), utf8('certkeeper placeholder'))),
  );
  const names = opts.altNames.length > 0 ? opts.altNames : [opts.commonName];
  const san = seq(
    ...names.map((n) => (isIP(n) ? tlv(0x87, ipOctets(n)) : tlv(0x82, Buffer.from(n, 'ascii')))),
  );
  const alg = signatureAlgorithm(keyType);
  const tbs = seq(
    tlv(0xa0, tlv(0x02, Buffer.from([2]))), // v3
    tlv(0x02, serial),
    alg.id,
    name,
    seq(time(new Date(now - 60_000)), time(new Date(now + opts.days * 86_400_000))),
    name,
    spki,
    tlv(
      0xa3,
      seq(
        extension('2.5.29.19', true, seq()), // basicConstraints: cA false
        extension('2.5.29.15', true, bits(Buffer.from([0xa0]), 5)), // digitalSignature, keyEncipherment
        extension('2.5.29.37', false, seq(oid('1.3.6.1.5.5.7.3.1'))), // serverAuth
        extension('2.5.29.17', false, san),
        extension('2.5.29.14', false, octets(createHash('sha1').update(publicKeyBits(spki)).digest())),
      ),
    ),
  );
  const signature = await signAsync(alg.digest, tbs, privateKey);
  const cert = seq(tbs, alg.id, bits(signature));
  return {
    certPem: pem('CERTIFICATE', cert),
    keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
  };
}
