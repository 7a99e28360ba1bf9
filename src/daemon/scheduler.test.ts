import cron from 'node-cron';
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../log.js';
import { nextUtcMatch, Scheduler, type Timers, utcCronFields } from './scheduler.js';

/** A fake clock and timer queue: advance() moves the clock and fires what is due, in order. */
function fakeClock(start: number) {
  let now = start;
  let seq = 0;
  const pending = new Map<number, { at: number; fn: () => void }>();
  const timers: Timers = {
    setTimeout: (fn, ms) => {
      const id = ++seq;
      pending.set(id, { at: now + ms, fn });
      return id;
    },
    clearTimeout: (h) => void pending.delete(h as number),
  };
  return {
    timers,
    now: () => new Date(now),
    pending: () => [...pending.values()].map((p) => p.at - now).sort((a, b) => a - b),
    /** Moves the clock to `to`, firing every timer due by then (timers armed meanwhile too). */
    advanceTo(to: number) {
      for (;;) {
        const next = [...pending.entries()].sort((a, b) => a[1].at - b[1].at)[0];
        if (!next || next[1].at > to) break;
        pending.delete(next[0]);
        now = next[1].at;
        next[1].fn();
      }
      now = to;
    },
    /** A timer that fires `early` ms before its time (what a drifting wall clock looks like). */
    fireEarly(early: number) {
      const next = [...pending.entries()].sort((a, b) => a[1].at - b[1].at)[0]!;
      pending.delete(next[0]);
      now = next[1].at - early;
      next[1].fn();
    },
  };
}

const T0 = Date.parse('2030-01-01T00:00:00Z');

function scheduler(
  clock: ReturnType<typeof fakeClock>,
  ticks: { source: string; at: number }[],
  cron: string,
) {
  return new Scheduler({
    cron,
    timezone: 'UTC',
    jitterSeconds: 0,
    logger: silentLogger,
    timers: clock.timers,
    now: clock.now,
    cronClock: { timers: clock.timers, now: clock.now },
    onTick: (source) => ticks.push({ source, at: clock.now().getTime() }),
  });
}

describe('Scheduler', () => {
  it('wakes exactly when something is due, also far ahead (stepped timers) and after an early timer', () => {
    const clock = fakeClock(T0);
    const ticks: { source: string; at: number }[] = [];
    const s = scheduler(clock, ticks, '0 3 * * *');
    // in 350 ms: not rounded up to a second
    s.wakeAt(new Date(T0 + 350));
    expect(clock.pending()).toEqual([350]);
    clock.advanceTo(T0 + 350);
    expect(ticks).toEqual([{ source: 'wake', at: T0 + 350 }]);

    // 20 hours ahead: re-armed in steps, the tick lands on the moment itself
    const far = T0 + 350 + 20 * 3600_000;
    s.wakeAt(new Date(far));
    clock.advanceTo(far - 1);
    expect(ticks).toHaveLength(1);
    clock.advanceTo(far);
    expect(ticks[1]).toEqual({ source: 'wake', at: far });

    // a timer that fires 40 ms early is re-armed for the 40 ms left, not taken as the moment
    const soon = far + 5000;
    s.wakeAt(new Date(soon));
    clock.fireEarly(40);
    expect(ticks).toHaveLength(2);
    expect(clock.pending()).toEqual([40]);
    clock.advanceTo(soon);
    expect(ticks[2]).toEqual({ source: 'wake', at: soon });

    // a moment already past: a tick after a second, never a busy loop
    s.wakeAt(new Date(soon - 10));
    expect(clock.pending()).toEqual([1000]);
    s.stop();
  });

  it('ticks on a UTC cron schedule by its own timer, at the second, without node-cron (and so without Intl)', () => {
    const clock = fakeClock(T0);
    const ticks: { source: string; at: number }[] = [];
    const Real = Intl.DateTimeFormat;
    let formatters = 0;
    Intl.DateTimeFormat = new Proxy(Real, {
      construct: (target, args) => {
        formatters++;
        return new target(...(args as []));
      },
      apply: (target, self, args) => {
        formatters++;
        return Reflect.apply(target, self, args);
      },
    });
    let s: Scheduler;
    try {
      s = scheduler(clock, ticks, '17 3,15 * * *');
      s.start();
      clock.advanceTo(T0 + 60_000);
    } finally {
      Intl.DateTimeFormat = Real;
    }
    expect(formatters).toBe(0);
    // one timer (the first tick is 3 h 17 min ahead)
    expect(clock.pending()).toEqual([3 * 3600_000 + 16 * 60_000]);
    clock.advanceTo(T0 + 2 * 86_400_000);
    const h = 3600_000;
    const m = 60_000;
    expect(ticks.map((t) => (t.at - T0) / m)).toEqual(
      [3 * h + 17 * m, 15 * h + 17 * m, 27 * h + 17 * m, 39 * h + 17 * m].map((x) => x / m),
    );
    expect(ticks.every((t) => t.source === 'schedule')).toBe(true);
    // a reloaded schedule replaces the timer; stop leaves none
    s.reschedule({ cron: '0 0 * * *', timezone: 'UTC', jitterSeconds: 0 });
    expect(clock.pending()).toEqual([6 * 3600_000]); // 24 h ahead, in steps of 6 h
    s.stop();
    expect(clock.pending()).toEqual([]);
  });

  it('finds the same next moments in UTC as node-cron does', () => {
    const expressions = [
      '17 3,15 * * *',
      '*/7 * * * *',
      '30 2 * * 1-5',
      '0 12 1,15 * *',
      '0 0 * 6 0',
      '15 10 * * 7',
      '0 0 29 2 *',
      '*/20 * * * * *',
      '5 4 31 * *',
    ];
    for (const expression of expressions) {
      const fields = utcCronFields(expression, 'UTC');
      expect(fields, expression).toBeDefined();
      const task = cron.createTask(expression, () => {}, { timezone: 'UTC' });
      try {
        for (let attempt = 0; ; attempt++) {
          const from = new Date();
          const theirs = task.getNextRuns(4).map((d) => d.toISOString());
          const ours: string[] = [];
          let at = from;
          for (let i = 0; i < 4; i++) {
            at = nextUtcMatch(fields!, at)!;
            ours.push(at.toISOString());
          }
          // (a second boundary passed between the two: ask again)
          if (theirs[0] !== ours[0] && attempt < 3) continue;
          expect(ours, expression).toEqual(theirs);
          break;
        }
      } finally {
        void task.destroy();
      }
    }
    // other zones and L/W/# tokens stay with node-cron
    expect(utcCronFields('0 3 * * *', 'Europe/Berlin')).toBeUndefined();
    expect(utcCronFields('0 3 L * *', 'UTC')).toBeUndefined();
    expect(utcCronFields('0 3 * * 1#2', 'UTC')).toBeUndefined();
  });
});
