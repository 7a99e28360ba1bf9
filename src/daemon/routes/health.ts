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
    // One object per problem only: a probe hit every few seconds over 1,000 healthy certificates allocates next
    // to nothing (a {name, problem} per certificate, then filtered, grew V8's young generation to its maximum).
    const problems: { name: string; problem: string }[] = [];
    for (const name of deps.configuredNames()) {
      const problem = problemOf(deps.cache, name, now);
      if (problem !== undefined) problems.push({ name, problem });
    }
    if (deps.shuttingDown()) problems.unshift({ name: '-', problem: 'shutting down' });
    return reply.code(problems.length ? 503 : 200).send({ ready: problems.length === 0, problems });
  });
}
