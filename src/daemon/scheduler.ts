import cron from 'node-cron';
import { CertkeeperError } from '../errors.js';
import type { Logger } from '../log.js';

export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const realTimers: Timers = {
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms);
    t.unref?.();
    return t;
  },
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

/** Twice a day at a random minute, 12 hours apart (so not every certkeeper on earth hits the CA at :00). */
export function defaultCron(random: () => number = Math.random): string {
  const minute = Math.floor(random() * 60);
  const hour = Math.floor(random() * 12);
  return `${minute} ${hour},${hour + 12} * * *`;
}

/** A timer longer than this is re-armed in steps (setTimeout overflows after 24.8 days; clocks drift). */
const MAX_WAKE_MS = 6 * 3600_000;

export interface SchedulerOptions {
  cron?: string;
  timezone: string;
  jitterSeconds: number;
  logger: Logger;
  random?: () => number;
  timers?: Timers;
  now?: () => Date;
  /** 'schedule': a cron tick; 'wake': something became due (the daemon also wakes itself within 12 h). */
  onTick: (source: 'schedule' | 'wake') => void;
}

/**
 * The cron tick (with random jitter before each run), one "wake" timer for the earliest moment something becomes
 * due between ticks (a backoff expiring after a failure, an ARI moment, a renewal date) — fired at that moment, not
 * a second later. The daemon arms the wake at most 12 h ahead, so it checks twice a day whatever the cron says.
 */
export class Scheduler {
  expression: string;
  private task?: { stop(): unknown; destroy(): unknown };
  private wake?: unknown;
  private jitter = new Set<unknown>();
  private stopped = false;
  private readonly timers: Timers;
  private readonly random: () => number;

  constructor(private opts: SchedulerOptions) {
    this.random = opts.random ?? Math.random;
    this.timers = opts.timers ?? realTimers;
    this.expression = opts.cron ?? defaultCron(this.random);
    if (!cron.validate(this.expression)) {
      throw new CertkeeperError('config', `schedule.cron: "${this.expression}" is not a cron expression`, {
        field: 'schedule.cron',
        hint: 'use five fields "minute hour day month weekday", e.g. "17 3,15 * * *" (03:17 and 15:17)',
      });
    }
    try {
      Intl.DateTimeFormat('en', { timeZone: opts.timezone });
    } catch {
      throw new CertkeeperError('config', `schedule.timezone: "${opts.timezone}" is not a time zone`, {
        field: 'schedule.timezone',
        hint: 'use an IANA name such as UTC or Europe/Berlin',
      });
    }
  }

  /**
   * A reloaded schedule (already validated by constructing a Scheduler with it): re-arms the cron task with the new
   * expression, time zone and jitter; the wake timer stays.
   */
  reschedule(next: Pick<SchedulerOptions, 'cron' | 'timezone' | 'jitterSeconds'>): void {
    const expression =
      next.cron ?? (this.opts.cron === undefined ? this.expression : defaultCron(this.random));
    if (
      expression === this.expression &&
      next.timezone === this.opts.timezone &&
      next.jitterSeconds === this.opts.jitterSeconds
    )
      return;
    this.opts = { ...this.opts, ...next };
    this.expression = expression;
    if (this.task && !this.stopped) {
      void this.task.stop();
      void this.task.destroy();
      this.start();
    }
  }

  start(): void {
    this.stopped = false;
    this.task = cron.schedule(this.expression, () => this.fire(), {
      timezone: this.opts.timezone,
      noOverlap: true,
    });
    this.opts.logger.info(
      {
        event: 'schedule.started',
        cron: this.expression,
        timezone: this.opts.timezone,
        jitterSeconds: this.opts.jitterSeconds,
      },
      `checking certificates on "${this.expression}" (${this.opts.timezone})`,
    );
  }

  /** A cron tick: waits a random 0…jitterSeconds, then ticks. */
  fire(): void {
    if (this.stopped) return;
    const ms = Math.floor(this.random() * this.opts.jitterSeconds * 1000);
    const h = this.timers.setTimeout(() => {
      this.jitter.delete(h);
      if (!this.stopped) this.opts.onTick('schedule');
    }, ms);
    this.jitter.add(h);
  }

  private nowMs(): number {
    return (this.opts.now ?? (() => new Date()))().getTime();
  }

  /**
   * Arms the wake timer for `at` (replacing the previous one); undefined disarms it. The tick comes at `at`: a
   * timer that fires early (long timers are stepped; the wall clock and the timer clock drift apart) is re-armed
   * for what is left. A moment already past wakes after a second (never a busy loop).
   */
  wakeAt(at: Date | undefined): void {
    if (this.wake !== undefined) this.timers.clearTimeout(this.wake);
    this.wake = undefined;
    if (!at || this.stopped) return;
    const target = at.getTime();
    const arm = (first: boolean) => {
      const left = target - this.nowMs();
      if (!first && left <= 0) {
        this.wake = undefined;
        this.opts.onTick('wake');
        return;
      }
      this.wake = this.timers.setTimeout(
        () => {
          if (this.stopped) return;
          if (left <= 0) {
            this.wake = undefined;
            this.opts.onTick('wake');
          } else arm(false);
        },
        left > 0 ? Math.min(left, MAX_WAKE_MS) : 1000,
      );
    };
    arm(true);
  }

  stop(): void {
    this.stopped = true;
    void this.task?.stop();
    void this.task?.destroy();
    this.task = undefined;
    this.wakeAt(undefined);
    for (const h of this.jitter) this.timers.clearTimeout(h);
    this.jitter.clear();
  }
}
