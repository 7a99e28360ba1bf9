import type { ACMClient } from '@aws-sdk/client-acm';
import { Command, InvalidArgumentError } from 'commander';
import { configPath, type Env } from '../config/path.js';
import type { Finding } from '../deploy/acm/audit.js';
import { asCertkeeperError, CertkeeperError } from '../errors.js';
import { CertStore } from '../store/store.js';

/** `certkeeper acm audit` exit codes. */
export const AUDIT_EXIT = { clean: 0, findings: 1, error: 2 } as const;

/** What tests (and other shells) inject; the defaults are the real process. */
export interface AcmCliDeps {
  clientFor?: (region: string) => ACMClient;
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
    'AWS Certificate Manager: audit certificates that will not renew by themselves',
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
        const regions = [
          ...new Set((o.region ?? config.acmAudit?.regions ?? ['us-east-1']).flatMap((r) => r.split(','))),
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
  return acm;
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
