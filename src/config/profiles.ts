/**
 * ACME profiles (draft-aaron-acme-profiles; Let's Encrypt since 2025): the directory's `meta.profiles` lists what a
 * CA offers, the newOrder `profile` field picks one. What certkeeper knows of Let's Encrypt's profiles is checked at
 * config time; what a CA actually offers is checked against its directory (preflight and before every order).
 */
import { isIpAddress } from './ip.js';

export interface KnownProfile {
  /** Most identifiers one order may hold. */
  maxNames: number;
  /** Whether IP-address identifiers are allowed. */
  ipAddresses: boolean;
  /** Authorizations must be completed within this many seconds (undefined: the CA's usual days). */
  authorizationSeconds?: number;
  summary: string;
}

/** Let's Encrypt's profiles, from its announcements and docs (see the README section "ACME profiles"). */
export const KNOWN_PROFILES: Readonly<Record<string, KnownProfile>> = {
  classic: {
    maxNames: 100,
    ipAddresses: false,
    summary: '90 days (64 from 10 Feb 2027, 45 from 16 Feb 2028), up to 100 names',
  },
  tlsserver: {
    maxNames: 25,
    ipAddresses: false,
    authorizationSeconds: 3600,
    summary: '45 days, up to 25 names, authorizations valid for an hour',
  },
  shortlived: {
    maxNames: 25,
    ipAddresses: true,
    authorizationSeconds: 3600,
    summary: '160 hours (about 6.7 days), up to 25 names, IP addresses allowed',
  },
};

/** A profile name as the draft and Let's Encrypt spell them; also safe in logs, state files and messages. */
export const PROFILE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

const LETS_ENCRYPT = /^https:\/\/acme(-staging)?-v02\.api\.letsencrypt\.org\//;

/**
 * The profile an order will be placed under, when certkeeper can know it: the configured one, or Let's Encrypt's
 * default (`classic`) when none is configured and the directory is Let's Encrypt's. Undefined: up to the CA.
 */
export function knownProfileFor(profile: string | undefined, directoryUrl: string): string | undefined {
  if (profile) return profile;
  return LETS_ENCRYPT.test(directoryUrl) ? 'classic' : undefined;
}

interface CertLike {
  name: string;
  domains: string[];
  profile?: string;
  challenge: { type: string };
}

/**
 * Config-time rules for profiles and IP addresses, one message per problem with its path:
 * - IP addresses validate only over http-01 (or tls-alpn-01), never dns-01, and cannot be wildcards;
 * - with a known profile: its name limit, and IP addresses only where it allows them (Let's Encrypt: shortlived).
 */
export function profileProblems(
  certificates: CertLike[],
  acme: { directoryUrl: string; profile?: string },
): string[] {
  const problems: string[] = [];
  certificates.forEach((c, i) => {
    const path = `certificates[${i}]`;
    const profile = knownProfileFor(c.profile ?? acme.profile, acme.directoryUrl);
    const known = profile ? KNOWN_PROFILES[profile] : undefined;
    const from = c.profile ? `${path}.profile` : acme.profile ? 'acme.profile' : 'the default profile';
    const ips = c.domains.filter(isIpAddress);
    c.domains.forEach((d, j) => {
      if (d.startsWith('*.') && isIpAddress(d.slice(2))) {
        problems.push(`${path}.domains[${j}]: "${d}": a wildcard cannot cover IP addresses`);
      }
    });
    if (ips.length && c.challenge.type === 'dns-01') {
      problems.push(
        `${path}.domains: IP address ${ips[0]} cannot be validated by dns-01 (CAs validate IP addresses over http-01 only): use an http-01 challenge for this certificate, or move the address to a certificate of its own`,
      );
    }
    if (known && profile) {
      if (c.domains.length > known.maxNames) {
        problems.push(
          `${path}.domains: ${c.domains.length} names, but the ${profile} profile (${from}) allows at most ${known.maxNames}: split the certificate`,
        );
      }
      if (ips.length && !known.ipAddresses) {
        problems.push(
          `${path}.domains: IP address ${ips[0]} is not allowed by the ${profile} profile (${from}): set ${path}.profile: shortlived (the only Let's Encrypt profile for IP addresses)`,
        );
      }
    }
  });
  return problems;
}
