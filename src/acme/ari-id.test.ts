import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { describe, expect, it } from 'vitest';
import { createSelfSigned, createTestCA, issueLeaf } from '../crypto/selfsigned.js';
import { CertkeeperError } from '../errors.js';
import { ariCertId, ariCertIdFromParts, ariParts } from './ari-id.js';

// RFC 9773 §4.1's example: keyIdentifier 69:88:5B:6B:87:46:40:41:E1:B3:7B:84:7B:A0:AE:2C:DE:01:C8:D4,
// serial 00:87:65:43:21 (DER content octets, the 00 keeps the integer positive).
const RFC_KEY_ID = '69885B6B87464041E1B37B847BA0AE2CDE01C8D4';
const RFC_CERT_ID = 'aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE';

describe('ariCertId', () => {
  it('matches the RFC 9773 example from its parts', () => {
    expect(ariCertIdFromParts(Buffer.from(RFC_KEY_ID, 'hex'), Buffer.from('0087654321', 'hex'))).toBe(
      RFC_CERT_ID,
    );
  });

  it('matches the RFC 9773 example from a certificate carrying exactly those parts', async () => {
    const keys = (await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, [
      'sign',
      'verify',
    ])) as webcrypto.CryptoKeyPair;
    const cert = await x509.X509CertificateGenerator.createSelfSigned(
      {
        serialNumber: '0087654321',
        name: 'CN=rfc9773 example',
        keys,
        signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
        extensions: [new x509.AuthorityKeyIdentifierExtension(RFC_KEY_ID)],
      },
      webcrypto as unknown as NonNullable<
        Parameters<typeof x509.X509CertificateGenerator.createSelfSigned>[1]
      >,
    );
    expect(ariCertId(cert.toString('pem'))).toBe(RFC_CERT_ID);
  });

  it('agrees with an independent parser for leaves of a test CA', async () => {
    const ca = await createTestCA({ commonName: 'ari test CA' });
    for (let i = 0; i < 4; i++) {
      const { certPem } = await issueLeaf(ca, { altNames: ['a.test'], days: 1 });
      const parsed = new x509.X509Certificate(certPem);
      const aki = parsed.getExtension(x509.AuthorityKeyIdentifierExtension);
      const caSki = new x509.X509Certificate(ca.certPem).getExtension(x509.SubjectKeyIdentifierExtension);
      expect(aki?.keyId).toBe(caSki?.keyId);
      const parts = ariParts(new Uint8Array(parsed.rawData));
      expect(parts.keyIdentifier?.toString('hex')).toBe(aki?.keyId);
      // DER content octets: never a redundant leading 00, but one when the top bit is set.
      const s = parts.serial;
      expect(s[0] === 0 ? (s[1] as number) >= 0x80 : (s[0] as number) < 0x80).toBe(true);
      expect(BigInt(`0x${s.toString('hex')}`)).toBe(BigInt(`0x${parsed.serialNumber}`));
      expect(ariCertId(certPem)).toBe(
        `${parts.keyIdentifier?.toString('base64url')}.${s.toString('base64url')}`,
      );
    }
  });

  it('says what to do with a certificate without an Authority Key Identifier', async () => {
    const { certPem } = await createSelfSigned({ commonName: 'a.test', altNames: ['a.test'], days: 1 });
    const err = (() => {
      try {
        ariCertId(certPem, { cert: 'site' });
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(CertkeeperError);
    expect((err as CertkeeperError).cert).toBe('site');
    expect((err as CertkeeperError).hint).toMatch(/expiry-based/);
    expect(() => ariCertId('garbage')).toThrow(CertkeeperError);
  });
});
