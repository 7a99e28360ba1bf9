import type * as acme from 'acme-client';
import type { ChallengeInput, ChallengeSolver, SolverContext, WaitDeadline } from '../challenges/types.js';
import { identifierOf, isIpAddress } from '../config/ip.js';
import type { KeyType } from '../config/schema.js';
import { CertkeeperError } from '../errors.js';
import type { Logger } from '../log.js';
import { sleep } from '../platform/sleep.js';
import type { Account } from './account.js';
import { createCsrPem } from './csr.js';
import { callAcme as call, toAcmeError } from './errors.js';
import { parseRetryAfter, withProblemCapture } from './http.js';
import { assertChallengeToken, assertOrderedIdentifier } from './inbound.js';
import { checkIssuedCertificate } from './issued-check.js';
import { createPrivateKey, dns01Value, jwkThumbprint } from './keys.js';
import { assertProfileOffered } from './profiles.js';

export interface OrderRequest {
  certName: string;
  domains: string[];
  keyType: KeyType;
  solver: ChallengeSolver;
  logger: Logger;
  signal?: AbortSignal;
  /** ARI: the certID of the certificate this order replaces (RFC 9773 §5). */
  replaces?: string;
  preferredChain?: string;
  /** ACME profile (newOrder `profile`); checked against the directory's meta.profiles before the order. */
  profile?: string;
  /** Upper bound for the whole order. */
  timeoutMs?: number;
}

export interface OrderResult {
  fullchainPem: string;
  keyPem: string;
  /** Milliseconds per step, for logs and benchmarks. */
  timings: Record<string, number>;
}

interface ApiResponse<T> {
  status: number;
  data: T;
  headers: Record<string, string | undefined>;
}
interface InternalApi {
  apiRequest<T>(url: string, payload: unknown, validStatusCodes: number[]): Promise<ApiResponse<T>>;
}

/**
 * Polls an order or authorization URL until it leaves the pending states. Starts at 20 ms and grows to 1 s
 * (a local CA answers within milliseconds; acme-client's 5 s minimum would dominate), but always waits at least
 * what the CA's Retry-After says. Bounded by `deadline`.
 */
async function poll<T extends { status: string }>(
  client: acme.Client,
  url: string,
  pending: string[],
  deadline: WaitDeadline,
  what: string,
  ctx: { cert: string; domain?: string },
  signal?: AbortSignal,
): Promise<T> {
  const api = (client as unknown as { api: InternalApi }).api;
  let delay = 20;
  for (;;) {
    const resp = await call(`polling the ${what}`, ctx, () => api.apiRequest<T>(url, null, [200]));
    if (!pending.includes(resp.data.status)) return resp.data;
    const retryAfter = parseRetryAfter(resp.headers['retry-after']) ?? 0;
    const wait = Math.max(delay, retryAfter);
    if (Date.now() + wait > deadline.at) {
      throw new CertkeeperError(
        'acme',
        `the ${what} was still "${resp.data.status}" at the order's deadline: ${deadline.reason}`,
        {
          ...ctx,
          hint: deadline.hint ?? 'the CA is slow or stuck; retry later, or raise acme.orderTimeoutSeconds',
        },
      );
    }
    await sleep(wait, signal);
    delay = Math.min(delay * 2, 1000);
  }
}

/**
 * The newOrder payload (RFC 8555 §7.4): identifiers typed "dns" or "ip" (RFC 8738), `replaces` (RFC 9773) and
 * `profile` (draft-aaron-acme-profiles; acme-client 5 has no field for it, the payload is passed through as is).
 */
export function newOrderPayload(req: Pick<OrderRequest, 'domains' | 'replaces' | 'profile'>): {
  identifiers: { type: string; value: string }[];
  replaces?: string;
  profile?: string;
} {
  return {
    identifiers: req.domains.map(identifierOf),
    ...(req.replaces ? { replaces: req.replaces } : {}),
    ...(req.profile ? { profile: req.profile } : {}),
  };
}

/** The CA's current directory (acme-client caches it) must offer `profile`; else a config error listing what it does. */
async function checkProfile(account: Account, profile: string, cert: string): Promise<void> {
  const http = (account.client as unknown as { api: { http: { getDirectory(): Promise<unknown> } } }).api
    .http;
  const directory = await call('reading the ACME directory', { cert }, () => http.getDirectory());
  assertProfileOffered(directory, profile, { directoryUrl: account.directoryUrl, field: 'profile', cert });
}

/**
 * A profile-aware CA names the profile in the order it created: one other than the one asked for means the
 * certificate would not be what the configuration (and the state) says.
 */
export function checkOrderedProfile(order: unknown, requested: string | undefined, cert: string): void {
  const got = (order as { profile?: unknown } | undefined)?.profile;
  if (requested === undefined || typeof got !== 'string' || got === requested) return;
  throw new CertkeeperError(
    'acme',
    `the CA created the order under the profile "${got.slice(0, 64)}" instead of "${requested}"`,
    {
      cert,
      code: 'CK_ERR_PROFILE',
      hint: "check the CA's profile documentation and the configured profile; report it to the CA if it offers the profile",
    },
  );
}

/**
 * The order cannot outlive its authorizations: the earliest `expires` of those still to validate bounds every wait
 * (an hour with the tlsserver and shortlived profiles; days with classic, where the order timeout is nearer).
 */
export function authorizationDeadline(
  authzs: Pick<acme.Authorization, 'status' | 'expires'>[],
  deadline: WaitDeadline,
): WaitDeadline {
  let earliest: number | undefined;
  for (const a of authzs) {
    if (a.status === 'valid' || !a.expires) continue;
    const at = Date.parse(a.expires);
    if (Number.isFinite(at) && (earliest === undefined || at < earliest)) earliest = at;
  }
  if (earliest === undefined || earliest >= deadline.at) return deadline;
  return {
    at: earliest,
    reason: `the CA's authorization expires at ${new Date(earliest).toISOString()}`,
    hint: "the CA's authorizations run out before validation finished (short profiles give an hour): retry; if it recurs, make the challenge answer sooner",
  };
}

/**
 * CSR names: every identifier as a SAN (acme-client writes IP literals as iPAddress SANs); the subject CN only
 * for a DNS name of at most 64 characters (CAs drop IP addresses from the CN, and Let's Encrypt's short profiles
 * omit the CN entirely).
 */
export function csrNames(domains: string[]): { altNames: string[]; commonName?: string } {
  const altNames = domains.map((d) => identifierOf(d).value);
  const cn = altNames.find((d) => !isIpAddress(d));
  return { altNames, ...(cn && cn.length <= 64 ? { commonName: cn } : {}) };
}

/** Names "*.example.com" → identifier value "example.com" + wildcard flag, as the CA reports them. */
function splitWildcard(name: string): { domain: string; wildcard: boolean } {
  return name.startsWith('*.')
    ? { domain: name.slice(2), wildcard: true }
    : { domain: name, wildcard: false };
}

function describeAuthzFailure(
  authz: acme.Authorization,
  type: string,
): { detail: string; problemTypeName?: string } {
  const ch = authz.challenges.find((c) => c.type === type) ?? authz.challenges[0];
  const err = (ch as { error?: { type?: string; detail?: string } } | undefined)?.error;
  const t = err?.type?.replace('urn:ietf:params:acme:error:', '');
  return { detail: err?.detail ?? `authorization is ${authz.status}`, problemTypeName: t };
}

/**
 * Every authorization of the order must be for one of the configured names (case-insensitively, wildcards as
 * "*.name"), and the token of the challenge we will use must be an RFC 8555 token: an identifier the CA slipped in
 * never reaches a solver, a hook or a DNS record name, and a token never becomes a path outside the webroot.
 */
function checkAuthorizations(authzs: acme.Authorization[], req: OrderRequest): void {
  for (const authz of authzs) {
    const name = assertOrderedIdentifier(authz.identifier, authz.wildcard === true, req.domains, {
      cert: req.certName,
    });
    const challenge = authz.challenges.find((c) => c.type === req.solver.type);
    if (authz.status !== 'valid' && challenge) {
      assertChallengeToken(challenge.token, { cert: req.certName, domain: name.replace(/^\*\./, '') });
    }
  }
}

/** What the CA returned is checked before it leaves the order (our key, our names, a linked chain, valid now). */
function checkIssued(req: OrderRequest, result: OrderResult): OrderResult {
  checkIssuedCertificate({
    cert: req.certName,
    fullchainPem: result.fullchainPem,
    keyPem: result.keyPem,
    domains: req.domains,
    now: new Date(),
  });
  return result;
}

/**
 * One certificate from the CA: new key, order, challenges through `solver` (present → check → answer →
 * cleanup, whatever happens), finalize, download, check. Nothing here touches the store. When the CA has
 * forgotten the account (a CA reset), the account is registered again and the order retried once.
 */
export async function orderCertificate(account: Account, req: OrderRequest): Promise<OrderResult> {
  try {
    return checkIssued(req, await orderOnce(account, req));
  } catch (err) {
    if (!(err instanceof CertkeeperError) || err.code !== 'CK_ERR_ACME_ACCOUNT_DOES_NOT_EXIST') throw err;
    if (!account.reRegister) throw err;
    req.logger.warn(
      { event: 'account.lost', cert: req.certName, directoryUrl: account.directoryUrl },
      'the CA no longer knows the ACME account; registering a new one and retrying the order once',
    );
    await account.reRegister();
    return checkIssued(req, await orderOnce(account, req));
  }
}

async function orderOnce(account: Account, req: OrderRequest): Promise<OrderResult> {
  const { client } = account;
  const { certName: cert, logger, signal } = req;
  const timings: Record<string, number> = {};
  const t0 = Date.now();
  const timeoutMs = req.timeoutMs ?? 300_000;
  const orderDeadline: WaitDeadline = {
    at: t0 + timeoutMs,
    reason: `the order timeout (acme.orderTimeoutSeconds: ${Math.round(timeoutMs / 1000)})`,
  };
  let deadline = orderDeadline;
  const mark = (step: string, since: number) => {
    timings[step] = Date.now() - since;
    logger.debug({ event: `order.${step}`, cert, durationMs: timings[step] }, step);
  };

  const keyPromise = createPrivateKey(req.keyType);
  let t = Date.now();
  if (req.profile) await checkProfile(account, req.profile, cert);
  const order = await call('creating the order', { cert }, () =>
    client.createOrder(
      newOrderPayload(req) as acme.Order & { identifiers: { type: string; value: string }[] },
    ),
  );
  mark('newOrder', t);
  checkOrderedProfile(order, req.profile, cert);

  t = Date.now();
  const authzs = await call('fetching authorizations', { cert }, () => client.getAuthorizations(order));
  mark('authorizations', t);
  try {
    checkAuthorizations(authzs, req);
  } catch (err) {
    // Nothing was presented; leave no pending authorization behind either.
    await Promise.allSettled(authzs.map((a) => withProblemCapture(() => client.deactivateAuthorization(a))));
    throw err;
  }
  deadline = authorizationDeadline(authzs, deadline);
  const thumbprint = jwkThumbprint(account.accountKeyPem);
  const todo: {
    authz: acme.Authorization;
    challenge: acme.Authorization['challenges'][number];
    input: ChallengeInput;
  }[] = [];
  for (const authz of authzs) {
    if (authz.status === 'valid') continue;
    const { domain } = splitWildcard(authz.identifier.value);
    const wildcard = authz.wildcard === true;
    const challenge = authz.challenges.find((c) => c.type === req.solver.type);
    if (!challenge) {
      throw new CertkeeperError(
        'challenge',
        `the CA offers no ${req.solver.type} challenge for ${wildcard ? '*.' : ''}${domain}`,
        {
          cert,
          domain,
          hint: wildcard
            ? 'wildcard names need a dns-01 challenge'
            : `configure a challenge type the CA offers: ${authz.challenges.map((c) => c.type).join(', ')}`,
        },
      );
    }
    assertChallengeToken(challenge.token, { cert, domain });
    const keyAuthorization = `${challenge.token}.${thumbprint}`;
    todo.push({
      authz,
      challenge,
      input: {
        certName: cert,
        domain,
        wildcard,
        type: req.solver.type,
        token: challenge.token,
        keyAuthorization,
        dnsRecordName: `_acme-challenge.${domain}`,
        dnsValue: dns01Value(keyAuthorization),
      },
    });
  }

  const solverCtx: SolverContext = { logger, signal, deadline };
  const inputs = todo.map((x) => x.input);
  if (inputs.length > 0) {
    let presented = false;
    try {
      t = Date.now();
      if (req.solver.presentAll) await req.solver.presentAll(inputs, solverCtx);
      else await Promise.all(inputs.map((i) => req.solver.present(i, solverCtx)));
      presented = true;
      mark('present', t);
      if (req.solver.check) {
        t = Date.now();
        await req.solver.check(inputs, solverCtx);
        mark('selfCheck', t);
      }
      t = Date.now();
      await Promise.all(
        todo.map(async ({ authz, challenge, input }) => {
          const ctx = { cert, domain: input.domain };
          await call('answering the challenge', ctx, () => client.completeChallenge(challenge));
          const done = await poll<acme.Authorization>(
            client,
            authz.url,
            ['pending', 'processing'],
            deadline,
            'authorization',
            ctx,
            signal,
          );
          if (done.status !== 'valid') {
            const { detail, problemTypeName } = describeAuthzFailure(done, req.solver.type);
            throw toAcmeError(
              Object.assign(new Error(detail), {
                acmeProblem: {
                  type: problemTypeName ? `urn:ietf:params:acme:error:${problemTypeName}` : undefined,
                  detail,
                },
              }),
              {
                cert,
                domain: input.domain,
                action: `validating ${input.wildcard ? '*.' : ''}${input.domain}`,
              },
            );
          }
        }),
      );
      mark('validate', t);
    } catch (err) {
      // Leave no pending authorization behind (it counts against the CA's pending-authorization limit).
      await Promise.allSettled(
        todo.map(({ authz }) => withProblemCapture(() => client.deactivateAuthorization(authz))),
      );
      throw err;
    } finally {
      t = Date.now();
      const cleanup = req.solver.cleanupAll
        ? req.solver.cleanupAll(inputs, solverCtx)
        : Promise.all(inputs.map((i) => req.solver.cleanup(i, solverCtx)));
      await cleanup.catch((err: unknown) => {
        logger.warn(
          { event: 'challenge.cleanup_failed', cert, err: String(err), presented },
          'challenge cleanup failed',
        );
      });
      mark('cleanup', t);
    }
  }

  t = Date.now();
  const keyPem = await keyPromise;
  const csr = await createCsrPem(csrNames(req.domains), keyPem);
  mark('csr', t);
  t = Date.now();
  const finalized = await call('finalizing the order', { cert }, () => client.finalizeOrder(order, csr));
  const ready =
    finalized.status === 'valid'
      ? finalized
      : await poll<acme.Order>(
          client,
          order.url,
          ['pending', 'ready', 'processing'],
          orderDeadline,
          'order',
          { cert },
          signal,
        );
  if (ready.status !== 'valid') {
    throw new CertkeeperError('acme', `the order ended "${ready.status}" instead of "valid"`, {
      cert,
      hint: 'retry; if it persists, check the CA status page',
    });
  }
  mark('finalize', t);
  t = Date.now();
  const fullchainPem = await call('downloading the certificate', { cert }, () =>
    client.getCertificate({ ...ready, url: order.url } as acme.Order, req.preferredChain),
  );
  mark('download', t);
  timings.total = Date.now() - t0;
  return { fullchainPem, keyPem, timings };
}
