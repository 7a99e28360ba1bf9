/**
 * One certificate through the pipeline, as named steps over injected parts:
 *
 *   lock → load → bootstrap → ari → plan → (redeploy | skip | obtain → check → store → deploy) → record → notify
 *
 * The parts (a Store with its Locker, an Issuer, the deployer registry, a Verifier, an alert sink, a clock) each
 * have a default, so the CLI and the daemon call the same `renew()` and unit tests replace any of them with a fake.
 * Stages never print, exit or read the environment.
 */
import { randomUUID } from 'node:crypto';
import { ariCheckDue, nextAriState } from '../acme/ari.js';
import { mapLimit } from '../concurrency.js';
import type { CertificateConfig, Config } from '../config/schema.js';
import { type IssuedCertificate, summarize } from '../core/certificate.js';
import { health, isDeployed } from '../core/health.js';
import { lifetimeMs, nextAttemptAfter } from '../core/lifetime.js';
import type { CertState } from '../core/state.js';
import { certInfo, keyMatchesCert, splitPemChain } from '../crypto/pem.js';
import { createDeployer } from '../deploy/index.js';
import type { DeployResult } from '../deploy/types.js';
import { asCertkeeperError, CertkeeperError } from '../errors.js';
import { type Logger, silentLogger } from '../log.js';
import { alertsFor } from '../notify/rules.js';
import { type Plan, planCertificate } from '../plan/plan.js';
import { readCaBundle } from '../platform/ca-bundle.js';
import { isNoRetry } from '../platform/retry.js';
import { CertStore } from '../store/store.js';
import type { Lock, Store } from '../store/types.js';
import { AcmeIssuer, replacesId } from './acme-issuer.js';
import { defaultBootstrap } from './bootstrap.js';
import type {
  AlertSink,
  CertEvent,
  CertResult,
  Clock,
  DeployerFactory,
  Issued,
  Issuer,
  RenewReport,
  SolverFactory,
  Verifier,
} from './types.js';

export type * from './types.js';

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
  /** How long to wait for a certificate another process is renewing (default 0: report it busy at once). */
  lockWaitMs?: number;
  /** Ask the CA for its renewal window (ARI) when a check is due (default true). */
  ari?: boolean;
  random?: () => number;
  // The parts, each with its default.
  store?: Store;
  /** The CA for a directory URL (default: the ACME issuer). */
  issuer?: (directoryUrl: string) => Issuer;
  /**
   * The default ACME issuer's challenge solvers (default: the configured ones as they are); a cluster passes its
   * factory, which sends HTTP-01 tokens to every node and serialises Route53 TXT changes per zone.
   */
  solvers?: SolverFactory;
  deployers?: DeployerFactory;
  /** Checks an issued certificate before it is stored (default: the key opens the leaf, names as ordered). */
  verifier?: Verifier;
  /** Where alerts go (default: nowhere; the CLI and the daemon pass the configured notify targets). */
  notifier?: AlertSink;
  /** Hook run before ordering for certificates with nothing live; default: the bootstrap placeholder. */
  bootstrap?: (cert: CertificateConfig, store: Store, logger: Logger) => Promise<boolean>;
}

const LE_PROD = 'https://acme-v02.api.letsencrypt.org/directory';
const LE_STAGING = 'https://acme-staging-v02.api.letsencrypt.org/directory';

export function dryRunDirectory(config: Config): string {
  if (config.acme.stagingDirectoryUrl) return config.acme.stagingDirectoryUrl;
  return config.acme.directoryUrl === LE_PROD ? LE_STAGING : config.acme.directoryUrl;
}

/**
 * Certificates the CA issued that could not be stored yet (disk full, read-only storage): kept in memory, per store,
 * so the next attempt stores them instead of ordering again.
 */
const heldByStore = new WeakMap<Store, Map<string, { issued: Issued; key: string; at: number }>>();
const HOLD_MS = 86_400_000;

function heldFor(store: Store) {
  const m = heldByStore.get(store) ?? new Map();
  heldByStore.set(store, m);
  return m;
}

const identityKey = (cert: CertificateConfig) =>
  `${cert.keyType}|${[...new Set(cert.domains.map((d) => d.toLowerCase()))].sort().join(',')}`;

interface Ctx {
  config: Config;
  store: Store;
  issuer: () => Issuer;
  deployers: DeployerFactory;
  verifier: Verifier;
  notifier?: AlertSink;
  clock: Clock;
  opts: RenewOptions;
  jobId: string;
  random: () => number;
  bootstrap: NonNullable<RenewOptions['bootstrap']>;
  emit: (e: Omit<CertEvent, 'jobId' | 'at'>) => void;
}

/**
 * The pipeline, per certificate, with bounded concurrency. Never throws for a certificate's failure: each one ends
 * as a CertResult; the report's `ok` is false when any failed.
 */
export async function renew(config: Config, opts: RenewOptions = {}): Promise<RenewReport> {
  const logger = opts.logger ?? silentLogger;
  const now = opts.now ?? (() => new Date());
  const clock: Clock = { now };
  const jobId = opts.jobId ?? randomUUID();
  const startedAt = now().toISOString();
  if (config.cluster && !opts.store) {
    // A clustered configuration renews through the PostgreSQL store (src/cluster/wiring.ts); ordering with the
    // local store alone would order one certificate per host.
    throw new CertkeeperError('config', 'cluster: this renewal was not given the cluster store', {
      field: 'cluster',
      hint: 'remove cluster: to renew on this host alone; certkeeper export works with it',
    });
  }

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
  const store = opts.store ?? new CertStore(config.storage.path, { logger });
  let issuer: Issuer | undefined;
  let caBundle: Promise<string | undefined> | undefined;
  const ctx: Ctx = {
    config,
    store,
    // The CA bundle is read (and the issuer built) only when a certificate needs the CA.
    issuer: () => {
      issuer ??= opts.issuer
        ? opts.issuer(directoryUrl)
        : lazyAcmeIssuer(
            config,
            directoryUrl,
            logger.child({ jobId }),
            () => {
              caBundle ??= config.acme.caBundle
                ? readCaBundle(config.acme.caBundle)
                : Promise.resolve(undefined);
              return caBundle;
            },
            opts.solvers,
          );
      return issuer;
    },
    deployers: opts.deployers ?? createDeployer,
    verifier: opts.verifier ?? defaultVerifier,
    notifier: opts.notifier,
    clock,
    opts,
    jobId,
    random: opts.random ?? Math.random,
    bootstrap: opts.bootstrap ?? defaultBootstrap,
    emit: (e) => opts.onEvent?.({ ...e, jobId, at: now() }),
  };

  const results = await mapLimit(selected, config.renewal.concurrency, (cert) =>
    renewOne(cert, ctx, logger.child({ cert: cert.name, jobId, domain: cert.domains[0] })),
  );
  return {
    jobId,
    ok: results.every((r) => r.status !== 'failed'),
    results,
    startedAt,
    finishedAt: now().toISOString(),
  };
}

/** The ACME issuer, created when first asked for (the CA bundle read then, once per run). */
function lazyAcmeIssuer(
  config: Config,
  directoryUrl: string,
  logger: Logger,
  caBundle: () => Promise<string | undefined>,
  solvers?: SolverFactory,
): Issuer {
  let real: Promise<AcmeIssuer> | undefined;
  const get = () => {
    real ??= caBundle().then(
      (caBundlePem) => new AcmeIssuer({ config, directoryUrl, caBundlePem, logger, solvers }),
    );
    return real;
  };
  return {
    directoryUrl,
    order: async (req) => (await get()).order(req),
    renewalInfo: async (cert, c) => (await get()).renewalInfo(cert, c),
  };
}

/** The check before storing: the key opens the leaf and the leaf names exactly what was ordered. */
export const defaultVerifier: Verifier = (issued, cert) => {
  const leaf = splitPemChain(issued.fullchainPem)[0];
  if (!leaf) {
    throw new CertkeeperError('acme', 'the CA returned no PEM certificate', {
      cert: cert.name,
      code: 'CK_ERR_ISSUED_INVALID',
      hint: 'check the CA; nothing was changed on disk',
    });
  }
  if (!keyMatchesCert(issued.keyPem, leaf)) {
    throw new CertkeeperError('acme', 'the certificate the CA returned is not for our key', {
      cert: cert.name,
      code: 'CK_ERR_ISSUED_INVALID',
      hint: 'the CA (or something between) sent someone else’s certificate; nothing was stored — check acme.directoryUrl',
    });
  }
};

/**
 * One signal that aborts when any of `sources` does, for one order, and lets go of them when released.
 * AbortSignal.any would leave the combined signal registered with the daemon's signal, which lives as long as the
 * daemon: a weak reference per certificate per check that Node 20 never drops, and the signal itself (with the
 * order's listeners) on both 20 and 22 once an order has listened to it.
 */
function oneSignal(sources: AbortSignal[]): { signal: AbortSignal; release(): void } {
  const ac = new AbortController();
  const onAbort = (e: Event) => ac.abort((e.target as AbortSignal).reason);
  const release = () => {
    for (const s of sources) s.removeEventListener('abort', onAbort);
  };
  for (const s of sources) {
    if (s.aborted) {
      ac.abort(s.reason);
      break;
    }
    s.addEventListener('abort', onAbort, { once: true });
  }
  if (ac.signal.aborted) release();
  return { signal: ac.signal, release };
}

interface Loaded {
  state: CertState | undefined;
  live: IssuedCertificate | undefined;
  /** State changes gathered by the steps, written together with the next write. */
  patch: Partial<CertState>;
}

async function renewOne(cert: CertificateConfig, c: Ctx, logger: Logger): Promise<CertResult> {
  const t0 = Date.now();
  const name = cert.name;
  let lock: Lock | undefined;
  let loaded: Loaded | undefined;
  try {
    lock = await lockStep(cert, c);
    if (!lock) return await busyResult(cert, c, logger, t0);
    const held = lock;
    const assertHeld = () => {
      if (held.lost.aborted) throw held.lost.reason;
    };

    loaded = await loadStep(cert, c);
    await bootstrapStep(cert, c, loaded, logger);
    await ariStep(cert, c, loaded, logger);
    const plan = planStep(cert, c, loaded);

    if (!plan.due && needsDeploy(cert, c, loaded)) {
      return await redeployStep(cert, c, loaded, logger, t0, assertHeld);
    }
    if (!plan.due) return await skipStep(cert, c, loaded, plan, logger, t0);

    const stop = c.opts.signal ? oneSignal([c.opts.signal, lock.lost]) : undefined;
    const ordered = await obtainStep(cert, c, loaded, plan, logger, stop?.signal ?? lock.lost).finally(() =>
      stop?.release(),
    );
    if (c.opts.dryRun) {
      const result: CertResult = {
        name,
        status: 'dry-run',
        reason: `${plan.detail}; dry run: ordered from ${c.issuer().directoryUrl}, nothing kept`,
        durationMs: Date.now() - t0,
        timings: ordered.timings,
      };
      c.emit({ type: 'obtained', cert: name, plan, result });
      return result;
    }
    assertHeld();
    const saved = await storeStep(cert, c, loaded, ordered, logger, t0);
    const result: CertResult = {
      name,
      status: loaded.live && !loaded.live.placeholder && !loaded.state?.placeholder ? 'renewed' : 'issued',
      reason: plan.detail,
      serial: saved.serial,
      notAfter: saved.notAfter.toISOString(),
      version: saved.version,
      durationMs: 0,
      timings: ordered.timings,
    };
    c.emit({ type: 'stored', cert: name, plan, result });
    c.emit({ type: 'obtained', cert: name, plan, result });
    if (!c.opts.skipDeploy && cert.deploy.length > 0) {
      assertHeld();
      await deployStep(cert, c, loaded, saved, result, logger, 'renewed');
    } else {
      await notifyStep(cert, c, loaded, result, saved);
    }
    result.durationMs = Date.now() - t0;
    return result;
  } catch (err) {
    return await failStep(cert, c, loaded, lock, err, logger, t0);
  } finally {
    await lock?.release().catch(() => {});
  }
}

/** lock: the certificate's lock, waiting up to lockWaitMs for a live holder. undefined: someone else has it. */
async function lockStep(cert: CertificateConfig, c: Ctx): Promise<Lock | undefined> {
  const waitMs = c.opts.lockWaitMs ?? 0;
  if (waitMs <= 0) return c.store.locker.tryLock(cert.name);
  try {
    return await c.store.locker.lock(cert.name, { waitMs, signal: c.opts.signal });
  } catch (err) {
    if (err instanceof CertkeeperError && err.kind === 'lock') return undefined;
    throw err;
  }
}

/** busy: another process is renewing it; neither success nor failure, nothing written, no alert. */
async function busyResult(cert: CertificateConfig, c: Ctx, logger: Logger, t0: number): Promise<CertResult> {
  const holder = await c.store.locker.holder(cert.name).catch(() => undefined);
  const { describeHolder, lockedError } = await import('../store/lock.js');
  const error = lockedError(cert.name, holder, c.opts.lockWaitMs ?? 0);
  logger.info(
    { event: 'renew.busy', holder },
    `${cert.name}: ${describeHolder(holder)} is renewing it; leaving it to that process`,
  );
  const result: CertResult = {
    name: cert.name,
    status: 'busy',
    reason: error.message,
    error: error.toJSON(),
    durationMs: Date.now() - t0,
  };
  c.emit({ type: 'busy', cert: cert.name, result });
  return result;
}

/**
 * load: state and live certificate, read under the lock (another process may have just renewed it). A state
 * that does not describe the live files (a crash between the switch and the state write) is corrected.
 */
async function loadStep(cert: CertificateConfig, c: Ctx): Promise<Loaded> {
  const state = await c.store.readState(cert.name);
  const live = await c.store.current(cert.name, state);
  const patch: Partial<CertState> = {};
  if (live && state && state.serial !== undefined && state.serial !== live.serial) {
    Object.assign(patch, {
      serial: live.serial,
      notBefore: live.notBefore.toISOString(),
      notAfter: live.notAfter.toISOString(),
      version: live.version,
    });
  }
  return { state: state && { ...state, ...patch }, live, patch };
}

/** bootstrap: a placeholder for a certificate with nothing live, so servers that need the files can start. */
async function bootstrapStep(cert: CertificateConfig, c: Ctx, l: Loaded, logger: Logger): Promise<void> {
  if (l.live || c.opts.dryRun || cert.bootstrap === false) return;
  if (!(await c.bootstrap(cert, c.store, logger))) return;
  l.state = await c.store.readState(cert.name);
  l.live = await c.store.current(cert.name, l.state);
}

/** ari: when a check is due, the CA's suggested renewal window (RFC 9773); failures fall back to the expiry rule. */
async function ariStep(cert: CertificateConfig, c: Ctx, l: Loaded, logger: Logger): Promise<void> {
  const now = c.clock.now();
  if (c.opts.ari === false || c.opts.dryRun || !l.live || l.live.placeholder || l.state?.placeholder) return;
  if (!ariCheckDue(l.state?.ari, now)) return;
  const issuer = c.issuer();
  if (!issuer.renewalInfo) return;
  const t0 = Date.now();
  try {
    const info = await issuer.renewalInfo(l.live, { now, logger });
    if (!info) return;
    const ari = nextAriState(l.state?.ari, info, now, c.random);
    l.patch.ari = ari;
    l.state = { ...(l.state ?? { name: cert.name }), ari };
    logger.info(
      {
        event: 'ari.window',
        start: ari.start,
        end: ari.end,
        selectedAt: ari.selectedAt,
        durationMs: Date.now() - t0,
      },
      `${cert.name}: CA suggests renewing between ${ari.start} and ${ari.end}; chose ${ari.selectedAt}`,
    );
  } catch (err) {
    const ce = asCertkeeperError(err, 'acme', { cert: cert.name });
    logger.warn({ event: 'ari.failed', code: ce.code, error: ce.message }, `${cert.name}: ${ce.message}`);
  }
}

function planStep(cert: CertificateConfig, c: Ctx, l: Loaded): Plan {
  const plan = planCertificate(cert, l.state, l.live && summarize(l.live), {
    now: c.clock.now(),
    force: c.opts.force,
    renewBeforeFraction: c.config.renewal.renewBeforeFraction,
    respectBackoff: c.opts.respectBackoff,
  });
  c.emit({ type: 'planned', cert: cert.name, plan });
  return plan;
}

/** A stored certificate not confirmed deployed (a crash before the reload, a failed deployer) is deployed again. */
function needsDeploy(cert: CertificateConfig, c: Ctx, l: Loaded): boolean {
  if (!l.live || l.live.placeholder || l.state?.placeholder) return false;
  if (cert.deploy.length === 0 || c.opts.dryRun || c.opts.skipDeploy) return false;
  return !isDeployed(l.live, l.state);
}

async function redeployStep(
  cert: CertificateConfig,
  c: Ctx,
  l: Loaded,
  logger: Logger,
  t0: number,
  assertHeld: () => void,
): Promise<CertResult> {
  const live = l.live!;
  const pending = l.state?.pendingDeploy?.serial === live.serial;
  logger.info(
    { event: 'renew.redeploy', serial: live.serial, pending },
    pending
      ? `${cert.name}: serial ${live.serial} was stored but never confirmed deployed; deploying it now`
      : `${cert.name}: last deploy failed; deploying the stored certificate again`,
  );
  const result: CertResult = {
    name: cert.name,
    status: 'redeployed',
    reason: pending
      ? 'stored earlier but not confirmed deployed; deployed it now'
      : 'last deploy failed; deployed the stored certificate again',
    serial: live.serial,
    notAfter: live.notAfter.toISOString(),
    version: live.version,
    durationMs: 0,
  };
  assertHeld();
  await deployStep(cert, c, l, live, result, logger, 'stored');
  result.durationMs = Date.now() - t0;
  return result;
}

async function skipStep(
  cert: CertificateConfig,
  c: Ctx,
  l: Loaded,
  plan: Plan,
  logger: Logger,
  t0: number,
): Promise<CertResult> {
  const result: CertResult = {
    name: cert.name,
    status: 'skipped',
    reason: plan.detail,
    serial: l.live?.serial,
    notAfter: l.live?.notAfter.toISOString(),
    version: l.live?.version,
    durationMs: Date.now() - t0,
  };
  logger.info(
    { event: 'renew.skipped', reason: plan.reason, detail: plan.detail },
    `${cert.name}: not due (${plan.detail})`,
  );
  c.emit({ type: 'skipped', cert: cert.name, plan, result });
  await notifyStep(cert, c, l, result, l.live);
  return result;
}

/** obtain: a certificate from the CA — or the one it issued earlier that could not be stored yet. */
async function obtainStep(
  cert: CertificateConfig,
  c: Ctx,
  l: Loaded,
  plan: Plan,
  logger: Logger,
  signal: AbortSignal,
): Promise<Issued> {
  const held = heldFor(c.store).get(cert.name);
  if (!c.opts.dryRun && held) {
    const usable =
      held.key === identityKey(cert) &&
      Date.now() - held.at < HOLD_MS &&
      certInfo(splitPemChain(held.issued.fullchainPem)[0]!).notAfter > c.clock.now();
    if (usable) {
      logger.info(
        { event: 'renew.stored_retry' },
        `${cert.name}: storing the certificate the CA issued earlier (not ordering again)`,
      );
      return held.issued;
    }
    heldFor(c.store).delete(cert.name);
  }
  if (!c.opts.dryRun) await c.store.checkSpace?.(cert.name);
  logger.info(
    { event: 'renew.obtaining', reason: plan.reason, domains: cert.domains, dryRun: !!c.opts.dryRun },
    `${cert.name}: ordering (${plan.detail})`,
  );
  c.emit({ type: 'obtaining', cert: cert.name, plan });
  // ARI (RFC 9773 §5): name the certificate this order replaces, when the CA told us a window for it.
  const replaces =
    l.live && !l.live.placeholder && !l.state?.placeholder && l.state?.ari && !c.opts.dryRun
      ? replacesId(l.live.certPem, cert.name)
      : undefined;
  const issued = await c.issuer().order({ cert, replaces, logger, signal });
  logger.info(
    { event: 'renew.ordered', durationMs: issued.timings.total, timings: issued.timings },
    `${cert.name}: certificate issued by the CA`,
  );
  await c.verifier(issued, cert, c.clock.now());
  return issued;
}

/**
 * store: the intent to deploy is written before live/ switches (so a crash right after is finished by the next
 * run), then the new version goes live with the success record in the same state write. A certificate that cannot
 * be stored is kept for the next attempt.
 */
async function storeStep(
  cert: CertificateConfig,
  c: Ctx,
  l: Loaded,
  issued: Issued,
  logger: Logger,
  t0: number,
): Promise<IssuedCertificate> {
  const name = cert.name;
  const leaf = splitPemChain(issued.fullchainPem)[0]!;
  const serial = certInfo(leaf).serial;
  const at = c.clock.now().toISOString();
  const deploys = !c.opts.skipDeploy && cert.deploy.length > 0;
  const wasReal = l.live && !l.live.placeholder && !l.state?.placeholder;
  let saved: IssuedCertificate;
  try {
    if (deploys) {
      await c.store.updateState(name, { ...l.patch, pendingDeploy: { serial, at } });
      l.patch = {};
    }
    saved = await c.store.save(name, {
      domains: cert.domains,
      keyType: cert.keyType,
      fullchainPem: issued.fullchainPem,
      keyPem: issued.keyPem,
      state: {
        ...l.patch,
        lastAttempt: {
          at,
          result: 'success',
          message: `${wasReal ? 'renewed' : 'issued'} serial ${serial}`,
          durationMs: Date.now() - t0,
        },
        lastSuccess: at,
        // The profile it was ordered under: changing the configured one makes it due (plan rule profile-changed).
        profile: cert.profile,
        failures: 0,
        nextAttemptAfter: undefined,
        revokedSerial: undefined,
        ari: undefined,
        ...(!deploys && { pendingDeploy: undefined }),
      },
    });
    l.patch = {};
  } catch (err) {
    heldFor(c.store).set(name, { issued, key: identityKey(cert), at: Date.now() });
    const e = asCertkeeperError(err, 'store', { cert: name });
    throw new CertkeeperError(
      'store',
      `the CA issued serial ${serial}, but storing it failed: ${e.message}`,
      {
        cert: name,
        code: e.code === 'CK_ERR_STORE' || e.code === 'CK_ERR_INTERNAL' ? 'CK_ERR_STORE_FAILED' : e.code,
        hint: `${e.hint ?? storageHint(err, c.config.storage.path)}; the issued certificate is kept in memory and stored at the next attempt without a new order`,
        cause: err,
      },
    );
  }
  heldFor(c.store).delete(name);
  logger.info(
    {
      event: 'renew.stored',
      serial: saved.serial,
      notAfter: saved.notAfter.toISOString(),
      version: saved.version,
    },
    `${name}: stored version ${saved.version}`,
  );
  return saved;
}

/** A file-system error (full, read-only, not permitted) as a 'store' error with its fix; undefined for others. */
function storageError(err: unknown, cert: string, path: string): CertkeeperError | undefined {
  if (err instanceof CertkeeperError) return undefined;
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (!code || !['ENOSPC', 'EDQUOT', 'EROFS', 'EACCES', 'EPERM'].includes(code)) return undefined;
  return new CertkeeperError('store', (err as Error).message, {
    cert,
    code: code === 'ENOSPC' || code === 'EDQUOT' ? 'CK_ERR_DISK_FULL' : 'CK_ERR_STORE_FAILED',
    hint: storageHint(err, path),
    cause: err,
  });
}

function storageHint(err: unknown, path: string): string {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOSPC' || code === 'EDQUOT') return `free space on the filesystem of storage.path (${path})`;
  if (code === 'EROFS') return `storage.path (${path}) is on a read-only filesystem: mount it read-write`;
  if (code === 'EACCES' || code === 'EPERM') return `let certkeeper write to storage.path (${path})`;
  return `check that storage.path (${path}) is writable and has free space`;
}

/**
 * deploy + record: every deployer in order; the result is recorded in one state write (lastDeploy, the intent
 * cleared when all succeeded, the alert memory), then the alerts go out.
 */
async function deployStep(
  cert: CertificateConfig,
  c: Ctx,
  l: Loaded,
  saved: IssuedCertificate,
  result: CertResult,
  logger: Logger,
  what: 'renewed' | 'stored',
): Promise<void> {
  const name = cert.name;
  const deployResults = await deployAll(cert, saved, c, logger);
  result.deploy = deployResults;
  result.deployFailed = deployResults.some((d) => !d.ok);
  c.emit({
    type: result.deployFailed ? 'deploy_failed' : 'deployed',
    cert: name,
    result,
    deploy: deployResults,
  });
  if (result.deployFailed) {
    result.status = 'failed';
    const first = deployResults.find((d) => !d.ok)!;
    // The deployer's detail already carries its own fix; "renewed but not deployed" is said once, here.
    const detail = (first.message ?? first.detail).replace(/^(?:renewed|stored) but not deployed: /, '');
    result.error = new CertkeeperError('deploy', `${what} but not deployed: ${first.deployer}: ${detail}`, {
      cert: name,
      code: 'CK_ERR_NOT_DEPLOYED',
      ...(first.hint && { hint: first.hint }),
    }).toJSON();
    result.reason = result.error.message as string;
  }
  const patch: Partial<CertState> = {
    ...l.patch,
    lastDeploy: {
      at: c.clock.now().toISOString(),
      ok: !result.deployFailed,
      serial: saved.serial,
      results: deployResults.map(({ deployer, ok, detail, message, hint }) => ({
        deployer,
        ok,
        detail: message ?? detail,
        ...(hint && { hint }),
      })),
    },
    ...(!result.deployFailed && { pendingDeploy: undefined }),
  };
  l.patch = {};
  await notifyStep(cert, c, l, result, saved, patch);
}

/** A deployer's result; for a thrown error also its message and fix apart (detail has both, for the report). */
type DeployOutcome = DeployResult & { message?: string; hint?: string };

/** Runs every deployer in order; one's failure never stops the others nor loses the stored certificate. */
async function deployAll(
  cert: CertificateConfig,
  saved: IssuedCertificate,
  c: Ctx,
  logger: Logger,
): Promise<DeployOutcome[]> {
  const results: DeployOutcome[] = [];
  for (const [i, d] of cert.deploy.entries()) {
    const t0 = Date.now();
    const log = logger.child({ deployer: d.type });
    try {
      const deployer = await c.deployers(d, { logger: log });
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
        message: e.message,
        ...(e.hint && { hint: e.hint }),
      });
      log.error(
        { event: 'deploy.failed', code: e.code, error: e.message, hint: e.hint, durationMs: Date.now() - t0 },
        `${cert.name}: ${d.type}: ${e.message}`,
      );
    }
  }
  return results;
}

/**
 * record + notify: the alert rules decide what to send and what to remember; the memory (and any pending state
 * change) is written in one write, then the alerts go to the sink.
 */
async function notifyStep(
  cert: CertificateConfig,
  c: Ctx,
  l: Loaded,
  result: CertResult,
  live: IssuedCertificate | undefined,
  patch: Partial<CertState> = l.patch,
): Promise<void> {
  if (c.opts.dryRun) return;
  const now = c.clock.now();
  const state = await c.store.readState(cert.name);
  const after: CertState = { ...(state ?? { name: cert.name }), ...patch };
  const summary = live && summarize(live);
  const h = health(summary, after, {
    now,
    dangerDays: c.config.renewal.dangerDays,
    renewBeforeFraction: cert.renewBeforeFraction ?? c.config.renewal.renewBeforeFraction,
  });
  const out = c.notifier
    ? alertsFor({
        name: cert.name,
        domains: cert.domains,
        result,
        state: after,
        live: summary,
        health: h,
        now,
        jobId: c.jobId,
      })
    : { alerts: [] };
  const write = { ...patch, ...(out.memory && { alerts: out.memory }) };
  if (Object.keys(write).length > 0) await c.store.updateState(cert.name, write);
  if (patch === l.patch) l.patch = {};
  for (const a of out.alerts) c.notifier?.notify(a);
}

/** A failure: recorded (with its fix and the backoff), alerted by the rules, returned as a result. */
async function failStep(
  cert: CertificateConfig,
  c: Ctx,
  l: Loaded | undefined,
  lock: Lock | undefined,
  err: unknown,
  logger: Logger,
  t0: number,
): Promise<CertResult> {
  const name = cert.name;
  const error =
    storageError(err, name, c.config.storage.path) ?? asCertkeeperError(err, 'internal', { cert: name });
  const nowD = c.clock.now();
  const prev = await c.store.readState(name).catch(() => undefined);
  const failures = (prev?.failures ?? 0) + 1;
  const result: CertResult = {
    name,
    status: 'failed',
    reason: error.message,
    error: error.toJSON(),
    durationMs: Date.now() - t0,
  };
  const canWrite = lock !== undefined && !lock.lost.aborted && !c.opts.dryRun;
  // Errors retrying cannot fix (the no-retry marker, or permanent) wait long and are told once a day.
  const permanent = isNoRetry(err) || error.permanent;
  if (canWrite) {
    const live = l?.live;
    const patch: Partial<CertState> = {
      ...(l?.patch ?? {}),
      lastAttempt: {
        at: nowD.toISOString(),
        result: 'failure',
        message: error.message,
        code: error.code,
        ...(error.hint && { hint: error.hint }),
        ...(permanent && { permanent: true }),
        durationMs: Date.now() - t0,
      },
      failures,
      nextAttemptAfter: nextAttemptAfter(failures, nowD, {
        retryAfter: error.retryAfter,
        permanent,
        lifetime: live ? lifetimeMs(live) : undefined,
      }).toISOString(),
    };
    const loaded: Loaded = l ?? { state: prev, live: undefined, patch: {} };
    await notifyStep(cert, c, loaded, result, live, patch).catch((e: unknown) =>
      logger.error({ event: 'state.write_failed', err: String(e) }, 'could not record the failure'),
    );
  } else if (!c.opts.dryRun && c.notifier) {
    // Lock lost: nothing may be written, but the operator hears of it.
    c.notifier.notify({
      event: 'failure',
      certificate: name,
      domains: cert.domains,
      message: `renewal failed: ${error.message}`,
      ...(error.hint && { hint: error.hint }),
      code: error.code,
      jobId: c.jobId,
      at: nowD.toISOString(),
    });
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
  c.emit({ type: 'failed', cert: name, result, error });
  return result;
}
