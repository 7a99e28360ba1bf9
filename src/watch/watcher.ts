/**
 * Watches served certificates: the `watch:` endpoints (any server, whoever issued the certificate) on their own
 * schedule, and what the nginx deployers' verify addresses serve for certkeeper's own certificates (after each
 * check and job). One TLS handshake per probe (src/verify/tls-probe.ts); results feed the metrics, the status
 * page and 'endpoint' alerts (at once, then at most daily while the problem lasts).
 */
import { readFile } from 'node:fs/promises';
import { mapLimit } from '../concurrency.js';
import type { Config } from '../config/schema.js';
import { splitPemChain } from '../crypto/pem.js';
import type { Logger } from '../log.js';
import type { Alert, AlertDispatcher } from '../notify/index.js';
import { parseAddress, probeServedCertificate, sameSerial, sniFor } from '../verify/tls-probe.js';
import { watchLabel } from './label.js';
import type { WatchEntry } from './schema.js';

const DAY = 86_400_000;
/** A timer longer than this is re-armed in steps. */
const MAX_TIMER_MS = 3600_000;

export interface WatchTimers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export type EndpointProblem = 'unreachable' | 'expired' | 'expiring' | 'untrusted' | 'name-mismatch';

export interface EndpointStatus {
  label: string;
  address: string;
  sni?: string;
  checkedAt?: string;
  /** The TLS handshake completed. */
  reachable?: boolean;
  error?: string;
  serial?: string;
  subject?: string;
  issuer?: string;
  notBefore?: string;
  notAfter?: string;
  daysLeft?: number;
  /** The chain verified against the system roots (plus caFile); expiry and the name are checked apart. */
  trusted?: boolean;
  trustError?: string;
  /** The certificate is valid for the SNI name (or the IP address). */
  nameMatches?: boolean;
  problems: EndpointProblem[];
  durationMs?: number;
}

/** What a certkeeper-managed certificate's nginx serves at its verify address. */
export interface ServedStatus {
  cert: string;
  /** Deployer label, e.g. "nginx (docker container web)". */
  deployer: string;
  address: string;
  sni: string;
  checkedAt: string;
  servedSerial?: string;
  /** The served serial is the live one in the store. */
  matches?: boolean;
  notAfter?: string;
  error?: string;
}

export interface ServedTarget {
  cert: string;
  deployer: string;
  address: string;
  sni: string;
}

export interface WatcherOptions {
  config: Config;
  logger: Logger;
  alerts: AlertDispatcher;
  now: () => Date;
  timers?: WatchTimers;
  /** The live serial of a managed certificate (from the daemon's state cache). */
  liveSerial: (cert: string) => string | undefined;
}

const realTimers: WatchTimers = {
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms);
    t.unref?.();
    return t;
  },
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

interface Entry {
  cfg: WatchEntry;
  label: string;
  nextAt: number;
}

export class Watcher {
  readonly endpoints = new Map<string, EndpointStatus>();
  /** Served certificates by "cert|address". */
  readonly served = new Map<string, ServedStatus>();
  probes = 0;
  private entries: Entry[];
  private config: Config;
  private readonly lastAlert = new Map<string, number>();
  private readonly timers: WatchTimers;
  private timer?: unknown;
  private running?: Promise<void>;
  private stopped = false;

  constructor(private readonly opts: WatcherOptions) {
    this.timers = opts.timers ?? realTimers;
    this.config = opts.config;
    this.entries = [];
    this.setConfig(opts.config);
  }

  /**
   * A reloaded configuration: entries that stayed the same keep their schedule and last result; new or changed
   * ones are probed at the next runDue(); removed ones (and certificates no longer configured) are forgotten.
   */
  setConfig(config: Config): void {
    this.config = config;
    const old = new Map(this.entries.map((e) => [e.label, e]));
    this.entries = config.watch.map((cfg) => {
      const label = watchLabel(cfg);
      const prev = old.get(label);
      const same = prev !== undefined && JSON.stringify(prev.cfg) === JSON.stringify(cfg);
      if (!same) this.endpoints.set(label, { label, address: cfg.address, sni: sniOf(cfg), problems: [] });
      return { cfg, label, nextAt: same ? prev.nextAt : 0 };
    });
    const labels = new Set(this.entries.map((e) => e.label));
    for (const label of [...this.endpoints.keys()]) if (!labels.has(label)) this.endpoints.delete(label);
    const targets = new Set(this.servedTargets().map((t) => `${t.cert}|${t.address}`));
    for (const key of [...this.served.keys()]) if (!targets.has(key)) this.served.delete(key);
  }

  get size(): number {
    return this.entries.length;
  }

  /** Probes every endpoint now, then keeps each on its interval. */
  start(): Promise<void> {
    if (!this.entries.length) return Promise.resolve();
    return this.runDue(true);
  }

  /** Probes the endpoints that are due (all when `all`); joins a run in progress. Never throws. */
  runDue(all = false): Promise<void> {
    if (this.stopped) return Promise.resolve();
    this.running ??= this.doRun(all).finally(() => {
      this.running = undefined;
      this.arm();
    });
    return this.running;
  }

  private async doRun(all: boolean): Promise<void> {
    const nowMs = this.opts.now().getTime();
    const due = this.entries.filter((e) => all || e.nextAt <= nowMs);
    await mapLimit(due, 8, async (e) => {
      const status = await this.probeEndpoint(e);
      e.nextAt = nowMs + e.cfg.intervalSeconds * 1000;
      if (this.stopped) return;
      this.endpoints.set(e.label, status);
    });
    if (!this.stopped) this.alert();
  }

  private arm(): void {
    if (this.stopped || !this.entries.length) return;
    if (this.timer !== undefined) this.timers.clearTimeout(this.timer);
    const next = Math.min(...this.entries.map((e) => e.nextAt));
    const ms = Math.max(1000, Math.min(MAX_TIMER_MS, next - this.opts.now().getTime()));
    this.timer = this.timers.setTimeout(() => {
      this.timer = undefined;
      void this.runDue();
    }, ms);
  }

  private async probeEndpoint(e: Entry): Promise<EndpointStatus> {
    const { cfg, label } = e;
    const sni = sniOf(cfg);
    const base: EndpointStatus = { label, address: cfg.address, sni, problems: [] };
    const t0 = Date.now();
    const now = this.opts.now();
    const log = this.opts.logger.child({ component: 'watch', endpoint: label });
    this.probes++;
    let ca: string[] | undefined;
    try {
      if (cfg.caFile) ca = splitPemChain(await readFile(cfg.caFile, 'utf8'));
    } catch (err) {
      const error = `watch caFile ${cfg.caFile}: ${(err as Error).message}`;
      log.warn({ event: 'watch.ca_unreadable', error }, `${label}: ${error}`);
      return { ...base, checkedAt: now.toISOString(), reachable: false, error, problems: ['unreachable'] };
    }
    try {
      const target = parseAddress(cfg.address, 'watch.address');
      const host = target.host;
      const got = await probeServedCertificate(target, sni ?? host, cfg.timeoutSeconds * 1000, { ca });
      const left = got.notAfter.getTime() - now.getTime();
      const lifetime = got.notAfter.getTime() - got.notBefore.getTime();
      const problems: EndpointProblem[] = [];
      if (left <= 0) problems.push('expired');
      else if (cfg.warnDays !== undefined ? left < cfg.warnDays * DAY : left < cfg.warnFraction * lifetime)
        problems.push('expiring');
      // Node reports a name mismatch as an authorization error too; the chain itself verified then.
      const chainOk =
        got.authorized ||
        got.authorizationError === 'ERR_TLS_CERT_ALTNAME_INVALID' ||
        got.authorizationError === 'CERT_HAS_EXPIRED';
      if (!chainOk) problems.push('untrusted');
      if (!got.matchesName) problems.push('name-mismatch');
      const status: EndpointStatus = {
        ...base,
        checkedAt: now.toISOString(),
        reachable: true,
        serial: got.serial,
        subject: oneLine(got.subject),
        issuer: oneLine(got.issuer),
        notBefore: got.notBefore.toISOString(),
        notAfter: got.notAfter.toISOString(),
        daysLeft: Math.floor(left / DAY),
        trusted: chainOk,
        trustError: chainOk ? undefined : got.authorizationError,
        nameMatches: got.matchesName,
        problems,
        durationMs: Date.now() - t0,
      };
      log[problems.length ? 'warn' : 'debug'](
        {
          event: 'watch.probed',
          problems,
          serial: got.serial,
          notAfter: status.notAfter,
          durationMs: status.durationMs,
        },
        problems.length ? `${label}: ${problems.join(', ')}` : `${label}: ok`,
      );
      return status;
    } catch (err) {
      const error = describeProbeError(err);
      log.warn({ event: 'watch.unreachable', error }, `${label}: ${error}`);
      return {
        ...base,
        checkedAt: now.toISOString(),
        reachable: false,
        error,
        problems: ['unreachable'],
        durationMs: Date.now() - t0,
      };
    }
  }

  /** One alert per endpoint and problem set: at once, then daily while it persists; forgotten once fixed. */
  private alert(): void {
    const nowMs = this.opts.now().getTime();
    const seen = new Set<string>();
    for (const s of this.endpoints.values()) {
      if (!s.problems.length) continue;
      const key = `${s.label}|${s.problems.join(',')}`;
      seen.add(key);
      const at = this.lastAlert.get(key);
      if (at !== undefined && nowMs - at < DAY) continue;
      this.lastAlert.set(key, nowMs);
      this.opts.alerts.notify(endpointAlert(s, this.opts.now()));
    }
    for (const key of this.lastAlert.keys()) if (!seen.has(key)) this.lastAlert.delete(key);
  }

  /** Where each managed certificate's nginx deployers can be asked what they serve (verify.address, or the default). */
  servedTargets(names?: string[]): ServedTarget[] {
    const only = names && new Set(names);
    const out: ServedTarget[] = [];
    for (const c of this.config.certificates) {
      if (only && !only.has(c.name)) continue;
      for (const d of c.deploy) {
        if (d.type !== 'nginx' || !d.verify.enabled) continue;
        // docker mode without verify.address verifies at the container's own address, known only after a deploy.
        if (!d.verify.address && d.docker) continue;
        const address = d.verify.address ?? '127.0.0.1:443';
        const deployer = d.docker
          ? `nginx (docker ${'container' in d.docker ? d.docker.container : d.docker.label})`
          : d.signal
            ? `nginx (pid file ${d.signal.pidFile})`
            : `nginx (${d.command?.[0] ?? 'command'})`;
        out.push({ cert: c.name, deployer, address, sni: sniFor(c.domains[0]!) });
      }
    }
    return out;
  }

  /** Asks every nginx verify address what it serves for the given certificates (all by default). Never throws. */
  async checkServed(names?: string[]): Promise<void> {
    if (this.stopped) return;
    const targets = this.servedTargets(names);
    await mapLimit(targets, 8, async (t) => {
      const checkedAt = this.opts.now().toISOString();
      const key = `${t.cert}|${t.address}`;
      try {
        const got = await probeServedCertificate(parseAddress(t.address), t.sni, 3000);
        const live = this.opts.liveSerial(t.cert);
        this.served.set(key, {
          ...t,
          checkedAt,
          servedSerial: got.serial,
          matches: live ? sameSerial(live, got.serial) : undefined,
          notAfter: got.notAfter.toISOString(),
        });
      } catch (err) {
        this.served.set(key, { ...t, checkedAt, error: describeProbeError(err) });
      }
    });
  }

  stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== undefined) this.timers.clearTimeout(this.timer);
    this.timer = undefined;
    return this.running ?? Promise.resolve();
  }
}

function sniOf(cfg: WatchEntry): string | undefined {
  if (cfg.sni) return cfg.sni;
  try {
    const { host } = parseAddress(cfg.address, 'watch.address');
    return /^[0-9.]+$/.test(host) || host.includes(':') ? undefined : host;
  } catch {
    return undefined;
  }
}

/** Distinguished names print one attribute per line; keep log lines and labels to one line. */
function oneLine(dn: string): string {
  return dn.split('\n').filter(Boolean).join(', ');
}

function describeProbeError(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  if (e?.code === 'ECONNREFUSED') return 'connection refused';
  if (e?.code === 'ENOTFOUND' || e?.code === 'EAI_AGAIN') return 'host name does not resolve';
  if (e?.code === 'ETIMEDOUT') return 'no TLS handshake in time';
  if (e?.code === 'ECONNRESET') return 'connection reset during the TLS handshake';
  return (e?.message ?? String(err)).split('\n')[0]!.slice(0, 300);
}

const PROBLEM_TEXT: Record<EndpointProblem, string> = {
  unreachable: 'cannot be checked',
  expired: 'serves an expired certificate',
  expiring: 'serves a certificate close to expiry',
  untrusted: 'serves a certificate that does not verify',
  'name-mismatch': 'serves a certificate for another name',
};

const PROBLEM_HINT: Record<EndpointProblem, string> = {
  unreachable:
    'check that the address answers TLS from the certkeeper host (firewall, DNS, port), or fix the watch entry',
  expired: 'renew or replace the certificate where it is served (ACM, the load balancer, the server) now',
  expiring:
    'renew or replace the certificate where it is served; for ACM, check that its renewal is eligible (certkeeper acm audit)',
  untrusted:
    'serve the full chain (leaf and intermediates) from a public CA, or set watch caFile for an internal CA',
  'name-mismatch': 'serve a certificate that covers this name, or set watch sni to the name clients use',
};

function endpointAlert(s: EndpointStatus, now: Date): Alert {
  const first = s.problems[0]!;
  const what = s.problems.map((p) => PROBLEM_TEXT[p]).join('; ');
  const detail =
    first === 'unreachable'
      ? `: ${s.error}`
      : s.notAfter
        ? ` (serial ${s.serial}, valid until ${s.notAfter}${s.trustError ? `, ${s.trustError}` : ''})`
        : '';
  return {
    event: 'endpoint',
    certificate: s.label,
    domains: s.sni ? [s.sni] : [],
    message: `${s.address}${s.sni ? ` (SNI ${s.sni})` : ''} ${what}${detail}`,
    hint: PROBLEM_HINT[first],
    code: `CK_WATCH_${first.toUpperCase().replace('-', '_')}`,
    serial: s.serial,
    notAfter: s.notAfter,
    daysLeft: s.daysLeft,
    at: now.toISOString(),
    endpoint: {
      name: s.label,
      address: s.address,
      sni: s.sni,
      problem: s.problems.join(','),
      issuer: s.issuer,
    },
  };
}
