import { CertkeeperError } from '../../errors.js';
import { redactText } from '../../log.js';
import { type RunResult, runProcess as runProgram } from '../../platform/process.js';
import { findAuthoritativeNameservers, type TxtExpectation, waitForTxtRecords } from '../dns-propagation.js';
import {
  type ChallengeInput,
  type ChallengeSolver,
  clampWait,
  type SolverContext,
  type SolverDeps,
} from '../types.js';
import type { ExecChallengeConfig } from './schema.js';

export type ExecDeps = SolverDeps & {
  /** Grace between SIGTERM and SIGKILL when the program overruns its timeout. */
  killGraceMs?: number;
  /** First pause between propagation rounds. */
  propagationIntervalMs?: number;
  /** For the propagation check without configured nameservers: NS names of the zone holding a domain. */
  findNameservers?: (domain: string) => Promise<string[]>;
  resolveHost?: (host: string) => Promise<string[]>;
};

/** The one process runner (platform/process.ts): own process group, timeout and abort, output tails. */
export { type RunResult, runProcess as runProgram } from '../../platform/process.js';

export function create(config: ExecChallengeConfig, deps: ExecDeps): ChallengeSolver {
  const program = config.command[0]!;

  async function run(action: 'present' | 'cleanup', ch: ChallengeInput, ctx: SolverContext): Promise<void> {
    if (ch.type !== 'dns-01') return;
    const argv = [...config.command, action, ch.domain, ch.dnsRecordName, ch.dnsValue];
    const logger = ctx.logger ?? deps.logger;
    let result: RunResult;
    try {
      result = await runProgram(argv, {
        timeoutMs: config.timeoutSeconds * 1000,
        killGraceMs: deps.killGraceMs,
        signal: ctx.signal,
      });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw new CertkeeperError(
        'challenge',
        `could not start the exec DNS program ${program} (${code ?? String(err)})`,
        {
          cert: ch.certName,
          domain: ch.domain,
          field: 'challenge.command',
          code: 'CK_ERR_EXEC_HOOK',
          permanent: true,
          cause: err,
          hint:
            code === 'ENOENT'
              ? 'challenge.command[0] must be the path of an existing program (no shell is used: write ["/bin/sh", "-c", "..."] only if you really need one)'
              : 'make challenge.command[0] executable by the user certkeeper runs as',
        },
      );
    }
    logger.debug(
      { cert: ch.certName, domain: ch.domain, action, code: result.code, ms: result.durationMs },
      'exec DNS program finished',
    );
    if (!result.timedOut && result.code === 0) return;
    const what = result.timedOut
      ? `timed out after ${config.timeoutSeconds}s and was killed`
      : result.signal
        ? `was killed by ${result.signal}`
        : `exited with code ${result.code}`;
    // The program's own words stay in the log (redacted): they can carry a DNS API token, and the error message
    // ends up in the API, alerts and the state file.
    const stderrLines = result.stderrTail ? result.stderrTail.split('\n').slice(-10) : [];
    if (stderrLines.length) {
      logger.warn(
        {
          event: 'challenge.exec_stderr',
          cert: ch.certName,
          domain: ch.domain,
          action,
          stderr: redactText(stderrLines.join('\n')),
        },
        `exec DNS program ${program} ${action} ${what}; its stderr follows (redacted)`,
      );
    }
    const tail = stderrLines.length
      ? ' (its stderr is in the certkeeper log, event challenge.exec_stderr)'
      : '';
    throw new CertkeeperError(
      'challenge',
      `exec DNS program ${program} ${action} ${ch.dnsRecordName} ${what}${tail}`,
      {
        cert: ch.certName,
        domain: ch.domain,
        field: 'challenge.command',
        code: 'CK_ERR_EXEC_HOOK',
        hint: result.timedOut
          ? 'make the program finish sooner or raise challenge.timeoutSeconds'
          : `run it by hand (${program} ${action} <domain> <record name> <value>) and fix what it reports; it must exit 0 once the TXT record is ${action === 'present' ? 'created' : 'removed'}`,
      },
    );
  }

  async function check(chs: ChallengeInput[], ctx: SolverContext): Promise<void> {
    if (!config.checkAuthoritative) return;
    const byName = new Map<string, TxtExpectation & { cert: string }>();
    for (const ch of chs) {
      if (ch.type !== 'dns-01') continue;
      const e = byName.get(ch.dnsRecordName) ?? {
        name: ch.dnsRecordName,
        values: [],
        domain: ch.domain,
        cert: ch.certName,
      };
      if (!e.values.includes(ch.dnsValue)) e.values.push(ch.dnsValue);
      byName.set(ch.dnsRecordName, e);
    }
    const expectations = [...byName.values()];
    if (expectations.length === 0) return;
    const { until: deadline, cutBy } = clampWait(config.propagationTimeoutSeconds * 1000, ctx.deadline);
    const groups = new Map<string, { nameservers: string[]; expect: typeof expectations }>();
    for (const e of expectations) {
      let nameservers = config.nameservers;
      if (!nameservers) {
        const find = deps.findNameservers ?? ((d: string) => findAuthoritativeNameservers(d));
        nameservers = await find(e.domain!);
        if (nameservers.length === 0) {
          throw new CertkeeperError(
            'challenge',
            `could not find the authoritative nameservers of ${e.domain}`,
            {
              cert: e.cert,
              domain: e.domain,
              field: 'challenge.nameservers',
              code: 'CK_ERR_DNS_PROPAGATION',
              hint: 'set challenge.nameservers to the zone\'s nameservers ("host" or "host:port"), or checkAuthoritative: false',
            },
          );
        }
      }
      const key = nameservers.join(',');
      const g = groups.get(key) ?? { nameservers, expect: [] };
      g.expect.push(e);
      groups.set(key, g);
    }
    for (const g of groups.values()) {
      await waitForTxtRecords(g.expect, {
        nameservers: g.nameservers,
        timeoutMs: Math.max(1000, deadline - Date.now()),
        intervalMs: deps.propagationIntervalMs,
        logger: ctx.logger ?? deps.logger,
        signal: ctx.signal,
        cert: g.expect[0]!.cert,
        resolveHost: deps.resolveHost,
        cutBy,
      });
    }
  }

  /**
   * Calls for one record name run one after another (apex and wildcard share `_acme-challenge.<domain>`,
   * and a user's program may read-modify-write it); different names run in parallel. Every call is made
   * even when another fails; the first failure is thrown.
   */
  async function runAll(
    action: 'present' | 'cleanup',
    chs: ChallengeInput[],
    ctx: SolverContext,
  ): Promise<void> {
    const byName = new Map<string, ChallengeInput[]>();
    for (const ch of chs) byName.set(ch.dnsRecordName, [...(byName.get(ch.dnsRecordName) ?? []), ch]);
    const errors: unknown[] = [];
    await Promise.all(
      [...byName.values()].map(async (group) => {
        for (const ch of group) {
          try {
            await run(action, ch, ctx);
          } catch (err) {
            errors.push(err);
            // A failed present leaves the rest of this name pointless; cleanup tries every value.
            if (action === 'present') return;
          }
        }
      }),
    );
    if (errors.length) throw errors[0];
  }

  return {
    type: 'dns-01',
    present: (ch, ctx) => run('present', ch, ctx),
    cleanup: (ch, ctx) => run('cleanup', ch, ctx),
    presentAll: (chs, ctx) => runAll('present', chs, ctx),
    cleanupAll: (chs, ctx) => runAll('cleanup', chs, ctx),
    check,
  };
}
