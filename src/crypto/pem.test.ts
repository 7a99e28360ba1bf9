import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { certInfo, certSummary } from './pem.js';
import { createSelfSigned, createTestCA, issueLeaf } from './selfsigned.js';

const dir = mkdtempSync(join(tmpdir(), 'ck-pem-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** openssl's own certificates: odd serials, GeneralizedTime (after 2049), IP and upper-case DNS names. */
function opensslCert(serial: string, extra: string[] = []): string {
  const out = join(dir, `${serial}.pem`);
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      join(dir, 'key.pem'),
      '-subj',
      '/CN=odd.test',
      '-addext',
      'subjectAltName=DNS:a.test,IP:127.0.0.1,DNS:B.Test',
      '-set_serial',
      serial,
      '-out',
      out,
      ...extra,
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  return readFileSync(out, 'utf8');
}

const pick = (pem: string) => {
  const { serial, notBefore, notAfter, subjectAltNames } = certInfo(pem);
  return { serial, notBefore, notAfter, subjectAltNames };
};

describe('certSummary', () => {
  it('reads what certInfo (X509Certificate) reads, for the certificates certkeeper meets', async () => {
    const pems: string[] = [];
    for (let i = 0; i < 20; i++) {
      pems.push(
        (
          await createSelfSigned({
            commonName: `s${i}.test`,
            altNames: [`s${i}.test`, `www.s${i}.test`],
            days: 90,
          })
        ).certPem,
      );
    }
    const ca = await createTestCA({ commonName: 'pem test CA', keyType: 'rsa-2048' });
    pems.push(ca.certPem);
    pems.push(
      (await issueLeaf(ca, { altNames: ['leaf.test', '*.leaf.test', '127.0.0.1', '2001:db8::a'], days: 30 }))
        .certPem,
    );
    for (const s of ['1', '128', '0x00ff12', '65536', '0x7fffffffffffffffffffffffffffffff'])
      pems.push(opensslCert(s, ['-days', '20000']));
    pems.push(opensslCert('42', ['-days', '1']));
    for (const pem of pems) expect(certSummary(pem)).toEqual(pick(pem));
    // the fixtures do cover both time encodings and the leading-zero serial
    expect(pems.some((p) => certSummary(p).notAfter.getUTCFullYear() >= 2050)).toBe(true);
    expect(certSummary(opensslCert('128')).serial).toBe('80');
    // IP-address SANs too (certificates for IP identifiers), IPv6 in its short form
    expect(certSummary(opensslCert('7')).subjectAltNames).toEqual(['a.test', '127.0.0.1', 'b.test']);
  });

  it('hands what it does not expect to X509Certificate: a negative serial parses, garbage throws', () => {
    const negative = opensslCert('-5');
    expect(certSummary(negative)).toEqual(pick(negative));
    const pem = opensslCert('9');
    const broken = pem.replace(/\n(.{20})/, '\nAAAAAAAAAAAAAAAAAAAA');
    expect(() => certSummary(broken)).toThrow();
    expect(() => certSummary('not a certificate')).toThrow();
  });
});
