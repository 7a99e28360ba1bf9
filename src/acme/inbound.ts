import { isIP } from 'node:net';
import { CertkeeperError } from '../errors.js';

/**
 * Checks on what the CA hands us before any of it becomes a file name, a hook argument or a DNS record name.
 * Pure functions: no I/O, so every rule is a unit test.
 */

/** One spelling per name: DNS names lower-cased, IPv6 addresses compressed ("2001:DB8:0:0:0:0:0:1" → "2001:db8::1"). */
export function canonicalName(name: string): string {
  const n = name.toLowerCase();
  return isIP(n) === 6 ? new URL(`http://[${n}]/`).hostname.slice(1, -1) : n;
}

/** RFC 8555 §8.1: a token is base64url without padding; ≥128 bits of entropy (22 chars). 256 is a generous cap. */
const TOKEN = /^[A-Za-z0-9_-]{22,256}$/;

export function isValidChallengeToken(token: unknown): token is string {
  return typeof token === 'string' && TOKEN.test(token);
}

/** Throws when the CA's token is not an RFC 8555 token (e.g. "../../etc/passwd"). */
export function assertChallengeToken(token: unknown, ctx: { cert: string; domain: string }): string {
  if (isValidChallengeToken(token)) return token;
  const shown = typeof token === 'string' ? JSON.stringify(token.slice(0, 80)) : typeof token;
  throw new CertkeeperError(
    'acme',
    `the CA sent a challenge token that is not RFC 8555 base64url (${shown}); refusing to use it`,
    {
      ...ctx,
      code: 'CK_ERR_ACME_BAD_TOKEN',
      hint: 'the CA or something between certkeeper and the CA is misbehaving: check acme.directoryUrl (use https://) and the CA status',
    },
  );
}

/**
 * The configured names an authorization may be for: its identifier (lower-cased, "*." added back when the CA
 * marks it wildcard) must be exactly one of them. Returns the matching configured name.
 */
export function assertOrderedIdentifier(
  identifier: { type?: unknown; value?: unknown } | undefined,
  wildcard: boolean,
  configured: readonly string[],
  ctx: { cert: string },
): string {
  const type = identifier?.type;
  const value = typeof identifier?.value === 'string' ? identifier.value : undefined;
  const wanted = new Set(configured.map(canonicalName));
  const name = value !== undefined ? `${wildcard ? '*.' : ''}${canonicalName(value)}` : undefined;
  if ((type === 'dns' || type === 'ip') && name !== undefined && !value!.startsWith('*.') && wanted.has(name))
    return name;
  const shown = JSON.stringify(`${wildcard ? '*.' : ''}${String(value).slice(0, 120)}`);
  throw new CertkeeperError(
    'acme',
    `the CA asked to validate ${shown} (type ${JSON.stringify(type)}), which is not one of the configured names (${configured.join(', ')}); nothing was presented`,
    {
      ...ctx,
      code: 'CK_ERR_ACME_FOREIGN_IDENTIFIER',
      hint: 'the CA or something between certkeeper and the CA is misbehaving: check acme.directoryUrl (use https://) and report it to the CA',
    },
  );
}
