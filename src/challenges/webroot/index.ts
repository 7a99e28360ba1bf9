import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { isValidChallengeToken } from '../../acme/inbound.js';
import { urlHost } from '../../config/ip.js';
import { CertkeeperError } from '../../errors.js';
import { retry } from '../../platform/retry.js';
import { ensureDirNoFollow, realpathInside, writeFileNoFollow } from '../../store/fsutil.js';
import { lookupVia, makeResolver, probeUrl, resolveForProbe } from '../http-probe.js';
import type { ChallengeInput, ChallengeSolver, SolverContext, SolverDeps } from '../types.js';
import type { WebrootChallengeConfig } from './schema.js';

const WELL_KNOWN = join('.well-known', 'acme-challenge');
/** Connection refused is retried, 0.5 s, 1 s, 1.5 s, 2 s apart (5 attempts, about 5 s). */
const CONNECT_DELAYS_MS = [500, 1000, 1500, 2000];

/**
 * HTTP-01 through a folder the web server already serves (certbot's --webroot): writes the key authorization
 * to <webroot>/.well-known/acme-challenge/<token>, readable by nginx, and removes it afterwards. Before the CA
 * is asked, fetches the token URL itself so that a webroot nobody serves any more fails here, with a message,
 * instead of burning the CA's failed-validation limit.
 */
export function create(config: WebrootChallengeConfig, deps: SolverDeps): ChallengeSolver {
  const dir = join(config.webroot, WELL_KNOWN);
  const selfCheck = config.selfCheck ?? deps.selfCheck.enabled;
  const resolver = makeResolver(deps.selfCheck.resolvers);
  const lookup = lookupVia(resolver);
  const timeoutMs = deps.selfCheck.timeoutSeconds * 1000;
  const port = deps.selfCheck.httpPort;

  const solver: ChallengeSolver = {
    type: 'http-01',
    async present(ch: ChallengeInput) {
      const file = tokenPath(ch);
      try {
        await challengeDir();
        // Created with its mode, exclusively, never through a link: a user who can write the webroot cannot
        // redirect this root-owned write (or a chmod) to another file.
        await writeFileNoFollow(file, ch.keyAuthorization, 0o644, { replace: true });
      } catch (err) {
        if (err instanceof CertkeeperError) throw err;
        throw new CertkeeperError(
          'challenge',
          `cannot write the challenge file under ${dir}: ${(err as Error).message}`,
          {
            cert: ch.certName,
            domain: ch.domain,
            hint: `make ${config.webroot} exist and writable by certkeeper (the same folder nginx serves /.well-known/acme-challenge/ from)`,
            cause: err,
          },
        );
      }
    },
    async cleanup(ch: ChallengeInput) {
      const file = tokenPath(ch);
      // The folder may have been swapped for a link since present(): remove nothing outside it.
      if ((await realpathInside(config.webroot, WELL_KNOWN)) === undefined) return;
      // unlink never follows a link at the last component; a planted link is removed, not its target.
      await fs.unlink(file).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT') throw err;
      });
    },
    async check(chs: ChallengeInput[], ctx: SolverContext) {
      if (!selfCheck) return;
      await Promise.all(chs.map((ch) => checkOne(ch, ctx)));
    },
  };

  /** <dir>/<token>, for a token that can only be a file name (RFC 8555 base64url; the order checked it too). */
  function tokenPath(ch: ChallengeInput): string {
    if (!isValidChallengeToken(ch.token)) {
      throw new CertkeeperError('challenge', 'refusing a challenge token that is not RFC 8555 base64url', {
        cert: ch.certName,
        domain: ch.domain,
        code: 'CK_ERR_ACME_BAD_TOKEN',
        hint: 'the CA sent a token that could name another file; check acme.directoryUrl (use https://)',
      });
    }
    return join(dir, ch.token);
  }

  /** Makes <webroot>/.well-known/acme-challenge (0755) and refuses it when any part of it is a link. */
  async function challengeDir(): Promise<void> {
    // The webroot itself comes from the configuration (made when missing, as before); below it nothing is trusted.
    await fs.mkdir(config.webroot, { recursive: true, mode: 0o755 });
    let d = config.webroot;
    for (const part of WELL_KNOWN.split(/[\\/]/)) {
      d = join(d, part);
      await ensureDirNoFollow(d, 0o755);
    }
    if ((await realpathInside(config.webroot, WELL_KNOWN)) === undefined) {
      throw new CertkeeperError('challenge', `${dir} resolves outside ${config.webroot} (a symbolic link)`, {
        code: 'CK_ERR_WEBROOT_LINK',
        hint: `replace the link with a plain folder: rm ${dir} and let certkeeper create it; only root should be able to write ${config.webroot}`,
      });
    }
  }

  /**
   * Nothing listening yet is retried briefly (nginx may still be starting on the placeholder at first boot);
   * any HTTP answer is final.
   */
  async function probeWithRetry(
    url: string,
    signal: AbortSignal | undefined,
  ): Promise<Awaited<ReturnType<typeof probeUrl>>> {
    try {
      return await retry(() => probeUrl(url, { lookup, timeoutMs, signal }), {
        delaysMs: CONNECT_DELAYS_MS,
        signal,
        retryable: (err) => {
          const code = (err as NodeJS.ErrnoException).code;
          return code === 'ECONNREFUSED' || code === 'ECONNRESET';
        },
      });
    } catch (err) {
      if (signal?.aborted) throw signal.reason;
      throw err;
    }
  }

  async function checkOne(ch: ChallengeInput, ctx: SolverContext): Promise<void> {
    // An IP identifier is checked against the address itself, as the CA does (RFC 8738 §7.1): no DNS involved.
    const url = `http://${urlHost(ch.domain)}${port === 80 ? '' : `:${port}`}/${WELL_KNOWN.replace(/\\/g, '/')}/${ch.token}`;
    const fail = (what: string, hint: string, cause?: unknown) =>
      new CertkeeperError('self-check', `self-check failed before asking the CA: ${what}`, {
        cert: ch.certName,
        domain: ch.domain,
        code: 'CK_ERR_SELF_CHECK',
        hint,
        cause,
      });
    const servedHint = `make nginx serve ${config.webroot} at http://${ch.domain}/.well-known/acme-challenge/ (location ^~ /.well-known/acme-challenge/ { root ${config.webroot}; }) — if the site moved to S3/a CDN, route that path back to this server or switch the certificate to dns-01; to skip this check set selfCheck: false in this certificate's challenge (or selfCheck: { enabled: false } at the top level for all)`;
    let res: Awaited<ReturnType<typeof probeUrl>>;
    try {
      res = await probeWithRetry(url, ctx.signal);
    } catch (err) {
      if (ctx.signal?.aborted) throw ctx.signal.reason;
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') {
        throw fail(
          `${ch.domain} does not resolve`,
          `create an A/AAAA record for ${ch.domain} pointing at this server`,
          err,
        );
      }
      const addrs = await resolveForProbe(ch.domain, resolver).catch(() => []);
      throw fail(
        `GET ${url} (${addrs.join(', ') || 'unresolved'}) failed: ${(err as Error).message}`,
        code === 'ECONNREFUSED'
          ? `nothing listens on port ${port} at ${addrs.join(', ')}: start nginx with a port-80 server for ${ch.domain}, or check the DNS record`
          : servedHint,
        err,
      );
    }
    if (res.status !== 200) {
      throw fail(
        `GET ${url} answered HTTP ${res.status}${res.url !== url ? ` (after redirects, at ${res.url})` : ''}, so the webroot ${config.webroot} is not served there`,
        servedHint,
      );
    }
    if (res.body.trim() !== ch.keyAuthorization) {
      throw fail(
        `GET ${url} answered 200 but with other content than the challenge file just written to ${config.webroot}`,
        servedHint,
      );
    }
    ctx.logger.debug(
      { event: 'challenge.self_check_ok', cert: ch.certName, domain: ch.domain },
      'self-check ok',
    );
  }

  return solver;
}
