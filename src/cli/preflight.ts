import { constants, promises as fs } from 'node:fs';
import * as acme from 'acme-client';
import { configureAcmeHttp } from '../acme/http.js';
import type { Config } from '../config/schema.js';
import type { Logger } from '../log.js';
import { readCaBundle } from '../platform/ca-bundle.js';

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
