/**
 * Configuration reload for the running daemon (SIGHUP, POST /v1/reload). The new file is read and validated
 * completely before anything changes; a configuration that does not validate leaves the old one running and says
 * why three ways: an error log line, a 'failure' alert, and `certkeeper_config_last_reload_successful 0`.
 *
 * A valid one is applied between jobs, never to one: a running renewal finishes with the configuration it started
 * with; queued and later jobs, the schedule, alert targets, renewal rules and the due-check use the new one, and
 * newly added certificates are checked (and issued) at once. What cannot change under a listening server —
 * `server.*` (listen address, token, body limit) and `acmAudit` — is reported as needing a restart.
 */
import { isDeepStrictEqual } from 'node:util';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Config } from '../config/schema.js';
import { asCertkeeperError, CertkeeperError, ConfigError } from '../errors.js';
import type { Logger } from '../log.js';
import type { AlertDispatcher } from '../notify/index.js';
import { Scheduler } from './scheduler.js';

export type ReloadSource = 'SIGHUP' | 'api';

export interface ReloadOutcome {
  ok: boolean;
  source: ReloadSource;
  at: string;
  /** Top-level sections and certificates that differ ("schedule", "certificates.added: shop", ...). */
  changed: string[];
  /** Changed sections that only take effect after a restart. */
  restartNeeded: string[];
  /** When !ok: what is wrong, one line each (field paths as check-config prints them). */
  issues?: string[];
  hint?: string;
  /** When !ok: CK_ERR_CONFIG, or CK_ERR_RELOAD_UNAVAILABLE when there is no file to read. */
  code?: string;
}

/** What the reloader needs of the daemon; the Daemon provides it (see Daemon.reload). */
export interface ReloadTarget {
  readonly config: Config;
  readonly alerts: AlertDispatcher;
  /** Swaps in a validated configuration (between jobs), then checks what became due. */
  useConfig(next: Config): Promise<void>;
}

const RESTART_ONLY = ['server', 'acmAudit'] as const;

/** What differs between two validated configurations. */
export function configChanges(old: Config, next: Config): { changed: string[]; restartNeeded: string[] } {
  const changed: string[] = [];
  const restartNeeded: string[] = [];
  const keys = new Set([...Object.keys(old), ...Object.keys(next)] as (keyof Config)[]);
  for (const k of keys) {
    if (k === 'certificates' || isDeepStrictEqual(old[k], next[k])) continue;
    changed.push(k);
    if ((RESTART_ONLY as readonly string[]).includes(k)) restartNeeded.push(k);
  }
  const before = new Map(old.certificates.map((c) => [c.name, c]));
  const after = new Map(next.certificates.map((c) => [c.name, c]));
  const added = [...after.keys()].filter((n) => !before.has(n));
  const removed = [...before.keys()].filter((n) => !after.has(n));
  const modified = [...after.keys()].filter(
    (n) => before.has(n) && !isDeepStrictEqual(before.get(n), after.get(n)),
  );
  if (added.length) changed.push(`certificates added: ${added.join(', ')}`);
  if (removed.length) changed.push(`certificates removed: ${removed.join(', ')}`);
  if (modified.length) changed.push(`certificates changed: ${modified.join(', ')}`);
  return { changed, restartNeeded };
}

/** Checks that are not in the schema but would fail when applied (cron expression, time zone). */
function validateApplicable(next: Config): void {
  new Scheduler({
    cron: next.schedule.cron,
    timezone: next.schedule.timezone,
    jitterSeconds: next.schedule.jitterSeconds,
    logger: { info() {} } as unknown as Logger,
    onTick: () => {},
  });
}

export interface ReloaderOptions {
  /** Reads and validates the configuration file (loadConfigIsolated in `certkeeper run`). */
  load: () => Promise<Config>;
  target: ReloadTarget;
  logger: Logger;
  registry: Registry;
  now?: () => Date;
}

/** One reload at a time; a second request while one runs waits for it and then reloads again. */
export class ConfigReloader {
  private chain: Promise<unknown> = Promise.resolve();
  private readonly now: () => Date;
  private readonly lastOk: Gauge;
  private readonly lastSuccess: Gauge;
  private readonly total: Counter<'result'>;
  last?: ReloadOutcome;

  constructor(private readonly opts: ReloaderOptions) {
    this.now = opts.now ?? (() => new Date());
    const registers = [opts.registry];
    this.lastOk = new Gauge({
      name: 'certkeeper_config_last_reload_successful',
      help: '1 when the last configuration reload succeeded (or none was asked for), 0 when the daemon still runs the previous configuration because the new one was invalid.',
      registers,
    });
    this.lastSuccess = new Gauge({
      name: 'certkeeper_config_last_reload_success_timestamp_seconds',
      help: 'When the running configuration was loaded (start or last successful reload), as a Unix timestamp.',
      registers,
    });
    this.total = new Counter({
      name: 'certkeeper_config_reloads_total',
      help: 'Configuration reloads asked for (SIGHUP, POST /v1/reload), by result (success, failure).',
      labelNames: ['result'],
      registers,
    });
    this.lastOk.set(1);
    this.lastSuccess.set(Math.floor(this.now().getTime() / 1000));
    this.total.inc({ result: 'success' }, 0);
    this.total.inc({ result: 'failure' }, 0);
  }

  reload(source: ReloadSource): Promise<ReloadOutcome> {
    const run = this.chain.then(() => this.doReload(source));
    this.chain = run.catch(() => {});
    return run;
  }

  private async doReload(source: ReloadSource): Promise<ReloadOutcome> {
    const { target, logger } = this.opts;
    const at = this.now();
    let next: Config;
    try {
      next = await this.opts.load();
      validateApplicable(next);
    } catch (err) {
      const ce = asCertkeeperError(err, 'config');
      const issues = ce instanceof ConfigError ? ce.issues : [ce.message];
      const outcome: ReloadOutcome = {
        ok: false,
        source,
        at: at.toISOString(),
        changed: [],
        restartNeeded: [],
        issues,
        hint:
          ce.hint ??
          'fix the configuration file (certkeeper check-config shows the same problems), then reload again',
        code: ce.code,
      };
      if (ce.code === 'CK_ERR_RELOAD_UNAVAILABLE') return outcome; // nothing to reload: not a broken configuration
      this.record(outcome);
      logger.error(
        { event: 'config.reload_failed', source, issues, hint: outcome.hint },
        `configuration reload (${source}) failed; still running the previous configuration: ${issues.join('; ')}`,
      );
      target.alerts.notify({
        event: 'failure',
        certificate: 'configuration',
        domains: [],
        message: `configuration reload failed; certkeeper keeps running the previous configuration: ${issues.join('; ')}`,
        hint: outcome.hint,
        code: ce.code,
        at: at.toISOString(),
      });
      return outcome;
    }
    const { changed, restartNeeded } = configChanges(target.config, next);
    try {
      await target.useConfig(next);
    } catch (err) {
      // Swapped in, but the follow-up check (reading the store, the due-check) failed: the next tick tries again.
      logger.error(
        { event: 'config.check_failed', error: (err as Error).message },
        `configuration reloaded, but checking the certificates after it failed (${(err as Error).message}); the next scheduled check tries again`,
      );
    }
    const outcome: ReloadOutcome = { ok: true, source, at: at.toISOString(), changed, restartNeeded };
    this.record(outcome);
    logger.info(
      { event: 'config.reloaded', source, changed, restartNeeded },
      changed.length
        ? `configuration reloaded (${source}): ${changed.join('; ')}`
        : `configuration reloaded (${source}): nothing changed`,
    );
    if (restartNeeded.length) {
      logger.warn(
        { event: 'config.restart_needed', sections: restartNeeded },
        `${restartNeeded.join(' and ')} changed: restart certkeeper for that to take effect (the rest is applied)`,
      );
    }
    return outcome;
  }

  private record(o: ReloadOutcome): void {
    this.last = o;
    this.total.inc({ result: o.ok ? 'success' : 'failure' });
    this.lastOk.set(o.ok ? 1 : 0);
    if (o.ok) this.lastSuccess.set(Math.floor(Date.parse(o.at) / 1000));
  }
}

/** The error a reload request gets when the daemon was not started from a file (library use, some tests). */
export function reloadUnavailable(): CertkeeperError {
  return new CertkeeperError('config', 'this daemon was not started from a configuration file', {
    code: 'CK_ERR_RELOAD_UNAVAILABLE',
    hint: 'start it with certkeeper run --config FILE (or CERTKEEPER_CONFIG) to reload that file',
  });
}
