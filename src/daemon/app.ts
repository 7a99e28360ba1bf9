import Fastify, {
  type FastifyBaseLogger,
  type FastifyError,
  type FastifyInstance,
  LogController,
} from 'fastify';
import type { Logger } from '../log.js';
import type { Watcher } from '../watch/watcher.js';
import type { AcmAuditor } from './acm-audit.js';
import type { StateCache } from './cache.js';
import { ApiError } from './errors.js';
import type { DaemonMetrics } from './metrics.js';
import type { JobQueue } from './queue.js';
import { acmRoutes } from './routes/acm.js';
import { certificatesRoutes } from './routes/certificates.js';
import { healthRoutes } from './routes/health.js';
import { jobsRoutes } from './routes/jobs.js';
import { metricsRoutes } from './routes/metrics.js';
import { statusPageRoutes } from './routes/status-page.js';

/** Everything the routes use, built once by the daemon and passed to each plugin as its options. */
export interface AppDeps {
  logger: Logger;
  /** Bearer token for mutating endpoints; undefined allows them unauthenticated (loopback only). */
  token?: string;
  bodyLimitBytes: number;
  queue: JobQueue;
  cache: StateCache;
  metrics: DaemonMetrics;
  now: () => Date;
  configuredNames: () => string[];
  shuttingDown: () => boolean;
  /** The daily ACM audit, when acmAudit is configured. */
  auditor?: AcmAuditor;
  /** Watched endpoints and served certificates, for the status page. */
  watcher?: Watcher;
  /** server.publicStatus: the status page needs no token from non-loopback clients. */
  publicStatus?: boolean;
  /** The read-only listener (server.metricsListen): GET /, /metrics, /healthz, /readyz only. */
  readOnly?: boolean;
}

/** The fastify app, without listening: tests call `app.inject()`. */
export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: deps.logger.child({ component: 'api' }) as FastifyBaseLogger,
    // One line per request from our onResponse hook instead of fastify's two.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: deps.bodyLimitBytes,
    return503OnClosing: true,
    forceCloseConnections: true,
    requestTimeout: 30_000,
  });

  // JSON bodies, where an empty body means "{}" (curl -X POST without -d).
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body, done) => {
    const text = String(body).trim();
    if (text === '') return done(null, undefined);
    try {
      done(null, JSON.parse(text));
    } catch (err) {
      done(
        new ApiError('CK_ERR_BAD_REQUEST', `the body is not valid JSON: ${(err as Error).message}`),
        undefined,
      );
    }
  });

  app.addHook('onResponse', async (req, reply) => {
    // Probes (healthchecks, load balancers, Prometheus) log at debug whatever they answer: a 503 from /readyz is
    // an answer ("not ready"), not a server error.
    const probe = req.url === '/metrics' || req.url.startsWith('/healthz') || req.url.startsWith('/readyz');
    const level = probe ? 'debug' : reply.statusCode >= 500 ? 'error' : 'info';
    req.log[level](
      {
        event: 'http.request',
        method: req.method,
        url: req.url,
        status: reply.statusCode,
        durationMs: Math.round(reply.elapsedTime),
      },
      `${req.method} ${req.url} ${reply.statusCode}`,
    );
  });

  app.setErrorHandler((err: FastifyError | ApiError, req, reply) => {
    const api = err instanceof ApiError ? err : fromFastify(err);
    if (api.statusCode >= 500) req.log.error({ event: 'http.error', error: err.message }, 'request failed');
    return reply.code(api.statusCode).type('application/json').send(api.toJSON());
  });
  app.setNotFoundHandler((req, reply) =>
    reply
      .code(404)
      .send(
        new ApiError(
          deps.readOnly ? 'CK_ERR_READ_ONLY' : 'CK_ERR_NOT_FOUND',
          `no endpoint ${req.method} ${req.url}${deps.readOnly ? ' on the read-only listener' : ''}`,
        ).toJSON(),
      ),
  );

  await app.register(healthRoutes, deps);
  await app.register(metricsRoutes, deps);
  await app.register(statusPageRoutes, deps);
  if (deps.readOnly) return app;
  await app.register(certificatesRoutes, deps);
  await app.register(jobsRoutes, deps);
  await app.register(acmRoutes, deps);
  return app;
}

function fromFastify(err: FastifyError): ApiError {
  switch (err.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new ApiError('CK_ERR_BODY_TOO_LARGE');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new ApiError('CK_ERR_UNSUPPORTED_MEDIA_TYPE');
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return new ApiError('CK_ERR_BAD_REQUEST', err.message);
  }
  if (err.statusCode && err.statusCode >= 400 && err.statusCode < 500) {
    return new ApiError('CK_ERR_BAD_REQUEST', err.message);
  }
  return new ApiError('CK_ERR_INTERNAL');
}
