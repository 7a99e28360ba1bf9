#!/usr/bin/env node
import { Command, Option } from 'commander';
import { REVOCATION_REASONS, type RevocationReason } from '../acme/revocation-reasons.js';
import { exportCommand } from '../cluster/cli.js';
import { configPath } from '../config/path.js';
import type { Config } from '../config/schema.js';
import { CertkeeperError } from '../errors.js';
import type { Logger } from '../log.js';
import type { CertResult } from '../renew.js';
import { VERSION } from '../version.js';
import { acmCommand } from './acm.js';
import { runCommand } from './run.js';
import { collectStatus, formatStatusTable } from './status.js';

// Command implementations are imported inside their actions: `certkeeper run` must not carry the ACME client
// in memory while idle, and `--help` or `status` should start fast.

interface GlobalOpts {
  config?: string;
  debug?: boolean;
}

/** Exit codes: 0 ok, 1 a certificate (or check) failed, 2 bad configuration or usage. */
export const EXIT = { ok: 0, failed: 1, usage: 2 } as const;

function globals(cmd: Command): GlobalOpts {
  return cmd.optsWithGlobals() as GlobalOpts;
}

async function load(cmd: Command): Promise<{ config: Config; file: string }> {
  const file = configPath(globals(cmd).config);
  const { loadConfig } = await import('../config/load.js');
  return { config: loadConfig(file), file };
}

async function logger(cmd: Command): Promise<Logger> {
  return (await import('./logger.js')).makeLogger({ fd: 2, level: globals(cmd).debug ? 'debug' : undefined });
}

function describeResult(r: CertResult): string {
  switch (r.status) {
    case 'issued':
    case 'renewed':
      return `✔ ${r.name}: ${r.status} serial ${r.serial}, valid until ${r.notAfter}, version ${r.version} (${(r.durationMs / 1000).toFixed(2)} s)`;
    case 'redeployed':
      return `✔ ${r.name}: deployed serial ${r.serial} (${r.reason})`;
    case 'busy':
      return `✘ ${r.name}: ${r.reason}${r.error?.hint ? `\n    fix: ${r.error.hint}` : ''}`;
    case 'dry-run':
      return `✔ ${r.name}: ${r.reason} (${(r.durationMs / 1000).toFixed(2)} s)`;
    case 'skipped':
      return `- ${r.name}: not due (${r.reason})`;
    case 'failed': {
      const hint = r.error?.hint ? `\n    fix: ${r.error.hint}` : '';
      const domain = r.error?.domain ? ` [${r.error.domain}]` : '';
      return `✘ ${r.name}${domain}: ${r.reason}${hint}`;
    }
  }
}

export function buildProgram(): Command {
  const program = new Command('certkeeper')
    .description(
      'Keeps TLS certificates alive: ACME issuance and renewal, certbot-compatible storage, nginx reload, AWS ACM import.',
    )
    .version(VERSION)
    .option('-c, --config <file>', 'configuration file (default: $CERTKEEPER_CONFIG, else ./certkeeper.yml)')
    .option('--debug', 'debug logging and stack traces on errors')
    .showHelpAfterError('(run with --help for usage)')
    .addHelpText(
      'after',
      '\nExit codes: 0 success, 1 a certificate failed, 2 invalid configuration or usage.\nEnvironment: CERTKEEPER_CONFIG, LOG_LEVEL (info), LOG_FORMAT (json|pretty), AWS_* for the AWS SDK.',
    );

  program
    .command('renew')
    .description(
      'issue missing certificates and renew those that are due (1/3 of their lifetime left, 1/2 under 10 days, or inside the CA’s ARI window); sends the configured alerts',
    )
    .argument('[names...]', 'only these certificates (default: all configured)')
    .option('-f, --force', 'renew even when not due')
    .option(
      '--dry-run',
      'order from the staging/test directory and keep nothing (no files, no state, no deploy)',
    )
    .option('--no-deploy', 'store the certificate but run no deployer')
    .option(
      '--lock-wait <seconds>',
      'wait this long for a certificate another certkeeper process is renewing (default: acme.orderTimeoutSeconds + 120)',
    )
    .option('--json', 'print the report as JSON on stdout')
    .addHelpText(
      'after',
      '\nExamples:\n  certkeeper renew\n  certkeeper renew example.com --force\n  certkeeper renew --dry-run',
    )
    .action(
      async (
        names: string[],
        o: { force?: boolean; dryRun?: boolean; deploy: boolean; json?: boolean; lockWait?: string },
        cmd: Command,
      ) => {
        const { config } = await load(cmd);
        const log = await logger(cmd);
        const t0 = Date.now();
        const lockWait =
          o.lockWait === undefined ? config.acme.orderTimeoutSeconds + 120 : Number(o.lockWait);
        if (!Number.isFinite(lockWait) || lockWait < 0) {
          throw new CertkeeperError('config', `--lock-wait: "${o.lockWait}" is not a number of seconds`, {
            field: '--lock-wait',
            hint: 'give the seconds to wait, e.g. --lock-wait 60 (0: do not wait)',
          });
        }
        const [{ renew }, { AlertDispatcher }] = await Promise.all([
          import('../pipeline/renew.js'),
          import('../notify/index.js'),
        ]);
        // The same alerts as the daemon, to the configured notify targets; repeats follow the state's memory.
        const alerts = new AlertDispatcher(config.notify, {
          logger: log.child({ component: 'notify' }),
          retryDelaysMs: [1000, 3000],
        });
        // cluster: the PostgreSQL store (its advisory locks decide which node orders) and HTTP-01 tokens to
        // every node; the other nodes' daemons follow the stored certificate on their own hosts.
        const cw = config.cluster
          ? await (await import('../cluster/wiring.js')).wireCluster(config, {
              env: process.env,
              logger: log.child({ component: 'cluster' }),
            })
          : undefined;
        const report = await renew(config, {
          names,
          force: o.force,
          dryRun: o.dryRun,
          skipDeploy: !o.deploy,
          logger: log,
          lockWaitMs: lockWait * 1000,
          notifier: alerts,
          ...cw?.renewOptions(),
        }).finally(() => cw?.close());
        await alerts.close(15_000);
        if (o.json) {
          process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
        } else {
          for (const r of report.results) process.stdout.write(`${describeResult(r)}\n`);
          const count = (s: string) => report.results.filter((r) => r.status === s).length;
          process.stdout.write(
            `${report.results.length} certificate(s): ${count('issued')} issued, ${count('renewed')} renewed, ${count('redeployed')} redeployed, ${count('dry-run')} dry-run, ${count('skipped')} not due, ${count('failed')} failed${count('busy') ? `, ${count('busy')} busy (renewed by another process)` : ''} in ${((Date.now() - t0) / 1000).toFixed(2)} s\n`,
          );
        }
        process.exitCode =
          report.ok && !report.results.some((r) => r.status === 'busy') ? EXIT.ok : EXIT.failed;
      },
    );

  program
    .command('status')
    .description(
      'show every certificate: domains, expiry, days left, state (valid, expiring, danger, placeholder, not deployed, ...), when it renews and the last result with its fix',
    )
    .option('--json', 'print as JSON')
    .action(async (o: { json?: boolean }, cmd: Command) => {
      const { config } = await load(cmd);
      const rows = await collectStatus(config);
      process.stdout.write(o.json ? `${JSON.stringify(rows, null, 2)}\n` : `${formatStatusTable(rows)}\n`);
    });

  program
    .command('check-config')
    .description('validate the configuration file and print a summary')
    .option(
      '--preflight',
      'also check the surroundings: storage writable, CA reachable, profiles offered, DNS zones found (changes nothing)',
    )
    .action(async (o: { preflight?: boolean }, cmd: Command) => {
      const { config, file } = await load(cmd);
      process.stdout.write(
        `${file}: valid, ${config.certificates.length} certificate(s), CA ${config.acme.directoryUrl}\n`,
      );
      for (const c of config.certificates) {
        const ch =
          c.challenge.type === 'http-01'
            ? `http-01 webroot ${c.challenge.webroot}`
            : `dns-01 ${c.challenge.provider}`;
        process.stdout.write(
          `  ${c.name}: ${c.domains.join(', ')} (${c.keyType}, ${ch}${c.profile ? `, profile ${c.profile}` : ''}${c.deploy.length ? `, deploy: ${c.deploy.map((d) => d.type).join(', ')}` : ''})\n`,
        );
      }
      if (o.preflight) {
        const { preflight } = await import('./preflight.js');
        const problems = await preflight(config, await logger(cmd));
        for (const p of problems)
          process.stdout.write(`${p.ok ? '✔' : '✘'} ${p.what}${p.ok ? '' : `\n    fix: ${p.fix}`}\n`);
        if (problems.some((p) => !p.ok)) process.exitCode = EXIT.failed;
      }
    });

  program
    .command('revoke')
    .description('revoke the live certificate of NAME at the CA; the next renew replaces it')
    .argument('<name>', 'certificate name')
    .addOption(
      new Option('--reason <reason>', 'revocation reason')
        .choices(Object.keys(REVOCATION_REASONS))
        .default('unspecified'),
    )
    .action(async (name: string, o: { reason: RevocationReason }, cmd: Command) => {
      const { config } = await load(cmd);
      if (!config.certificates.some((c) => c.name === name)) {
        throw new CertkeeperError('config', `unknown certificate name: ${name}`, {
          hint: `configured names: ${config.certificates.map((c) => c.name).join(', ') || '(none)'}`,
        });
      }
      const { revokeCertificate } = await import('../acme/revoke.js');
      const log = await logger(cmd);
      // cluster: the mark goes to PostgreSQL, so whichever node renews next replaces the certificate.
      const cw = config.cluster
        ? await (await import('../cluster/wiring.js')).wireCluster(config, { env: process.env, logger: log })
        : undefined;
      const { serial } = await revokeCertificate(config, name, o.reason, log, { store: cw?.store }).finally(
        () => cw?.close(),
      );
      process.stdout.write(`revoked ${name} serial ${serial}; run certkeeper renew ${name} to replace it\n`);
    });

  program.addCommand(runCommand());
  program.addCommand(acmCommand());
  program.addCommand(exportCommand());
  return program;
}

/**
 * `certkeeper status | head`: once the reader has gone, the rest of the output has nowhere to go. Stop quietly, as
 * the shell tools do, instead of an unhandled EPIPE with a stack trace (the exit status follows what was done).
 */
function quietOnClosedStdout(): void {
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err;
    process.exit(process.exitCode ?? EXIT.ok);
  });
}

/** The subcommand whose action ran last (commander's preAction hook), for the exit below. */
let ranCommand: string | undefined;

export async function main(argv: string[]): Promise<void> {
  quietOnClosedStdout();
  const program = buildProgram();
  program.exitOverride();
  program.hook('preAction', (_program, action) => {
    ranCommand = action.name();
  });
  try {
    await program.parseAsync(argv);
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === 'commander.helpDisplayed' || code === 'commander.version' || code === 'commander.help') {
      process.exitCode = EXIT.ok;
      return;
    }
    if (code?.startsWith('commander.')) {
      process.exitCode = EXIT.usage;
      return;
    }
    const debug = argv.includes('--debug');
    if (err instanceof CertkeeperError) {
      process.stderr.write(`certkeeper: ${err.describe()}\n`);
      if (debug && err.stack) process.stderr.write(`${err.stack}\n`);
      process.exitCode = err.kind === 'config' ? EXIT.usage : EXIT.failed;
      return;
    }
    process.stderr.write(`certkeeper: unexpected error: ${(err as Error).message ?? String(err)}\n`);
    if (debug) process.stderr.write(`${(err as Error).stack}\n`);
    else process.stderr.write('  (run with --debug for the stack trace, and please report it)\n');
    process.exitCode = EXIT.failed;
  }
}

/**
 * A one-shot command is finished when main() returns: exit then, rather than let V8 first finish the collection it
 * started during the command, on a heap about to go (a full mark-compact after `status` over 1,000 certificates:
 * ~8 ms of ~160). Nothing written is lost: stdout, stderr and the logger write synchronously to files, pipes and
 * terminals on POSIX, and the empty writes wait for anything still queued. `run` ends on its own terms (run.ts).
 */
function exitWhenWritten(): void {
  let pending = 2;
  const done = () => {
    if (--pending === 0) process.exit();
  };
  process.stdout.write('', done);
  process.stderr.write('', done);
}

await main(process.argv);
if (ranCommand !== 'run') exitWhenWritten();
