import { constants, promises as fs } from 'node:fs';
import { dirname } from 'node:path';
import * as acme from 'acme-client';
import { configureAcmeHttp } from '../acme/http.js';
import { assertProfileOffered, describeOffered, offeredProfiles } from '../acme/profiles.js';
import type { Config } from '../config/schema.js';
import type { Logger } from '../log.js';
import { readCaBundle } from '../platform/ca-bundle.js';

export interface PreflightCheck {
  what: string;
  ok: boolean;
  fix?: string;
}

/**
 * Where `path` stands without touching it: a writable folder, something else, or missing (with the nearest folder
 * above it that exists, and whether certkeeper could create the rest there).
 */
async function folderCheck(
  what: string,
  path: string,
  fixes: { notWritable: string; missing: string },
): Promise<PreflightCheck> {
  const stat = await fs.stat(path).catch((err: NodeJS.ErrnoException) => err);
  if (stat instanceof Error) {
    if (stat.code !== 'ENOENT')
      return { what: `${what} ${path} is writable (${stat.code})`, ok: false, fix: fixes.notWritable };
    let parent = dirname(path);
    while (parent !== dirname(parent) && !(await fs.stat(parent).catch(() => undefined)))
      parent = dirname(parent);
    const parentWritable = await fs.access(parent, constants.W_OK).then(
      () => true,
      () => false,
    );
    return {
      what: `${what} ${path} does not exist`,
      ok: false,
      fix: `${fixes.missing}: mkdir -p ${path}${parentWritable ? '' : ` (${parent}, the nearest folder that exists, is not writable by this user either)`}`,
    };
  }
  if (!stat.isDirectory()) {
    return { what: `${what} ${path} is not a folder`, ok: false, fix: `${fixes.notWritable} (a folder)` };
  }
  try {
    await fs.access(path, constants.W_OK);
    return { what: `${what} ${path} is writable`, ok: true };
  } catch (err) {
    return {
      what: `${what} ${path} is writable (${(err as NodeJS.ErrnoException).code})`,
      ok: false,
      fix: fixes.notWritable,
    };
  }
}

/**
 * Checks the surroundings without changing anything: storage and webroots present and writable, CA directory
 * reachable, Route53 zones found. Creates no folder and writes no file: a missing one is reported with the fix.
 */
export async function preflight(config: Config, logger: Logger): Promise<PreflightCheck[]> {
  const checks: PreflightCheck[] = [];
  checks.push(
    await folderCheck('storage', config.storage.path, {
      notWritable: 'mount the certificate volume read-write and make it owned by the user certkeeper runs as',
      missing:
        'mount the certificate volume there, or create it (certkeeper renew and run create it when its parent is writable)',
    }),
  );
  for (const c of config.certificates) {
    if (c.challenge.type === 'http-01') {
      checks.push(
        await folderCheck(`webroot of ${c.name}`, c.challenge.webroot, {
          notWritable: 'share the webroot volume with nginx read-write for certkeeper',
          missing:
            'mount the webroot volume nginx serves /.well-known/acme-challenge/ from there, or create it',
        }),
      );
    }
  }
  try {
    configureAcmeHttp({
      caBundlePem: config.acme.caBundle ? await readCaBundle(config.acme.caBundle) : undefined,
      directoryUrl: config.acme.directoryUrl,
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
