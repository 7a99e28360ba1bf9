import type { CertificateConfig, Config } from '../config/schema.js';
import type { IssuedCertificate } from '../deploy/types.js';
import { type Plan, planCertificate } from '../plan/plan.js';
import type { CertState } from '../store/state.js';
import { CertStore } from '../store/store.js';
import { readStatusSync } from '../store/summary.js';

export interface StatusRow {
  name: string;
  configured: boolean;
  domains: string[];
  serial?: string;
  notAfter?: string;
  daysLeft?: number;
  /** valid | placeholder | expired | missing | revoked */
  validity: 'valid' | 'placeholder' | 'expired' | 'missing' | 'revoked';
  nextRenewal?: string;
  plan?: Pick<Plan, 'due' | 'reason' | 'detail'>;
  lastAttempt?: CertState['lastAttempt'];
  lastDeploy?: CertState['lastDeploy'];
  failures?: number;
  nextAttemptAfter?: string;
}

/** One certificate's status from its config, state and live certificate; the CLI and the daemon's API share it. */
export function statusRow(
  name: string,
  cert: CertificateConfig | undefined,
  state: CertState | undefined,
  live: Pick<IssuedCertificate, 'notBefore' | 'notAfter' | 'domains' | 'keyType' | 'serial'> | undefined,
  config: Pick<Config, 'renewal'>,
  now: Date,
): StatusRow {
  const daysLeft = live ? Math.floor((live.notAfter.getTime() - now.getTime()) / 86_400_000) : undefined;
  const validity: StatusRow['validity'] = !live
    ? 'missing'
    : state?.placeholder
      ? 'placeholder'
      : live.notAfter <= now
        ? 'expired'
        : state?.revokedSerial === live.serial
          ? 'revoked'
          : 'valid';
  const plan = cert
    ? planCertificate(cert, state, live, {
        now,
        renewBeforeFraction: config.renewal.renewBeforeFraction,
        respectBackoff: true,
      })
    : undefined;
  return {
    name,
    configured: !!cert,
    domains: cert?.domains ?? live?.domains ?? [],
    serial: live && !state?.placeholder ? live.serial : undefined,
    notAfter: live?.notAfter.toISOString(),
    daysLeft,
    validity,
    nextRenewal: plan ? (plan.due ? now.toISOString() : plan.renewAt?.toISOString()) : undefined,
    plan: plan && { due: plan.due, reason: plan.reason, detail: plan.detail },
    lastAttempt: state?.lastAttempt,
    lastDeploy: state?.lastDeploy,
    failures: state?.failures,
    nextAttemptAfter: state?.nextAttemptAfter,
  };
}

/** What is stored for every configured certificate (and adopted ones not in the config). */
export async function collectStatus(config: Config, now = new Date()): Promise<StatusRow[]> {
  const store = new CertStore(config.storage.path);
  const configured = new Map(config.certificates.map((c) => [c.name, c]));
  const names = [...new Set([...configured.keys(), ...(await store.listNames())])];
  return names.map((name): StatusRow => {
    const { state, live } = readStatusSync(store, name);
    return statusRow(name, configured.get(name), state, live, config, now);
  });
}

export function formatStatusTable(rows: StatusRow[]): string {
  const head = ['NAME', 'DOMAINS', 'NOT AFTER', 'DAYS', 'STATE', 'LAST RESULT'];
  const body = rows.map((r) => [
    r.name + (r.configured ? '' : ' (not in config)'),
    r.domains.join(','),
    r.notAfter ? r.notAfter.slice(0, 16).replace('T', ' ') : '-',
    r.daysLeft === undefined ? '-' : String(r.daysLeft),
    r.validity === 'valid' && r.lastDeploy && !r.lastDeploy.ok ? 'not deployed' : r.validity,
    r.lastAttempt
      ? `${r.lastAttempt.result} ${r.lastAttempt.at.slice(0, 16).replace('T', ' ')}${r.lastAttempt.result === 'failure' ? `: ${r.lastAttempt.message}` : ''}`
      : '-',
  ]);
  const widths = head.map((h, i) => Math.min(60, Math.max(h.length, ...body.map((b) => b[i]!.length))));
  const line = (cols: string[]) =>
    cols.map((c, i) => (i === cols.length - 1 ? c : c.padEnd(widths[i]!))).join('  ');
  return [line(head), ...body.map(line)].join('\n');
}
