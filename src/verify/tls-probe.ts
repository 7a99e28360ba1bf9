/**
 * Verify stage: connect with TLS to where nginx listens, once per domain with that domain as SNI, and check that
 * the certificate served is the one just stored. "Renewed" is not "deployed" until this passes.
 */
import { isIP } from 'node:net';
import { connect, rootCertificates } from 'node:tls';
import { CertkeeperError } from '../errors.js';
import type { Logger } from '../log.js';
import { sleep } from '../platform/sleep.js';

export interface HostPort {
  host: string;
  port: number;
}

/** "127.0.0.1:443", "nginx:8443", "[::1]:443" → {host, port}. Throws a 'verify' error naming the field otherwise. */
export function parseAddress(address: string, field = 'verify.address'): HostPort {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^\s:[\]]+)):(\d{1,5})$/.exec(address.trim());
  const port = m ? Number(m[3]) : Number.NaN;
  if (!m || !(port >= 1 && port <= 65535)) {
    throw new CertkeeperError('config', `"${address}" is not host:port`, {
      field,
      hint: 'write it as host:port, e.g. 127.0.0.1:443, nginx:443 or [::1]:443',
      permanent: true,
    });
  }
  return { host: (m[1] ?? m[2])!, port };
}

export function formatAddress({ host, port }: HostPort): string {
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
}

/** The SNI to send for a configured domain: wildcards get a concrete label under their base. */
export function sniFor(domain: string): string {
  return domain.startsWith('*.') ? `certkeeper-verify.${domain.slice(2)}` : domain;
}

export interface ServedCertificate {
  /** Upper-case hex, like certInfo().serial. */
  serial: string;
  subject: string;
  issuer: string;
  notAfter: Date;
  notBefore: Date;
  /** subjectAltName as Node prints it ("DNS:a.example, IP Address:10.0.0.1"). */
  subjectAltName?: string;
  /** The chain verified against the trusted roots (Node's, plus `ca` when given). */
  authorized: boolean;
  /** Why it did not verify (e.g. CERT_HAS_EXPIRED, SELF_SIGNED_CERT_IN_CHAIN, UNABLE_TO_GET_ISSUER_CERT_LOCALLY). */
  authorizationError?: string;
  /** Whether the leaf is valid for the name asked for (SNI), by RFC 6125 rules. */
  matchesName: boolean;
}

/**
 * One TLS handshake; resolves with the leaf the server presented. No trust decision is made here (the placeholder
 * and Pebble's roots are not trusted anyway): the caller compares serials.
 */
export function probeServedCertificate(
  target: HostPort,
  servername: string,
  timeoutMs = 3000,
  opts: { ca?: string[] } = {},
): Promise<ServedCertificate> {
  return new Promise((resolve, reject) => {
    const socket = connect({
      host: target.host,
      port: target.port,
      // SNI must be a DNS name; RFC 6066 forbids IP literals.
      ...(isIP(servername) ? {} : { servername }),
      rejectUnauthorized: false,
      ALPNProtocols: ['http/1.1'],
      // Extra roots are trusted beside Node's own, not instead of them.
      ...(opts.ca?.length ? { ca: [...rootCertificates, ...opts.ca] } : {}),
    });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(Object.assign(new Error(`no TLS handshake within ${timeoutMs} ms`), { code: 'ETIMEDOUT' }));
    }, timeoutMs);
    socket.once('secureConnect', () => {
      clearTimeout(timer);
      // The X509Certificate view prints the serial exactly as certInfo() does (leading zero bytes kept).
      const peer = socket.getPeerX509Certificate();
      const authorized = socket.authorized;
      const authorizationError = socket.authorizationError
        ? String((socket.authorizationError as NodeJS.ErrnoException).code ?? socket.authorizationError)
        : undefined;
      socket.end();
      socket.destroy();
      if (!peer) {
        reject(new Error('the server presented no certificate'));
        return;
      }
      resolve({
        serial: peer.serialNumber.toUpperCase(),
        subject: peer.subject,
        issuer: peer.issuer,
        notAfter: new Date(peer.validTo),
        notBefore: new Date(peer.validFrom),
        subjectAltName: peer.subjectAltName,
        authorized,
        authorizationError,
        matchesName: isIP(servername) ? !!peer.checkIP(servername) : !!peer.checkHost(servername),
      });
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      socket.destroy();
      reject(err);
    });
  });
}

/** Serials compared without leading zeros (X509Certificate and getPeerCertificate may pad differently). */
export function sameSerial(a: string, b: string): boolean {
  const norm = (s: string) =>
    s
      .toUpperCase()
      .replace(/[^0-9A-F]/g, '')
      .replace(/^0+(?=.)/, '');
  return norm(a) === norm(b);
}

export interface VerifyServedOptions {
  cert: { name: string; domains: string[]; serial: string };
  target: HostPort;
  /** Total time to keep retrying (nginx reloads asynchronously: old workers may answer for a moment). */
  timeoutMs: number;
  /** Pause between rounds. */
  intervalMs?: number;
  /**
   * How long every name must keep answering the new serial, round after round, before it counts as served
   * (default 1000 ms, at most half of timeoutMs). On a reload nginx starts the new workers, waits 100 ms, and
   * only then tells the old ones to stop accepting: for that moment both generations take connections, so one
   * answer with the new serial proves nothing about the next connection.
   */
  settleMs?: number;
  logger: Logger;
  signal?: AbortSignal;
}

export interface VerifyServedResult {
  /** host:port that was checked. */
  address: string;
  /** SNI → serial served (the last one seen). */
  served: Record<string, string>;
  /** Rounds (one handshake per name each). */
  attempts: number;
  /** How long every name had answered the new serial without a miss when verify returned. */
  stableMs: number;
}

export const DEFAULT_SETTLE_MS = 1000;

/**
 * Retries until every domain's SNI is answered with `cert.serial` in consecutive rounds for settleMs, or until
 * timeoutMs (bounded in time and in attempts). A wrong answer in between starts the settle period again. Throws
 * CertkeeperError('verify') with what is served instead.
 */
export async function verifyServedCertificate(opts: VerifyServedOptions): Promise<VerifyServedResult> {
  const { cert, target, logger } = opts;
  const address = formatAddress(target);
  const interval = opts.intervalMs ?? 250;
  const settleMs = Math.max(0, Math.min(opts.settleMs ?? DEFAULT_SETTLE_MS, opts.timeoutMs / 2));
  const deadline = Date.now() + opts.timeoutMs;
  const maxAttempts = Math.max(1, Math.ceil(opts.timeoutMs / interval) + 2);
  const snis = [...new Set(cert.domains.map(sniFor))];
  const served: Record<string, string> = {};
  const failures: Record<string, string> = {};
  let attempts = 0;
  let pending = snis;
  /** Start of the first round of the current run of clean rounds (every name right), if any. */
  let cleanSince: number | undefined;
  let stableMs = 0;
  while (attempts < maxAttempts) {
    attempts++;
    const roundStart = Date.now();
    const still: string[] = [];
    // Every round asks for every name: a name that was right once can still be answered by an old worker.
    for (const sni of snis) {
      const perTry = Math.max(500, Math.min(3000, deadline - Date.now()));
      try {
        const got = await probeServedCertificate(target, sni, perTry);
        served[sni] = got.serial;
        delete failures[sni];
        if (!sameSerial(got.serial, cert.serial)) still.push(sni);
      } catch (err) {
        failures[sni] = describeConnectError(err);
        still.push(sni);
      }
    }
    pending = still;
    if (pending.length > 0) {
      cleanSince = undefined;
      stableMs = 0;
    } else {
      cleanSince ??= roundStart;
      stableMs = Date.now() - cleanSince;
      if (stableMs >= settleMs) break;
    }
    if (Date.now() + interval > deadline || opts.signal?.aborted) break;
    await sleep(interval);
  }
  if (pending.length === 0) {
    if (stableMs < settleMs) {
      logger.warn(
        { cert: cert.name, address, attempts, stableMs, settleMs },
        'served certificate right at the deadline, but not yet for the whole settle period',
      );
    }
    logger.debug(
      { cert: cert.name, address, attempts, stableMs, serial: cert.serial },
      'served certificate verified',
    );
    return { address, served, attempts, stableMs };
  }
  const sni = pending[0]!;
  const domain = cert.domains.find((d) => sniFor(d) === sni);
  if (failures[sni] !== undefined) {
    throw new CertkeeperError(
      'verify',
      `renewed but not deployed: cannot check what ${address} serves for ${sni}: ${failures[sni]}`,
      {
        cert: cert.name,
        domain,
        code: 'CK_ERR_NOT_DEPLOYED',
        hint: `make nginx listen with TLS on ${address}, or set verify.address to where it does (host:port)`,
      },
    );
  }
  throw new CertkeeperError(
    'verify',
    `renewed but not deployed: ${address} (SNI ${sni}) serves serial ${served[sni]}, expected ${cert.serial}` +
      (pending.length > 1
        ? ` (${pending.length - 1} more name${pending.length > 2 ? 's' : ''} also wrong)`
        : ''),
    {
      cert: cert.name,
      domain,
      code: 'CK_ERR_NOT_DEPLOYED',
      hint: `check that the server block for ${sni} uses ssl_certificate .../live/${cert.name}/fullchain.pem and ssl_certificate_key .../live/${cert.name}/privkey.pem, that verify.address points at that nginx, and that nginx was reloaded`,
    },
  );
}

function describeConnectError(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  if (e?.code === 'ECONNREFUSED') return 'connection refused';
  if (e?.code === 'ENOTFOUND' || e?.code === 'EAI_AGAIN') return 'host name does not resolve';
  if (e?.code === 'ETIMEDOUT') return 'timed out';
  return e?.message ? e.message.split('\n')[0]! : String(err);
}
