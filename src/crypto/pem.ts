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

/** What planning and status need of a leaf: serial, validity, DNS names. */
export type CertSummary = Pick<CertInfo, 'serial' | 'notBefore' | 'notAfter' | 'subjectAltNames'>;

const PEM_BODY = /-----BEGIN CERTIFICATE-----([\s\S]+?)-----END CERTIFICATE-----/;

/** One DER element: tag, where its content starts and ends. Throws on anything outside `limit`. */
function tlv(der: Buffer, pos: number, limit: number): { tag: number; start: number; end: number } {
  if (pos + 2 > limit) throw new Error('truncated DER');
  const tag = der[pos]!;
  if ((tag & 0x1f) === 0x1f) throw new Error('multi-byte DER tag');
  let len = der[pos + 1]!;
  let start = pos + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 3 || start + n > limit) throw new Error('unsupported DER length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + der[start++]!;
  }
  const end = start + len;
  if (end > limit) throw new Error('truncated DER');
  return { tag, start, end };
}

/** UTCTime (0x17) or GeneralizedTime (0x18) in the DER form RFC 5280 §4.1.2.5 requires: seconds, "Z". */
function derTime(der: Buffer, el: { tag: number; start: number; end: number }): Date {
  const s = der.toString('latin1', el.start, el.end);
  const m =
    el.tag === 0x17
      ? /^(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)Z$/.exec(s)
      : el.tag === 0x18
        ? /^(\d{4})(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)Z$/.exec(s)
        : null;
  if (!m) throw new Error('unsupported certificate time');
  let year = Number(m[1]);
  if (el.tag === 0x17) year += year >= 50 ? 1900 : 2000;
  return new Date(Date.UTC(year, Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6])));
}

const SAN_OID = Buffer.from([0x55, 0x1d, 0x11]); // 2.5.29.17

/**
 * certSummary reads the serial, validity and DNS subject alternative names straight from the DER (a few
 * microseconds), where `new X509Certificate` costs 100–300 µs (OpenSSL 3 decodes the public key through its
 * provider machinery): `status` and the daemon's load read 10,000 certificates. Anything it does not expect (a
 * negative serial, a time with fractions, a long tag) goes to X509Certificate, which also rejects what is broken.
 * Equality with certInfo is tested over RSA, ECDSA, Pebble-issued and odd-serial certificates.
 */
export function certSummary(pem: string): CertSummary {
  try {
    return readSummary(pem);
  } catch {
    const { serial, notBefore, notAfter, subjectAltNames } = certInfo(pem);
    return { serial, notBefore, notAfter, subjectAltNames };
  }
}

/** An iPAddress SAN (4 or 16 octets) in the spelling certInfo gives it. */
function ipText(b: Buffer): string {
  if (b.length === 4) return [...b].join('.');
  if (b.length !== 16) throw new Error('unexpected iPAddress SAN');
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(b.readUInt16BE(i).toString(16));
  return canonicalIp(groups.join(':'));
}

function readSummary(pem: string): CertSummary {
  const body = PEM_BODY.exec(pem)?.[1];
  if (!body) throw new Error('no PEM certificate');
  const der = Buffer.from(body, 'base64');
  const cert = tlv(der, 0, der.length);
  if (cert.tag !== 0x30 || cert.end !== der.length) throw new Error('not a certificate');
  const tbs = tlv(der, cert.start, cert.end);
  if (tbs.tag !== 0x30) throw new Error('not a certificate');
  let el = tlv(der, tbs.start, tbs.end);
  if (el.tag === 0xa0) el = tlv(der, el.end, tbs.end); // [0] version
  if (el.tag !== 0x02 || el.end === el.start || der[el.start]! & 0x80) throw new Error('unexpected serial');
  // as OpenSSL prints it (and X509Certificate.serialNumber): without DER's leading zero bytes
  let first = el.start;
  while (first < el.end - 1 && der[first] === 0) first++;
  if (der[first] === 0) throw new Error('zero serial');
  const serial = der.toString('hex', first, el.end).toUpperCase();
  const sigAlg = tlv(der, el.end, tbs.end);
  const issuer = tlv(der, sigAlg.end, tbs.end);
  const validity = tlv(der, issuer.end, tbs.end);
  if (sigAlg.tag !== 0x30 || issuer.tag !== 0x30 || validity.tag !== 0x30) throw new Error('unexpected TBS');
  const from = tlv(der, validity.start, validity.end);
  const to = tlv(der, from.end, validity.end);
  const subject = tlv(der, validity.end, tbs.end);
  const spki = tlv(der, subject.end, tbs.end);
  if (subject.tag !== 0x30 || spki.tag !== 0x30) throw new Error('unexpected TBS');
  const subjectAltNames: string[] = [];
  let seenSan = false;
  for (let pos = spki.end; pos < tbs.end; ) {
    const opt = tlv(der, pos, tbs.end);
    pos = opt.end;
    if (opt.tag !== 0xa3) continue; // [1], [2] unique IDs
    const exts = tlv(der, opt.start, opt.end);
    for (let p = exts.start; p < exts.end; ) {
      const ext = tlv(der, p, exts.end);
      p = ext.end;
      const oid = tlv(der, ext.start, ext.end);
      if (oid.tag !== 0x06 || !der.subarray(oid.start, oid.end).equals(SAN_OID)) continue;
      if (seenSan) throw new Error('two SAN extensions');
      seenSan = true;
      let v = tlv(der, oid.end, ext.end);
      if (v.tag === 0x01) v = tlv(der, v.end, ext.end); // critical
      if (v.tag !== 0x04) throw new Error('unexpected SAN extension');
      const names = tlv(der, v.start, v.end);
      for (let q = names.start; q < names.end; ) {
        const gn = tlv(der, q, names.end);
        q = gn.end;
        if (gn.tag === 0x82) subjectAltNames.push(der.toString('latin1', gn.start, gn.end).toLowerCase());
        else if (gn.tag === 0x87) subjectAltNames.push(ipText(der.subarray(gn.start, gn.end)));
      }
    }
  }
  return { serial, notBefore: derTime(der, from), notAfter: derTime(der, to), subjectAltNames };
}
