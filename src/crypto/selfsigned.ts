/**
 * Key pairs and small self-made certificates: nginx bootstrap placeholders (self-signed, short-lived) and a
 * throw-away CA + leaf for local test servers (Pebble's own HTTPS listener). Built with @peculiar/x509 over
 * node's WebCrypto; keys leave as PKCS#8 PEM.
 */

import { webcrypto } from 'node:crypto';
import { isIP } from 'node:net';
// @peculiar/x509 v2 resolves its algorithm providers through tsyringe, which needs the Reflect metadata API.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { createPlaceholderCert } from './placeholder-cert.js';

export type KeyType = 'ecdsa-p256' | 'ecdsa-p384' | 'rsa-2048' | 'rsa-3072' | 'rsa-4096';

export const KEY_TYPES: readonly KeyType[] = ['ecdsa-p256', 'ecdsa-p384', 'rsa-2048', 'rsa-3072', 'rsa-4096'];

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;
type Algorithm = webcrypto.Algorithm;
type EcdsaParams = webcrypto.EcdsaParams;
type RsaHashedKeyGenParams = webcrypto.RsaHashedKeyGenParams;
type EcKeyGenParams = webcrypto.EcKeyGenParams;

const subtle = webcrypto.subtle;
// The library is typed against the DOM's Crypto; node's webcrypto is that API at run time, the types differ in detail.
const crypto = webcrypto as unknown as NonNullable<
  Parameters<typeof x509.X509CertificateGenerator.create>[1]
>;

type Alg = RsaHashedKeyGenParams | EcKeyGenParams;

function algorithmFor(keyType: KeyType): { gen: Alg; sign: Algorithm | EcdsaParams } {
  switch (keyType) {
    case 'ecdsa-p256':
      return {
        gen: { name: 'ECDSA', namedCurve: 'P-256' },
        sign: { name: 'ECDSA', hash: 'SHA-256' } as EcdsaParams,
      };
    case 'ecdsa-p384':
      return {
        gen: { name: 'ECDSA', namedCurve: 'P-384' },
        sign: { name: 'ECDSA', hash: 'SHA-384' } as EcdsaParams,
      };
    case 'rsa-2048':
    case 'rsa-3072':
    case 'rsa-4096': {
      const modulusLength = Number(keyType.slice(4));
      return {
        gen: {
          name: 'RSASSA-PKCS1-v1_5',
          modulusLength,
          publicExponent: new Uint8Array([1, 0, 1]),
          hash: 'SHA-256',
        },
        sign: { name: 'RSASSA-PKCS1-v1_5' },
      };
    }
    default:
      throw new Error(`unknown key type "${String(keyType)}": use one of ${KEY_TYPES.join(', ')}`);
  }
}

async function generate(keyType: KeyType): Promise<CryptoKeyPair> {
  return (await subtle.generateKey(algorithmFor(keyType).gen, true, ['sign', 'verify'])) as CryptoKeyPair;
}

async function exportPkcs8Pem(key: CryptoKey): Promise<string> {
  const der = await subtle.exportKey('pkcs8', key);
  return `${x509.PemConverter.encode(der, 'PRIVATE KEY')}\n`;
}

async function importPkcs8Pem(pem: string, keyType: KeyType): Promise<CryptoKey> {
  const der = x509.PemConverter.decode(pem)[0];
  if (!der) throw new Error('no PEM block found in private key');
  const { gen } = algorithmFor(keyType);
  const importAlg = gen.name === 'ECDSA' ? gen : { name: gen.name, hash: 'SHA-256' };
  return subtle.importKey('pkcs8', der, importAlg, false, ['sign']);
}

/** A fresh private key as PKCS#8 PEM ("-----BEGIN PRIVATE KEY-----"). */
export async function createKeyPair(keyType: KeyType): Promise<string> {
  const keys = await generate(keyType);
  return exportPkcs8Pem(keys.privateKey);
}

/** Positive 16-byte serial, hex. */
function randomSerial(): string {
  const bytes = webcrypto.getRandomValues(new Uint8Array(16));
  bytes[0] = ((bytes[0] ?? 1) & 0x7f) | 0x01;
  return Buffer.from(bytes).toString('hex');
}

function sanExtension(altNames: string[]): x509.SubjectAlternativeNameExtension {
  return new x509.SubjectAlternativeNameExtension(
    altNames.map((n) => (isIP(n) ? { type: 'ip' as const, value: n } : { type: 'dns' as const, value: n })),
    false,
  );
}

/** Escape characters that are special in an RFC 4514 string so a name cannot inject extra RDNs. */
function dnValue(v: string): string {
  return v.replace(/([,+"\\<>;=])/g, '\\$1');
}

/** What every server certificate made here carries: not a CA, TLS server use, its names, its key's identifier. */
async function serverExtensions(altNames: string[], publicKey: CryptoKey): Promise<x509.Extension[]> {
  return [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(
      x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment,
      true,
    ),
    new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
    sanExtension(altNames),
    await x509.SubjectKeyIdentifierExtension.create(publicKey, false, crypto),
  ];
}

function validity(days: number): { notBefore: Date; notAfter: Date } {
  if (!(days > 0)) throw new Error(`certificate lifetime must be a positive number of days, got ${days}`);
  const now = Date.now();
  // Back-date a minute so a freshly made certificate is valid on a slightly slow clock.
  return { notBefore: new Date(now - 60_000), notAfter: new Date(now + days * 86_400_000) };
}

export interface SelfSignedOptions {
  commonName: string;
  /** DNS names and IP addresses for the subjectAltName extension. */
  altNames: string[];
  days: number;
  keyType?: KeyType;
}

export interface CertAndKey {
  certPem: string;
  keyPem: string;
}

/**
 * A self-signed server certificate: the subject says "certkeeper placeholder" so nobody mistakes it for a real one.
 * Made with node:crypto alone (./placeholder-cert.ts), as the bootstrap makes it.
 */
export async function createSelfSigned(opts: SelfSignedOptions): Promise<CertAndKey> {
  return createPlaceholderCert(opts);
}

export interface TestCA extends CertAndKey {
  keyType: KeyType;
}

/** A throw-away root CA for local test servers (10 years, ECDSA P-256 unless told otherwise). */
export async function createTestCA(opts: {
  commonName: string;
  days?: number;
  keyType?: KeyType;
}): Promise<TestCA> {
  const keyType = opts.keyType ?? 'ecdsa-p256';
  const keys = await generate(keyType);
  const cert = await x509.X509CertificateGenerator.createSelfSigned(
    {
      serialNumber: randomSerial(),
      name: `CN=${dnValue(opts.commonName)}, O=certkeeper test CA`,
      keys,
      signingAlgorithm: algorithmFor(keyType).sign,
      ...validity(opts.days ?? 3650),
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false, crypto),
      ],
    },
    crypto,
  );
  return { certPem: `${cert.toString('pem')}\n`, keyPem: await exportPkcs8Pem(keys.privateKey), keyType };
}

/** A server leaf signed by `ca` for the given DNS names / IPs. */
export async function issueLeaf(
  ca: TestCA,
  opts: { altNames: string[]; days: number; keyType?: KeyType; commonName?: string },
): Promise<CertAndKey> {
  if (opts.altNames.length === 0) throw new Error('issueLeaf needs at least one DNS name or IP in altNames');
  const keyType = opts.keyType ?? 'ecdsa-p256';
  const keys = await generate(keyType);
  const caCert = new x509.X509Certificate(ca.certPem);
  const caKey = await importPkcs8Pem(ca.keyPem, ca.keyType);
  const cert = await x509.X509CertificateGenerator.create(
    {
      serialNumber: randomSerial(),
      subject: `CN=${dnValue(opts.commonName ?? opts.altNames[0] ?? 'localhost')}`,
      issuer: caCert.subject,
      publicKey: keys.publicKey,
      signingKey: caKey,
      signingAlgorithm: algorithmFor(ca.keyType).sign,
      ...validity(opts.days),
      extensions: [
        ...(await serverExtensions(opts.altNames, keys.publicKey)),
        await x509.AuthorityKeyIdentifierExtension.create(caCert, false, crypto),
      ],
    },
    crypto,
  );
  return { certPem: `${cert.toString('pem')}\n`, keyPem: await exportPkcs8Pem(keys.privateKey) };
}
