import { describe, expect, it } from 'vitest';
import { createTestCA, issueLeaf } from '../crypto/selfsigned.js';
import { checkIssuedCertificate } from './issued-check.js';

const names = ['a.example.com', 'b.example.com'];
const now = new Date();

async function issued(opts: { names?: string[]; days?: number } = {}) {
  const ca = await createTestCA({ commonName: 'issued-check CA' });
  const leaf = await issueLeaf(ca, { altNames: opts.names ?? names, days: opts.days ?? 30 });
  return { ca, leaf, fullchainPem: leaf.certPem + ca.certPem, keyPem: leaf.keyPem };
}
const check = (
  x: { fullchainPem: string; keyPem: string },
  over: Partial<{ domains: string[]; now: Date }> = {},
) => checkIssuedCertificate({ cert: 'c', domains: names, now, ...x, ...over });
const bad = (re: RegExp) =>
  expect.objectContaining({ code: 'CK_ERR_ACME_BAD_CERTIFICATE', message: expect.stringMatching(re) });

describe('checkIssuedCertificate', () => {
  it('accepts our key, our names (in any order and case), a linked chain, valid now', async () => {
    const x = await issued();
    expect(() => check(x, { domains: ['B.example.com', 'a.example.com'] })).not.toThrow();
  });

  it('compares IP addresses in one spelling', async () => {
    const x = await issued({ names: ['2001:db8::1', '192.0.2.7'] });
    expect(() => check(x, { domains: ['2001:0DB8:0::1', '192.0.2.7'] })).not.toThrow();
  });

  it('refuses a leaf for another key', async () => {
    const x = await issued();
    const other = await issued();
    expect(() => check({ ...x, keyPem: other.keyPem })).toThrow(bad(/public key is not the key/));
  });

  it('refuses other, fewer or more names', async () => {
    const fewer = await issued({ names: ['a.example.com'] });
    const more = await issued({ names: [...names, 'c.example.com'] });
    const other = await issued({ names: ['evil.example.org', 'b.example.com'] });
    expect(() => check(fewer)).toThrow(bad(/names are a\.example\.com instead/));
    expect(() => check(more)).toThrow(bad(/names are/));
    expect(() => check(other)).toThrow(bad(/names are/));
  });

  it('refuses a chain that does not link, or no chain at all', async () => {
    const x = await issued();
    const stranger = await createTestCA({ commonName: 'issued-check CA' }); // same name, other key
    expect(() => check({ ...x, fullchainPem: x.leaf.certPem + stranger.certPem })).toThrow(
      bad(/not signed by/),
    );
    expect(() => check({ ...x, fullchainPem: x.leaf.certPem })).toThrow(bad(/no issuer/));
    expect(() => check({ ...x, fullchainPem: 'no pem here' })).toThrow(bad(/no PEM certificate/));
  });

  it('refuses a certificate not valid now', async () => {
    const x = await issued({ days: 1 });
    expect(() => check(x, { now: new Date(Date.now() + 3 * 86_400_000) })).toThrow(bad(/expired/));
    expect(() => check(x, { now: new Date(Date.now() - 86_400_000) })).toThrow(bad(/not valid before/));
  });
});
