import { promises as dns } from 'node:dns';

type Resolver = dns.Resolver;

import http from 'node:http';
import https from 'node:https';
import { isIP, type LookupFunction } from 'node:net';

export interface ProbeResult {
  status: number;
  body: string;
  /** The URL finally answered after redirects. */
  url: string;
}

/** "host:port" or "host" → a Resolver bound to those servers; undefined → the system resolver. */
export function makeResolver(servers?: string[]): Resolver | undefined {
  if (!servers || servers.length === 0) return undefined;
  const r = new dns.Resolver({ timeout: 2000, tries: 2 });
  r.setServers(servers);
  return r;
}

/** A `lookup` for http.request that resolves through `resolver` (A first, then AAAA). */
export function lookupVia(resolver: Resolver | undefined): LookupFunction | undefined {
  if (!resolver) return undefined;
  return ((hostname: string, options: { all?: boolean }, callback: (...args: unknown[]) => void) => {
    (async () => {
      const v4 = await resolver.resolve4(hostname).catch(() => [] as string[]);
      const addrs = v4.length
        ? v4.map((a) => ({ address: a, family: 4 }))
        : (await resolver.resolve6(hostname).catch(() => [] as string[])).map((a) => ({
            address: a,
            family: 6,
          }));
      if (addrs.length === 0)
        throw Object.assign(new Error(`${hostname} does not resolve`), { code: 'ENOTFOUND' });
      return addrs;
    })().then(
      (addrs) => (options?.all ? callback(null, addrs) : callback(null, addrs[0]!.address, addrs[0]!.family)),
      (err) => callback(err),
    );
  }) as unknown as LookupFunction;
}

/** Resolves a name the way the probe will, for error messages ("resolves to ..."). */
export async function resolveForProbe(host: string, resolver: Resolver | undefined): Promise<string[]> {
  if (isIP(host)) return [host];
  const r = resolver ?? dns;
  const v4 = await r.resolve4(host).catch(() => [] as string[]);
  return v4.length ? v4 : r.resolve6(host).catch(() => [] as string[]);
}

/**
 * GET a URL like the CA would: plain HTTP, redirects followed (at most 5, to http or https; https certificates
 * not checked, as the CA does not check them for HTTP-01), a body cap and a timeout.
 */
export async function probeUrl(
  url: string,
  opts: { lookup?: LookupFunction; timeoutMs: number; maxBytes?: number; signal?: AbortSignal },
): Promise<ProbeResult> {
  let current = url;
  for (let hop = 0; hop <= 5; hop++) {
    opts.signal?.throwIfAborted();
    const res = await getOnce(current, opts);
    if (res.status >= 300 && res.status < 400 && res.location) {
      current = new URL(res.location, current).toString();
      continue;
    }
    return { status: res.status, body: res.body, url: current };
  }
  throw Object.assign(new Error(`too many redirects starting at ${url}`), { code: 'EREDIRECTS' });
}

function getOnce(
  url: string,
  opts: { lookup?: LookupFunction; timeoutMs: number; maxBytes?: number; signal?: AbortSignal },
): Promise<{ status: number; body: string; location?: string }> {
  const u = new URL(url);
  const mod = u.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = mod.request(
      u,
      {
        method: 'GET',
        lookup: opts.lookup,
        timeout: opts.timeoutMs,
        // A shutdown aborts the probe at once instead of waiting for the timeout.
        signal: opts.signal,
        agent: false,
        headers: { 'user-agent': 'certkeeper-self-check', connection: 'close' },
        ...(u.protocol === 'https:' ? { rejectUnauthorized: false } : {}),
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size <= (opts.maxBytes ?? 8192)) chunks.push(c);
        });
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            body: Buffer.concat(chunks).toString('utf8'),
            location: res.headers.location,
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('timeout', () =>
      req.destroy(Object.assign(new Error(`no answer within ${opts.timeoutMs} ms`), { code: 'ETIMEDOUT' })),
    );
    req.on('error', reject);
    req.end();
  });
}
