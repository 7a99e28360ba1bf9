/**
 * The bundle's replacement for acme-client's crypto module gives what acme-client's own gives, for every function
 * acme-client calls itself (JWS key, CSR/certificate bodies, chain selection), and certkeeper's CSR says what
 * acme-client's CSR said, read back by acme-client's own parser and by OpenSSL.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createPublicKey } from 'node:crypto';
import * as acme from 'acme-client';
import { describe, expect, it } from 'vitest';
import { createTestCA, issueLeaf } from '../crypto/selfsigned.js';
import * as shim from './acme-client-crypto.js';
import { createCsrPem } from './csr.js';

/** OpenSSL's word on the request's self-signature (`req -verify` exits 0 either way; it says which on stderr). */
const opensslVerify = (pem: string) =>
  spawnSync('openssl', ['req', '-noout', '-verify'], { input: pem, encoding: 'utf8' }).stderr.trim();

const keys = {
  ec256: () => acme.crypto.createPrivateEcdsaKey('P-256'),
  ec384: () => acme.crypto.createPrivateEcdsaKey('P-384'),
  rsa: () => acme.crypto.createPrivateRsaKey(2048),
};

describe('acme-client crypto replacement', () => {
  it.each(Object.keys(keys) as (keyof typeof keys)[])('%s: the same JWK and public key', async (k) => {
    const key = await keys[k]();
    expect(JSON.stringify(shim.getJwk(key))).toBe(JSON.stringify(acme.crypto.getJwk(key)));
    expect(shim.getPublicKey(key).toString()).toBe(acme.crypto.getPublicKey(key).toString());
  });

  it('the same chain split, PEM body and certificate info (what preferredChain selects by)', async () => {
    const root = await createTestCA({ commonName: 'Parity Root X1' });
    const leaf = await issueLeaf(root, {
      altNames: ['a.parity.test', '192.0.2.4', 'b.parity.test'],
      days: 3,
      commonName: 'a.parity.test',
    });
    const chain = `${leaf.certPem}\n${root.certPem.replace(/\n/g, '\r\n')}`;
    expect(shim.splitPemChain(chain)).toEqual(acme.crypto.splitPemChain(chain));
    expect(shim.splitPemChain(Buffer.from(chain))).toEqual(acme.crypto.splitPemChain(Buffer.from(chain)));
    expect(shim.getPemBodyAsB64u(chain)).toBe(acme.crypto.getPemBodyAsB64u(chain));
    for (const pem of [leaf.certPem, root.certPem]) {
      const ours = shim.readCertificateInfo(pem);
      const theirs = acme.crypto.readCertificateInfo(pem);
      expect(ours.issuer).toEqual(theirs.issuer);
      expect(ours.domains.commonName).toEqual(theirs.domains.commonName);
      expect(ours.domains.altNames).toEqual(theirs.domains.altNames);
      expect(ours.notBefore.getTime()).toBe(theirs.notBefore.getTime());
      expect(ours.notAfter.getTime()).toBe(theirs.notAfter.getTime());
    }
    expect(() => shim.getPemBodyAsB64u('no pem here')).toThrow(/Unable to parse PEM body/);
  });
});

describe('createCsrPem', () => {
  it.each(Object.keys(keys) as (keyof typeof keys)[])(
    '%s: acme-client and OpenSSL read the names, the key and a valid signature',
    async (k) => {
      const key = (await keys[k]()).toString();
      const names = {
        commonName: 'www.parity.test',
        altNames: ['parity.test', '2001:db8::7', '198.51.100.2'],
      };
      const csr = await createCsrPem(names, key);
      expect(acme.crypto.readCsrDomains(csr)).toEqual({
        commonName: 'www.parity.test',
        altNames: ['www.parity.test', 'parity.test', '2001:db8::7', '198.51.100.2'],
      });
      // what acme-client's own CSR for the same input says
      const [, theirs] = await acme.crypto.createCsr({ ...names, altNames: [...names.altNames] }, key);
      expect(acme.crypto.readCsrDomains(theirs)).toEqual(acme.crypto.readCsrDomains(csr));
      expect(opensslVerify(csr)).toMatch(/verify OK/);
      const text = execFileSync('openssl', ['req', '-noout', '-text'], {
        input: csr,
        encoding: 'utf8',
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      expect(text).toContain('Subject: CN = www.parity.test');
      expect(text).toMatch(
        /DNS:www\.parity\.test, DNS:parity\.test, IP Address:2001:DB8:0:0:0:0:0:7, IP Address:198\.51\.100\.2/,
      );
      expect(text).toMatch(/Digital Signature, Key Encipherment/);
      const pub = execFileSync('openssl', ['req', '-noout', '-pubkey'], { input: csr, encoding: 'utf8' });
      expect(pub).toBe(createPublicKey(key).export({ type: 'spki', format: 'pem' }));
    },
  );

  it('OpenSSL verifies its signature and refuses a tampered one; no names, no request', async () => {
    const key = (await keys.ec256()).toString();
    const csr = await createCsrPem({ altNames: ['only.parity.test'] }, key);
    expect(opensslVerify(csr)).toMatch(/verify OK/);
    // one flipped bit in the signature: OpenSSL refuses it (the check above can fail)
    const der = Buffer.from(csr.replace(/-----[A-Z ]+-----/g, '').replace(/\s+/g, ''), 'base64');
    der[der.length - 3]! ^= 0x01;
    const bad = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`;
    expect(opensslVerify(bad)).toMatch(/verify failure/);
    await expect(createCsrPem({ altNames: [] }, key)).rejects.toThrow(/at least one name/);
  });
});
