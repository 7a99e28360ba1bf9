import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { createSolver } from '../challenges/index.js';
import type { ChallengeSolver, SolverDeps } from '../challenges/types.js';
import type { ChallengeConfig, Config } from '../config/schema.js';
import { CertkeeperError } from '../errors.js';
import type { Logger } from '../log.js';
import { dryRunDirectory } from '../pipeline/renew.js';
import type { CertEvent, SolverFactory } from '../pipeline/types.js';
import { sleep } from '../platform/sleep.js';
import { ClusterChallenges, clusterZoneLock } from './challenges.js';
import { ClusterNode } from './node.js';
import { type ClusterHandle, openCluster } from './open.js';

/** The part of the pipeline's CertEvent this needs. */
export interface PipelineEvent {
  type: string;
  cert: string;
  result?: {
    serial?: string;
    version?: number;
    deploy?: { deployer: string; ok: boolean; detail: string }[];
  };
}

export interface ClusterWiring {
  handle: ClusterHandle;
  /** Inject as the pipeline's store (renew({ store })). */
  store: ClusterHandle['store'];
  /** The daemon starts this: local materialisation, this node's deploys, HTTP-01 tokens of every node. */
  node: ClusterNode;
  /** Wrap every solver the pipeline creates: HTTP-01 tokens to every node, confirmed before the CA is asked. */
  challenges: ClusterChallenges;
  /** Pass as SolverDeps.zoneLock: Route53 TXT read-modify-write, one node at a time per zone. */
  zoneLock: ReturnType<typeof clusterZoneLock>;
  /** The solver factory for the pipeline's issuer: both of the above applied to every configured challenge. */
  solvers(config: ChallengeConfig, deps: SolverDeps): Promise<ChallengeSolver>;
  /**
   * Pass the pipeline's events here (onEvent): the ordering node's own deploy results go to node_deploys, beside
   * the other nodes' (GET /v1/certificates can show every node's deployed serial from store.nodeDeploys()).
   */
  onEvent(e: PipelineEvent): void;
  /**
   * What renew() takes from the cluster, in one place for the CLI and the daemon: the PostgreSQL store (its
   * advisory locks decide which node orders), the solver factory and the event hook. A caller's own onEvent is
   * called after the cluster's.
   */
  renewOptions(onEvent?: (e: CertEvent) => void): {
    store: ClusterHandle['store'];
    solvers: SolverFactory;
    onEvent: (e: CertEvent) => void;
  };
  /** For /readyz and metrics: false while PostgreSQL is unreachable (local files keep being served). */
  databaseUp(): boolean;
  close(): Promise<void>;
}

/**
 * What the CLI and the daemon need when `cluster:` is configured. `env` is the wiring's (the key may come from an
 * environment variable); stages never read it themselves.
 */
export async function wireCluster(
  config: Config,
  { env, logger }: { env: Record<string, string | undefined>; logger?: Logger },
): Promise<ClusterWiring | undefined> {
  if (!config.cluster) return undefined;
  const handle = await openCluster(config.cluster, config.storage.path, { env, logger });
  const intervalMs = config.cluster.syncIntervalSeconds * 1000;
  const node = new ClusterNode(handle, {
    certificates: config.certificates,
    syncIntervalMs: intervalMs,
    logger,
  });
  const challenges = new ClusterChallenges(handle.store, {
    liveWithinMs: intervalMs * 3,
    selfCheckAddresses: config.cluster.selfCheckAddresses,
  });
  // One ACME account per CA for the whole cluster: taken from PostgreSQL when this node has none, and the first
  // node to register one puts it there (after its first successful order).
  const directories = [...new Set([config.acme.directoryUrl, dryRunDirectory(config)])];
  for (const d of directories)
    await handle.store
      .pullAccount(d)
      .catch((err: unknown) =>
        logger?.warn(
          { event: 'cluster.account_pull_failed', err: String(err) },
          'ACME account not read from PostgreSQL',
        ),
      );
  const pushed = new Set<string>();
  // Writes started from events finish before close() ends the pool (a CLI run exits right after).
  const pending = new Set<Promise<unknown>>();
  const track = (work: Promise<unknown>) => {
    const p: Promise<unknown> = work.catch(() => {}).finally(() => pending.delete(p));
    pending.add(p);
  };
  const pushAccounts = () => {
    for (const d of directories) {
      if (pushed.has(d)) continue;
      track(handle.store.pushAccount(d).then((done) => done && pushed.add(d)));
    }
  };
  const zoneLock = clusterZoneLock(handle.zoneLocker);
  const solvers: SolverFactory = async (c, deps) =>
    challenges.wrap(await createSolver(c, { ...deps, zoneLock }));
  const w: ClusterWiring = {
    handle,
    store: handle.store,
    node,
    challenges,
    zoneLock,
    solvers,
    renewOptions: (own) => ({
      store: handle.store,
      solvers,
      onEvent: (e) => {
        w.onEvent(e);
        own?.(e);
      },
    }),
    onEvent(e) {
      if (e.type === 'obtained') pushAccounts();
      if ((e.type !== 'deployed' && e.type !== 'deploy_failed') || !e.result?.serial) return;
      const d = e.result.deploy ?? [];
      track(
        handle.store.recordDeploy(e.cert, {
          version: e.result.version ?? 0,
          serial: e.result.serial,
          ok: e.type === 'deployed',
          detail: d.map((x) => `${x.deployer}: ${x.detail}`).join('; '),
        }),
      );
    },
    databaseUp: () => handle.store.databaseUp,
    async close() {
      await Promise.all(pending);
      await node.stop();
      await handle.close();
    },
  };
  return w;
}

/**
 * `certkeeper run`: like wireCluster, but a node that has been part of the cluster before (its storage has the
 * `cluster/` markers) waits for an unreachable PostgreSQL with backoff (1 s doubling to 30 s) instead of exiting —
 * its nginx keeps serving the local files meanwhile. A node that never reached the database fails at once: a wrong
 * URL is said at the first start, not waited on. Resolves undefined when `signal` aborts while waiting.
 */
export async function wireClusterWaiting(
  config: Config,
  o: {
    env: Record<string, string | undefined>;
    logger?: Logger;
    signal?: AbortSignal;
    sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  },
): Promise<ClusterWiring | undefined> {
  const joined = await fs
    .stat(join(config.storage.path, 'cluster'))
    .then((s) => s.isDirectory())
    .catch(() => false);
  const wait = o.sleep ?? sleep;
  for (let delay = 1000; ; delay = Math.min(delay * 2, 30_000)) {
    try {
      return await wireCluster(config, o);
    } catch (err) {
      if (!joined || !(err instanceof CertkeeperError) || err.code !== 'CK_ERR_CLUSTER_DB') throw err;
      o.logger?.error(
        { event: 'cluster.db_wait', code: err.code, error: err.message, hint: err.hint, retryMs: delay },
        `PostgreSQL unreachable at start: serving the local files, trying again in ${Math.round(delay / 1000)} s`,
      );
      try {
        await wait(delay, o.signal);
      } catch {
        return undefined;
      }
      if (o.signal?.aborted) return undefined;
    }
  }
}
