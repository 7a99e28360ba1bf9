import { readFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import type { ACMClient } from '@aws-sdk/client-acm';
import type { FastifyInstance } from 'fastify';
import { ariCheckDue, fetchRenewalInfo, nextAriState, renewalInfoUrl } from '../acme/ari.js';
import { ariCertId } from '../acme/ari-id.js';
import { mapLimit } from '../concurrency.js';
import type { Config } from '../config/schema.js';
import { asCertkeeperError } from '../errors.js';
import type { Logger } from '../log.js';
import { type Alert, AlertDispatcher } from '../notify/index.js';
import { CertStore } from '../store/store.js';
import { AcmAuditor } from './acm-audit.js';
import { buildApp } from './app.js';
import { assertListenAllowed, parseListen } from './auth.js';
import { StateCache } from './cache.js';
import { DaemonMetrics } from './metrics.js';
import { type Job, JobQueue, type JobSource } from './queue.js';
import { ConfigReloader, type ReloadOutcome, type ReloadSource, reloadUnavailable } from './reload.js';
import { Scheduler, type Timers } from './scheduler.js';

export interface DaemonOptions {
  logger: Logger;
  /** Resolved API token (server.token / CERTKEEPER_TOKEN / server.tokenFile; see auth.resolveToken). */
  token?: string;
  now?: () => Date;
  random?: () => number;
  timers?: Timers;
  /** Check (and issue/renew what is due) right after start. Default true. */
  checkAtStart?: boolean;
  /** Ask the CA for renewal information when its directory offers it. Default true. */
  ari?: boolean;
  /** Delivery retry delays and sleep for alerts (tests make these instant). */
  notifyRetryDelaysMs?: number[];
  notifySleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  processMetrics?: boolean;
  /** ACM clients for the audit (tests); by default the real client per region with the SDK's own settings. */
  acmClientFor?: (region: string) => ACMClient;
  /** Reads and validates the configuration file again, for SIGHUP and POST /v1/reload (see reload.ts). */
  loadConfig?: () => Promise<Config>;
}

const DAY = 86_400_000;
const DIRECTORY_TTL_MS = 3600_000;

/**
 * `certkeeper run`: the scheduler, the job queue, the HTTP API, metrics and alerts around the one pipeline,
 * `renew()`. The daemon keeps the store's state in memory (re-read at each tick and after each job).
 */
export class Daemon {
  readonly store: CertStore;
  readonly cache: StateCache;
  readonly queue: JobQueue;
  readonly metrics: DaemonMetrics;
  readonly alerts: AlertDispatcher;
  readonly scheduler: Scheduler;
  /** The daily ACM audit, when acmAudit is configured. */
  readonly auditor?: AcmAuditor;
  /** The first audit (after the start-up renewal pass); tests await it. */
  firstAudit?: Promise<void>;
  app?: FastifyInstance;
  private readonly logger: Logger;
  private readonly now: () => Date;
  private readonly random: () => number;
  private ticking?: Promise<void>;
  private tickAgain?: JobSource;
  private stopping = false;
  private directory?: { url?: string; at: number };
  private caBundlePem?: string;
  private pipelineLoaded = false;

  /** Reloaded configurations replace it between jobs (reload.ts). */
  readonly reloader: ConfigReloader;

  constructor(
    public config: Config,
    private readonly opts: DaemonOptions,
  ) {
    this.logger = opts.logger;
    this.now = opts.now ?? (() => new Date());
    this.random = opts.random ?? Math.random;
    this.store = new CertStore(config.storage.path);
    this.cache = new StateCache(this.store, config);
    this.metrics = new DaemonMetrics(this.cache, this.now, { processMetrics: opts.processMetrics });
    this.alerts = new AlertDispatcher(config.notify, {
      logger: this.logger.child({ component: 'notify' }),
      now: this.now,
      retryDelaysMs: opts.notifyRetryDelaysMs,
      sleep: opts.notifySleep,
    });
    if (config.acmAudit) {
      this.auditor = new AcmAuditor({
        audit: config.acmAudit,
        config,
        store: this.store,
        alerts: this.alerts,
        logger: this.logger,
        now: this.now,
        timers: opts.timers,
        clientFor: opts.acmClientFor,
      });
      this.metrics.attachAudit(this.auditor);
    }
    this.queue = new JobQueue((job, signal) => this.runJob(job, signal), {
      allNames: () => this.config.certificates.map((c) => c.name),
      logger: this.logger,
      now: this.now,
      onFinished: (job) => this.afterJob(job),
    });
    this.scheduler = new Scheduler({
      cron: config.schedule.cron,
      timezone: config.schedule.timezone,
      jitterSeconds: config.schedule.jitterSeconds,
      logger: this.logger,
      random: this.random,
      timers: opts.timers,
      now: this.now,
      onTick: (source) => void this.tick(source),
    });
    this.reloader = new ConfigReloader({
      load: opts.loadConfig ?? (() => Promise.reject(reloadUnavailable())),
      target: this,
      logger: this.logger,
      registry: this.metrics.registry,
      now: this.now,
    });
  }

  /** SIGHUP / POST /v1/reload: re-read the configuration; an invalid one keeps this one running (reload.ts). */
  reload(source: ReloadSource = 'api'): Promise<ReloadOutcome> {
    return this.reloader.reload(source);
  }

  /** Called by the reloader with a validated configuration; a running job keeps the one it started with. */
  async useConfig(next: Config): Promise<void> {
    this.config = next;
    this.cache.setConfig(next);
    this.alerts.setTargets(next.notify);
    this.scheduler.reschedule(next.schedule);
    this.directory = undefined;
    this.caBundlePem = next.acme.caBundle
      ? await readFile(next.acme.caBundle, 'utf8').catch(() => undefined)
      : undefined;
    await this.cache.loadAll();
    await this.tick('reload');
  }

  /** Loads the store, builds the API, starts the schedule and (by default) checks every certificate once. */
  async start(): Promise<void> {
    const t0 = Date.now();
    if (this.config.acme.caBundle)
      this.caBundlePem = await readFile(this.config.acme.caBundle, 'utf8').catch(() => undefined);
    await this.cache.loadAll();
    this.logger.info(
      { event: 'daemon.loaded', certificates: this.cache.size, durationMs: Date.now() - t0 },
      `loaded state of ${this.cache.size} certificate(s)`,
    );
    this.app = await buildApp({
      logger: this.logger,
      token: this.opts.token,
      bodyLimitBytes: this.config.server.bodyLimitBytes,
      forceCooldownMs: this.config.server.forceCooldownSeconds * 1000,
      queue: this.queue,
      cache: this.cache,
      metrics: this.metrics,
      now: this.now,
      configuredNames: () => this.config.certificates.map((c) => c.name),
      shuttingDown: () => this.stopping,
      reload: () => this.reload('api'),
      auditor: this.auditor,
    });
    this.scheduler.start();
    if (this.opts.checkAtStart !== false) await this.tick('startup');
    // The audit follows the start-up renewals (so ARNs imported by them count as managed), in the background.
    const auditor = this.auditor;
    if (auditor) this.firstAudit = this.queue.idle().then(() => auditor.run());
  }

  /** Listens on server.listen (or the given address); refuses a non-loopback address without a token. */
  async listen(listen = this.config.server.listen): Promise<{ host: string; port: number }> {
    if (!this.app) throw new Error('start() the daemon before listen()');
    const addr = parseListen(listen);
    assertListenAllowed(addr, this.opts.token);
    if (!this.opts.token) {
      this.logger.warn(
        { event: 'api.no_token' },
        'no API token set: POST /v1/renew is open to every local process (set server.tokenFile or CERTKEEPER_TOKEN)',
      );
    }
    await this.app.listen({ host: addr.host, port: addr.port });
    const a = this.app.server.address() as AddressInfo;
    this.logger.info(
      { event: 'api.listening', host: a.address, port: a.port },
      `API on ${a.address}:${a.port}`,
    );
    return { host: a.address, port: a.port };
  }

  /**
   * One due-check: re-read the state, refresh ARI windows that are due a question, queue what is due, send
   * 'expiring' alerts, arm the wake timer. Overlapping calls fold into one more pass.
   */
  tick(source: JobSource = 'schedule'): Promise<void> {
    if (this.stopping) return Promise.resolve();
    if (this.ticking) {
      this.tickAgain = source;
      return this.ticking;
    }
    this.ticking = (async () => {
      try {
        await this.doTick(source);
        while (this.tickAgain && !this.stopping) {
          const again = this.tickAgain;
          this.tickAgain = undefined;
          await this.doTick(again);
        }
      } catch (err) {
        this.logger.error(
          { event: 'tick.failed', error: String(err) },
          'scheduled check failed; trying again at the next tick',
        );
      } finally {
        this.ticking = undefined;
      }
    })();
    return this.ticking;
  }

  private async doTick(source: JobSource): Promise<void> {
    const t0 = Date.now();
    // Cron ticks (twice a day) re-read the whole store, picking up what other processes (the CLI) changed;
    // wake ticks and API triggers use the in-memory state, which the daemon refreshes after its own writes.
    if (source === 'schedule') await this.cache.loadAll();
    if (this.opts.ari !== false) await this.refreshAri();
    const now = this.now();
    const { due, next } = this.cache.dueCheck(now);
    this.logger.info(
      { event: 'tick', source, certificates: this.cache.size, due: due.length, durationMs: Date.now() - t0 },
      due.length ? `${due.length} certificate(s) due` : 'nothing due',
    );
    this.checkExpiring(now);
    if (due.length && !this.stopping) this.queue.submit({ names: due, respectBackoff: true, source });
    this.scheduler.checked(); // the next check within 12 h, whatever schedule.cron says
    this.armWake(next);
  }

  private armWake(next: Date | undefined): void {
    let at = next?.getTime();
    for (const e of this.cache.all()) {
      const n =
        e.config && e.live && e.state?.ari?.nextCheckAt ? Date.parse(e.state.ari.nextCheckAt) : undefined;
      if (n !== undefined && (at === undefined || n < at)) at = n;
    }
    this.scheduler.wakeAt(at === undefined ? undefined : new Date(at));
  }

  private checkExpiring(now: Date): void {
    if (this.alerts.size === 0) return;
    const candidates: { alert: Alert; failing: boolean }[] = [];
    for (const e of this.cache.all()) {
      if (!e.config || !e.live) continue;
      const h = this.cache.health(e, now);
      if (h.status !== 'danger' && h.status !== 'expired') continue;
      const left = e.live.notAfter.getTime() - now.getTime();
      const last = e.state?.lastAttempt;
      const daysLeft = h.daysLeft ?? 0;
      candidates.push({
        failing: last?.result === 'failure',
        alert: {
          event: 'expiring',
          certificate: e.name,
          domains: e.config.domains,
          message: `${left <= 0 ? 'has expired' : `expires in ${daysLeft} days`} and the last renewal attempt failed: ${last?.message ?? 'unknown error'}`,
          code: last?.code,
          hint: 'fix the cause named in the message (see GET /v1/certificates and the log), then POST /v1/renew',
          serial: e.live.serial,
          notAfter: e.live.notAfter.toISOString(),
          daysLeft,
          at: now.toISOString(),
        },
      });
    }
    this.alerts.expiring(candidates);
  }

  private async refreshAri(): Promise<void> {
    const now = this.now();
    const todo = this.cache
      .all()
      .filter((e) => e.config && e.live && !e.state?.placeholder && ariCheckDue(e.state?.ari, now));
    if (!todo.length) return;
    const log = this.logger.child({ component: 'ari' });
    if (!this.directory || Date.now() - this.directory.at > DIRECTORY_TTL_MS) {
      try {
        const url = await renewalInfoUrl(this.config.acme.directoryUrl, { caBundlePem: this.caBundlePem });
        this.directory = { url, at: Date.now() };
        log.info(
          { event: 'ari.directory', offered: !!url },
          url
            ? 'the CA offers renewal information (ARI)'
            : 'the CA offers no renewal information; expiry rules apply',
        );
      } catch (err) {
        log.warn(
          { event: 'ari.directory_failed', error: (err as Error).message },
          'cannot read the ACME directory for ARI; expiry rules apply this time',
        );
        return;
      }
    }
    const base = this.directory.url;
    if (!base) return;
    await mapLimit(todo, 4, async (e) => {
      const t0 = Date.now();
      try {
        const live = await this.store.current(e.name);
        if (!live || live.placeholder) return;
        const info = await fetchRenewalInfo(base, ariCertId(live.certPem, { cert: e.name }), {
          cert: e.name,
          now,
          caBundlePem: this.caBundlePem,
        });
        const release = await this.store.lock(e.name);
        try {
          const state = await this.store.readState(e.name);
          if (state?.serial && state.serial !== live.serial) return; // renewed meanwhile
          const ari = nextAriState(state?.ari, info, now, this.random);
          await this.store.updateState(e.name, { ari });
          log.info(
            {
              event: 'ari.window',
              cert: e.name,
              start: ari.start,
              end: ari.end,
              selectedAt: ari.selectedAt,
              durationMs: Date.now() - t0,
            },
            `${e.name}: CA suggests renewing between ${ari.start} and ${ari.end}; chose ${ari.selectedAt}`,
          );
        } finally {
          await release().catch(() => {});
        }
      } catch (err) {
        const ce = asCertkeeperError(err, 'acme', { cert: e.name });
        log.warn(
          { event: 'ari.failed', cert: e.name, code: ce.code, error: ce.message },
          `${e.name}: ${ce.message}`,
        );
      }
    });
    await this.cache.refresh(todo.map((e) => e.name));
  }

  private async runJob(job: Job, signal: AbortSignal) {
    // Loaded at the first job: an idle daemon does not carry the ACME client.
    this.pipelineLoaded = true;
    const [{ renew }, { acmeEvents }] = await Promise.all([
      import('../renew.js'),
      import('../acme/events.js'),
    ]);
    this.metrics.attachAcme(acmeEvents);
    return renew(this.config, {
      names: job.names,
      force: job.force,
      dryRun: job.dryRun,
      respectBackoff: job.respectBackoff,
      logger: this.logger,
      now: this.now,
      signal,
      jobId: job.id,
      onEvent: (e) => this.metrics.onEvent(e),
    });
  }

  private async afterJob(job: Job): Promise<void> {
    await this.cache.refresh(job.names);
    const now = this.now();
    for (const r of job.results ?? []) {
      const domains = this.config.certificates.find((c) => c.name === r.name)?.domains ?? [];
      if (r.status === 'failed') {
        this.alerts.notify({
          event: 'failure',
          certificate: r.name,
          domains,
          message: r.deployFailed ? r.reason : `renewal failed: ${r.reason}`,
          hint: r.error?.hint as string | undefined,
          code: r.error?.code as string | undefined,
          jobId: job.id,
          serial: r.serial,
          notAfter: this.cache.get(r.name)?.live?.notAfter.toISOString(),
          at: now.toISOString(),
        });
      } else if (r.status === 'issued' || r.status === 'renewed') {
        this.alerts.notify({
          event: 'success',
          certificate: r.name,
          domains,
          message: `${r.status}: serial ${r.serial}, valid until ${r.notAfter}`,
          jobId: job.id,
          serial: r.serial,
          notAfter: r.notAfter,
          daysLeft: r.notAfter ? Math.floor((Date.parse(r.notAfter) - now.getTime()) / DAY) : undefined,
          at: now.toISOString(),
        });
      }
    }
    this.checkExpiring(now);
    this.armWake(this.cache.dueCheck(now).next);
  }

  get shuttingDown(): boolean {
    return this.stopping;
  }

  /**
   * Graceful stop: no more ticks or jobs; the running job gets `graceMs` to finish, then its order is aborted
   * (challenge files are removed by the pipeline's cleanup, nothing half-written goes live); alerts in flight get
   * a few seconds; the API closes. Returns true when nothing was cut off.
   */
  async stop({ graceMs = 30_000 }: { graceMs?: number } = {}): Promise<boolean> {
    if (this.stopping) return true;
    this.stopping = true;
    this.logger.info(
      { event: 'daemon.stopping', graceMs },
      'stopping: no new jobs; waiting for the running one',
    );
    this.scheduler.stop();
    await this.ticking?.catch(() => {});
    const clean = await this.queue.close(graceMs);
    await this.auditor?.stop(Math.min(graceMs, 5000));
    await this.alerts.close(Math.min(graceMs, 5000));
    await this.app?.close();
    this.metrics.close();
    // Route53 clients are shared process-wide by the DNS-01 solver; only a daemon that ran the pipeline has any
    // (an idle daemon does not load the AWS SDK, so this import stays behind that check).
    if (
      this.pipelineLoaded &&
      this.config.certificates.some(
        (c) => c.challenge.type === 'dns-01' && c.challenge.provider === 'route53',
      )
    ) {
      const { destroySharedRoute53Clients } = await import('../challenges/route53/client.js');
      destroySharedRoute53Clients();
    }
    this.logger.info({ event: 'daemon.stopped', clean }, clean ? 'stopped' : 'stopped; an order was cut off');
    return clean;
  }
}

export function createDaemon(config: Config, opts: DaemonOptions): Daemon {
  return new Daemon(config, opts);
}
