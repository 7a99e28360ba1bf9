import type { FastifyInstance } from 'fastify';
import type { AppDeps } from '../app.js';
import { ApiError } from '../errors.js';

/**
 * GET /v1/acm/findings: the last ACM audit (acmAudit): when it ran, whether it succeeded, the next run, counts per
 * rule and severity, and every finding with its fix. Query `severity=critical|warning` and `rule=<rule>` filter.
 */
export async function acmRoutes(app: FastifyInstance, deps: AppDeps): Promise<void> {
  app.get<{ Querystring: { severity?: string; rule?: string } }>('/v1/acm/findings', async (req) => {
    const a = deps.auditor;
    if (!a) throw new ApiError('CK_ERR_ACM_AUDIT_OFF');
    const { severity, rule } = req.query;
    const findings = a.findings.filter(
      (f) => (!severity || f.severity === severity) && (!rule || f.rule === rule),
    );
    return {
      regions: a.regions,
      expiringDays: a.expiringDays,
      lastRun: a.lastRun,
      lastSuccessAt: a.summary?.lastSuccessAt.toISOString(),
      nextRunAt: a.nextRunAt?.toISOString(),
      counts: a.summary?.counts,
      findings,
    };
  });
}
