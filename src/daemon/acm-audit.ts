import type { ACMClient } from '@aws-sdk/client-acm';
import type { Config } from '../config/schema.js';
import type { Finding, FindingRule } from '../deploy/acm/audit.js';
import type { ReplaceDeps, ReplaceEvent, ReplacePlan } from '../deploy/acm/replace.js';
import type { AcmAuditConfig } from '../deploy/acm/schema.js';
import { asCertkeeperError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Alert, AlertDispatcher } from '../notify/index.js';
import { within } from '../platform/sleep.js';
import type { CertStore } from '../store/store.js';
import { realTimers, type Timers } from './scheduler.js';

const DAY = 86_400_000;
/** After a failed audit (credentials, throttling, network), try again this much later rather than a day later. */
const RETRY_MS = 3600_000;
/** A timer longer than this is re-armed in steps (clocks drift; tests inject their own timers). */
const MAX_TIMER_MS = 6 * 3600_000;

export interface AuditRun {
  at: string;
  ok: boolean;
  durationMs: number;
  findings?: number;
  error?: { code?: string; message: string; hint?: string };
}

export interface AuditSummary {
  counts: Record<FindingRule, { critical: number; warning: number }>;
  lastSuccessAt: Date;
}

export interface AcmAuditorOptions {
  audit: AcmAuditConfig;
  config: Config;
  store: CertStore;
  alerts: AlertDispatcher;
  logger: Logger;
  now: () => Date;
  timers?: Timers;
  /** Tests may inject clients; by default one real ACMClient per region (AWS_* settings as for the AWS CLI). */
  clientFor?: (region: string) => ACMClient;
  /** With acmAudit.replace: what the replacements use instead of the defaults (clients, timing, probe). */
  replaceDeps?: Partial<ReplaceDeps>;
}

/**
 * The daemon's daily ACM audit (`acmAudit` in the configuration): the same `runAcmAudit` as `certkeeper acm audit`,
 * run once after the first renewal pass and then every day. Findings are kept for GET /v1/acm/findings and the
 * metrics; each critical finding alerts ('audit'), at most daily per ARN and rule. An AWS failure is logged and
 * counted and retried an hour later; it never stops the daemon. The AWS SDK is loaded at the first run only.
 *
 * With `acmAudit.replace: true`, email-validation and pending-validation findings are replaced in the background
 * (the same planReplacement/executeReplacement as `certkeeper acm replace --yes`), one at a time, with an alert at
 * each step; a replacement already done (its progress file says so) is not started again. Without it, the audit
 * alert of such a finding carries the exact command.
 */
export class AcmAuditor {
  findings: Finding[] = [];
  lastRun?: AuditRun;
  summary?: AuditSummary;
  runs = 0;
  errors = 0;
  private running?: Promise<void>;
  private timer?: unknown;
  private nextAt?: Date;
  private stopped = false;
  private readonly timers: Timers;
  private readonly clients: ACMClient[] = [];
  private clientFor?: (region: string) => ACMClient;
  private replacing?: Promise<void>;
  private readonly abort = new AbortController();
  private destroyReplaceClients?: () => void;
  /** Replacements finished (done) and failed since start. */
  replaced = 0;
  replaceFailures = 0;

  constructor(private readonly opts: AcmAuditorOptions) {
    this.timers = opts.timers ?? realTimers;
    this.clientFor = opts.clientFor;
  }

  get regions(): string[] {
    return this.opts.audit.regions;
  }

  get expiringDays(): number {
    return this.opts.audit.expiringDays;
  }

  get nextRunAt(): Date | undefined {
    return this.nextAt;
  }

  /** Runs the audit now (or joins the run in progress), then arms the next one. Never throws. */
  run(): Promise<void> {
    if (this.stopped) return Promise.resolve();
    this.running ??= this.doRun().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async doRun(): Promise<void> {
    const log = this.opts.logger.child({ component: 'acm-audit' });
    const t0 = Date.now();
    const at = this.opts.now();
    this.runs++;
    try {
      const [{ runAcmAudit, summarizeFindings }, { managedArnsFromStore }, { buildAcmClient, clientCache }] =
        await Promise.all([
          import('../deploy/acm/audit.js'),
          import('../deploy/acm/managed.js'),
          import('../deploy/acm/client.js'),
        ]);
      this.clientFor ??= clientCache((region) => {
        const c = buildAcmClient(region);
        this.clients.push(c);
        return c;
      });
      const managedArns = await managedArnsFromStore(this.opts.store, {
        names: this.opts.config.certificates.map((c) => c.name),
        config: this.opts.config,
        onError: (name, err) =>
          log.warn(
            { event: 'acm_audit.state_unreadable', cert: name, error: asCertkeeperError(err).message },
            `${name}: state file unreadable; its ACM ARNs count as unmanaged in this audit`,
          ),
      });
      const findings = await runAcmAudit({
        regions: this.regions,
        expiringDays: this.expiringDays,
        managedArns,
        now: at,
        clientFor: this.clientFor,
        logger: log,
      });
      if (this.stopped) return;
      this.findings = findings;
      this.summary = { counts: summarizeFindings(findings), lastSuccessAt: at };
      const critical = findings.filter((f) => f.severity === 'critical');
      this.lastRun = {
        at: at.toISOString(),
        ok: true,
        durationMs: Date.now() - t0,
        findings: findings.length,
      };
      log[critical.length ? 'warn' : 'info'](
        {
          event: 'acm_audit.done',
          regions: this.regions,
          findings: findings.length,
          critical: critical.length,
          durationMs: this.lastRun.durationMs,
        },
        findings.length
          ? `ACM audit: ${findings.length} finding(s), ${critical.length} critical (GET /v1/acm/findings)`
          : `ACM audit: no findings in ${this.regions.join(', ')}`,
      );
      for (const f of findings) {
        log.info(
          {
            event: 'acm_audit.finding',
            arn: f.arn,
            region: f.region,
            domain: f.domain,
            rule: f.rule,
            severity: f.severity,
          },
          `${f.severity} ${f.rule} ${f.domain}: ${f.message}`,
        );
      }
      const replace = this.opts.audit.replace;
      this.opts.alerts.audit(
        critical.map((f) => ({ key: `${f.arn} ${f.rule}`, alert: auditAlert(f, at, replace) })),
      );
      if (replace) this.startReplacements(findings);
      this.arm(DAY);
    } catch (err) {
      const ce = asCertkeeperError(err, 'aws');
      this.errors++;
      this.lastRun = {
        at: at.toISOString(),
        ok: false,
        durationMs: Date.now() - t0,
        error: { code: ce.code, message: ce.message, hint: ce.hint },
      };
      log.error(
        { event: 'acm_audit.failed', code: ce.code, error: ce.message, hint: ce.hint },
        `ACM audit failed (retrying in an hour): ${ce.message}`,
      );
      this.arm(RETRY_MS);
    }
  }

  private arm(ms: number): void {
    if (this.stopped) return;
    this.nextAt = new Date(this.opts.now().getTime() + ms);
    this.armUntil(this.nextAt);
  }

  private armUntil(at: Date): void {
    if (this.timer !== undefined) this.timers.clearTimeout(this.timer);
    const delay = Math.max(1000, at.getTime() - this.opts.now().getTime());
    const step = Math.min(delay, MAX_TIMER_MS);
    this.timer = this.timers.setTimeout(() => {
      this.timer = undefined;
      if (this.stopped) return;
      if (step < delay) this.armUntil(at);
      else void this.run();
    }, step);
  }

  /** Resolves when the replacements started by the last audit have finished (tests, shutdown). */
  async replacementsIdle(): Promise<void> {
    await this.replacing;
  }

  /** One batch at a time; within it, one certificate at a time. Never throws. */
  private startReplacements(findings: Finding[]): void {
    if (this.replacing || this.stopped) return;
    this.replacing = this.replaceAll(findings).finally(() => {
      this.replacing = undefined;
    });
  }

  private async replaceAll(findings: Finding[]): Promise<void> {
    const log = this.opts.logger.child({ component: 'acm-replace' });
    const [
      { findingsToReplace, planReplacement, executeReplacement },
      { ReplaceStateStore },
      { buildReplaceClients },
    ] = await Promise.all([
      import('../deploy/acm/replace.js'),
      import('../deploy/acm/replace-state.js'),
      import('../deploy/acm/client.js'),
    ]);
    const arns = findingsToReplace(findings);
    if (arns.length === 0) return;
    const store = ReplaceStateStore.forStorage(this.opts.config.storage.path);
    let clients = this.opts.replaceDeps?.clients;
    if (!clients) {
      const built = await buildReplaceClients();
      this.destroyReplaceClients = built.destroy;
      clients = built;
    }
    const deps: ReplaceDeps = {
      storagePath: this.opts.config.storage.path,
      logger: log,
      now: this.opts.now,
      signal: this.abort.signal,
      ...this.opts.replaceDeps,
      clients,
      onStep: (e) => this.replaceAlert(e),
    };
    try {
      for (const arn of arns) {
        if (this.stopped) return;
        const done = await store.read(arn).catch(() => undefined);
        if (done?.step === 'done') continue;
        const failed = (err: unknown) => {
          const ce = asCertkeeperError(err, 'aws');
          this.replaceFailures++;
          log.error(
            { event: 'acm_replace.failed', arn, code: ce.code, error: ce.message, hint: ce.hint },
            `replacing ${arn} failed (the next audit tries again, continuing where it stopped): ${ce.message}`,
          );
          return ce;
        };
        let plan: ReplacePlan;
        try {
          plan = await planReplacement(arn, deps);
        } catch (err) {
          // Planning fails before any step (no Route53 zone, access denied): it still gets its alert.
          const ce = failed(err);
          this.replaceAlert({
            step: 'failed',
            oldArn: arn,
            region: arn.split(':')[3] ?? '',
            domain: findings.find((f) => f.arn === arn)?.domain ?? arn,
            message: ce.message,
            error: ce,
          });
          continue;
        }
        try {
          await executeReplacement(plan, deps);
          this.replaced++;
        } catch (err) {
          failed(err); // executeReplacement already alerted through onStep('failed')
        }
      }
    } finally {
      this.destroyReplaceClients?.();
      this.destroyReplaceClients = undefined;
    }
  }

  /** The one place replacement steps become alerts ('audit' event, code ACM_REPLACE_<STEP>). */
  private replaceAlert(e: ReplaceEvent): void {
    this.opts.alerts.notify({
      event: 'audit',
      certificate: e.domain,
      domains: [e.domain],
      message: `acm replace: ${e.message}`,
      ...(e.error?.hint && { hint: e.error.hint }),
      code: `ACM_REPLACE_${e.step.toUpperCase().replaceAll('-', '_')}`,
      at: this.opts.now().toISOString(),
      audit: {
        arn: e.oldArn,
        region: e.region,
        rule: 'replace',
        severity: e.step === 'failed' || e.step === 'old-kept' ? 'critical' : 'warning',
        inUseBy: e.resource ? [e.resource] : [],
      },
    });
  }

  /** Cancels the next run, waits up to `graceMs` for one in progress, and closes the ACM clients. */
  async stop(graceMs = 5000): Promise<void> {
    this.stopped = true;
    if (this.timer !== undefined) this.timers.clearTimeout(this.timer);
    this.timer = undefined;
    this.abort.abort();
    const busy = [this.running, this.replacing].filter(Boolean);
    if (busy.length) await within(Promise.all(busy), graceMs);
    for (const c of this.clients.splice(0)) c.destroy();
    this.destroyReplaceClients?.();
  }
}

/** Findings `acm replace` fixes: without acmAudit.replace the alert says exactly what to run. */
const REPLACEABLE = new Set<string>(['email-validation', 'pending-validation']);

function auditAlert(f: Finding, at: Date, replaceOn = false): Alert {
  const hint = !REPLACEABLE.has(f.rule)
    ? f.fix
    : replaceOn
      ? `certkeeper replaces it now (acmAudit.replace: true); alerts follow at each step`
      : `run: certkeeper acm replace ${f.arn} --dry-run, then certkeeper acm replace ${f.arn} --yes (or set acmAudit.replace: true to let the daemon do it)`;
  return {
    event: 'audit',
    certificate: f.domain,
    domains: [f.domain],
    message: f.message,
    hint,
    code: `ACM_AUDIT_${f.rule.toUpperCase().replaceAll('-', '_')}`,
    at: at.toISOString(),
    audit: { arn: f.arn, region: f.region, rule: f.rule, severity: f.severity, inUseBy: f.inUseBy },
  };
}
