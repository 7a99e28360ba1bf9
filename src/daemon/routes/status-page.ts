import { randomBytes } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { VERSION } from '../../version.js';
import type { AppDeps } from '../app.js';
import { checkBearer, isLoopback } from '../auth.js';
import { ApiError } from '../errors.js';
import { renderStatusPage } from '../status-page/render.js';
import { buildStatusView } from '../status-page/view.js';

/**
 * Who may read the page: anyone when server.publicStatus is true; clients on loopback; others with the API token,
 * as "Authorization: Bearer <token>" or as the password of HTTP Basic authentication (any user name), so a
 * browser can ask for it.
 */
export function statusAccess(req: FastifyRequest, deps: AppDeps): 'ok' | 'ask' | 'closed' {
  if (deps.publicStatus?.()) return 'ok';
  if (isLoopback(req.socket.remoteAddress ?? '')) return 'ok';
  if (!deps.token) return 'closed';
  const h = req.headers.authorization ?? '';
  if (/^Bearer /i.test(h)) return checkBearer(h, deps.token) ? 'ok' : 'ask';
  const m = /^Basic[ ]+([A-Za-z0-9+/=]+)\s*$/i.exec(h);
  if (m) {
    const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
    const password = decoded.slice(decoded.indexOf(':') + 1);
    return checkBearer(`Bearer ${password}`, deps.token) ? 'ok' : 'ask';
  }
  return 'ask';
}

/** GET /: the status page (HTML). Same data as GET /v1/certificates and /v1/acm/findings, plus watched endpoints. */
export async function statusPageRoutes(app: FastifyInstance, deps: AppDeps): Promise<void> {
  app.get('/', async (req, reply) => {
    const access = statusAccess(req, deps);
    if (access === 'closed') {
      throw new ApiError(
        'CK_ERR_FORBIDDEN',
        'the status page is only served to loopback clients here: no API token is set',
      );
    }
    if (access === 'ask') {
      req.log.warn(
        { event: 'http.unauthorized', url: req.url, ip: req.ip },
        'status page: missing or wrong token',
      );
      reply.header('www-authenticate', 'Basic realm="certkeeper status", charset="UTF-8"');
      throw new ApiError(
        'CK_ERR_UNAUTHORIZED',
        'the status page needs the API token from this address: give it as the password (any user name)',
      );
    }
    const nonce = randomBytes(16).toString('base64');
    const view = await buildStatusView({
      cache: deps.cache,
      queue: deps.queue,
      auditor: deps.auditor,
      watcher: deps.watcher,
      clock: deps.metrics.clock,
      issuers: deps.metrics.issuers,
      now: deps.now(),
      version: VERSION,
      shuttingDown: deps.shuttingDown(),
      canRenew: !deps.readOnly,
      tokenRequired: deps.token !== undefined,
    });
    return reply
      .type('text/html; charset=utf-8')
      .header(
        'content-security-policy',
        `default-src 'none'; style-src 'nonce-${nonce}'; script-src 'nonce-${nonce}'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`,
      )
      .header('cache-control', 'no-store')
      .header('x-content-type-options', 'nosniff')
      .header('referrer-policy', 'no-referrer')
      .header('x-frame-options', 'DENY')
      .send(renderStatusPage(view, nonce));
  });
}
