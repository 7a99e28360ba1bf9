import type { FastifyInstance } from 'fastify';
import type { AppDeps } from '../app.js';
import { problemOf } from '../metrics.js';

/**
 * GET /healthz: the process answers. GET /readyz: 503 while any configured certificate is missing, a placeholder,
 * expired or inside its danger window (half the renewal margin of its lifetime, at most renewal.dangerDays), or while shutting down — for Docker healthchecks and
 * load balancers.
 */
export async function healthRoutes(app: FastifyInstance, deps: AppDeps): Promise<void> {
  app.get('/healthz', async () => ({ ok: true }));
  app.get('/readyz', async (_req, reply) => {
    const now = deps.now();
    const problems = deps
      .configuredNames()
      .map((name) => ({ name, problem: problemOf(deps.cache, name, now) }))
      .filter((p) => p.problem !== undefined);
    const db = deps.database?.();
    if (db) problems.unshift({ name: '-', problem: db });
    if (deps.shuttingDown()) problems.unshift({ name: '-', problem: 'shutting down' });
    return reply.code(problems.length ? 503 : 200).send({ ready: problems.length === 0, problems });
  });
}
