import { request } from 'node:http';
import type { ChallengeInput, ChallengeSolver, SolverContext } from '../challenges/types.js';
import { CertkeeperError } from '../errors.js';
import { retry } from '../platform/retry.js';
import { sleep } from '../platform/sleep.js';
import type { PgLocker } from './locker.js';
import { type PgStore, TOKEN_CHANNEL } from './pg-store.js';

export interface ClusterChallengeOptions {
  /** How long to wait for every live node to write a token (default 30 s). */
  confirmTimeoutMs?: number;
  /** A node seen (heartbeat) within this long counts as live and must confirm (default 3 sync intervals). */
  liveWithinMs: number;
  pollMs?: number;
  /** cluster.selfCheckAddresses: host:port of every node's HTTP-01 listener, each asked for every token. */
  selfCheckAddresses?: string[];
}

/**
 * HTTP-01 across hosts: the CA may reach any node behind the load balancer, so the ordering node puts the token
 * into PostgreSQL, every node writes it into its own webroot (ClusterSync, on NOTIFY) and confirms, and the CA is
 * asked only when every live node has confirmed.
 */
export class ClusterChallenges {
  constructor(
    private readonly store: PgStore,
    private readonly opts: ClusterChallengeOptions,
  ) {}

  async publish(ch: ChallengeInput, ttlMs = 3_600_000): Promise<void> {
    await this.store.q(
      `INSERT INTO challenge_tokens (token, key_authorization, name, created_by, expires_at)
       VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5))
       ON CONFLICT (token) DO UPDATE SET key_authorization = EXCLUDED.key_authorization, expires_at = EXCLUDED.expires_at`,
      [ch.token, ch.keyAuthorization, ch.certName, this.store.node, ttlMs / 1000],
      'publish the HTTP-01 token',
    );
    await this.store.q('SELECT pg_notify($1, $2)', [
      TOKEN_CHANNEL,
      JSON.stringify({ token: ch.token, action: 'add' }),
    ]);
  }

  /** Resolves when every live node has confirmed the tokens; otherwise a challenge error naming the missing nodes. */
  async waitConfirmed(chs: ChallengeInput[], signal?: AbortSignal): Promise<string[]> {
    const deadline = Date.now() + (this.opts.confirmTimeoutMs ?? 30_000);
    const tokens = chs.map((c) => c.token);
    for (;;) {
      const r = await this.store.q<{ node: string; missing: number }>(
        `SELECT n.node, (SELECT count(*)::int FROM unnest($1::text[]) t(token)
                          WHERE NOT EXISTS (SELECT 1 FROM challenge_confirmations c WHERE c.token = t.token AND c.node = n.node)) AS missing
           FROM nodes n WHERE n.last_seen > now() - make_interval(secs => $2)`,
        [tokens, this.opts.liveWithinMs / 1000],
        'read token confirmations',
      );
      const missing = r.rows.filter((x) => x.missing > 0).map((x) => x.node);
      if (missing.length === 0) return r.rows.map((x) => x.node).sort();
      if (signal?.aborted) throw signal.reason;
      if (Date.now() > deadline) {
        throw new CertkeeperError(
          'challenge',
          `HTTP-01 token not written on node${missing.length > 1 ? 's' : ''} ${missing.join(', ')} before asking the CA`,
          {
            cert: chs[0]?.certName,
            code: 'CK_ERR_CLUSTER_TOKEN',
            hint: 'every live node must reach PostgreSQL and write its webroot; a node that is gone stops counting once its heartbeat is older than 3 sync intervals',
          },
        );
      }
      await sleep(this.opts.pollMs ?? 200);
    }
  }

  /** Each listed node answers each token with its key authorization (the CA may reach any of them). */
  async checkAddresses(chs: ChallengeInput[]): Promise<void> {
    for (const address of this.opts.selfCheckAddresses ?? []) {
      for (const ch of chs) {
        let got: { status: number; body: string } | undefined;
        let lastErr = '';
        // Three looks, 0.3 s and 0.6 s apart; what the last one saw goes into the error below.
        await retry(
          async () => {
            got = await fetchToken(address, ch).catch((err: Error) => {
              lastErr = err.message;
              return undefined;
            });
            if (got?.body !== ch.keyAuthorization) throw new Error('not served yet');
          },
          { delaysMs: [300, 600] },
        ).catch(() => {});
        if (got?.body !== ch.keyAuthorization) {
          throw new CertkeeperError(
            'self-check',
            `self-check through ${address} failed before asking the CA: ${got ? `HTTP ${got.status}, not the key authorization` : lastErr}`,
            {
              cert: ch.certName,
              domain: ch.domain,
              code: 'CK_ERR_SELF_CHECK',
              hint: `the node at ${address} must serve /.well-known/acme-challenge/ from the webroot its certkeeper writes (cluster.selfCheckAddresses)`,
            },
          );
        }
      }
    }
  }

  async remove(ch: ChallengeInput): Promise<void> {
    await this.store.q(
      'DELETE FROM challenge_tokens WHERE token = $1',
      [ch.token],
      'remove the HTTP-01 token',
    );
    await this.store.q('SELECT pg_notify($1, $2)', [
      TOKEN_CHANNEL,
      JSON.stringify({ token: ch.token, action: 'remove' }),
    ]);
  }

  /**
   * Wraps a solver: http-01 tokens are also published to every node and confirmed before the inner check (the
   * local webroot write and the self-check stay the inner solver's). dns-01 solvers are returned unchanged.
   */
  wrap(inner: ChallengeSolver): ChallengeSolver {
    if (inner.type !== 'http-01') return inner;
    return {
      type: inner.type,
      present: async (ch, ctx) => {
        await inner.present(ch, ctx);
        await this.publish(ch);
      },
      cleanup: async (ch, ctx) => {
        await this.remove(ch).catch(() => {});
        await inner.cleanup(ch, ctx);
      },
      check: async (chs: ChallengeInput[], ctx: SolverContext) => {
        await this.waitConfirmed(chs, ctx.signal);
        await this.checkAddresses(chs);
        await inner.check?.(chs, ctx);
      },
    };
  }
}

/** Route53 TXT merging serialised cluster-wide: one read-modify-write per zone across every node. */
export function clusterZoneLock(zoneLocker: PgLocker, waitMs = 120_000) {
  return async <T>(zoneId: string, fn: () => Promise<T>): Promise<T> => {
    const lock = await zoneLocker.lock(`zone:${zoneId}`, { waitMs });
    try {
      return await fn();
    } finally {
      await lock.release();
    }
  };
}

function fetchToken(address: string, ch: ChallengeInput): Promise<{ status: number; body: string }> {
  const m = /^(\[[0-9a-fA-F:.]+\]|[^\s:[\]]+):(\d{1,5})$/.exec(address);
  if (!m) return Promise.reject(new Error(`"${address}" is not host:port`));
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: m[1]!.replace(/^\[|\]$/g, ''),
        port: Number(m[2]),
        path: `/.well-known/acme-challenge/${ch.token}`,
        headers: { host: ch.domain },
        timeout: 5000,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => {
          if (body.length < 4096) body += d;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: body.trim() }));
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer from ${address} within 5 s`)));
    req.on('error', reject);
    req.end();
  });
}
