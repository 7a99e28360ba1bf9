import { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import type { StatusRow } from '../../cli/status.js';
import type { AppDeps } from '../app.js';

/**
 * Rows per chunk of the streamed body: about 12 kB, short-lived (scavenged, never promoted), and under the 16 KiB
 * Node writes to a socket from a stack buffer (object mode: strings go to the socket as they are, no Buffer each).
 */
const ROWS_PER_CHUNK = 20;

type NodeDeploys = Awaited<ReturnType<NonNullable<AppDeps['nodeDeploys']>>>;

function apiRow(r: StatusRow, nodes: NodeDeploys | undefined) {
  return {
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
  };
}

/**
 * GET /v1/certificates: what `certkeeper status --json` shows, from the daemon's in-memory state, plus lastError
 * (and, with cluster:, each node's deployed serial). The body (`{"certificates":[...]}`, the same bytes
 * JSON.stringify makes) is streamed a few rows at a time: with 1,000 certificates, building every row and one
 * 600 kB string per request left the old generation tens of MB larger after a few hundred requests.
 */
export async function certificatesRoutes(app: FastifyInstance, deps: AppDeps): Promise<void> {
  app.get('/v1/certificates', async (_req, reply) => {
    // cluster: each node's deployed serial (absent while PostgreSQL is unreachable).
    const nodes = await deps.nodeDeploys?.().catch(() => undefined);
    const now = deps.now();
    const entries = deps.cache.sorted();
    function* body(): Generator<string> {
      yield '{"certificates":[';
      for (let i = 0; i < entries.length; i += ROWS_PER_CHUNK) {
        const rows = entries
          .slice(i, i + ROWS_PER_CHUNK)
          .map((e) => JSON.stringify(apiRow(deps.cache.row(e, now), nodes)));
        yield (i === 0 ? '' : ',') + rows.join(',');
      }
      yield ']}';
    }
    return reply.type('application/json; charset=utf-8').send(Readable.from(body(), { objectMode: true }));
  });
}
