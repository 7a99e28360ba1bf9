import { promises as dns } from 'node:dns';
import { isIP } from 'node:net';
import { CertkeeperError } from '../errors.js';
import type { Logger } from '../log.js';
import { sleep } from '../platform/sleep.js';

/** One TXT name and the values that must all be present there (other values may be present too). */
export interface TxtExpectation {
  /** Record name without a trailing dot, e.g. `_acme-challenge.example.com`. */
  name: string;
  values: string[];
  /** For error messages: the domain the record proves. */
  domain?: string;
}

/** A DNS server to ask: an IP address and a port. */
export interface NameServer {
  host: string;
  port: number;
  /** How the user or the zone named it (for messages): "ns-1.awsdns-01.org" or "127.0.0.1:8053". */
  label: string;
}

export interface PropagationOptions {
  /** Servers to ask, each "host", "host:port", "[v6]:port" or an already parsed NameServer. All must answer with every value. */
  nameservers: Array<string | NameServer>;
  timeoutMs: number;
  /** First pause between rounds; doubles up to maxIntervalMs. */
  intervalMs?: number;
  maxIntervalMs?: number;
  /** Per-query timeout. */
  queryTimeoutMs?: number;
  logger: Logger;
  signal?: AbortSignal;
  cert?: string;
  /** Resolves a nameserver host name to addresses; default: node's system resolver (A, then AAAA). */
  resolveHost?: (host: string) => Promise<string[]>;
  /**
   * Set when timeoutMs was cut short by the order's deadline (clampWait): why, e.g. "the CA's authorizations
   * expire at …". The timeout error then names that deadline instead of the propagation timeout.
   */
  cutBy?: string;
}

/** Parses "host", "host:port", "[::1]:53", "::1" into host + port (default 53). */
export function parseHostPort(spec: string, defaultPort = 53): { host: string; port: number } {
  const s = spec.trim();
  const bracket = /^\[([^\]]+)\](?::(\d+))?$/.exec(s);
  if (bracket) return { host: bracket[1]!, port: bracket[2] ? Number(bracket[2]) : defaultPort };
  if (isIP(s) === 6) return { host: s, port: defaultPort };
  const m = /^([^:]+):(\d+)$/.exec(s);
  if (m) return { host: m[1]!, port: Number(m[2]) };
  return { host: s, port: defaultPort };
}

function serverString(ns: NameServer): string {
  return isIP(ns.host) === 6 ? `[${ns.host}]:${ns.port}` : `${ns.host}:${ns.port}`;
}

async function systemResolveHost(host: string): Promise<string[]> {
  const r = new dns.Resolver({ timeout: 3000, tries: 2 });
  const v4 = await r.resolve4(host).catch(() => [] as string[]);
  if (v4.length) return v4;
  return r.resolve6(host).catch(() => [] as string[]);
}

/** Turns nameserver specs into IP:port servers; host names (e.g. a zone's NS names) are resolved once. */
export async function resolveNameServers(
  specs: Array<string | NameServer>,
  resolveHost: (host: string) => Promise<string[]> = systemResolveHost,
): Promise<NameServer[]> {
  const out: NameServer[] = [];
  for (const spec of specs) {
    if (typeof spec !== 'string') {
      out.push(spec);
      continue;
    }
    const { host, port } = parseHostPort(spec);
    if (isIP(host)) {
      out.push({ host, port, label: spec });
      continue;
    }
    const addrs = await resolveHost(host.replace(/\.$/, ''));
    // One address per name is enough: the addresses of one NS name serve the same data.
    if (addrs[0]) out.push({ host: addrs[0], port, label: spec });
  }
  return out;
}

/** The TXT values one server returns for a name (multi-string records joined), or an error code. */
export async function queryTxt(
  server: NameServer,
  name: string,
  queryTimeoutMs = 3000,
): Promise<{ values: string[] } | { error: string }> {
  const r = new dns.Resolver({ timeout: queryTimeoutMs, tries: 1 });
  r.setServers([serverString(server)]);
  try {
    const records = await r.resolveTxt(name);
    return { values: records.map((chunks) => chunks.join('')) };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'ERROR';
    // No data / no such name: the record is simply not there (yet).
    if (code === 'ENODATA' || code === 'ENOTFOUND') return { values: [] };
    return { error: code };
  }
}

/**
 * Asks every nameserver for every expected TXT name until all of them return all expected values,
 * with backoff, bounded by timeoutMs. Throws a 'challenge' error naming the domain, the server and what
 * it saw. Never consults a cache: each round sends fresh queries straight to the servers.
 */
export async function waitForTxtRecords(expect: TxtExpectation[], opts: PropagationOptions): Promise<void> {
  if (expect.length === 0) return;
  const servers = await resolveNameServers(opts.nameservers, opts.resolveHost);
  if (servers.length === 0) {
    throw new CertkeeperError('challenge', `no usable nameserver to check ${expect[0]!.name} on`, {
      cert: opts.cert,
      domain: expect[0]!.domain,
      code: 'CK_ERR_DNS_PROPAGATION',
      hint: `none of the nameservers (${opts.nameservers.map((n) => (typeof n === 'string' ? n : n.label)).join(', ')}) resolved to an address: fix the "nameservers" setting or the zone's NS records`,
    });
  }
  const deadline = Date.now() + opts.timeoutMs;
  let interval = opts.intervalMs ?? 2000;
  const maxInterval = opts.maxIntervalMs ?? 15_000;
  let pending = expect.flatMap((e) => servers.map((server) => ({ e, server })));
  let last = new Map<string, string>();
  for (let round = 1; ; round++) {
    const results = await Promise.all(
      pending.map(async (p) => {
        const res = await queryTxt(p.server, p.e.name, opts.queryTimeoutMs);
        const ok = 'values' in res && p.e.values.every((v) => res.values.includes(v));
        return { p, ok, res };
      }),
    );
    last = new Map(
      results
        .filter((r) => !r.ok)
        .map((r) => [
          `${r.p.e.name}@${r.p.server.label}`,
          'error' in r.res ? `error ${r.res.error}` : `values [${r.res.values.join(', ')}]`,
        ]),
    );
    pending = results.filter((r) => !r.ok).map((r) => r.p);
    if (pending.length === 0) {
      opts.logger.debug(
        { cert: opts.cert, names: expect.map((e) => e.name), rounds: round },
        'TXT records visible',
      );
      return;
    }
    const left = deadline - Date.now();
    if (left <= 0 || opts.signal?.aborted) break;
    opts.logger.debug({ cert: opts.cert, waiting: [...last.keys()], round }, 'TXT records not visible yet');
    await sleep(Math.min(interval, left), opts.signal).catch(() => undefined);
    interval = Math.min(interval * 2, maxInterval);
  }
  const first = pending[0]!;
  const seen = last.get(`${first.e.name}@${first.server.label}`) ?? 'nothing';
  const waited = `after ${Math.round(opts.timeoutMs / 1000)}s${opts.cutBy ? `, the DNS propagation wait stopped at the order's deadline: ${opts.cutBy}` : ''}`;
  throw new CertkeeperError(
    'challenge',
    `TXT record ${first.e.name} not visible on nameserver ${first.server.label} ${waited} (it answered ${seen}; ${pending.length} name/server pair(s) still missing)`,
    {
      cert: opts.cert,
      domain: first.e.domain,
      code: 'CK_ERR_DNS_PROPAGATION',
      hint: opts.cutBy
        ? "the CA's authorization runs out before the record became visible: make the DNS provider publish faster (or lower the record TTL), or use a profile with longer-lived authorizations"
        : 'check that the zone is the one the domain is delegated to (its NS records at the parent) and that the DNS provider published the record; raise propagationTimeoutSeconds if the provider is slow',
    },
  );
}

/**
 * Finds the authoritative nameservers of the zone holding `domain` by walking up its labels with the
 * system resolver (for providers that cannot tell us, such as exec). Returns NS host names.
 */
export async function findAuthoritativeNameservers(
  domain: string,
  resolver: Pick<dns.Resolver, 'resolveNs'> = new dns.Resolver({ timeout: 3000, tries: 2 }),
): Promise<string[]> {
  const labels = domain.replace(/\.$/, '').split('.');
  for (let i = 0; i < labels.length - 1; i++) {
    const candidate = labels.slice(i).join('.');
    const ns = await resolver.resolveNs(candidate).catch(() => [] as string[]);
    if (ns.length) return ns;
  }
  return [];
}
