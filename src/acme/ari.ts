/**
 * ACME Renewal Information (RFC 9773): ask the CA when it wants a certificate renewed.
 *   1. the directory's `renewalInfo` URL (absent: the CA offers no ARI, expiry rules apply)
 *   2. GET <renewalInfo>/<certID> → {suggestedWindow: {start, end}, explanationURL?} and a Retry-After
 * The caller keeps the result in state.ari: a random moment inside the window is chosen once and kept
 * until the CA changes the window; the next question waits for Retry-After (clamped to 1 min … 12 h: Let's Encrypt asks
 * clients to check at least twice a day, and a short-lived certificate cannot wait days for its next answer).
 * Every request is bounded in time and size; nothing here touches the store.
 */
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { secureContextFor } from '../crypto/tls-context.js';
import { CertkeeperError } from '../errors.js';
import type { AriWindow } from '../store/state.js';

const MAX_BODY = 64 * 1024;
const MIN_RETRY_MS = 60_000;
const MAX_RETRY_MS = 12 * 3600_000;
const DEFAULT_RETRY_MS = 6 * 3600_000;

export interface AriHttpOptions {
  /** Extra PEM roots to trust (acme.caBundle). */
  caBundlePem?: string;
  timeoutMs?: number;
  signal?: AbortSignal;
}

interface Response {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One bounded GET. */
export function httpGet(url: string, opts: AriHttpOptions = {}): Promise<Response> {
  const u = new URL(url);
  const https = u.protocol === 'https:';
  const req = https ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const r = req(
      u,
      {
        method: 'GET',
        headers: { accept: 'application/json', 'user-agent': 'certkeeper' },
        timeout: opts.timeoutMs ?? 10_000,
        signal: opts.signal,
        ...(https && opts.caBundlePem ? { secureContext: secureContextFor(opts.caBundlePem) } : {}),
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > MAX_BODY) r.destroy(new Error(`response larger than ${MAX_BODY} bytes`));
          else chunks.push(c);
        });
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString(),
          }),
        );
        res.on('error', reject);
      },
    );
    r.on('timeout', () => r.destroy(new Error(`no answer within ${opts.timeoutMs ?? 10_000} ms`)));
    r.on('error', reject);
    r.end();
  });
}

/**
 * Directory reads in flight, and failed ones for a minute, per directory URL and CA bundle. A job that checks 1,000
 * certificates while the CA is unreachable asks it once, not once per certificate (each certificate still gets the
 * error, and falls back to the expiry rule); concurrent checks share one request. Answers are not kept here: the
 * issuer keeps the URL it was given (pipeline/acme-issuer.ts).
 */
const directoryReads = new Map<string, { read: Promise<string | undefined>; failedAt?: number }>();
const DIRECTORY_FAILURE_MEMO_MS = 60_000;

/** The directory's renewalInfo URL, or undefined when the CA offers no ARI. */
export function renewalInfoUrl(directoryUrl: string, opts: AriHttpOptions = {}): Promise<string | undefined> {
  const key = `${directoryUrl}\n${opts.caBundlePem ?? ''}`;
  const known = directoryReads.get(key);
  if (known && (known.failedAt === undefined || Date.now() - known.failedAt < DIRECTORY_FAILURE_MEMO_MS)) {
    return known.read;
  }
  const entry: { read: Promise<string | undefined>; failedAt?: number } = {
    read: readRenewalInfoUrl(directoryUrl, opts),
  };
  directoryReads.set(key, entry);
  entry.read.then(
    () => {
      if (directoryReads.get(key) === entry) directoryReads.delete(key);
    },
    () => {
      entry.failedAt = Date.now();
    },
  );
  return entry.read;
}

async function readRenewalInfoUrl(directoryUrl: string, opts: AriHttpOptions): Promise<string | undefined> {
  let res: Response;
  try {
    res = await httpGet(directoryUrl, opts);
  } catch (err) {
    throw new CertkeeperError(
      'acme',
      `cannot read the ACME directory ${directoryUrl}: ${(err as Error).message}`,
      {
        code: 'CK_ERR_ARI',
        hint: 'check acme.directoryUrl and that the CA is reachable from here',
        cause: err,
      },
    );
  }
  if (res.status !== 200) {
    throw new CertkeeperError('acme', `the ACME directory ${directoryUrl} answered HTTP ${res.status}`, {
      code: 'CK_ERR_ARI',
      hint: 'check acme.directoryUrl; certkeeper retries at the next scheduled check',
    });
  }
  try {
    const dir = JSON.parse(res.body) as { renewalInfo?: unknown };
    return typeof dir.renewalInfo === 'string' ? dir.renewalInfo : undefined;
  } catch {
    return undefined;
  }
}

export interface RenewalInfo {
  start: Date;
  end: Date;
  explanationUrl?: string;
  /** How long to wait before asking again, already clamped. */
  retryAfterMs: number;
}

/** GET <renewalInfo>/<certID>. Errors name the certificate and say what happens next. */
export async function fetchRenewalInfo(
  baseUrl: string,
  certId: string,
  ctx: { cert?: string; now?: Date } & AriHttpOptions = {},
): Promise<RenewalInfo> {
  const url = `${baseUrl.replace(/\/+$/, '')}/${encodeURIComponent(certId)}`;
  const fail = (what: string, cause?: unknown, retryAfter?: Date) =>
    new CertkeeperError('acme', `renewal information (ARI): ${what}`, {
      cert: ctx.cert,
      code: 'CK_ERR_ARI',
      hint: 'nothing to fix unless it persists: certkeeper falls back to the expiry rule and asks again later',
      retryAfter,
      cause,
    });
  let res: Response;
  try {
    res = await httpGet(url, ctx);
  } catch (err) {
    throw fail(`GET ${url} failed: ${(err as Error).message}`, err);
  }
  const nowMs = (ctx.now ?? new Date()).getTime();
  const raw = parseRetryAfter(headerOf(res.headers['retry-after']), nowMs);
  const retryAfterMs = Math.min(MAX_RETRY_MS, Math.max(MIN_RETRY_MS, raw ?? DEFAULT_RETRY_MS));
  if (res.status !== 200) {
    throw fail(`the CA answered HTTP ${res.status} for ${certId}`, undefined, new Date(nowMs + retryAfterMs));
  }
  let body: { suggestedWindow?: { start?: unknown; end?: unknown }; explanationURL?: unknown };
  try {
    body = JSON.parse(res.body);
  } catch (err) {
    throw fail('the CA sent a body that is not JSON', err);
  }
  const start = new Date(String(body.suggestedWindow?.start));
  const end = new Date(String(body.suggestedWindow?.end));
  if (Number.isNaN(start.getTime()) || Number.isNaN(end.getTime()) || end < start) {
    throw fail('the CA sent no valid suggestedWindow (start ≤ end, RFC 3339 times)');
  }
  return {
    start,
    end,
    explanationUrl: typeof body.explanationURL === 'string' ? body.explanationURL : undefined,
    retryAfterMs,
  };
}

/** Retry-After as seconds or an HTTP date → ms from now (kept here so ARI does not load the ACME client). */
function parseRetryAfter(value: string | undefined, now: number): number | undefined {
  if (value === undefined || value === '') return undefined;
  const secs = Number(value);
  if (Number.isFinite(secs)) return Math.max(0, secs * 1000);
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

function headerOf(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

/**
 * The state to keep after an answer: the same selected moment while the window is unchanged, else a fresh
 * uniformly random moment inside it (RFC 9773 §4.2); a window already over means "now".
 */
export function nextAriState(
  prev: AriWindow | undefined,
  info: RenewalInfo,
  now: Date,
  random: () => number = Math.random,
): AriWindow {
  const start = info.start.toISOString();
  const end = info.end.toISOString();
  let selectedAt = prev?.start === start && prev.end === end ? prev.selectedAt : undefined;
  if (!selectedAt) {
    const s = info.start.getTime();
    const e = info.end.getTime();
    const at = e <= now.getTime() ? now.getTime() : s + random() * (e - s);
    selectedAt = new Date(Math.floor(at)).toISOString();
  }
  return {
    start,
    end,
    ...(info.explanationUrl ? { explanationUrl: info.explanationUrl } : {}),
    selectedAt,
    nextCheckAt: new Date(now.getTime() + info.retryAfterMs).toISOString(),
    fetchedAt: now.toISOString(),
  };
}

/** Whether it is time to ask the CA again for this certificate. */
export function ariCheckDue(ari: AriWindow | undefined, now: Date): boolean {
  return !ari?.nextCheckAt || new Date(ari.nextCheckAt) <= now;
}
