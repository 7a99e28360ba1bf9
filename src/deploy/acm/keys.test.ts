import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../config/load.js';
import { ConfigError } from '../../errors.js';
import {
  acmKeyAlgorithmOf,
  CLOUDFRONT_KEY_ALGORITHMS,
  describeAlgorithm,
  normalizeSerial,
  regionOfArn,
} from './keys.js';

const pem = (k: ReturnType<typeof generateKeyPairSync>['privateKey']) =>
  k.export({ type: 'pkcs8', format: 'pem' }).toString();

describe('ACM key algorithms and spellings', () => {
  it("names keys in ACM's terms and describes the ones ACM cannot import", () => {
    expect(
      acmKeyAlgorithmOf(pem(generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey)),
    ).toEqual({
      ok: true,
      algorithm: 'EC_prime256v1',
    });
    expect(acmKeyAlgorithmOf(pem(generateKeyPairSync('ec', { namedCurve: 'secp521r1' }).privateKey))).toEqual(
      {
        ok: true,
        algorithm: 'EC_secp521r1',
      },
    );
    expect(acmKeyAlgorithmOf(pem(generateKeyPairSync('ec', { namedCurve: 'secp256k1' }).privateKey))).toEqual(
      {
        ok: false,
        description: 'an ECDSA key on curve secp256k1',
      },
    );
    expect(acmKeyAlgorithmOf(pem(generateKeyPairSync('ed25519').privateKey))).toEqual({
      ok: false,
      description: 'a key of type Ed25519',
    });
    const bad = acmKeyAlgorithmOf('-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n');
    expect(bad).toEqual({ ok: false, description: 'a private key that is not an unencrypted PEM key' });
  });

  it('compares serials across ACM and Node spellings, and reads regions from ARNs', () => {
    expect(normalizeSerial('0a:1b:ff')).toBe(normalizeSerial('0A1BFF'));
    expect(normalizeSerial('00:0a:1b')).toBe('a1b');
    expect(normalizeSerial('01:02')).not.toBe(normalizeSerial('0103'));
    expect(describeAlgorithm('RSA-2048')).toBe('RSA 2048');
    expect(describeAlgorithm('EC_secp384r1')).toBe('ECDSA P-384');
    expect(regionOfArn('arn:aws:acm:eu-west-1:123456789012:certificate/ab-12')).toBe('eu-west-1');
    expect(regionOfArn('arn:aws:s3:::bucket')).toBeUndefined();
  });
});

describe('CloudFront key rules', () => {
  it("follow AWS's import rules: RSA 2048/3072/4096 and ECDSA P-256, not P-384 or P-521", () => {
    expect([...CLOUDFRONT_KEY_ALGORITHMS].sort()).toEqual([
      'EC_prime256v1',
      'RSA_2048',
      'RSA_3072',
      'RSA_4096',
    ]);
  });

  const cfg = (keyType: string, cloudfront: boolean) => ({
    acme: { directoryUrl: 'https://127.0.0.1:14000/dir' },
    storage: { path: '/tmp/ck-keys-test' },
    certificates: [
      {
        name: 'cdn',
        domains: ['cdn.example.test'],
        keyType,
        challenge: { type: 'http-01', webroot: '/tmp/ck-keys-test/www' },
        deploy: [
          { type: 'acm', region: 'eu-west-1' },
          { type: 'acm', cloudfront },
        ],
      },
    ],
  });

  it('refuse keyType ecdsa-p384 with cloudfront: true when the configuration is loaded', () => {
    let err: unknown;
    try {
      parseConfig(cfg('ecdsa-p384', true), { env: {} });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const msg = (err as ConfigError).message;
    expect(msg).toContain('certificates[0].keyType');
    expect(msg).toContain(
      'keyType ecdsa-p384 cannot be used with CloudFront (deploy[1] has cloudfront: true)',
    );
    expect(msg).toContain('set keyType: ecdsa-p256');
    // The same key without CloudFront, and every key CloudFront takes, load fine.
    expect(() => parseConfig(cfg('ecdsa-p384', false), { env: {} })).not.toThrow();
    for (const k of ['rsa-2048', 'rsa-3072', 'rsa-4096', 'ecdsa-p256']) {
      expect(() => parseConfig(cfg(k, true), { env: {} })).not.toThrow();
    }
  });
});
