/**
 * Route53 change plumbing shared by the DNS-01 provider and `certkeeper acm replace` (which writes ACM's validation
 * CNAMEs): one ChangeBatch per zone, read-modify-write of a zone one at a time within this process, and the bounded
 * wait for INSYNC.
 */
import {
  type Change,
  ChangeResourceRecordSetsCommand,
  type ChangeResourceRecordSetsResponse,
  GetChangeCommand,
  type GetChangeResponse,
  type Route53Client,
} from '@aws-sdk/client-route-53';
import { CertkeeperError } from '../../errors.js';
import type { Logger } from '../../log.js';
import { sleep } from '../../platform/sleep.js';
import { awsCall, type RetryPolicy } from './aws-call.js';

/** Read-modify-write of one zone's record sets happens one at a time within this process. */
const zoneLocks = new Map<string, Promise<unknown>>();
export async function withZoneLock<T>(zoneId: string, fn: () => Promise<T>): Promise<T> {
  const prev = zoneLocks.get(zoneId) ?? Promise.resolve();
  const run = prev.then(fn, fn);
  const tail = run.catch(() => undefined);
  zoneLocks.set(zoneId, tail);
  try {
    return await run;
  } finally {
    if (zoneLocks.get(zoneId) === tail) zoneLocks.delete(zoneId);
  }
}

export interface ChangeContext {
  client: Route53Client;
  logger: Logger;
  retry?: RetryPolicy;
  cert?: string;
  /** Set when the batch concerns one domain only (for the error's context). */
  domain?: string;
  signal?: AbortSignal;
}

/** Sends one ChangeBatch to one zone; returns the bare change id ("C123"), if Route53 gave one. */
export async function submitChangeBatch(
  zoneId: string,
  changes: Change[],
  comment: string,
  ctx: ChangeContext,
): Promise<string | undefined> {
  const res = await awsCall<ChangeResourceRecordSetsResponse>(
    ctx.client,
    new ChangeResourceRecordSetsCommand({
      HostedZoneId: zoneId,
      ChangeBatch: { Comment: comment.slice(0, 256), Changes: changes },
    }),
    {
      action: 'ChangeResourceRecordSets',
      resource: `hostedzone/${zoneId}`,
      cert: ctx.cert,
      domain: ctx.domain,
      logger: ctx.logger,
      signal: ctx.signal,
    },
    ctx.retry,
  );
  return res.ChangeInfo?.Id?.replace(/^\/?change\//, '');
}

export interface InsyncWait {
  zoneId: string;
  changeId: string;
  /** Epoch ms after which the wait gives up. */
  deadline: number;
  /** First pause between GetChange calls; grows ×1.5 up to maxPollMs. */
  pollMs: number;
  maxPollMs: number;
  /** For the timeout message: the bound as configured, and what to do. */
  timeoutSeconds: number;
  /** Set when `deadline` is the order's (the CA's authorization expiry), not the configured timeout: why. */
  cutBy?: string;
  hint: string;
}

/** Polls GetChange until INSYNC; throws CK_ERR_DNS_PROPAGATION naming the change when the deadline passes. */
export async function waitInsync(w: InsyncWait, ctx: ChangeContext): Promise<void> {
  let pause = w.pollMs;
  for (let calls = 1; ; calls++) {
    const res = await awsCall<GetChangeResponse>(
      ctx.client,
      new GetChangeCommand({ Id: w.changeId }),
      {
        action: 'GetChange',
        resource: `change/${w.changeId}`,
        cert: ctx.cert,
        logger: ctx.logger,
        signal: ctx.signal,
      },
      ctx.retry,
    );
    const status = res.ChangeInfo?.Status;
    if (status === 'INSYNC') {
      ctx.logger.debug(
        { cert: ctx.cert, zoneId: w.zoneId, changeId: w.changeId, calls },
        'Route53 change INSYNC',
      );
      return;
    }
    const left = w.deadline - Date.now();
    if (left <= 0 || ctx.signal?.aborted) {
      throw new CertkeeperError(
        'challenge',
        w.cutBy
          ? `Route53 change ${w.changeId} in zone ${w.zoneId} is still ${status ?? 'PENDING'}: the INSYNC wait stopped at the order's deadline: ${w.cutBy}`
          : `Route53 change ${w.changeId} in zone ${w.zoneId} is still ${status ?? 'PENDING'} after ${w.timeoutSeconds}s`,
        { cert: ctx.cert, code: 'CK_ERR_DNS_PROPAGATION', hint: w.hint },
      );
    }
    await sleep(Math.min(pause, left), ctx.signal).catch(() => undefined);
    pause = Math.min(Math.round(pause * 1.5), w.maxPollMs);
  }
}
