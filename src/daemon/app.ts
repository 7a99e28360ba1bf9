import Fastify, {
  type FastifyBaseLogger,
  type FastifyError,
  type FastifyInstance,
  LogController,
} from 'fastify';
import type { NodeDeploy } from '../cluster/pg-store.js';
import type { Logger } from '../log.js';
import type { Watcher } from '../watch/watcher.js';
import type { AcmAuditor } from './acm-audit.js';
import type { StateCache } from './cache.js';
import { ApiError } from './errors.js';
import type { DaemonMetrics } from './metrics.js';
import type { JobQueue } from './queue.js';
import type { ReloadOutcome } from './reload.js';
import { acmRoutes } from './routes/acm.js';
import { certificatesRoutes } from './routes/certificates.js';
import { healthRoutes } from './routes/health.js';
import { jobsRoutes } from './routes/jobs.js';
import { metricsRoutes } from './routes/metrics.js';
import { reloadRoutes } from './routes/reload.js';
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
  /** server.publicStatus (read at each request: a reload may change it): the page needs no token from elsewhere. */
  publicStatus?: () => boolean;
  /** The read-only listener (server.metricsListen): GET /, /metrics, /healthz, /readyz only. */
  readOnly?: boolean;
  /** POST /v1/reload: re-read the configuration file (reload.ts). */
  reload?: () => Promise<ReloadOutcome>;
  /** Per-certificate pause between forced API renewals (server.forceCooldownSeconds); default 300 s, 0 = none. */
  forceCooldownMs?: number;
  /** cluster: PostgreSQL's problem while it is unreachable (for /readyz), undefined when it answers. */
  database?: () => string | undefined;
  /** cluster: what each node deployed, per certificate (GET /v1/certificates). */
  nodeDeploys?: () => Promise<Map<string, NodeDeploy[]>>;
}

const SECRET_PARAM =
  /^(?:.*token.*|.*secret.*|.*passw(?:or)?d.*|key|api[_-]?key|auth.*|sig(?:nature)?|code)$/i;

/**
 * The URL as logged: the path, and the query with the value of every token-like parameter replaced. A client that
 * puts the API token in `?token=` (or `access_token=`) must not find it in the logs.
 */
export function loggableUrl(url: string): string {
  const q = url.indexOf('?');
  if (q < 0) return url;
  const params = url
    .slice(q + 1)
    .split('&')
    .map((kv) => {
      const eq = kv.indexOf('=');
      const k = eq < 0 ? kv : kv.slice(0, eq);
      let name = k;
      try {
        name = decodeURIComponent(k);
      } catch {
        /* logged as sent */
      }
      return eq >= 0 && SECRET_PARAM.test(name) ? `${k}=[redacted]` : kv;
    });
  return `${url.slice(0, q)}?${params.join('&')}`;
}

/** "/v1/jobs/:id" → a pattern matching concrete paths, for telling 405 from 404. */
function routePattern(url: string): RegExp {
  const esc = url.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*');
  return new RegExp(`^${esc.replace(/:[^/]+/g, '[^/]+')}/?$`);
}

/** Fastify's schema compilers: certkeeper's routes have no schemas, so asking for one is a bug. */
function noSchemas(): never {
  throw new Error(
    'certkeeper API routes declare no schemas; fastify schema compilers are not part of certkeeper',
  );
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
    // No route declares a schema (bodies are checked by hand, replies are JSON.stringify'd): fastify's compilers
    // (ajv, fast-json-stringify) are never needed, so they are neither loaded nor bundled (scripts/build.mjs).
    schemaController: { compilersFactory: { buildValidator: noSchemas, buildSerializer: noSchemas } },
  });

  // Which methods each path takes, so that a wrong method gets 405 with Allow instead of 404.
  const routes: { pattern: RegExp; methods: string[] }[] = [];
  app.addHook('onRoute', (r) => {
    const methods = (Array.isArray(r.method) ? r.method : [r.method]).map(String);
    routes.push({ pattern: routePattern(r.url), methods });
  });

  // JSON bodies only, where an empty body means "{}" (curl -X POST without -d); text/plain gets 415 like form data.
  app.removeContentTypeParser('text/plain');
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
        url: loggableUrl(req.url),
        status: reply.statusCode,
        durationMs: Math.round(reply.elapsedTime),
      },
      `${req.method} ${loggableUrl(req.url)} ${reply.statusCode}`,
    );
  });

  app.setErrorHandler((err: FastifyError | ApiError, req, reply) => {
    const api = err instanceof ApiError ? err : fromFastify(err);
    if (api.statusCode >= 500) req.log.error({ event: 'http.error', error: err.message }, 'request failed');
    return reply.code(api.statusCode).type('application/json').send(api.toJSON());
  });
  app.setNotFoundHandler((req, reply) => {
    const path = req.url.split('?')[0]!;
    const allow = [...new Set(routes.filter((r) => r.pattern.test(path)).flatMap((r) => r.methods))].sort();
    if (allow.length > 0) {
      return reply
        .code(405)
        .header('allow', allow.join(', '))
        .send(
          new ApiError('CK_ERR_METHOD_NOT_ALLOWED', `${path} takes ${allow.join(', ')}, not ${req.method}`, {
            allow,
          }).toJSON(),
        );
    }
    return reply
      .code(404)
      .send(
        new ApiError(
          deps.readOnly ? 'CK_ERR_READ_ONLY' : 'CK_ERR_NOT_FOUND',
          `no endpoint ${req.method} ${path}${deps.readOnly ? ' on the read-only listener' : ''}`,
        ).toJSON(),
      );
  });

  await app.register(healthRoutes, deps);
  await app.register(metricsRoutes, deps);
  await app.register(statusPageRoutes, deps);
  if (deps.readOnly) return app;
  await app.register(certificatesRoutes, deps);
  await app.register(jobsRoutes, deps);
  await app.register(acmRoutes, deps);
  await app.register(reloadRoutes, deps);
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
