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
import { createHash, generateKeyPair, type KeyObject, randomBytes } from 'node:crypto';
import {
  bits,
  extension,
  octets,
  oid,
  pem,
  publicKeyBits,
  seq,
  set,
  signatureAlgorithm,
  signDer,
  subjectAltNames,
  time,
  tlv,
  utf8,
} from './der.js';

export type PlaceholderKeyType = 'ecdsa-p256' | 'ecdsa-p384' | 'rsa-2048' | 'rsa-3072' | 'rsa-4096';

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
  const san = subjectAltNames(names);
  const alg = signatureAlgorithm(privateKey);
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
  const signature = await signDer(alg.digest, tbs, privateKey);
  const cert = seq(tbs, alg.id, bits(signature));
  return {
    certPem: pem('CERTIFICATE', cert),
    keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
  };
}
