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

type CronFields = ReturnType<typeof cron.parse>;
const DAY_MS = 86_400_000;
/** How far ahead nextUtcMatch looks (Feb 29 on a given weekday recurs within 28 years; beyond: node-cron's walker). */
const UTC_SEARCH_DAYS = 366 * 30;

/**
 * The fields node-cron parsed from `expression`, when the schedule can be followed in UTC without node-cron's
 * matcher: time zone UTC and day fields of plain numbers (no L, W or # tokens). node-cron reads every moment through
 * Intl.DateTimeFormat, whose ICU locale and zone data alone keep about 6 MB of the node binary resident in an otherwise
 * idle daemon; UTC needs none of it.
 */
export function utcCronFields(expression: string, timezone: string): CronFields | undefined {
  if (timezone !== 'UTC') return undefined;
  const fields = cron.parse(expression);
  const plain = (xs: readonly unknown[]) => xs.every((x) => typeof x === 'number');
  return plain(fields.dayOfMonth) && plain(fields.dayOfWeek) ? fields : undefined;
}

/**
 * The first whole second after `after` that the fields match in UTC (node-cron's rule: second, minute, hour, month,
 * day of month and day of week must all match; 7 is Sunday), or undefined if none within UTC_SEARCH_DAYS.
 */
export function nextUtcMatch(f: CronFields, after: Date): Date | undefined {
  const from = Math.floor(after.getTime() / 1000) * 1000 + 1000;
  const nums = (xs: readonly (number | string)[]) => [...new Set(xs.map(Number))].sort((a, b) => a - b);
  const [seconds, minutes, hours] = [nums(f.second), nums(f.minute), nums(f.hour)];
  const weekdays = new Set(nums(f.dayOfWeek).map((d) => d % 7));
  const [months, days] = [new Set(nums(f.month)), new Set(nums(f.dayOfMonth))];
  for (let day = from - (from % DAY_MS), i = 0; i < UTC_SEARCH_DAYS; i++, day += DAY_MS) {
    const d = new Date(day);
    if (!months.has(d.getUTCMonth() + 1) || !days.has(d.getUTCDate()) || !weekdays.has(d.getUTCDay()))
      continue;
    for (const h of hours)
      for (const m of minutes)
        for (const sec of seconds) {
          const at = day + h * 3600_000 + m * 60_000 + sec * 1000;
          if (at >= from) return new Date(at);
        }
  }
  return undefined;
}

export interface SchedulerOptions {
  cron?: string;
  timezone: string;
  jitterSeconds: number;
  logger: Logger;
  random?: () => number;
  timers?: Timers;
  now?: () => Date;
  /**
   * The clock the cron schedule follows: the real one by default, whatever `timers` and `now` are (as with
   * node-cron); the scheduler's own tests pass a fake one.
   */
  cronClock?: { timers: Timers; now: () => Date };
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
  /** The cron tick's timer when the schedule is followed in UTC here (utcCronFields) rather than by node-cron. */
  private cronTimer?: unknown;
  private wake?: unknown;
  private jitter = new Set<unknown>();
  private stopped = false;
  private readonly timers: Timers;
  private readonly cronClock: { timers: Timers; now: () => Date };
  private readonly random: () => number;

  constructor(private opts: SchedulerOptions) {
    this.random = opts.random ?? Math.random;
    this.timers = opts.timers ?? realTimers;
    this.cronClock = opts.cronClock ?? { timers: realTimers, now: () => new Date() };
    this.expression = opts.cron ?? defaultCron(this.random);
    if (!cron.validate(this.expression)) {
      throw new CertkeeperError('config', `schedule.cron: "${this.expression}" is not a cron expression`, {
        field: 'schedule.cron',
        hint: 'use five fields "minute hour day month weekday", e.g. "17 3,15 * * *" (03:17 and 15:17)',
      });
    }
    try {
      // (UTC needs no check, and would load ICU's data for nothing: see utcCronFields)
      if (opts.timezone !== 'UTC') Intl.DateTimeFormat('en', { timeZone: opts.timezone });
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
    if ((this.task || this.cronTimer !== undefined) && !this.stopped) {
      this.stopCron();
      this.start();
    }
  }

  start(): void {
    this.stopped = false;
    const utc = utcCronFields(this.expression, this.opts.timezone);
    const first = utc && nextUtcMatch(utc, this.cronClock.now());
    if (utc && first) this.armCron(utc, first);
    else {
      this.task = cron.schedule(this.expression, () => this.fire(), {
        timezone: this.opts.timezone,
        noOverlap: true,
      });
    }
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

  /** The cron tick at `at` (stepped like the wake timer, re-armed if a timer fires early), then the next one. */
  private armCron(fields: CronFields, at: Date): void {
    const target = at.getTime();
    const arm = () => {
      const left = target - this.cronClock.now().getTime();
      if (left <= 0) {
        this.cronTimer = undefined;
        this.fire();
        const next = nextUtcMatch(fields, new Date(Math.max(this.cronClock.now().getTime(), target)));
        if (next) this.armCron(fields, next);
        return;
      }
      this.cronTimer = this.cronClock.timers.setTimeout(
        () => {
          if (!this.stopped) arm();
        },
        Math.min(left, MAX_WAKE_MS),
      );
    };
    arm();
  }

  private stopCron(): void {
    void this.task?.stop();
    void this.task?.destroy();
    this.task = undefined;
    if (this.cronTimer !== undefined) this.cronClock.timers.clearTimeout(this.cronTimer);
    this.cronTimer = undefined;
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
    this.stopCron();
    this.wakeAt(undefined);
    for (const h of this.jitter) this.timers.clearTimeout(h);
    this.jitter.clear();
  }
}
