import type { FastifyInstance } from 'fastify';
import type { AppDeps } from '../app.js';

/** GET /metrics: Prometheus text format. */
export async function metricsRoutes(app: FastifyInstance, deps: AppDeps): Promise<void> {
  app.get('/metrics', async (_req, reply) => {
    const text = await deps.metrics.registry.metrics();
    return reply.type(deps.metrics.registry.contentType).send(text);
  });
}
