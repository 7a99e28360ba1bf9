import { createPrivateKey, X509Certificate } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { keyMatchesCert } from './pem.js';
import { createKeyPair, createSelfSigned, createTestCA, issueLeaf } from './selfsigned.js';

describe('createKeyPair', () => {
  it.each([
    ['ecdsa-p256', 'ec', 'prime256v1'],
    ['ecdsa-p384', 'ec', 'secp384r1'],
    ['rsa-2048', 'rsa', undefined],
  ] as const)('%s gives a PKCS#8 PEM of the right kind', async (keyType, kind, curve) => {
    const pem = await createKeyPair(keyType);
    expect(pem).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
    const key = createPrivateKey(pem);
    expect(key.asymmetricKeyType).toBe(kind);
    if (curve) expect(key.asymmetricKeyDetails?.namedCurve).toBe(curve);
    else expect(key.asymmetricKeyDetails?.modulusLength).toBe(2048);
  });
});

describe('createSelfSigned', () => {
  it('makes a short-lived placeholder with the SANs, its key, and a subject saying what it is', async () => {
    const { certPem, keyPem } = await createSelfSigned({
      commonName: 'example.test',
      altNames: ['example.test', 'www.example.test', '127.0.0.1'],
      days: 7,
    });
    const x = new X509Certificate(certPem);
    expect(x.subject).toContain('certkeeper placeholder');
    expect(x.subjectAltName).toContain('DNS:example.test');
    expect(x.subjectAltName).toContain('DNS:www.example.test');
    expect(x.subjectAltName).toContain('IP Address:127.0.0.1');
    expect(x.verify(x.publicKey)).toBe(true);
    expect(x.ca).toBe(false);
    const lifetimeDays = (Date.parse(x.validTo) - Date.parse(x.validFrom)) / 86_400_000;
    expect(lifetimeDays).toBeGreaterThan(6.9);
    expect(lifetimeDays).toBeLessThan(7.1);
    expect(keyMatchesCert(keyPem, certPem)).toBe(true);
  });

  it('works with an RSA key', async () => {
    const { certPem, keyPem } = await createSelfSigned({
      commonName: 'a.test',
      altNames: [],
      days: 1,
      keyType: 'rsa-2048',
    });
    expect(new X509Certificate(certPem).subjectAltName).toBe('DNS:a.test');
    expect(keyMatchesCert(keyPem, certPem)).toBe(true);
  });

  it('refuses a non-positive lifetime', async () => {
    await expect(createSelfSigned({ commonName: 'a.test', altNames: [], days: 0 })).rejects.toThrow(
      /positive/,
    );
  });
});

describe('createTestCA + issueLeaf', () => {
  it('issues a leaf that verifies against the CA and carries the SANs', async () => {
    const ca = await createTestCA({ commonName: 'certkeeper test root' });
    const leaf = await issueLeaf(ca, { altNames: ['127.0.0.1', 'localhost'], days: 2 });
    const caX = new X509Certificate(ca.certPem);
    const leafX = new X509Certificate(leaf.certPem);
    expect(caX.ca).toBe(true);
    expect(leafX.ca).toBe(false);
    expect(leafX.verify(caX.publicKey)).toBe(true);
    expect(leafX.checkIssued(caX)).toBe(true);
    expect(leafX.subjectAltName).toContain('IP Address:127.0.0.1');
    expect(leafX.subjectAltName).toContain('DNS:localhost');
    expect(leafX.checkIP('127.0.0.1')).toBe('127.0.0.1');
    expect(keyMatchesCert(leaf.keyPem, leaf.certPem)).toBe(true);
    // A leaf from another CA does not verify against this one.
    const other = await createTestCA({ commonName: 'other root' });
    expect(leafX.verify(new X509Certificate(other.certPem).publicKey)).toBe(false);
  });

  it('works with an RSA CA', async () => {
    const ca = await createTestCA({ commonName: 'rsa root', keyType: 'rsa-2048' });
    const leaf = await issueLeaf(ca, { altNames: ['localhost'], days: 1 });
    expect(new X509Certificate(leaf.certPem).verify(new X509Certificate(ca.certPem).publicKey)).toBe(true);
  });
});

describe('createSelfSigned (node:crypto DER)', () => {
  it.each(['ecdsa-p256', 'ecdsa-p384', 'rsa-2048'] as const)(
    '%s: OpenSSL reads every field the placeholder promises',
    async (keyType) => {
      const { certPem, keyPem } = await createSelfSigned({
        commonName: 'a.example.test',
        altNames: ['a.example.test', '2001:db8::1', '::ffff:192.0.2.7', '192.0.2.9'],
        days: 7,
        keyType,
      });
      const x = new X509Certificate(certPem);
      expect(x.subject).toBe('CN=a.example.test\nO=certkeeper placeholder');
      expect(x.issuer).toBe(x.subject);
      expect(x.verify(x.publicKey)).toBe(true);
      expect(x.ca).toBe(false);
      expect(x.keyUsage).toEqual(['1.3.6.1.5.5.7.3.1']);
      expect(x.subjectAltName).toBe(
        'DNS:a.example.test, IP Address:2001:DB8:0:0:0:0:0:1, IP Address:0:0:0:0:0:FFFF:C000:207, IP Address:192.0.2.9',
      );
      expect(x.serialNumber).toMatch(/^[0-7][0-9A-F]{31}$/);
      expect(Date.parse(x.validFrom)).toBeLessThanOrEqual(Date.now());
      expect(keyMatchesCert(keyPem, certPem)).toBe(true);
      expect(createPrivateKey(keyPem).asymmetricKeyType).toBe(keyType.startsWith('rsa') ? 'rsa' : 'ec');
      // the DER parses as the @peculiar library reads it too (a second, independent decoder)
      const peculiar = await import('@peculiar/x509');
      const p = new peculiar.X509Certificate(certPem);
      expect(p.getExtension(peculiar.BasicConstraintsExtension)?.critical).toBe(true);
      expect(p.getExtension(peculiar.KeyUsagesExtension)?.usages).toBe(
        peculiar.KeyUsageFlags.digitalSignature | peculiar.KeyUsageFlags.keyEncipherment,
      );
      expect(p.getExtension(peculiar.SubjectKeyIdentifierExtension)?.keyId).toBe(
        (await peculiar.SubjectKeyIdentifierExtension.create(await p.publicKey.export())).keyId,
      );
    },
  );

  it('writes GeneralizedTime for a notAfter from 2050 on', async () => {
    const { certPem } = await createSelfSigned({ commonName: 'far.test', altNames: [], days: 9000 });
    expect(new Date(new X509Certificate(certPem).validTo).getUTCFullYear()).toBeGreaterThanOrEqual(2050);
  });
});
