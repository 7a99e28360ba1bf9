import { constants, promises as fs } from 'node:fs';
import * as acme from 'acme-client';
import { configureAcmeHttp } from '../acme/http.js';
import { assertProfileOffered, describeOffered, offeredProfiles } from '../acme/profiles.js';
import type { Config } from '../config/schema.js';
import type { Logger } from '../log.js';

export interface PreflightCheck {
  what: string;
  ok: boolean;
  fix?: string;
}

/** Checks the surroundings without changing anything: storage and webroots writable, CA directory reachable. */
export async function preflight(config: Config, logger: Logger): Promise<PreflightCheck[]> {
  const checks: PreflightCheck[] = [];
  const writable = async (what: string, path: string, fix: string) => {
    try {
      await fs.mkdir(path, { recursive: true });
      await fs.access(path, constants.W_OK);
      checks.push({ what: `${what} ${path} is writable`, ok: true });
    } catch (err) {
      checks.push({
        what: `${what} ${path} is writable (${(err as NodeJS.ErrnoException).code})`,
        ok: false,
        fix,
      });
    }
  };
  await writable(
    'storage',
    config.storage.path,
    'mount the certificate volume read-write and make it owned by the user certkeeper runs as',
  );
  for (const c of config.certificates) {
    if (c.challenge.type === 'http-01') {
      await writable(
        `webroot of ${c.name}`,
        c.challenge.webroot,
        'share the webroot volume with nginx read-write for certkeeper',
      );
    }
  }
  try {
    configureAcmeHttp({
      caBundlePem: config.acme.caBundle ? await fs.readFile(config.acme.caBundle, 'utf8') : undefined,
      timeoutMs: 10_000,
    });
    const resp = await acme.axios.get(config.acme.directoryUrl);
    const ok = resp.status === 200 && typeof resp.data?.newOrder === 'string';
    checks.push({
      what: `ACME directory ${config.acme.directoryUrl} answers`,
      ok,
      fix: ok ? undefined : `HTTP ${resp.status}: check acme.directoryUrl`,
    });
    if (ok) checks.push(...profileChecks(config, resp.data));
  } catch (err) {
    checks.push({
      what: `ACME directory ${config.acme.directoryUrl} answers (${(err as Error).message})`,
      ok: false,
      fix: 'check acme.directoryUrl, the network, and acme.caBundle for a private CA',
    });
  }
  for (const c of config.certificates) {
    if (c.challenge.type !== 'dns-01' || c.challenge.provider !== 'route53') continue;
    try {
      const mod = (await import('../challenges/route53/index.js')) as unknown as {
        preflight?: (cfg: unknown, deps: unknown) => Promise<PreflightCheck[]>;
      };
      if (mod.preflight)
        checks.push(
          ...(await mod.preflight(c.challenge, {
            logger,
            selfCheck: config.selfCheck,
            domains: c.domains,
            certName: c.name,
          })),
        );
    } catch (err) {
      checks.push({ what: `Route53 zones for ${c.name}`, ok: false, fix: (err as Error).message });
    }
  }
  return checks;
}

/**
 * Every configured profile against the directory's meta.profiles: one check per profile in use, naming the
 * certificates that use it; an unknown profile (or any profile at a CA without profiles) fails with what the CA offers.
 */
export function profileChecks(config: Config, directory: unknown): PreflightCheck[] {
  const users = new Map<string, string[]>();
  for (const c of config.certificates) {
    if (c.profile) users.set(c.profile, [...(users.get(c.profile) ?? []), c.name]);
  }
  if (config.acme.profile && !users.has(config.acme.profile)) users.set(config.acme.profile, []);
  const offered = offeredProfiles(directory);
  return [...users].map(([profile, names]) => {
    const what = `ACME profile "${profile}"${names.length ? ` (${names.join(', ')})` : ''} is offered by the CA`;
    try {
      const field = config.acme.profile === profile ? 'acme.profile' : 'certificates[].profile';
      assertProfileOffered(directory, profile, { directoryUrl: config.acme.directoryUrl, field });
      return { what: `${what}: ${offered?.[profile] || 'yes'}`, ok: true };
    } catch (err) {
      return {
        what: `${what} (${(err as Error).message})`,
        ok: false,
        fix: offered ? `use one of: ${describeOffered(offered)}` : 'remove the profile settings for this CA',
      };
    }
  });
}
