import type { Config } from '../config/schema.js';
import { type StatusRow, statusRow } from '../plan/status-row.js';
import { CertStore } from '../store/store.js';
import { readStatusSync } from '../store/summary.js';

export type { StatusRow };

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

const when = (iso: string) => iso.slice(0, 16).replace('T', ' ');

/** The LAST RESULT cell: a stored-but-not-deployed certificate never reads "success". */
function lastResult(r: StatusRow): string {
  const a = r.lastAttempt;
  if (r.validity !== 'missing' && r.validity !== 'placeholder' && !r.deployed) {
    const failed = r.lastDeploy && !r.lastDeploy.ok ? r.lastDeploy.results.find((d) => !d.ok) : undefined;
    return failed
      ? `not deployed ${when(r.lastDeploy!.at)}: ${failed.deployer}: ${failed.detail}${failed.hint ? ` (fix: ${failed.hint})` : ''}`
      : 'not deployed yet (the next run deploys it)';
  }
  if (!a) return '-';
  return `${a.result} ${when(a.at)}${a.result === 'failure' ? `: ${a.message}${a.hint ? ` (fix: ${a.hint})` : ''}` : ''}`;
}

export function formatStatusTable(rows: StatusRow[]): string {
  const head = ['NAME', 'DOMAINS', 'NOT AFTER', 'DAYS', 'STATE', 'RENEWS AT', 'LAST RESULT'];
  const body = rows.map((r) => [
    r.name + (r.configured ? '' : ' (not in config)'),
    r.domains.join(','),
    r.notAfter ? when(r.notAfter) : '-',
    r.daysLeft === undefined ? '-' : String(r.daysLeft),
    r.validity === 'valid' && !r.deployed ? 'not deployed' : r.health,
    r.nextRenewal ? when(r.nextRenewal) : '-',
    lastResult(r),
  ]);
  const widths = head.map((h, i) => Math.min(60, Math.max(h.length, ...body.map((b) => b[i]!.length))));
  const line = (cols: string[]) =>
    cols.map((c, i) => (i === cols.length - 1 ? c : c.padEnd(widths[i]!))).join('  ');
  return [line(head), ...body.map(line)].join('\n');
}
