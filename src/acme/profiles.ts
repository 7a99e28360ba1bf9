/**
 * The CA side of ACME profiles: what a directory offers (`meta.profiles`, name → description) and the check that
 * a configured profile is among them. Used by `check-config --preflight` and before every newOrder, so a profile the
 * CA does not offer is an error naming what it does offer — never an order the CA would reject or silently treat
 * as its default.
 */
import { CertkeeperError } from '../errors.js';

/** The profiles a directory offers, or undefined when it has no `meta.profiles` (a CA without profiles). */
export function offeredProfiles(directory: unknown): Record<string, string> | undefined {
  const meta = (directory as { meta?: { profiles?: unknown } } | undefined)?.meta;
  const p = meta?.profiles;
  if (!p || typeof p !== 'object' || Array.isArray(p)) return undefined;
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(p as Record<string, unknown>)) {
    // Names and descriptions come from the CA: keep printable, bounded text only.
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(k)) continue;
    out[k] = typeof v === 'string' ? v.replace(/[^\x20-\x7e]/g, '').slice(0, 200) : '';
  }
  return out;
}

/** "classic, shortlived, tlsserver" for messages. */
export function describeOffered(offered: Record<string, string>): string {
  return Object.keys(offered).sort().join(', ') || '(none)';
}

/**
 * Throws a permanent config error when `profile` is not in the directory's `meta.profiles`, or the directory
 * offers no profiles at all. `field` names where the profile was configured.
 */
export function assertProfileOffered(
  directory: unknown,
  profile: string,
  ctx: { directoryUrl: string; field: string; cert?: string },
): void {
  const offered = offeredProfiles(directory);
  if (!offered) {
    throw new CertkeeperError(
      'config',
      `${ctx.field}: "${profile}" is configured, but the CA at ${ctx.directoryUrl} offers no profiles (its directory has no meta.profiles)`,
      {
        cert: ctx.cert,
        field: ctx.field,
        code: 'CK_ERR_PROFILE',
        hint: `remove ${ctx.field} for this CA, or point acme.directoryUrl at a CA that offers profiles (Let's Encrypt does)`,
        permanent: true,
      },
    );
  }
  if (!Object.hasOwn(offered, profile)) {
    throw new CertkeeperError(
      'config',
      `${ctx.field}: the CA at ${ctx.directoryUrl} does not offer the profile "${profile}"; it offers: ${describeOffered(offered)}`,
      {
        cert: ctx.cert,
        field: ctx.field,
        code: 'CK_ERR_PROFILE',
        hint: `set ${ctx.field} to one of: ${describeOffered(offered)}`,
        permanent: true,
      },
    );
  }
}
