import { AsyncLocalStorage } from 'node:async_hooks';
import http from 'node:http';
import https from 'node:https';
import * as acme from 'acme-client';
import { secureContextFor } from '../crypto/tls-context.js';
import { type AcmeRequestEvent, acmeEvents } from './events.js';

/** An RFC 8555/7807 problem document as the CA sent it. */
export interface AcmeProblem {
  type?: string;
  detail?: string;
  status?: number;
  subproblems?: { type?: string; detail?: string; identifier?: { type: string; value: string } }[];
}

interface CallContext {
  lastProblem?: AcmeProblem;
  lastRetryAfter?: string;
}

/**
 * acme-client reduces a CA's problem document to its `detail` string. We keep the whole document (type,
 * subproblems) and the Retry-After of the last response of the current async call chain, so errors can say
 * "rateLimited" or "badNonce" and the pipeline can retry or back off correctly, even with many orders running.
 */
const calls = new AsyncLocalStorage<CallContext>();

export { type AcmeRequestEvent, acmeEvents };

const started = new WeakMap<object, number>();
let installed = false;

/**
 * Replay-Nonce values from the CA's responses, per origin. acme-client asks newNonce (HEAD) before every signed
 * request; every ACME response already carries a fresh nonce, so reusing those halves the round trips.
 * A stale one just costs a badNonce retry, which carries its own fresh nonce.
 */
const noncePools = new Map<string, string[]>();
const NONCE_POOL_MAX = 64;

function origin(url: string | undefined): string {
  try {
    return new URL(url ?? '').origin;
  } catch {
    return '';
  }
}

export function takeNonce(url: string): string | undefined {
  return noncePools.get(origin(url))?.pop();
}

/** Makes `client` use pooled nonces before asking newNonce. */
export function useNoncePool(client: acme.Client, directoryUrl: string): void {
  const http = (client as unknown as { api: { http: { getNonce: () => Promise<string> } } }).api.http;
  const fetchNonce = http.getNonce.bind(http);
  http.getNonce = async () => takeNonce(directoryUrl) ?? fetchNonce();
}

function classify(url: string): string {
  const path = (() => {
    try {
      return new URL(url).pathname;
    } catch {
      return url;
    }
  })();
  const known: [RegExp, string][] = [
    [/renewal-?info/i, 'renewalInfo'],
    [/nonce/i, 'newNonce'],
    [/new-?acc|sign-me-up/i, 'newAccount'],
    [/new-?order|order-plz/i, 'newOrder'],
    [/revoke/i, 'revokeCert'],
    [/key-?change|rollover/i, 'keyChange'],
    [/authz/i, 'authz'],
    [/chal/i, 'challenge'],
    [/finali[sz]e/i, 'finalize'],
    [/cert/i, 'certificate'],
    [/order/i, 'order'],
    [/acc(oun)?t/i, 'account'],
    [/dir/i, 'directory'],
  ];
  return known.find(([re]) => re.test(path))?.[1] ?? 'other';
}

/** Extra trusted roots per CA origin (acme.caBundle), and the HTTPS agent that trusts exactly those. */
const agentsByOrigin = new Map<string, { bundle: string; agent: https.Agent }>();
const bundles = new Set<string>();

/**
 * Process-wide HTTP settings of acme-client's axios instance — the one place that sets them: keep-alive agents
 * (one TLS handshake per CA, not per request), extra trust for test CAs, a request timeout, short default retry
 * delays, and the interceptor that records problem documents and request events. Idempotent. Several
 * configurations with different CAs in one process do not disturb each other: requests to a CA's directory
 * origin use that CA's agent (its own bundle only); other origins use an agent trusting every bundle seen.
 */
export function configureAcmeHttp({
  caBundlePem,
  directoryUrl,
  timeoutMs = 30_000,
}: {
  caBundlePem?: string;
  /** The CA this bundle is for; requests to its origin trust exactly this bundle. */
  directoryUrl?: string;
  timeoutMs?: number;
} = {}): void {
  const ax = acme.axios;
  const key = directoryUrl ? origin(directoryUrl) : '';
  if (caBundlePem) bundles.add(caBundlePem);
  if (key && agentsByOrigin.get(key)?.bundle !== (caBundlePem ?? '')) {
    agentsByOrigin.get(key)?.agent.destroy();
    agentsByOrigin.set(key, {
      bundle: caBundlePem ?? '',
      agent: new https.Agent({
        keepAlive: true,
        maxSockets: 64,
        ...(caBundlePem ? { secureContext: secureContextFor(caBundlePem) } : {}),
      }),
    });
  }
  ax.defaults.httpAgent ??= new http.Agent({ keepAlive: true, maxSockets: 64 });
  ax.defaults.httpsAgent = new https.Agent({
    keepAlive: true,
    maxSockets: 64,
    ...(bundles.size ? { secureContext: secureContextFor([...bundles].join('\n')) } : {}),
  });
  ax.defaults.timeout = timeoutMs;
  const settings = (
    ax.defaults as unknown as { acmeSettings: { retryDefaultDelay: number; retryMaxAttempts: number } }
  ).acmeSettings;
  settings.retryDefaultDelay = 1;
  settings.retryMaxAttempts = 3;
  if (installed) return;
  installed = true;
  // Ahead of acme-client's own response interceptor: a request that got no response at all (refused, unresolvable,
  // timed out) becomes a plain error naming the URL and the cause. acme-client would otherwise retry it for 6 s and
  // then fail with "Cannot read properties of undefined (reading 'config')".
  const handlers = (ax.interceptors.response as unknown as { handlers: unknown[] }).handlers;
  handlers.unshift({
    fulfilled: (r: unknown) => r,
    rejected: (err: {
      config?: { url?: string; method?: string };
      response?: unknown;
      code?: string;
      message?: string;
    }) => {
      if (!err?.config || err.response) return Promise.reject(err);
      const url = err.config.url ?? '';
      acmeEvents.emit('request', {
        endpoint: classify(url),
        method: (err.config.method ?? 'get').toUpperCase(),
        status: 0,
        durationMs: Date.now() - (started.get(err.config) ?? Date.now()),
      } satisfies AcmeRequestEvent);
      const clean = Object.assign(
        new Error(`cannot reach the CA at ${url}: ${err.code ?? ''} ${err.message ?? ''}`.trim()),
        {
          code: err.code,
        },
      );
      return Promise.reject(clean);
    },
    synchronous: false,
    runWhen: null,
  });
  ax.interceptors.request.use((config) => {
    started.set(config, Date.now());
    const own = agentsByOrigin.get(origin(config.url));
    if (own) config.httpsAgent = own.agent;
    return config;
  });
  ax.interceptors.response.use(
    (resp) => {
      const nonce = resp.headers['replay-nonce'];
      const endpoint = classify(resp.config.url ?? '');
      if (typeof nonce === 'string' && endpoint !== 'newNonce') {
        const key = origin(resp.config.url);
        const pool = noncePools.get(key) ?? [];
        if (pool.length < NONCE_POOL_MAX) pool.push(nonce);
        noncePools.set(key, pool);
      }
      const ctx = calls.getStore();
      const problem = /problem\+json/.test(String(resp.headers['content-type'] ?? ''))
        ? (resp.data as AcmeProblem)
        : undefined;
      if (ctx) {
        if (problem && resp.status >= 400) ctx.lastProblem = problem;
        const ra = resp.headers['retry-after'];
        if (ra !== undefined) ctx.lastRetryAfter = String(ra);
      }
      const t0 = started.get(resp.config) ?? Date.now();
      acmeEvents.emit('request', {
        endpoint,
        method: (resp.config.method ?? 'get').toUpperCase(),
        status: resp.status,
        durationMs: Date.now() - t0,
      } satisfies AcmeRequestEvent);
      return resp;
    },
    (err: { config?: { url?: string; method?: string } }) => {
      if (err?.config) {
        acmeEvents.emit('request', {
          endpoint: classify(err.config.url ?? ''),
          method: (err.config.method ?? 'get').toUpperCase(),
          status: 0,
          durationMs: Date.now() - (started.get(err.config) ?? Date.now()),
        } satisfies AcmeRequestEvent);
      }
      return Promise.reject(err);
    },
  );
}

/** Runs `fn` with a fresh problem record; returns the result or throws with `problem` attached to the error. */
export async function withProblemCapture<T>(fn: () => Promise<T>): Promise<T> {
  const ctx: CallContext = {};
  try {
    return await calls.run(ctx, fn);
  } catch (err) {
    if (err && typeof err === 'object') {
      Object.assign(err, { acmeProblem: ctx.lastProblem, acmeRetryAfter: ctx.lastRetryAfter });
    }
    throw err;
  }
}

/** Retry-After as seconds or HTTP date → milliseconds from now (undefined when absent or unparsable). */
export function parseRetryAfter(value: string | undefined, now = Date.now()): number | undefined {
  if (value === undefined || value === '') return undefined;
  const secs = Number(value);
  if (Number.isFinite(secs)) return Math.max(0, secs * 1000);
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}
