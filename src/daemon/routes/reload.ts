import type { FastifyInstance } from 'fastify';
import type { AppDeps } from '../app.js';
import { checkBearer } from '../auth.js';
import { ApiError } from '../errors.js';

/**
 * POST /v1/reload (token, like POST /v1/renew): re-reads the configuration file, as SIGHUP does, and answers when it
 * is applied — 200 with what changed, or 422 with the problems while the previous configuration keeps running.
 */
export async function reloadRoutes(app: FastifyInstance, deps: AppDeps): Promise<void> {
  app.post(
    '/v1/reload',
    {
      onRequest: async (req) => {
        if (deps.token === undefined) return;
        if (!checkBearer(req.headers.authorization, deps.token)) {
          req.log.warn(
            { event: 'http.unauthorized', url: req.url, ip: req.ip },
            'rejected: missing or wrong token',
          );
          throw new ApiError(
            'CK_ERR_UNAUTHORIZED',
            req.headers.authorization
              ? 'wrong bearer token'
              : 'missing "Authorization: Bearer <token>" header',
          );
        }
      },
    },
    async (_req, reply) => {
      if (deps.shuttingDown()) throw new ApiError('CK_ERR_SHUTTING_DOWN');
      if (!deps.reload) throw new ApiError('CK_ERR_RELOAD_UNAVAILABLE');
      const o = await deps.reload();
      if (!o.ok) {
        if (o.code === 'CK_ERR_RELOAD_UNAVAILABLE') throw new ApiError('CK_ERR_RELOAD_UNAVAILABLE');
        throw new ApiError('CK_ERR_CONFIG_INVALID', undefined, { issues: o.issues, at: o.at });
      }
      return reply.send({ reloaded: true, at: o.at, changed: o.changed, restartNeeded: o.restartNeeded });
    },
  );
}
