import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { acmKeyAlgorithmOf, describeAlgorithm, normalizeSerial, regionOfArn } from './keys.js';

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
