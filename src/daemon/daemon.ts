import type { AddressInfo } from 'node:net';
import type { ACMClient } from '@aws-sdk/client-acm';
import type { FastifyInstance } from 'fastify';
import { ariCheckDue } from '../acme/ari.js';
import { DatabaseOutage } from '../cluster/outage.js';
import type { ClusterWiring } from '../cluster/wiring.js';
import type { Config } from '../config/schema.js';
import type { Logger } from '../log.js';
import { AlertDispatcher } from '../notify/index.js';
import { alertsFor } from '../notify/rules.js';
import { CertStore } from '../store/store.js';
import type { Store } from '../store/types.js';
import { Watcher } from '../watch/watcher.js';
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
  /** `cluster:` configured: the wiring (cluster/wiring.ts); the daemon starts its node sync and closes it. */
  cluster?: ClusterWiring;
}

/** How often the daemon looks whether a certificate another process was renewing is free again. */
const BUSY_POLL_MS = 2000;
const BUSY_WATCH_MAX_MS = 6 * 3600_000;
/** Longest time between full checks (store re-read, ARI for every certificate), whatever schedule.cron says. */
const FULL_CHECK_MS = 12 * 3600_000;

/**
 * `certkeeper run`: the scheduler, the job queue, the HTTP API, metrics and alerts around the one pipeline,
 * `renew()`. The daemon keeps the store's state in memory (re-read at each tick and after each job).
 */
export class Daemon {
  /** This host's certbot folder (with `cluster:`, the copy materialised from PostgreSQL). */
  readonly store: CertStore;
  /** Where certificates and their state are read and written: the local store, or PostgreSQL with `cluster:`. */
  readonly truth: Store;
  /** With `cluster:`: PostgreSQL's availability (readiness, metrics, alerts while renewals wait). */
  readonly outage?: DatabaseOutage;
  readonly cache: StateCache;
  readonly queue: JobQueue;
  readonly metrics: DaemonMetrics;
  readonly alerts: AlertDispatcher;
  readonly scheduler: Scheduler;
  /** The daily ACM audit, when acmAudit is configured. */
  readonly auditor?: AcmAuditor;
  /** The first audit (after the start-up renewal pass); tests await it. */
  firstAudit?: Promise<void>;
  /** Watched endpoints (watch:) and what the nginx verify addresses serve. */
  readonly watcher: Watcher;
  /** The first probe of every watched endpoint; tests await it. */
  firstWatch?: Promise<void>;
  /** The last check of what nginx serves (after start, ticks and jobs); tests await it. */
  servedCheck?: Promise<void>;
  app?: FastifyInstance;
  /** The read-only listener's app (server.metricsListen). */
  readOnlyApp?: FastifyInstance;
  private readonly logger: Logger;
  private readonly now: () => Date;
  private readonly random: () => number;
  private ticking?: Promise<void>;
  private tickAgain?: JobSource;
  private stopping = false;
  private pipelineLoaded = false;
  private appDeps?: Parameters<typeof buildApp>[0];
  /** Certificates another process holds the lock of: re-checked when it frees. */
  private readonly busyWatch = new Map<string, NodeJS.Timeout>();
  /** When the store was last re-read and every certificate's ARI asked (ms). */
  private lastFullCheck?: number;

  /** Reloaded configurations replace it between jobs (reload.ts). */
  readonly reloader: ConfigReloader;

  constructor(
    public config: Config,
    private readonly opts: DaemonOptions,
  ) {
    this.logger = opts.logger;
    this.now = opts.now ?? (() => new Date());
    this.random = opts.random ?? Math.random;
    this.store = opts.cluster?.store.local ?? new CertStore(config.storage.path, { logger: this.logger });
    this.truth = opts.cluster?.store ?? this.store;
    this.cache = new StateCache(this.truth, config);
    this.metrics = new DaemonMetrics(this.cache, this.now, {
      processMetrics: opts.processMetrics,
      store: this.store,
      renewBeforeFraction: config.renewal.renewBeforeFraction,
    });
    this.alerts = new AlertDispatcher(config.notify, {
      logger: this.logger.child({ component: 'notify' }),
      now: this.now,
      retryDelaysMs: opts.notifyRetryDelaysMs,
      sleep: opts.notifySleep,
    });
    const cw = opts.cluster;
    if (cw) {
      this.outage = new DatabaseOutage({
        databaseUp: () => cw.databaseUp(),
        onHealth: (fn) => cw.store.onHealth(fn),
        notify: (a) => this.alerts.notify(a),
        onRecovered: () => void this.tick('wake'),
        now: this.now,
        logger: this.logger,
      });
      this.metrics.attachCluster(() => cw.databaseUp());
      // A version another node stored went live here: status, metrics and the API show it at once.
      cw.store.onMaterialised((name) => void this.cache.refresh([name]).catch(() => {}));
    }
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
    this.watcher = new Watcher({
      config,
      logger: this.logger,
      alerts: this.alerts,
      now: this.now,
      timers: opts.timers,
      liveSerial: (name) => this.cache.get(name)?.live?.serial,
    });
    this.metrics.attachWatch(this.watcher);
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
    this.opts.cluster?.node.setCertificates(next.certificates);
    this.cache.setConfig(next);
    this.alerts.setTargets(next.notify);
    this.watcher.setConfig(next);
    this.scheduler.reschedule(next.schedule);
    await this.cache.loadAll();
    this.firstWatch = this.watcher.runDue();
    await this.tick('reload');
  }

  /** Loads the store, builds the API, starts the schedule and (by default) checks every certificate once. */
  async start(): Promise<void> {
    const t0 = Date.now();
    // cluster: catch up from PostgreSQL (and deploy here what changed) before looking at what is due.
    await this.opts.cluster?.node.start();
    await this.cache.loadAll();
    this.lastFullCheck = this.now().getTime();
    this.logger.info(
      { event: 'daemon.loaded', certificates: this.cache.size, durationMs: Date.now() - t0 },
      `loaded state of ${this.cache.size} certificate(s)`,
    );
    const appDeps = {
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
      watcher: this.watcher,
      publicStatus: () => this.config.server.publicStatus === true,
      database: this.outage && (() => this.outage?.problem()),
      nodeDeploys: this.opts.cluster && (() => this.opts.cluster!.store.allNodeDeploys()),
    };
    this.app = await buildApp(appDeps);
    this.appDeps = appDeps;
    this.scheduler.start();
    this.firstWatch = this.watcher.start();
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
    if (this.config.server.metricsListen) await this.listenReadOnly();
    return { host: a.address, port: a.port };
  }

  /**
   * The read-only listener (server.metricsListen or the given address): status page, /metrics, /healthz, /readyz.
   * It changes nothing, so it may bind any address without a token.
   */
  async listenReadOnly(
    listen = this.config.server.metricsListen ?? '127.0.0.1:0',
  ): Promise<{ host: string; port: number }> {
    if (!this.appDeps) throw new Error('start() the daemon before listenReadOnly()');
    const addr = parseListen(listen, 'server.metricsListen');
    this.readOnlyApp ??= await buildApp({ ...this.appDeps, readOnly: true });
    await this.readOnlyApp.listen({ host: addr.host, port: addr.port });
    const a = this.readOnlyApp.server.address() as AddressInfo;
    this.logger.info(
      { event: 'api.read_only_listening', host: a.address, port: a.port },
      `read-only listener (status page, metrics, health) on ${a.address}:${a.port}`,
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
    const full =
      source === 'schedule' ||
      source === 'startup' ||
      this.now().getTime() - (this.lastFullCheck ?? 0) >= FULL_CHECK_MS;
    if (full && source !== 'startup') await this.cache.loadAll();
    const now = this.now();
    if (full) this.lastFullCheck = now.getTime();
    const { due, next } = this.cache.dueCheck(now);
    // ARI: the pipeline asks the CA when a certificate's check is due — at the scheduled and start-up checks, and
    // whenever the CA's Retry-After for one has passed.
    const ari =
      this.opts.ari === false
        ? []
        : this.cache
            .all()
            .filter(
              (e) =>
                e.config &&
                e.live &&
                !e.live.placeholder &&
                !e.state?.placeholder &&
                !due.includes(e.name) &&
                (e.state?.ari?.nextCheckAt ? ariCheckDue(e.state.ari, now) : full),
            )
            .map((e) => e.name);
    this.logger.info(
      {
        event: 'tick',
        source,
        certificates: this.cache.size,
        due: due.length,
        ariChecks: ari.length,
        durationMs: Date.now() - t0,
      },
      due.length ? `${due.length} certificate(s) due` : 'nothing due',
    );
    await this.remind(now);
    this.servedCheck = this.watcher.checkServed();
    // PostgreSQL away: no node can take a lock, so nothing is queued; the due ones are alerted and run as soon
    // as the database answers (outage.onRecovered).
    if (this.outage?.holdDue(due.map((n) => this.dueInfo(n)))) {
      this.armWake(next);
      return;
    }
    const names = [...due, ...ari];
    if (names.length && !this.stopping) this.queue.submit({ names, respectBackoff: true, source });
    this.armWake(next);
  }

  private dueInfo(name: string) {
    const e = this.cache.get(name);
    return { name, domains: e?.config?.domains ?? [], notAfter: e?.live?.notAfter };
  }

  private armWake(next: Date | undefined): void {
    // At least twice a day whatever schedule.cron says: ARI and the due times are looked at again within 12 h.
    let at = Math.min(next?.getTime() ?? Number.POSITIVE_INFINITY, this.now().getTime() + FULL_CHECK_MS);
    for (const e of this.cache.all()) {
      const n =
        e.config && e.live && e.state?.ari?.nextCheckAt ? Date.parse(e.state.ari.nextCheckAt) : undefined;
      if (n !== undefined && (at === undefined || n < at)) at = n;
    }
    this.scheduler.wakeAt(new Date(at));
  }

  /**
   * Reminders between runs, by the same rules as the pipeline: a certificate in its danger window whose last
   * attempt failed is alerted once a day ("already told" is kept in its state, shared with the CLI).
   */
  private async remind(now: Date): Promise<void> {
    if (this.alerts.size === 0) return;
    for (const e of this.cache.all()) {
      if (!e.config || !e.live) continue;
      const h = this.cache.health(e, now);
      const inDanger = h.status === 'danger' || h.status === 'expired';
      if (!inDanger && !e.state?.alerts?.expiring) continue;
      const lock = await this.truth.locker.tryLock(e.name).catch(() => undefined);
      if (!lock) continue; // someone is renewing it right now: that run decides
      try {
        const state = await this.truth.readState(e.name);
        const out = alertsFor({
          name: e.name,
          domains: e.config.domains,
          state,
          live: e.live,
          health: this.cache.health({ ...e, state }, now),
          now,
        });
        if (out.memory) await this.truth.updateState(e.name, { alerts: out.memory });
        for (const a of out.alerts) this.alerts.notify(a);
      } finally {
        await lock.release().catch(() => {});
      }
    }
  }

  private async runJob(job: Job, signal: AbortSignal) {
    // Loaded at the first job: an idle daemon does not carry the ACME client.
    this.pipelineLoaded = true;
    const [{ renew }, { acmeEvents }] = await Promise.all([
      import('../pipeline/renew.js'),
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
      store: this.store,
      notifier: this.alerts,
      ari: this.opts.ari !== false,
      random: this.random,
      // cluster: the PostgreSQL store (the job runs here only where its lock is won), tokens to every node.
      ...this.opts.cluster?.renewOptions((e) => this.metrics.onEvent(e)),
    });
  }

  private async afterJob(job: Job): Promise<void> {
    await this.cache.refresh(job.names);
    // Alerts were sent by the pipeline; "someone else is renewing it" is neither success nor failure: look again
    // when that process lets go.
    for (const r of job.results ?? []) if (r.status === 'busy') this.watchBusy(r.name);
    this.armWake(this.cache.dueCheck(this.now()).next);
    this.servedCheck = this.watcher.checkServed(job.names);
  }

  /** Polls a certificate another process holds until its lock frees (or its holder dies), then checks it again. */
  private watchBusy(name: string): void {
    if (this.busyWatch.has(name) || this.stopping) return;
    const started = Date.now();
    const check = async () => {
      if (this.stopping) return;
      const lock = await this.truth.locker.tryLock(name).catch(() => undefined);
      if (!lock && Date.now() - started < BUSY_WATCH_MAX_MS) {
        this.busyWatch.set(name, setTimeout(() => void check(), BUSY_POLL_MS).unref());
        return;
      }
      this.busyWatch.delete(name);
      await lock?.release().catch(() => {});
      this.logger.info(
        { event: 'lock.freed', cert: name },
        `${name}: the other process let go of it; checking it again`,
      );
      await this.cache.refresh([name]);
      if (!this.stopping) void this.tick('wake');
    };
    this.busyWatch.set(name, setTimeout(() => void check(), BUSY_POLL_MS).unref());
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
    for (const t of this.busyWatch.values()) clearTimeout(t);
    this.busyWatch.clear();
    await this.ticking?.catch(() => {});
    const clean = await this.queue.close(graceMs);
    await this.auditor?.stop(Math.min(graceMs, 5000));
    this.outage?.close();
    await this.opts.cluster?.close(); // nothing local is removed: nginx keeps serving the files
    await this.watcher.stop();
    await this.servedCheck;
    await this.alerts.close(Math.min(graceMs, 5000));
    await this.app?.close();
    await this.readOnlyApp?.close();
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
