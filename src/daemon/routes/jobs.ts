import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { CertkeeperError } from '../../errors.js';
import { type AppDeps, loggableUrl } from '../app.js';
import { checkBearer } from '../auth.js';
import { ApiError } from '../errors.js';

interface RenewBody {
  names?: string[];
  force?: boolean;
  dryRun?: boolean;
}

/**
 * `{names?: string[], force?: boolean, dryRun?: boolean}`, nothing else. Checked by hand rather than with zod so the
 * idle daemon does not keep a schema library in memory for three fields.
 */
export function parseRenewBody(body: unknown): RenewBody {
  if (body === undefined || body === null) return {};
  if (typeof body !== 'object' || Array.isArray(body)) throw badBody('body: expected a JSON object');
  const problems: string[] = [];
  const b = body as Record<string, unknown>;
  const extra = Object.keys(b).filter((k) => !['names', 'force', 'dryRun'].includes(k));
  if (extra.length)
    problems.push(`body: unknown key${extra.length > 1 ? 's' : ''} ${extra.map((k) => `"${k}"`).join(', ')}`);
  if (b.names !== undefined) {
    if (!Array.isArray(b.names)) problems.push('names: expected an array of certificate names');
    else if (b.names.length > 10_000) problems.push('names: at most 10000 names');
    else if (b.names.some((n) => typeof n !== 'string' || n.length === 0 || n.length > 253)) {
      problems.push('names: every name must be a non-empty string of at most 253 characters');
    }
  }
  for (const k of ['force', 'dryRun'] as const) {
    if (b[k] !== undefined && typeof b[k] !== 'boolean') problems.push(`${k}: expected true or false`);
  }
  if (problems.length) throw badBody(problems.join('; '));
  return b as RenewBody;
}

function badBody(reason: string): ApiError {
  return new ApiError('CK_ERR_BAD_REQUEST', `invalid body: ${reason}`);
}

/** POST /v1/renew (token) → 202 {jobId}; GET /v1/jobs/:id; GET /v1/jobs (recent, newest first). */
export async function jobsRoutes(app: FastifyInstance, deps: AppDeps): Promise<void> {
  // Checked before the body is read: an unauthenticated request costs no parsing and changes nothing.
  const requireToken = async (req: FastifyRequest, _reply: FastifyReply) => {
    if (deps.token === undefined) return;
    if (!checkBearer(req.headers.authorization, deps.token)) {
      req.log.warn(
        { event: 'http.unauthorized', url: loggableUrl(req.url), ip: req.ip },
        'rejected: missing or wrong token',
      );
      throw new ApiError(
        'CK_ERR_UNAUTHORIZED',
        req.headers.authorization ? 'wrong bearer token' : 'missing "Authorization: Bearer <token>" header',
      );
    }
  };

  // Forced renewals skip every schedule and backoff: one token holder must not be able to burn the CA's rate limits.
  const cooldownMs = deps.forceCooldownMs ?? 300_000;
  const lastForced = new Map<string, number>();

  app.post('/v1/renew', { onRequest: requireToken }, async (req, reply) => {
    const body = parseRenewBody(req.body);
    const configured = new Set(deps.configuredNames());
    const unknown = (body.names ?? []).filter((n) => !configured.has(n));
    if (unknown.length) {
      throw new ApiError(
        'CK_ERR_UNKNOWN_CERTIFICATE',
        `unknown certificate name${unknown.length > 1 ? 's' : ''}: ${unknown.join(', ')}`,
        { names: unknown },
      );
    }
    const forcedNames = body.force && !body.dryRun ? (body.names?.length ? body.names : [...configured]) : [];
    const nowMs = deps.now().getTime();
    if (cooldownMs > 0 && forcedNames.length) {
      const cooling = forcedNames.filter((n) => nowMs - (lastForced.get(n) ?? -Infinity) < cooldownMs);
      if (cooling.length) {
        const waitS = Math.ceil(
          Math.max(...cooling.map((n) => cooldownMs - (nowMs - lastForced.get(n)!))) / 1000,
        );
        reply.header('retry-after', String(waitS));
        throw new ApiError(
          'CK_ERR_FORCE_COOLDOWN',
          `${cooling.join(', ')} ${cooling.length > 1 ? 'were' : 'was'} force-renewed less than ${Math.round(cooldownMs / 1000)} s ago; retry in ${waitS} s`,
          { names: cooling, retryAfterSeconds: waitS },
        );
      }
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
    if (!coalesced) for (const n of forcedNames) lastForced.set(n, nowMs);
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
