import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { CertkeeperError } from '../../errors.js';
import type { AppDeps } from '../app.js';
import { checkBearer } from '../auth.js';
import { ApiError } from '../errors.js';

const renewBody = z
  .strictObject({
    names: z.array(z.string().min(1).max(253)).max(10_000).optional(),
    force: z.boolean().optional(),
    dryRun: z.boolean().optional(),
  })
  .optional();

/** POST /v1/renew (token) → 202 {jobId}; GET /v1/jobs/:id; GET /v1/jobs (recent, newest first). */
export async function jobsRoutes(app: FastifyInstance, deps: AppDeps): Promise<void> {
  // Checked before the body is read: an unauthenticated request costs no parsing and changes nothing.
  const requireToken = async (req: FastifyRequest, _reply: FastifyReply) => {
    if (deps.token === undefined) return;
    if (!checkBearer(req.headers.authorization, deps.token)) {
      req.log.warn(
        { event: 'http.unauthorized', url: req.url, ip: req.ip },
        'rejected: missing or wrong token',
      );
      throw new ApiError(
        'CK_ERR_UNAUTHORIZED',
        req.headers.authorization ? 'wrong bearer token' : 'missing "Authorization: Bearer <token>" header',
      );
    }
  };

  app.post('/v1/renew', { onRequest: requireToken }, async (req, reply) => {
    const parsed = renewBody.safeParse(req.body);
    if (!parsed.success) {
      const reason = parsed.error.issues
        .map((i) => `${i.path.length ? i.path.join('.') : 'body'}: ${i.message}`)
        .join('; ');
      throw new ApiError('CK_ERR_BAD_REQUEST', `invalid body: ${reason}`);
    }
    const body = parsed.data ?? {};
    const configured = new Set(deps.configuredNames());
    const unknown = (body.names ?? []).filter((n) => !configured.has(n));
    if (unknown.length) {
      throw new ApiError(
        'CK_ERR_UNKNOWN_CERTIFICATE',
        `unknown certificate name${unknown.length > 1 ? 's' : ''}: ${unknown.join(', ')}`,
        { names: unknown },
      );
    }
    let submitted: ReturnType<AppDeps['queue']['submit']>;
    try {
      submitted = deps.queue.submit({
        names: body.names,
        force: body.force,
        dryRun: body.dryRun,
        // A forced renewal is a human asking now; otherwise the failure backoff holds, as for the schedule.
        respectBackoff: !body.force,
        source: 'api',
      });
    } catch (err) {
      if (err instanceof CertkeeperError && err.code === 'CK_ERR_SHUTTING_DOWN')
        throw new ApiError('CK_ERR_SHUTTING_DOWN');
      throw err;
    }
    const { job, coalesced } = submitted;
    return reply
      .code(202)
      .header('location', `/v1/jobs/${job.id}`)
      .send({ jobId: job.id, state: job.state, coalesced, names: job.names });
  });

  app.get<{ Params: { id: string } }>('/v1/jobs/:id', async (req) => {
    const job = deps.queue.get(req.params.id);
    if (!job) throw new ApiError('CK_ERR_JOB_NOT_FOUND', `no job ${req.params.id}`);
    return job;
  });

  app.get('/v1/jobs', async () => ({
    jobs: deps.queue.list().map(({ results, ...j }) => ({ ...j, results: results?.length })),
  }));
}
