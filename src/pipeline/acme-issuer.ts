import type { Account } from '../acme/account.js';
import { ariCertId } from '../acme/ari-id.js';
import type { Config } from '../config/schema.js';
import { CertkeeperError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Issued, IssueRequest, Issuer, RenewalWindow, SolverFactory } from './types.js';

const DIRECTORY_TTL_MS = 3600_000;

/**
 * The ACME client, its HTTP stack and the challenge solvers load only when an order is actually placed: a run where
 * nothing is due (most cron ticks, the daemon's start-up check) never pays for them, in time or in memory.
 */
async function loadAcme() {
  const [account, http, order, challenges] = await Promise.all([
    import('../acme/account.js'),
    import('../acme/http.js'),
    import('../acme/order.js'),
    import('../challenges/index.js'),
  ]);
  return {
    ensureAccount: account.ensureAccount,
    configureAcmeHttp: http.configureAcmeHttp,
    orderCertificate: order.orderCertificate,
    createSolver: challenges.createSolver,
  };
}

export interface AcmeIssuerOptions {
  config: Config;
  directoryUrl: string;
  caBundlePem?: string;
  logger: Logger;
  solvers?: SolverFactory;
}

/** The default Issuer: an ACME account at one directory, the configured challenge solvers, and ARI. */
export class AcmeIssuer implements Issuer {
  readonly directoryUrl: string;
  private account?: Promise<Account>;
  private ari?: { url?: string; at: number };

  constructor(private readonly o: AcmeIssuerOptions) {
    this.directoryUrl = o.directoryUrl;
  }

  private getAccount(): Promise<Account> {
    this.account ??= loadAcme().then(({ configureAcmeHttp, ensureAccount }) => {
      configureAcmeHttp({ caBundlePem: this.o.caBundlePem, directoryUrl: this.directoryUrl });
      return ensureAccount(this.o.config.acme, this.o.config.storage.path, this.directoryUrl, this.o.logger);
    });
    // A failed registration is not cached: the next certificate (or run) tries again.
    this.account.catch(() => (this.account = undefined));
    return this.account;
  }

  async order(req: IssueRequest): Promise<Issued> {
    const account = await this.getAccount();
    const acme = await loadAcme();
    const createSolver = this.o.solvers ?? acme.createSolver;
    const { cert, logger } = req;
    const solver = await createSolver(cert.challenge, { logger, selfCheck: this.o.config.selfCheck });
    const attempt = (replaces: string | undefined) =>
      acme.orderCertificate(account, {
        certName: cert.name,
        replaces,
        domains: cert.domains,
        keyType: cert.keyType,
        solver,
        logger,
        signal: req.signal,
        preferredChain: cert.preferredChain,
        profile: cert.profile,
        timeoutMs: this.o.config.acme.orderTimeoutSeconds * 1000,
      });
    return orderReplacing(attempt, req.replaces, cert.name, logger);
  }

  async renewalInfo(
    cert: Parameters<NonNullable<Issuer['renewalInfo']>>[0],
    ctx: { now: Date; logger: Logger },
  ): Promise<RenewalWindow | undefined> {
    const { fetchRenewalInfo, renewalInfoUrl } = await import('../acme/ari.js');
    if (!this.ari || Date.now() - this.ari.at > DIRECTORY_TTL_MS) {
      const url = await renewalInfoUrl(this.directoryUrl, { caBundlePem: this.o.caBundlePem });
      this.ari = { url, at: Date.now() };
      ctx.logger.info(
        { event: 'ari.directory', offered: !!url },
        url
          ? 'the CA offers renewal information (ARI)'
          : 'the CA offers no renewal information; expiry rules apply',
      );
    }
    if (!this.ari.url) return undefined;
    return fetchRenewalInfo(this.ari.url, ariCertId(cert.certPem, { cert: cert.name }), {
      cert: cert.name,
      now: ctx.now,
      caBundlePem: this.o.caBundlePem,
    });
  }
}

/**
 * RFC 9773 §5: order naming the replaced certificate; when the CA answers that it was already replaced (by another
 * order, e.g. from a different process), order once more without `replaces`.
 */
export async function orderReplacing<T>(
  attempt: (replaces: string | undefined) => Promise<T>,
  replaces: string | undefined,
  name: string,
  logger: Logger,
): Promise<T> {
  try {
    return await attempt(replaces);
  } catch (err) {
    if (replaces && err instanceof CertkeeperError && err.code === 'CK_ERR_ACME_ALREADY_REPLACED') {
      logger.warn(
        { event: 'renew.already_replaced', cert: name },
        `${name}: the CA says the live certificate was already replaced; ordering without "replaces"`,
      );
      return attempt(undefined);
    }
    throw err;
  }
}

/** The certID an order names as replaced (RFC 9773 §5), or undefined when it cannot be computed. */
export function replacesId(certPem: string, name: string): string | undefined {
  try {
    return ariCertId(certPem, { cert: name });
  } catch {
    return undefined;
  }
}
