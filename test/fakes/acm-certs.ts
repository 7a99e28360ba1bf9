/**
 * Test certificates for the ACM tests: a root, an intermediate and a leaf with a key of the chosen kind, built
 * with @peculiar/x509 over node's WebCrypto, shaped like what the store hands a deployer (IssuedCertificate).
 */
import 'reflect-metadata';
import { generateKeyPairSync, webcrypto, X509Certificate } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import type { KeyType } from '../../src/config/schema.js';
import type { IssuedCertificate } from '../../src/deploy/types.js';

const crypto = webcrypto as unknown as Crypto;
x509.cryptoProvider.set(crypto);

export type TestKey = KeyType | 'ecdsa-p521' | 'rsa-1536';

const EC = { name: 'ECDSA', hash: 'SHA-256' } as EcdsaParams;

function genParams(k: TestKey): RsaHashedKeyGenParams | EcKeyGenParams {
  if (k.startsWith('rsa-')) {
    return {
      name: 'RSASSA-PKCS1-v1_5',
      modulusLength: Number(k.slice(4)),
      publicExponent: new Uint8Array([1, 0, 1]),
      hash: 'SHA-256',
    };
  }
  return {
    name: 'ECDSA',
    namedCurve: { 'ecdsa-p256': 'P-256', 'ecdsa-p384': 'P-384', 'ecdsa-p521': 'P-521' }[k as string]!,
  };
}

async function pkcs8Pem(key: CryptoKey): Promise<string> {
  return `${x509.PemConverter.encode(await crypto.subtle.exportKey('pkcs8', key), 'PRIVATE KEY')}\n`;
}

export interface TestCa {
  root: x509.X509Certificate;
  intermediate: x509.X509Certificate;
  intermediateKeys: CryptoKeyPair;
}

let serialCounter = 1;
const nextSerial = () => (0x10_0000 + serialCounter++).toString(16).padStart(8, '0');

export async function makeCa(): Promise<TestCa> {
  const rootKeys = (await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, [
    'sign',
    'verify',
  ])) as CryptoKeyPair;
  const notBefore = new Date(Date.now() - 86400_000);
  const notAfter = new Date(Date.now() + 3650 * 86400_000);
  const root = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: nextSerial(),
    name: 'CN=certkeeper test root',
    notBefore,
    notAfter,
    keys: rootKeys,
    signingAlgorithm: EC,
    extensions: [
      new x509.BasicConstraintsExtension(true, 1, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign, true),
    ],
  });
  const intermediateKeys = (await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, [
    'sign',
    'verify',
  ])) as CryptoKeyPair;
  const intermediate = await x509.X509CertificateGenerator.create({
    serialNumber: nextSerial(),
    subject: 'CN=certkeeper test intermediate',
    issuer: root.subject,
    notBefore,
    notAfter,
    publicKey: intermediateKeys.publicKey,
    signingKey: rootKeys.privateKey,
    signingAlgorithm: EC,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign, true),
    ],
  });
  return { root, intermediate, intermediateKeys };
}

export interface LeafOptions {
  name?: string;
  domains?: string[];
  key?: TestKey;
  notBefore?: Date;
  notAfter?: Date;
}

/** A leaf signed by the CA's intermediate, as an IssuedCertificate (certPem leaf only, chainPem intermediate only). */
export async function makeIssued(ca: TestCa, opts: LeafOptions = {}): Promise<IssuedCertificate> {
  const key = opts.key ?? 'ecdsa-p256';
  const domains = opts.domains ?? ['www.example.test', 'example.test'];
  const keys = (await crypto.subtle.generateKey(genParams(key), true, ['sign', 'verify'])) as CryptoKeyPair;
  const notBefore = opts.notBefore ?? new Date(Date.now() - 3600_000);
  const notAfter = opts.notAfter ?? new Date(Date.now() + 90 * 86400_000);
  const leaf = await x509.X509CertificateGenerator.create({
    serialNumber: nextSerial(),
    subject: `CN=${domains[0]}`,
    issuer: ca.intermediate.subject,
    notBefore,
    notAfter,
    publicKey: keys.publicKey,
    signingKey: ca.intermediateKeys.privateKey,
    signingAlgorithm: EC,
    extensions: [
      new x509.BasicConstraintsExtension(false),
      new x509.SubjectAlternativeNameExtension(domains.map((d) => ({ type: 'dns' as const, value: d }))),
    ],
  });
  const certPem = `${leaf.toString('pem')}\n`;
  const chainPem = `${ca.intermediate.toString('pem')}\n`;
  const keyPem = await pkcs8Pem(keys.privateKey);
  return issued(opts.name ?? 'site', domains, key, certPem, chainPem, keyPem);
}

/** An Ed25519 key with a certificate for it: a key type ACM cannot import. */
export async function makeEd25519Issued(ca: TestCa, name = 'edsite'): Promise<IssuedCertificate> {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const pub = await crypto.subtle.importKey(
    'spki',
    publicKey.export({ type: 'spki', format: 'der' }),
    { name: 'Ed25519' },
    true,
    ['verify'],
  );
  const leaf = await x509.X509CertificateGenerator.create({
    serialNumber: nextSerial(),
    subject: 'CN=ed.example.test',
    issuer: ca.intermediate.subject,
    notBefore: new Date(Date.now() - 3600_000),
    notAfter: new Date(Date.now() + 30 * 86400_000),
    publicKey: pub,
    signingKey: ca.intermediateKeys.privateKey,
    signingAlgorithm: EC,
    extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'dns', value: 'ed.example.test' }])],
  });
  const keyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  return issued(
    name,
    ['ed.example.test'],
    'ecdsa-p256',
    `${leaf.toString('pem')}\n`,
    `${ca.intermediate.toString('pem')}\n`,
    keyPem,
  );
}

function issued(
  name: string,
  domains: string[],
  key: TestKey,
  certPem: string,
  chainPem: string,
  keyPem: string,
): IssuedCertificate {
  const x = new X509Certificate(certPem);
  const dir = `/nonexistent/live/${name}`;
  return {
    name,
    domains,
    keyType: (['ecdsa-p256', 'ecdsa-p384', 'rsa-2048', 'rsa-3072', 'rsa-4096'].includes(key)
      ? key
      : 'ecdsa-p256') as KeyType,
    certPem,
    chainPem,
    fullchainPem: certPem + chainPem,
    keyPem,
    serial: x.serialNumber.toUpperCase(),
    notBefore: new Date(x.validFrom),
    notAfter: new Date(x.validTo),
    version: 1,
    paths: {
      cert: `${dir}/cert.pem`,
      chain: `${dir}/chain.pem`,
      fullchain: `${dir}/fullchain.pem`,
      privkey: `${dir}/privkey.pem`,
    },
  };
}
