import type { Logger } from '../log.js';
import { retry } from '../platform/retry.js';
import { sleep, within } from '../platform/sleep.js';
import * as email from './email.js';
import type { NotifyConfig } from './schema.js';
import * as slack from './slack.js';
import type { Alert, Notifier } from './types.js';
import * as webhook from './webhook.js';

export type { Alert, AlertEvent, Notifier } from './types.js';

export function createNotifier(config: NotifyConfig, timeoutMs?: number): Notifier {
  switch (config.type) {
    case 'webhook':
      return webhook.create(config, timeoutMs);
    case 'slack':
      return slack.create(config, timeoutMs);
    case 'email':
      return email.create(config, timeoutMs);
  }
}

export interface DispatcherOptions {
  logger: Logger;
  now?: () => Date;
  /** Waits between delivery attempts; injectable so tests do not sleep. */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  /** Delays before attempts 2, 3, … (default 1 s, 5 s, 30 s: four attempts in about half a minute). */
  retryDelaysMs?: number[];
  timeoutMs?: number;
}

const DAY = 86_400_000;

/** Waits between delivery attempts; resolves early (never rejects) when the dispatcher closes. */
function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  return sleep(ms, signal).catch(() => {});
}

/**
 * Sends alerts to every target that subscribed to the alert's event, in the background, each with bounded retries.
 * A target that cannot be reached is logged (host only) and given up on after the last retry; nothing here throws.
 * Also remembers when the 'expiring' alert was last sent per certificate, so it repeats daily until fixed.
 */
export class AlertDispatcher {
  private notifiers: Notifier[];
  private readonly pending = new Set<Promise<void>>();
  private readonly lastExpiring = new Map<string, number>();
  private readonly lastAudit = new Map<string, number>();
  private readonly abort = new AbortController();
  private readonly now: () => Date;
  private readonly sleep: (ms: number, signal: AbortSignal) => Promise<void>;
  private readonly delays: number[];
  /** Delivered alerts (target name, event, certificate) — for logs and tests. */
  delivered = 0;
  failed = 0;

  constructor(
    targets: NotifyConfig[] | Notifier[],
    private readonly opts: DispatcherOptions,
  ) {
    this.notifiers = targets.map((t) =>
      'send' in t ? t : createNotifier(t as NotifyConfig, opts.timeoutMs),
    );
    this.now = opts.now ?? (() => new Date());
    this.sleep = opts.sleep ?? abortableSleep;
    this.delays = opts.retryDelaysMs ?? [1000, 5000, 30_000];
  }

  /** A reloaded configuration's targets; deliveries in flight finish with the old ones. */
  setTargets(targets: NotifyConfig[]): void {
    this.notifiers = targets.map((t) => createNotifier(t, this.opts.timeoutMs));
  }

  get size(): number {
    return this.notifiers.length;
  }

  /** Queues one alert for every interested target; returns at once. */
  notify(alert: Alert): void {
    for (const n of this.notifiers) {
      if (!n.events.includes(alert.event)) continue;
      const p = this.deliver(n, alert).finally(() => this.pending.delete(p));
      this.pending.add(p);
    }
  }

  /**
   * 'Expiring in under N days and the last attempt failed': alerts once, then again when a day has passed,
   * until the certificate is fixed (then forgets it, so a later problem alerts at once).
   */
  expiring(candidates: { alert: Alert; failing: boolean }[]): void {
    this.daily(
      this.lastExpiring,
      candidates.filter((c) => c.failing).map((c) => ({ key: c.alert.certificate, alert: c.alert })),
    );
  }

  /**
   * Critical ACM audit findings, keyed by ARN and rule: each alerts once, then at most daily while the audit keeps
   * finding it; a finding that disappears is forgotten (a later recurrence alerts at once).
   */
  audit(findings: { key: string; alert: Alert }[]): void {
    this.daily(this.lastAudit, findings);
  }

  private daily(last: Map<string, number>, items: { key: string; alert: Alert }[]): void {
    const nowMs = this.now().getTime();
    const seen = new Set<string>();
    for (const { key, alert } of items) {
      seen.add(key);
      const at = last.get(key);
      if (at !== undefined && nowMs - at < DAY) continue;
      last.set(key, nowMs);
      this.notify(alert);
    }
    for (const key of last.keys()) if (!seen.has(key)) last.delete(key);
  }

  private async deliver(n: Notifier, alert: Alert): Promise<void> {
    const log = this.opts.logger.child({ notifier: n.name, cert: alert.certificate, alert: alert.event });
    if (this.abort.signal.aborted) {
      this.failed++;
      return;
    }
    let attempts = 0;
    try {
      await retry(
        async (attempt) => {
          attempts = attempt;
          const t0 = Date.now();
          await n.send(alert, this.abort.signal);
          log.info({ event: 'notify.sent', attempt, durationMs: Date.now() - t0 }, `alert sent to ${n.name}`);
        },
        {
          delaysMs: this.delays,
          signal: this.abort.signal,
          sleep: (ms, signal) => this.sleep(ms, signal ?? this.abort.signal),
          onRetry: (err, attempt) =>
            log.warn(
              { event: 'notify.retry', attempt, error: (err as Error).message },
              `alert to ${n.name} failed, retrying`,
            ),
        },
      );
      this.delivered++;
    } catch (err) {
      log.error(
        { event: 'notify.failed', attempt: attempts, error: (err as Error).message },
        `could not deliver the ${alert.event} alert to ${n.name}; giving up (check the target's address, and for e-mail the SMTP settings)`,
      );
      this.failed++;
    }
  }

  /** Resolves when every queued delivery has finished (sent or given up). */
  async flush(): Promise<void> {
    while (this.pending.size) await Promise.allSettled([...this.pending]);
  }

  /** Waits up to `graceMs` for deliveries in flight, then abandons the rest. */
  async close(graceMs = 5000): Promise<void> {
    await within(this.flush(), graceMs);
    this.abort.abort();
    await this.flush();
  }
}
