import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { Account } from './acme/account.js';
import { ariCertId } from './acme/ari-id.js';
import { mapLimit } from './concurrency.js';
import type { CertificateConfig, Config } from './config/schema.js';
import { createDeployer } from './deploy/index.js';
import type { DeployResult, IssuedCertificate } from './deploy/types.js';
import { asCertkeeperError, CertkeeperError } from './errors.js';
import { type Logger, silentLogger } from './log.js';
import { nextAttemptAfter, type Plan, planCertificate } from './plan/plan.js';
import { CertStore } from './store/store.js';

export type CertEventType =
  | 'planned'
  | 'obtaining'
  | 'obtained'
  | 'deployed'
  | 'deploy_failed'
  | 'failed'
  | 'skipped';

/** One event per step, from this one place; logs, metrics and alerts listen to these. */
export interface CertEvent {
  type: CertEventType;
  cert: string;
  jobId: string;
  at: Date;
  plan?: Plan;
  result?: CertResult;
  error?: CertkeeperError;
  deploy?: DeployResult[];
}

export interface RenewOptions {
  /** Only these certificates (default: all configured). Unknown names are an error. */
  names?: string[];
  force?: boolean;
  /** Order from the staging/test directory and keep nothing. */
  dryRun?: boolean;
  /** Scheduled runs honour the failure backoff (the daemon sets this); a human's `renew` does not. */
  respectBackoff?: boolean;
  logger?: Logger;
  now?: () => Date;
  signal?: AbortSignal;
  jobId?: string;
  onEvent?: (e: CertEvent) => void;
  /** Skip the deploy stage (e.g. a CLI flag); default: deploy. */
  skipDeploy?: boolean;
  /** Hook run before ordering for certificates with nothing live; default: the nginx bootstrap placeholder. */
  bootstrap?: (cert: CertificateConfig, store: CertStore, logger: Logger) => Promise<boolean>;
}

export type CertStatus = 'issued' | 'renewed' | 'redeployed' | 'skipped' | 'failed' | 'dry-run';

export interface CertResult {
  name: string;
  status: CertStatus;
  /** Plan reason or failure summary. */
  reason: string;
  serial?: string;
  notAfter?: string;
  version?: number;
  durationMs: number;
  error?: ReturnType<CertkeeperError['toJSON']>;
  /** Set when the certificate was stored but a deployer or verification failed: "renewed but not deployed". */
  deployFailed?: boolean;
  deploy?: DeployResult[];
  timings?: Record<string, number>;
}

export interface RenewReport {
  jobId: string;
  ok: boolean;
  results: CertResult[];
  startedAt: string;
  finishedAt: string;
}

const LE_PROD = 'https://acme-v02.api.letsencrypt.org/directory';
const LE_STAGING = 'https://acme-staging-v02.api.letsencrypt.org/directory';

export function dryRunDirectory(config: Config): string {
  if (config.acme.stagingDirectoryUrl) return config.acme.stagingDirectoryUrl;
  return config.acme.directoryUrl === LE_PROD ? LE_STAGING : config.acme.directoryUrl;
}

/**
 * The pipeline: plan → order → store → deploy, per certificate, with bounded concurrency. Never throws for a
 * certificate's failure: each one ends as a CertResult; the report's `ok` is false when any failed.
 * It never prints, exits or reads the environment.
 */
export async function renew(config: Config, opts: RenewOptions = {}): Promise<RenewReport> {
  const logger = opts.logger ?? silentLogger;
  const now = opts.now ?? (() => new Date());
  const jobId = opts.jobId ?? randomUUID();
  const startedAt = now().toISOString();
  const emit = (e: Omit<CertEvent, 'jobId' | 'at'>) => opts.onEvent?.({ ...e, jobId, at: now() });
  const store = new CertStore(config.storage.path);

  const unknown = (opts.names ?? []).filter((n) => !config.certificates.some((c) => c.name === n));
  if (unknown.length) {
    throw new CertkeeperError(
      'config',
      `unknown certificate name${unknown.length > 1 ? 's' : ''}: ${unknown.join(', ')}`,
      {
        code: 'CK_ERR_UNKNOWN_CERTIFICATE',
        hint: `configured names: ${config.certificates.map((c) => c.name).join(', ') || '(none)'}`,
      },
    );
  }
  const selected = opts.names?.length
    ? config.certificates.filter((c) => opts.names!.includes(c.name))
    : config.certificates;

  const directoryUrl = opts.dryRun ? dryRunDirectory(config) : config.acme.directoryUrl;
  const caBundlePem = config.acme.caBundle ? await readCaBundle(config.acme.caBundle) : undefined;
  let account: Promise<Account> | undefined;
  const getAccount = () => {
    account ??= loadAcme().then(({ configureAcmeHttp, ensureAccount }) => {
      configureAcmeHttp({ caBundlePem });
      return ensureAccount(config.acme, config.storage.path, directoryUrl, logger.child({ jobId }));
    });
    return account;
  };

  const results = await mapLimit(selected, config.renewal.concurrency, (cert) =>
    renewOne(cert, {
      config,
      store,
      opts,
      logger: logger.child({ cert: cert.name, jobId, domain: cert.domains[0] }),
      now,
      emit,
      getAccount,
    }),
  );
  return {
    jobId,
    ok: results.every((r) => r.status !== 'failed'),
    results,
    startedAt,
    finishedAt: now().toISOString(),
  };
}

/**
 * The ACME client, its HTTP stack and the challenge solvers load only when an order is actually placed: a run where
 * nothing is due (most cron ticks, the daemon's start-up check) never pays for them, in time or in memory.
 */
async function loadAcme() {
  const [account, http, order, challenges] = await Promise.all([
    import('./acme/account.js'),
    import('./acme/http.js'),
    import('./acme/order.js'),
    import('./challenges/index.js'),
  ]);
  return {
    ensureAccount: account.ensureAccount,
    configureAcmeHttp: http.configureAcmeHttp,
    orderCertificate: order.orderCertificate,
    createSolver: challenges.createSolver,
  };
}

async function readCaBundle(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    throw new CertkeeperError('config', `acme.caBundle: cannot read ${path}: ${(err as Error).message}`, {
      field: 'acme.caBundle',
      hint: 'point acme.caBundle at a PEM file with the CA’s root certificate, or remove it',
    });
  }
}

/**
 * nginx configs written for certbot refuse to start without the files they name: for certificates deployed to
 * nginx, write a short-lived self-signed placeholder (marked in state, never reported valid) before ordering.
 */
async function defaultBootstrap(cert: CertificateConfig, store: CertStore, logger: Logger): Promise<boolean> {
  if (!cert.deploy.some((d) => d.type === 'nginx')) return false;
  const { ensureBootstrap } = await import('./deploy/bootstrap.js');
  return ensureBootstrap(cert, store, logger);
}

interface OneCtx {
  config: Config;
  store: CertStore;
  opts: RenewOptions;
  logger: Logger;
  now: () => Date;
  emit: (e: Omit<CertEvent, 'jobId' | 'at'>) => void;
  getAccount: () => Promise<Account>;
}

async function renewOne(cert: CertificateConfig, c: OneCtx): Promise<CertResult> {
  const { store, opts, logger, config } = c;
  const t0 = Date.now();
  const name = cert.name;
  let release: (() => Promise<void>) | undefined;
  try {
    release = await store.lock(name);
    // Check again under the lock: another process may have just renewed it.
    let state = await store.readState(name);
    let live = await store.current(name, state);
    const bootstrap = opts.bootstrap ?? defaultBootstrap;
    if (!live && !opts.dryRun) {
      if (await bootstrap(cert, store, logger)) {
        state = await store.readState(name);
        live = await store.current(name, state);
      }
    }
    const plan = planCertificate(cert, state, live, {
      now: c.now(),
      force: opts.force,
      renewBeforeFraction: config.renewal.renewBeforeFraction,
      respectBackoff: opts.respectBackoff,
    });
    c.emit({ type: 'planned', cert: name, plan });
    if (
      !plan.due &&
      live &&
      !state?.placeholder &&
      state?.lastDeploy?.ok === false &&
      cert.deploy.length > 0 &&
      !opts.dryRun &&
      !opts.skipDeploy
    ) {
      // Stored earlier but a deployer failed (nginx not reloaded, serial not served, ACM import failed): deploy
      // again without ordering a new certificate.
      logger.info(
        { event: 'renew.redeploy', serial: live.serial },
        `${name}: last deploy failed; deploying the stored certificate again`,
      );
      const result: CertResult = {
        name,
        status: 'redeployed',
        reason: 'last deploy failed; deployed the stored certificate again',
        serial: live.serial,
        notAfter: live.notAfter.toISOString(),
        version: live.version,
        durationMs: 0,
      };
      await deployAndRecord(cert, live, result, c, 'stored');
      result.durationMs = Date.now() - t0;
      return result;
    }
    if (!plan.due) {
      const result: CertResult = {
        name,
        status: 'skipped',
        reason: plan.detail,
        serial: live?.serial,
        notAfter: live?.notAfter.toISOString(),
        version: live?.version,
        durationMs: Date.now() - t0,
      };
      logger.info(
        { event: 'renew.skipped', reason: plan.reason, detail: plan.detail },
        `${name}: not due (${plan.detail})`,
      );
      c.emit({ type: 'skipped', cert: name, plan, result });
      return result;
    }

    logger.info(
      { event: 'renew.obtaining', reason: plan.reason, domains: cert.domains, dryRun: !!opts.dryRun },
      `${name}: ordering (${plan.detail})`,
    );
    c.emit({ type: 'obtaining', cert: name, plan });
    const account = await c.getAccount();
    const { createSolver, orderCertificate } = await loadAcme();
    const solver = await createSolver(cert.challenge, { logger, selfCheck: config.selfCheck });
    // ARI (RFC 9773 §5): name the certificate this order replaces, when the CA told us a window for it.
    let replaces: string | undefined;
    if (live && !state?.placeholder && state?.ari && !opts.dryRun) {
      try {
        replaces = ariCertId(live.certPem, { cert: name });
      } catch {
        replaces = undefined;
      }
    }
    const ordered = await orderCertificate(account, {
      certName: name,
      replaces,
      domains: cert.domains,
      keyType: cert.keyType,
      solver,
      logger,
      signal: opts.signal,
      preferredChain: cert.preferredChain,
      profile: cert.profile,
      timeoutMs: config.acme.orderTimeoutSeconds * 1000,
    });
    logger.info(
      { event: 'renew.ordered', durationMs: ordered.timings.total, timings: ordered.timings },
      `${name}: certificate issued by the CA`,
    );

    if (opts.dryRun) {
      const result: CertResult = {
        name,
        status: 'dry-run',
        reason: `${plan.detail}; dry run: ordered from ${account.directoryUrl}, nothing kept`,
        durationMs: Date.now() - t0,
        timings: ordered.timings,
      };
      c.emit({ type: 'obtained', cert: name, plan, result });
      return result;
    }

    const saved = await store.save(name, {
      domains: cert.domains,
      keyType: cert.keyType,
      fullchainPem: ordered.fullchainPem,
      keyPem: ordered.keyPem,
    });
    const at = c.now().toISOString();
    await store.updateState(name, {
      lastAttempt: {
        at,
        result: 'success',
        message: `${live ? 'renewed' : 'issued'} serial ${saved.serial}`,
        durationMs: Date.now() - t0,
      },
      lastSuccess: at,
      profile: cert.profile,
      failures: 0,
      nextAttemptAfter: undefined,
      revokedSerial: undefined,
      ari: undefined,
    });
    logger.info(
      {
        event: 'renew.stored',
        serial: saved.serial,
        notAfter: saved.notAfter.toISOString(),
        version: saved.version,
      },
      `${name}: stored version ${saved.version}`,
    );
    const result: CertResult = {
      name,
      status: live && !state?.placeholder ? 'renewed' : 'issued',
      reason: plan.detail,
      serial: saved.serial,
      notAfter: saved.notAfter.toISOString(),
      version: saved.version,
      durationMs: 0,
      timings: ordered.timings,
    };
    c.emit({ type: 'obtained', cert: name, plan, result });

    if (!opts.skipDeploy && cert.deploy.length > 0) await deployAndRecord(cert, saved, result, c, 'renewed');
    result.durationMs = Date.now() - t0;
    return result;
  } catch (err) {
    const error = asCertkeeperError(err, 'internal', { cert: name });
    const prev = await store.readState(name).catch(() => undefined);
    const failures = (prev?.failures ?? 0) + 1;
    // The backoff is capped relative to the live certificate's lifetime (a 90-second one is retried within seconds).
    const lifetime =
      prev?.notBefore && prev.notAfter && !prev.placeholder
        ? Date.parse(prev.notAfter) - Date.parse(prev.notBefore)
        : undefined;
    const nowD = c.now();
    if (!opts.dryRun && error.kind !== 'lock') {
      await store
        .updateState(name, {
          lastAttempt: {
            at: nowD.toISOString(),
            result: 'failure',
            message: error.message,
            code: error.code,
            durationMs: Date.now() - t0,
          },
          failures,
          nextAttemptAfter: nextAttemptAfter(failures, nowD, {
            retryAfter: error.retryAfter,
            permanent: error.permanent,
            lifetime: Number.isFinite(lifetime) ? lifetime : undefined,
          }).toISOString(),
        })
        .catch((e: unknown) =>
          logger.error({ event: 'state.write_failed', err: String(e) }, 'could not record the failure'),
        );
    }
    logger.error(
      {
        event: 'renew.failed',
        code: error.code,
        error: error.message,
        hint: error.hint,
        domain: error.domain,
        failures,
      },
      `${name}: ${error.message}`,
    );
    const result: CertResult = {
      name,
      status: 'failed',
      reason: error.message,
      error: error.toJSON(),
      durationMs: Date.now() - t0,
    };
    c.emit({ type: 'failed', cert: name, result, error });
    return result;
  } finally {
    await release?.().catch(() => {});
  }
}

/**
 * Deploys, records `lastDeploy` in state, emits the event, and turns a failed deploy into a failed result:
 * "renewed but not deployed" (or "not deployed" for a redeploy of a certificate stored earlier).
 */
async function deployAndRecord(
  cert: CertificateConfig,
  saved: IssuedCertificate,
  result: CertResult,
  c: OneCtx,
  what: 'renewed' | 'stored',
): Promise<void> {
  const name = cert.name;
  const deployResults = await deployAll(cert, saved, c);
  result.deploy = deployResults;
  result.deployFailed = deployResults.some((d) => !d.ok);
  await c.store.updateState(name, {
    lastDeploy: {
      at: c.now().toISOString(),
      ok: !result.deployFailed,
      serial: saved.serial,
      results: deployResults.map(({ deployer, ok, detail }) => ({ deployer, ok, detail })),
    },
  });
  c.emit({
    type: result.deployFailed ? 'deploy_failed' : 'deployed',
    cert: name,
    result,
    deploy: deployResults,
  });
  if (result.deployFailed) {
    result.status = 'failed';
    const first = deployResults.find((d) => !d.ok)!;
    result.error = new CertkeeperError(
      'deploy',
      `${what} but not deployed: ${first.deployer}: ${first.detail}`,
      {
        cert: name,
        code: 'CK_ERR_NOT_DEPLOYED',
      },
    ).toJSON();
    result.reason = result.error.message as string;
  }
}

/** Runs every deployer in order; one's failure never stops the others nor loses the stored certificate. */
async function deployAll(
  cert: CertificateConfig,
  saved: IssuedCertificate,
  c: OneCtx,
): Promise<DeployResult[]> {
  const results: DeployResult[] = [];
  for (const [i, d] of cert.deploy.entries()) {
    const t0 = Date.now();
    const log = c.logger.child({ deployer: d.type });
    try {
      const deployer = await createDeployer(d, { logger: log });
      const state = (await c.store.readState(cert.name))?.deploy ?? {};
      const res = await deployer.deploy(saved, {
        logger: log,
        signal: c.opts.signal,
        getState: <T>(key: string) => state[key] as T | undefined,
        setState: async (key, value) => {
          state[key] = value;
          const fresh = (await c.store.readState(cert.name))?.deploy ?? {};
          await c.store.updateState(cert.name, { deploy: { ...fresh, [key]: value } });
        },
        // Each deployer gets the new certificate, even after another one rolled nginx back: ACM can still take it.
        rollback: () => c.store.rollback(cert.name),
      });
      results.push(res);
      log.info(
        { event: 'deploy.done', ok: res.ok, durationMs: Date.now() - t0, index: i },
        `${cert.name}: ${res.deployer}: ${res.detail}`,
      );
    } catch (err) {
      const e = asCertkeeperError(err, 'deploy', { cert: cert.name });
      results.push({
        deployer: d.type,
        ok: false,
        detail: e.hint ? `${e.message} (fix: ${e.hint})` : e.message,
      });
      log.error(
        { event: 'deploy.failed', code: e.code, error: e.message, hint: e.hint, durationMs: Date.now() - t0 },
        `${cert.name}: ${d.type}: ${e.message}`,
      );
    }
  }
  return results;
}
