import type { CertificateConfig } from '../config/schema.js';
import { type Plan, type PlanOptions, planCertificate } from '../plan/plan.js';

/**
 * planCertificate, plus: when the failure backoff holds (scheduled runs and non-forced API triggers), it holds for
 * every reason — also a certificate never issued, a placeholder or changed domains — so a broken certificate is
 * retried after 1 min, 2, 4 … 6 h and not at every tick. `force` always goes ahead.
 * (Belongs in plan.ts; kept here so the pipeline and the daemon share it without the daemon loading the pipeline.)
 */
export function planWithBackoff(
  cert: CertificateConfig,
  state: Parameters<typeof planCertificate>[1],
  live: Parameters<typeof planCertificate>[2],
  opts: PlanOptions,
): Plan {
  const plan = planCertificate(cert, state, live, opts);
  if (!plan.due || opts.force || !opts.respectBackoff || !state?.nextAttemptAfter) return plan;
  const after = new Date(state.nextAttemptAfter);
  if (Number.isNaN(after.getTime()) || after <= opts.now) return plan;
  return {
    name: cert.name,
    due: false,
    reason: 'backoff',
    detail: `last attempt failed; next try after ${state.nextAttemptAfter} (${plan.detail})`,
    renewAt: after,
    notAfter: live?.notAfter,
  };
}
