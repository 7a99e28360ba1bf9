import type { FastifyInstance } from 'fastify';
import type { AppDeps } from '../app.js';

/** GET /v1/certificates: what `certkeeper status --json` shows, from the daemon's in-memory state, plus lastError. */
export async function certificatesRoutes(app: FastifyInstance, deps: AppDeps): Promise<void> {
  app.get('/v1/certificates', async () => {
    // cluster: each node's deployed serial (absent while PostgreSQL is unreachable).
    const nodes = await deps.nodeDeploys?.().catch(() => undefined);
    return {
      certificates: deps.cache.rows(deps.now()).map((r) => ({
        ...r,
        lastError:
          r.lastAttempt?.result === 'failure'
            ? { at: r.lastAttempt.at, message: r.lastAttempt.message, code: r.lastAttempt.code }
            : undefined,
        ...(nodes && {
          nodes: (nodes.get(r.name) ?? []).map(({ node, version, serial, ok, deployedAt }) => ({
            node,
            version,
            serial,
            ok,
            deployedAt,
          })),
        }),
      })),
    };
  });
}
