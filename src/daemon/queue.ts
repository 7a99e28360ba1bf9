import { randomUUID } from 'node:crypto';
import { asCertkeeperError, CertkeeperError } from '../errors.js';
import type { Logger } from '../log.js';
import { within } from '../platform/sleep.js';
import type { CertResult, RenewReport } from '../renew.js';

export type JobState = 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';
export type JobSource = 'api' | 'schedule' | 'startup' | 'wake' | 'reload';

export interface JobRequest {
  /** Certificate names; empty or absent: every configured certificate. */
  names?: string[];
  force?: boolean;
  dryRun?: boolean;
  respectBackoff?: boolean;
  source: JobSource;
}

export interface Job {
  id: string;
  state: JobState;
  source: JobSource;
  names: string[];
  force: boolean;
  dryRun: boolean;
  respectBackoff: boolean;
  createdAt: string;
  startedAt?: string;
  finishedAt?: string;
  /** Requests folded into this job after it was created (API triggers, ticks). */
  coalesced: number;
  results?: CertResult[];
  /**
   * Results per status, kept instead of `results` once newer jobs hold KEEP_RESULTS of them: a daemon of 1,000
   * certificates checks them all twice a day, and 200 such jobs would keep 200,000 results.
   */
  counts?: Record<string, number>;
  error?: Record<string, unknown>;
}

export type JobRunner = (job: Job, signal: AbortSignal) => Promise<RenewReport>;

const KEEP_FINISHED = 200;
/** Per-certificate results kept over the finished jobs, newest first (the newest job keeps all of its own). */
const KEEP_RESULTS = 5000;

/**
 * One queue for cron ticks and API triggers. Jobs run one at a time (each renews its certificates with the
 * configured concurrency), so no two orders for one certificate overlap in this process; the store's lock covers
 * other processes. A request whose certificates a queued or running job with the same options already covers
 * returns that job; one that is not covered is merged into the queued job with the same options, if any.
 * So a burst of identical triggers is one job.
 */
export class JobQueue {
  private readonly jobs = new Map<string, Job>();
  private readonly waiting: Job[] = [];
  private running?: { job: Job; done: Promise<void> };
  private closed = false;
  private readonly controller = new AbortController();
  private idleWaiters: (() => void)[] = [];

  constructor(
    private readonly runner: JobRunner,
    private readonly opts: {
      allNames: () => string[];
      logger: Logger;
      now?: () => Date;
      onFinished?: (job: Job) => void | Promise<void>;
    },
  ) {}

  private now(): Date {
    return (this.opts.now ?? (() => new Date()))();
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  get(id: string): Job | undefined {
    return this.jobs.get(id);
  }

  list(): Job[] {
    return [...this.jobs.values()].reverse();
  }

  /** Adds (or joins) a job. Throws CK_ERR_SHUTTING_DOWN once closed. */
  submit(req: JobRequest): { job: Job; coalesced: boolean } {
    if (this.closed) {
      throw new CertkeeperError('internal', 'the daemon is shutting down and takes no new jobs', {
        code: 'CK_ERR_SHUTTING_DOWN',
        hint: 'retry once it has restarted',
      });
    }
    const names = [...new Set(req.names?.length ? req.names : this.opts.allNames())];
    const force = req.force === true;
    const dryRun = req.dryRun === true;
    const respectBackoff = req.respectBackoff === true;
    const same = (j: Job) => j.force === force && j.dryRun === dryRun && j.respectBackoff === respectBackoff;
    const covers = (j: Job) => names.every((n) => j.names.includes(n));
    const candidates = [...(this.running ? [this.running.job] : []), ...this.waiting];
    const covering = candidates.find((j) => same(j) && covers(j));
    if (covering) {
      covering.coalesced++;
      return { job: covering, coalesced: true };
    }
    const mergeable = this.waiting.find(same);
    if (mergeable) {
      for (const n of names) if (!mergeable.names.includes(n)) mergeable.names.push(n);
      mergeable.coalesced++;
      return { job: mergeable, coalesced: true };
    }
    const job: Job = {
      id: randomUUID(),
      state: 'queued',
      source: req.source,
      names,
      force,
      dryRun,
      respectBackoff,
      createdAt: this.now().toISOString(),
      coalesced: 0,
    };
    this.jobs.set(job.id, job);
    this.waiting.push(job);
    this.opts.logger.info(
      {
        event: 'job.queued',
        jobId: job.id,
        source: job.source,
        names: names.length <= 20 ? names : names.length,
        force,
        dryRun,
      },
      `job ${job.id} queued (${job.source}, ${names.length} certificate(s))`,
    );
    this.prune();
    this.pump();
    return { job, coalesced: false };
  }

  private pump(): void {
    if (this.running || this.closed) {
      if (!this.running) this.notifyIdle();
      return;
    }
    const job = this.waiting.shift();
    if (!job) {
      this.notifyIdle();
      return;
    }
    job.state = 'running';
    job.startedAt = this.now().toISOString();
    const t0 = Date.now();
    const done = (async () => {
      try {
        const report = await this.runner(job, this.controller.signal);
        job.results = report.results;
        job.state = report.ok ? 'succeeded' : 'failed';
      } catch (err) {
        const e = asCertkeeperError(err);
        job.error = e.toJSON();
        job.state = 'failed';
      }
      job.finishedAt = this.now().toISOString();
      this.prune();
      this.opts.logger.info(
        {
          event: 'job.finished',
          jobId: job.id,
          state: job.state,
          durationMs: Date.now() - t0,
          counts: countStatuses(job.results ?? []),
        },
        `job ${job.id} ${job.state}`,
      );
      try {
        await this.opts.onFinished?.(job);
      } catch (err) {
        this.opts.logger.error(
          { event: 'job.after_failed', jobId: job.id, error: String(err) },
          'post-job step failed',
        );
      }
    })();
    this.running = { job, done };
    void done.finally(() => {
      this.running = undefined;
      this.pump();
    });
  }

  private notifyIdle(): void {
    const w = this.idleWaiters;
    this.idleWaiters = [];
    for (const f of w) f();
  }

  /** Resolves when nothing is queued or running. */
  idle(): Promise<void> {
    if (!this.running && this.waiting.length === 0) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  get busy(): boolean {
    return !!this.running || this.waiting.length > 0;
  }

  /**
   * Stops taking jobs and cancels queued ones; waits up to `graceMs` for the running job, then aborts it
   * (its order stops at the next step; challenge cleanup still runs) and waits up to `abortMs` more.
   * Returns true when nothing was left running.
   */
  async close(graceMs: number, abortMs = 15_000): Promise<boolean> {
    this.closed = true;
    for (const j of this.waiting.splice(0)) {
      j.state = 'cancelled';
      j.finishedAt = this.now().toISOString();
    }
    const running = this.running?.done;
    if (!running) return true;
    if (await within(running, graceMs)) return true;
    this.opts.logger.warn(
      { event: 'job.aborting', graceMs },
      'in-flight renewal did not finish in time; aborting it',
    );
    this.controller.abort(
      new CertkeeperError('internal', 'aborted: the daemon is shutting down', {
        code: 'CK_ERR_SHUTTING_DOWN',
      }),
    );
    return within(running, abortMs);
  }

  private prune(): void {
    const finished = [...this.jobs.values()].filter((j) => j.finishedAt);
    for (const j of finished.slice(0, Math.max(0, finished.length - KEEP_FINISHED))) this.jobs.delete(j.id);
    let kept = 0;
    for (const j of finished.slice(-KEEP_FINISHED).reverse()) {
      if (!j.results) continue;
      if (kept > 0 && kept + j.results.length > KEEP_RESULTS) {
        j.counts = countStatuses(j.results);
        j.results = undefined;
      } else kept += j.results.length;
    }
  }
}

function countStatuses(results: CertResult[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of results) out[r.status] = (out[r.status] ?? 0) + 1;
  return out;
}
