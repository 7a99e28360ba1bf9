import type { ACMClient } from '@aws-sdk/client-acm';
import { Command, InvalidArgumentError } from 'commander';
import { configPath, type Env } from '../config/path.js';
import type { Config } from '../config/schema.js';
import type { Finding } from '../deploy/acm/audit.js';
import type {
  ReplaceClients,
  ReplaceDeps,
  ReplaceEvent,
  ReplacePlan,
  ReplaceResult,
  ReplaceTiming,
} from '../deploy/acm/replace.js';
import { asCertkeeperError, CertkeeperError } from '../errors.js';
import { type Logger, silentLogger } from '../log.js';
import { CertStore } from '../store/store.js';
import { type HostPort, parseAddress } from '../verify/tls-probe.js';

/** `certkeeper acm audit` exit codes. */
export const AUDIT_EXIT = { clean: 0, findings: 1, error: 2 } as const;

/** `certkeeper acm replace` exit codes. */
export const REPLACE_EXIT = { done: 0, needsHuman: 1, error: 2 } as const;

/** What tests (and other shells) inject; the defaults are the real process. */
export interface AcmCliDeps {
  clientFor?: (region: string) => ACMClient;
  /** acm replace: clients for every service (default: the SDK's, from AWS_* settings). */
  replaceClients?: ReplaceClients;
  /** acm replace: shorter waits in tests. */
  replaceTiming?: Partial<ReplaceTiming>;
  /** acm replace: told after each step (tests stop a run there, as a crash would). */
  onReplaceStep?: (e: ReplaceEvent) => void | Promise<void>;
  /** acm replace: asks before acting (default: a y/N question on the terminal; refused when stdin is not one). */
  confirm?: (question: string) => Promise<boolean>;
  logger?: Logger;
  stdout?: (text: string) => void;
  stderr?: (text: string) => void;
  setExitCode?: (code: number) => void;
  env?: Env;
  now?: () => Date;
}

interface AuditOpts {
  region?: string[];
  json?: boolean;
  config?: string;
  expiringDays?: number;
}

export function acmCommand(deps: AcmCliDeps = {}): Command {
  const out = deps.stdout ?? ((s: string) => void process.stdout.write(s));
  const err = deps.stderr ?? ((s: string) => void process.stderr.write(s));
  const exit =
    deps.setExitCode ??
    ((c: number) => {
      process.exitCode = c;
    });

  const acm = new Command('acm').description(
    'AWS Certificate Manager: audit certificates that will not renew by themselves, and replace them',
  );
  acm
    .command('audit')
    .description(
      'list every ACM certificate in the regions and flag those that will not renew by themselves, each with the fix',
    )
    .option(
      '-r, --region <region...>',
      'region to audit, repeatable (default: acmAudit.regions, else us-east-1)',
    )
    .option(
      '--expiring-days <days>',
      'flag certificates expiring within this many days (default: acmAudit.expiringDays, else 30)',
      positiveInt,
    )
    .option('--json', 'print the findings as JSON on stdout')
    .option(
      '-c, --config <file>',
      'configuration whose storage says which ARNs certkeeper manages (default: $CERTKEEPER_CONFIG, else ./certkeeper.yml)',
    )
    .addHelpText(
      'after',
      `
Rules: email-validation, pending-validation (over a day), renewal-ineligible (while in use),
expiring (within N days), unmanaged-import (imported, not renewed by certkeeper),
cloudfront-key (attached to CloudFront with a key it does not accept).
email-validation and pending-validation findings are fixed by certkeeper acm replace (see its --help).

Exit codes: 0 no findings, 1 findings, 2 error (configuration, credentials, AWS API).
Needs acm:ListCertificates, acm:DescribeCertificate and acm:ListTagsForCertificate; AWS_* settings as for the AWS CLI.

Examples:
  certkeeper acm audit
  certkeeper acm audit --region us-east-1 --region eu-west-1 --json`,
    )
    .action(async (o: AuditOpts, cmd: Command) => {
      try {
        const env = deps.env ?? process.env;
        const globalConfig = (cmd.optsWithGlobals() as { config?: string }).config;
        const file = configPath(o.config ?? globalConfig, env);
        const { loadConfig } = await import('../config/load.js');
        const config = loadConfig(file, env);
        // Loaded here, not at the top: the AWS SDK must not slow down every other command's start.
        const [{ runAcmAudit }, { managedArnsFromStore }] = await Promise.all([
          import('../deploy/acm/audit.js'),
          import('../deploy/acm/managed.js'),
        ]);
        const store = new CertStore(config.storage.path);
        const managedArns = await managedArnsFromStore(store, {
          names: config.certificates.map((c) => c.name),
          config,
          onError: (name, e) =>
            err(`certkeeper: warning: ${asCertkeeperError(e).describe()} (skipped ${name})\n`),
        });
        const regions = regionsOf(o.region, config);
        const expiringDays = o.expiringDays ?? config.acmAudit?.expiringDays ?? 30;
        const findings = await runAcmAudit({
          regions,
          expiringDays,
          managedArns,
          now: deps.now?.(),
          ...(deps.clientFor && { clientFor: deps.clientFor }),
        });
        if (o.json) {
          out(
            `${JSON.stringify({ regions, expiringDays, managedArns: managedArns.size, findings }, null, 2)}\n`,
          );
        } else {
          out(formatFindings(findings, regions));
        }
        exit(findings.length === 0 ? AUDIT_EXIT.clean : AUDIT_EXIT.findings);
      } catch (e) {
        const ce = asCertkeeperError(e);
        if (o.json) out(`${JSON.stringify({ error: ce.toJSON() }, null, 2)}\n`);
        err(`certkeeper: ${ce.describe()}\n`);
        exit(AUDIT_EXIT.error);
      }
    });
  acm
    .command('replace')
    .description(
      'replace ACM certificates that will never renew by themselves with DNS-validated ones, and swap them in',
    )
    .argument('[arn...]', 'ACM certificate ARNs to replace')
    .option('--findings', 'replace every email-validation and pending-validation finding of the audit')
    .option(
      '-r, --region <region...>',
      'with --findings: regions to audit (default: acmAudit.regions, else us-east-1)',
    )
    .option('--dry-run', 'print the plan and change nothing (only read-only AWS calls)')
    .option('-y, --yes', 'do not ask before acting')
    .option('--delete-old', 'delete the old certificate once nothing uses it any more')
    .option(
      '--probe-address <host:port>',
      'check the served certificate there (each name as SNI) instead of on each name at port 443',
    )
    .option('--no-probe', 'do not check the served certificate over TLS')
    .option(
      '--wait-minutes <minutes>',
      'how long to wait for ISSUED once the CNAMEs are written (default 45)',
      positiveInt,
    )
    .option('--json', 'print the plans and results as JSON on stdout')
    .option(
      '-c, --config <file>',
      'configuration whose storage keeps the progress (default: $CERTKEEPER_CONFIG, else ./certkeeper.yml)',
    )
    .addHelpText(
      'after',
      `
Steps: plan (read-only) → ask (unless --yes) → RequestCertificate with DNS validation (IdempotencyToken from the
old ARN; tags copied plus certkeeper:replaces=<old ARN>) → validation CNAMEs UPSERTed in Route53, INSYNC → ISSUED →
swap on CloudFront distributions (UpdateDistribution with IfMatch) and ELBv2 listeners (ModifyListener for the
default certificate, AddListenerCertificates + RemoveListenerCertificates for SNI) → confirm (InUseBy of both
certificates, the certificate served over TLS) → with --delete-old, DeleteCertificate when nothing uses the old one.
Other users (API Gateway, AppSync, ...) are listed for you to swap by hand.

Progress is kept in <storage>/acm-replace/: run the same command again after a crash or a timeout and it
continues where it stopped (no second certificate, nothing swapped twice).

Exit codes: 0 replaced (or --dry-run), 1 replaced but something is left for a human, 2 error.
Needs the IAM policy in the README ("Minimal IAM policy for acm replace"); AWS_* settings as for the AWS CLI.

Examples:
  certkeeper acm replace --findings --dry-run
  certkeeper acm replace arn:aws:acm:us-east-1:123456789012:certificate/1f2e... --yes --delete-old`,
    )
    .action(async (arns: string[], o: ReplaceOpts, cmd: Command) => {
      try {
        const code = await runReplace(arns, o, cmd, deps, out, err);
        exit(code);
      } catch (e) {
        const ce = asCertkeeperError(e);
        if (o.json) out(`${JSON.stringify({ error: ce.toJSON() }, null, 2)}\n`);
        err(`certkeeper: ${ce.describe()}\n`);
        exit(REPLACE_EXIT.error);
      }
    });
  return acm;
}

interface ReplaceOpts {
  findings?: boolean;
  region?: string[];
  dryRun?: boolean;
  yes?: boolean;
  deleteOld?: boolean;
  probeAddress?: string;
  probe?: boolean;
  waitMinutes?: number;
  json?: boolean;
  config?: string;
}

function regionsOf(list: string[] | undefined, config: Config): string[] {
  const regions = [
    ...new Set((list ?? config.acmAudit?.regions ?? ['us-east-1']).flatMap((r) => r.split(','))),
  ]
    .map((r) => r.trim())
    .filter(Boolean);
  for (const r of regions) {
    if (!/^[a-z]{2}(-[a-z]+)+-\d$/.test(r)) {
      throw new CertkeeperError('config', `"${r}" is not an AWS region`, {
        field: '--region',
        hint: 'use a region such as us-east-1',
      });
    }
  }
  return regions;
}

async function runReplace(
  arns: string[],
  o: ReplaceOpts,
  cmd: Command,
  deps: AcmCliDeps,
  out: (s: string) => void,
  err: (s: string) => void,
): Promise<number> {
  if (arns.length > 0 === Boolean(o.findings)) {
    throw new CertkeeperError('config', 'name the certificates to replace: ARN... or --findings (not both)', {
      field: 'ARN',
      hint: 'run certkeeper acm audit to see the findings, then certkeeper acm replace --findings --dry-run',
    });
  }
  const env = deps.env ?? process.env;
  const globalConfig = (cmd.optsWithGlobals() as { config?: string }).config;
  const { loadConfig } = await import('../config/load.js');
  const config = loadConfig(configPath(o.config ?? globalConfig, env), env);
  const [{ planReplacement, executeReplacement, findingsToReplace }, { buildReplaceClients }] =
    await Promise.all([import('../deploy/acm/replace.js'), import('../deploy/acm/client.js')]);
  const owned = deps.replaceClients ? undefined : await buildReplaceClients();
  const clients = deps.replaceClients ?? owned!;
  try {
    let targets = arns;
    if (o.findings) {
      const [{ runAcmAudit }, { managedArnsFromStore }] = await Promise.all([
        import('../deploy/acm/audit.js'),
        import('../deploy/acm/managed.js'),
      ]);
      const managedArns = await managedArnsFromStore(new CertStore(config.storage.path), {
        names: config.certificates.map((c) => c.name),
        config,
      });
      const findings = await runAcmAudit({
        regions: regionsOf(o.region, config),
        expiringDays: config.acmAudit?.expiringDays ?? 30,
        managedArns,
        clientFor: deps.clientFor ?? ((r) => clients.acm(r)),
        now: deps.now?.(),
      });
      targets = findingsToReplace(findings);
      if (targets.length === 0) {
        if (o.json) out(`${JSON.stringify({ plans: [], results: [] }, null, 2)}\n`);
        else out('no email-validation or pending-validation findings: nothing to replace\n');
        return REPLACE_EXIT.done;
      }
    } else if (o.region) {
      throw new CertkeeperError('config', '--region goes with --findings; an ARN names its own region', {
        field: '--region',
        hint: 'drop --region, or use --findings --region <region>',
      });
    }
    let probe: ReplaceDeps['probe'];
    if (o.probe === false) probe = false;
    else if (o.probeAddress) probe = { address: parseAddress(o.probeAddress, '--probe-address') as HostPort };
    const base: ReplaceDeps = {
      clients,
      storagePath: config.storage.path,
      logger: deps.logger ?? silentLogger,
      timing: {
        ...deps.replaceTiming,
        ...(o.waitMinutes && { issueTimeoutMs: o.waitMinutes * 60_000 }),
      },
      ...(probe !== undefined && { probe }),
      onStep: async (e) => {
        if (!o.json && e.step !== 'failed') out(`  ${e.step}: ${e.message}\n`);
        await deps.onReplaceStep?.(e);
      },
    };
    const plans: ReplacePlan[] = [];
    for (const arn of [...new Set(targets)]) plans.push(await planReplacement(arn, base));
    if (!o.json) out(plans.map(formatPlan).join('\n'));
    if (o.dryRun) {
      if (o.json) out(`${JSON.stringify({ dryRun: true, plans }, null, 2)}\n`);
      else out('\n--dry-run: nothing was changed\n');
      return REPLACE_EXIT.done;
    }
    if (!o.yes) {
      const ask = deps.confirm ?? askOnTerminal;
      if (!(await ask(`Replace ${plans.length} certificate(s) as planned above? [y/N] `))) {
        err('certkeeper: nothing was changed\n');
        return REPLACE_EXIT.needsHuman;
      }
    }
    const results: ReplaceResult[] = [];
    for (const plan of plans) {
      if (!o.json) out(`\nreplacing ${plan.oldArn}\n`);
      results.push(await executeReplacement(plan, { ...base, deleteOld: o.deleteOld }));
    }
    if (o.json) out(`${JSON.stringify({ plans, results }, null, 2)}\n`);
    else out(`\n${results.map(formatResult).join('\n')}`);
    return results.some((r) => r.needsHuman) ? REPLACE_EXIT.needsHuman : REPLACE_EXIT.done;
  } finally {
    owned?.destroy();
  }
}

async function askOnTerminal(question: string): Promise<boolean> {
  if (!process.stdin.isTTY) {
    throw new CertkeeperError(
      'config',
      'acm replace asks before changing anything, and stdin is not a terminal',
      {
        field: '--yes',
        hint: 'look at the plan with --dry-run, then run again with --yes',
      },
    );
  }
  const { createInterface } = await import('node:readline/promises');
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return /^y(es)?$/i.test((await rl.question(question)).trim());
  } finally {
    rl.close();
  }
}

/** The plan of one certificate, for people. */
export function formatPlan(p: ReplacePlan): string {
  const lines = [
    `replace ${p.oldArn}`,
    `  names:       ${p.names.join(', ')}`,
    `  now:         ${p.oldType} ${p.oldStatus}, validation ${p.oldValidation.join('/') || 'none'}`,
    `  new:         DNS validation, ${p.keyAlgorithm} (${p.keyReason})`,
    `  tags:        ${p.tags.map((t) => `${t.Key}=${t.Value ?? ''}`).join(', ')}`,
    `  zones:       ${p.zones.map((z) => `${z.domain} → ${z.zoneName} (${z.zoneId})`).join(', ')}`,
  ];
  if (p.resources.length === 0) lines.push('  in use by:   nothing (no swap)');
  else {
    lines.push('  in use by:');
    for (const r of p.resources) {
      lines.push(`    ${r.arn}`);
      if (r.kind === 'other') lines.push('      not changed by certkeeper: swap it by hand');
      for (const c of r.changes) lines.push(`      ${c}`);
    }
  }
  if (p.progress) {
    const done = p.progress.step === 'done';
    lines.push(
      `  progress:    ${p.progress.step}${p.progress.newArn ? ` (${p.progress.newArn})` : ''}: ${
        done
          ? `already replaced${p.progress.oldDeletedAt ? ', old certificate deleted' : ''}`
          : 'an earlier run stopped here; continuing'
      }`,
    );
  }
  return `${lines.join('\n')}\n`;
}

function formatResult(r: ReplaceResult): string {
  const lines = [`replaced ${r.oldArn}`, `  with ${r.newArn}`];
  for (const s of r.swapped) lines.push(`  swapped ${s.resource}: ${s.changes.join('; ')}`);
  for (const m of r.manual) lines.push(`  swap by hand: ${m}`);
  for (const p of r.probes)
    lines.push(
      `  served on ${p.name} (${p.address}): ${p.outcome === 'new' ? 'the new certificate' : p.outcome}`,
    );
  if (r.oldDeleted) lines.push(`  deleted ${r.oldArn}`);
  if (r.oldStillUsedBy.length) lines.push(`  kept ${r.oldArn}: still used by ${r.oldStillUsedBy.join(', ')}`);
  return `${lines.join('\n')}\n`;
}

/** The human table: one row per finding, then what is wrong and the fix, indented under it. */
export function formatFindings(findings: Finding[], regions: string[]): string {
  if (findings.length === 0) {
    return `no findings in ${regions.join(', ')}: every ACM certificate there renews by itself or is renewed by certkeeper\n`;
  }
  const head = ['SEVERITY', 'RULE', 'REGION', 'DOMAIN', 'ARN'];
  const rows = findings.map((f) => [f.severity, f.rule, f.region, f.domain, f.arn]);
  const width = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(width[i]!)))
      .join('  ')
      .trimEnd();
  const parts = [line(head)];
  findings.forEach((f, i) => {
    parts.push(line(rows[i]!), `    problem: ${f.message}`, `    fix:     ${f.fix}`);
  });
  const critical = findings.filter((f) => f.severity === 'critical').length;
  parts.push(
    '',
    `${findings.length} finding(s) in ${regions.join(', ')}: ${critical} critical, ${findings.length - critical} warning(s)`,
  );
  return `${parts.join('\n')}\n`;
}

function positiveInt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0)
    throw new InvalidArgumentError('expected a whole number of days, such as 30');
  return n;
}
