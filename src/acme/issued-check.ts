import { createPrivateKey, X509Certificate } from 'node:crypto';
import { CertkeeperError } from '../errors.js';
import { canonicalName as canonical } from './inbound.js';

const PEM_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;
/** Clock skew tolerated on notBefore (a CA may stamp it a little ahead of our clock). */
const SKEW_MS = 5 * 60_000;

export interface IssuedCheckInput {
  cert: string;
  /** What the CA returned: leaf first, then intermediates. */
  fullchainPem: string;
  /** The private key made for this order. */
  keyPem: string;
  /** The names that were ordered. */
  domains: readonly string[];
  now: Date;
}

/** The names a certificate covers: DNS and IP SANs. */
function sansOf(x: X509Certificate): string[] {
  return (x.subjectAltName ?? '')
    .split(/,\s*/)
    .map((s) => {
      if (s.startsWith('DNS:')) return s.slice(4).toLowerCase();
      if (s.startsWith('IP Address:')) return s.slice('IP Address:'.length).toLowerCase();
      return '';
    })
    .filter(Boolean);
}

/**
 * What the CA returned must be the certificate we asked for before it is stored: the leaf's public key is the
 * order's key, its names are exactly the ordered ones, each certificate of the chain is signed by the next, and the
 * leaf is valid now. Throws a CertkeeperError naming what is wrong; nothing is stored then.
 */
export function checkIssuedCertificate(input: IssuedCheckInput): void {
  const fail = (what: string) =>
    new CertkeeperError(
      'acme',
      `the CA returned a certificate that is not the one ordered: ${what}; it was not stored`,
      {
        cert: input.cert,
        code: 'CK_ERR_ACME_BAD_CERTIFICATE',
        hint: 'nothing changed on disk; retry later, and if it persists check acme.directoryUrl and report it to the CA',
      },
    );
  const blocks = input.fullchainPem.match(PEM_BLOCK) ?? [];
  if (blocks.length === 0) throw fail('no PEM certificate in the answer');
  let chain: X509Certificate[];
  try {
    chain = blocks.map((b) => new X509Certificate(b));
  } catch (err) {
    throw fail(`a certificate does not parse (${(err as Error).message})`);
  }
  const leaf = chain[0]!;
  if (!leaf.checkPrivateKey(createPrivateKey(input.keyPem)))
    throw fail("the leaf's public key is not the key made for this order");

  const got = [...new Set(sansOf(leaf).map(canonical))].sort();
  const want = [...new Set(input.domains.map(canonical))].sort();
  if (got.length !== want.length || got.some((n, i) => n !== want[i])) {
    throw fail(`its names are ${got.join(', ') || '(none)'} instead of ${want.join(', ')}`);
  }

  if (chain.length < 2) throw fail('the chain has no issuer certificate after the leaf');
  for (let i = 0; i + 1 < chain.length; i++) {
    const child = chain[i]!;
    const parent = chain[i + 1]!;
    if (!child.checkIssued(parent) || !child.verify(parent.publicKey)) {
      throw fail(
        `certificate ${i + 1} of the chain (${child.subject.replace(/\n/g, ', ')}) is not signed by certificate ${i + 2} (${parent.subject.replace(/\n/g, ', ')})`,
      );
    }
  }

  const now = input.now.getTime();
  const notBefore = new Date(leaf.validFrom).getTime();
  const notAfter = new Date(leaf.validTo).getTime();
  if (notBefore - SKEW_MS > now) throw fail(`it is not valid before ${leaf.validFrom}`);
  if (notAfter <= now) throw fail(`it expired on ${leaf.validTo}`);
}
