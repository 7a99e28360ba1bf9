/**
 * The certificate request (PKCS#10, RFC 2986) sent to finalize an order, made with node:crypto: the private key's
 * public half, the names as a subjectAltName in an extensionRequest, and the signature computed on libuv's thread
 * pool. acme-client's createCsr builds the same request through WebCrypto, asn1js and @peculiar/x509 (~2.5 ms of
 * main-thread time per certificate, and ~35 ms of module loading at every cold start, on Node 20).
 *
 * What it holds is what acme-client's held: version 0, the subject CN when one is given (the CN is also the first
 * SAN), keyUsage digitalSignature + keyEncipherment (not critical), and every name as a dNSName or iPAddress.
 */
import { createPrivateKey, createPublicKey } from 'node:crypto';
import {
  bits,
  extension,
  oid,
  pem,
  seq,
  set,
  signatureAlgorithm,
  signDer,
  subjectAltNames,
  tlv,
  utf8,
} from '../crypto/der.js';

/** A PEM certificate request for `altNames` (DNS names and IP addresses), signed with `keyPem`. */
export async function createCsrPem(
  names: { commonName?: string; altNames: string[] },
  keyPem: string,
): Promise<string> {
  const key = createPrivateKey(keyPem);
  const alg = signatureAlgorithm(key);
  const spki = createPublicKey(key).export({ type: 'spki', format: 'der' });
  const altNames = [...names.altNames];
  if (names.commonName && !altNames.includes(names.commonName)) altNames.unshift(names.commonName);
  if (altNames.length === 0) throw new Error('a certificate request needs at least one name');
  const san = subjectAltNames(altNames);
  const info = seq(
    tlv(0x02, Buffer.from([0])), // version 1 (0)
    seq(...(names.commonName ? [set(seq(oid('2.5.4.3'), utf8(names.commonName)))] : [])),
    spki,
    tlv(
      0xa0, // attributes [0] IMPLICIT SET OF Attribute
      seq(
        oid('1.2.840.113549.1.9.14'), // extensionRequest
        set(
          seq(
            extension('2.5.29.15', false, bits(Buffer.from([0xa0]), 5)), // digitalSignature, keyEncipherment
            extension('2.5.29.17', false, san),
          ),
        ),
      ),
    ),
  );
  const signature = await signDer(alg.digest, info, key);
  return pem('CERTIFICATE REQUEST', seq(info, alg.id, bits(signature)));
}
