import type { FastifyInstance } from 'fastify';
import type { AppDeps } from '../app.js';
import { problemOf } from '../metrics.js';

/**
 * GET /healthz: the process answers. GET /readyz: 503 while any configured certificate is missing, a placeholder,
 * expired or inside its danger window (half the renewal margin of its lifetime, at most renewal.dangerDays), or while
 * shutting down — for Docker healthchecks and load balancers. The body also lists each configured certificate's
 * lifetime, planned renewal and profile, so a probe log shows why it is (not) ready.
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
    const certificates = deps.configuredNames().map((name) => {
      const e = deps.cache.get(name);
      const row = e ? deps.cache.row(e, now) : undefined;
      return {
        name,
        ready: row?.ready ?? false,
        health: row?.health ?? 'missing',
        profile: row?.profile,
        lifetimeSeconds: row?.lifetimeSeconds,
        notAfter: row?.notAfter,
        renewAt: row?.nextRenewal,
      };
    });
    return reply
      .code(problems.length ? 503 : 200)
      .send({ ready: problems.length === 0, problems, certificates });
  });
}
