import { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import type { AppDeps } from '../app.js';

/** GET /metrics: Prometheus text format. */
export async function metricsRoutes(app: FastifyInstance, deps: AppDeps): Promise<void> {
  app.get('/metrics', async (_req, reply) => {
    // Streamed in pieces (DaemonMetrics.expositionPieces): 1,000 certificates make ~0.8 MB of text. Collected
    // before the first byte, so a failing collector is still a 500 from the error handler. Object mode: the
    // strings go to the socket as they are (no Buffer per piece).
    const body = Readable.from(await deps.metrics.expositionPieces(), { objectMode: true });
    return reply.type(deps.metrics.registry.contentType).send(body);
  });
}
