import {
  type Change,
  ListResourceRecordSetsCommand,
  type ListResourceRecordSetsResponse,
  type Route53Client,
} from '@aws-sdk/client-route-53';
import { CertkeeperError } from '../../errors.js';
import type { Logger } from '../../log.js';
import { type TxtExpectation, waitForTxtRecords } from '../dns-propagation.js';
import {
  type ChallengeInput,
  type ChallengeSolver,
  clampWait,
  type SolverContext,
  type SolverDeps,
} from '../types.js';
import { awsCall, DEFAULT_RETRY, type RetryPolicy, toAwsError } from './aws-call.js';
import { submitChangeBatch, waitInsync, withZoneLock } from './changes.js';
import { sharedRoute53Client } from './client.js';
import { addChange, type CurrentSet, currentFrom, removeChange } from './records.js';
import type { Route53ChallengeConfig } from './schema.js';
import {
  bareZoneId,
  findHostedZone,
  getHostedZone,
  type HostedZone,
  inZone,
  normalizeName,
  type ZoneDetails,
} from './zones.js';

export { buildRoute53Client, sharedRoute53Client } from './client.js';

/** Poll and retry pacing; the defaults suit the real service, tests shorten them. */
export interface Route53Timing {
  /** First pause between GetChange calls; grows ×1.5 up to maxPollMs. */
  pollMs: number;
  maxPollMs: number;
  /** First pause between rounds of authoritative-nameserver queries. */
  propagationIntervalMs: number;
  retry: RetryPolicy;
}

export const DEFAULT_TIMING: Route53Timing = {
  pollMs: 2000,
  maxPollMs: 10_000,
  propagationIntervalMs: 2000,
  retry: DEFAULT_RETRY,
};

export type Route53Deps = SolverDeps & {
  /** An SDK client to use instead of the shared one built from region/roleArn (tests point it at a local server). */
  client?: Route53Client;
  timing?: Partial<Route53Timing>;
  /** Resolves nameserver host names for the authoritative check; default: the system resolver. */
  resolveHost?: (host: string) => Promise<string[]>;
};

interface ZoneGroup {
  zone: HostedZone;
  /** record name → our values and the domain they prove. */
  names: Map<string, { values: string[]; domain: string }>;
}

export function create(config: Route53ChallengeConfig, deps: Route53Deps): ChallengeSolver {
  const timing: Route53Timing = { ...DEFAULT_TIMING, ...deps.timing };
  const client = deps.client ?? sharedRoute53Client({ region: config.region, roleArn: config.roleArn });
  const zoneByDomain = new Map<string, Promise<HostedZone>>();
  const detailsById = new Map<string, Promise<ZoneDetails>>();
  /** cert → zoneId → change id of our last present, awaited by check(). */
  const pending = new Map<string, Map<string, string>>();

  const logger = (ctx: SolverContext): Logger => ctx.logger ?? deps.logger;
  /** One writer per zone in this process, and cluster-wide when the cluster passes its zone lock. */
  const lockZone = <T>(zoneId: string, fn: () => Promise<T>): Promise<T> =>
    withZoneLock(
      zoneId,
      deps.zoneLock ? () => (deps.zoneLock as NonNullable<SolverDeps['zoneLock']>)(zoneId, fn) : fn,
    );

  function zoneFor(domain: string, cert: string, ctx: SolverContext): Promise<HostedZone> {
    if (config.hostedZoneId) {
      return Promise.resolve({ id: bareZoneId(config.hostedZoneId), name: '', private: config.privateZone });
    }
    let p = zoneByDomain.get(domain);
    if (!p) {
      p = findHostedZone(domain, config.privateZone, {
        client,
        logger: logger(ctx),
        retry: timing.retry,
        cert,
        signal: ctx.signal,
      });
      zoneByDomain.set(domain, p);
      p.catch(() => zoneByDomain.delete(domain));
    }
    return p;
  }

  function detailsFor(zoneId: string, cert: string, ctx: SolverContext): Promise<ZoneDetails> {
    let p = detailsById.get(zoneId);
    if (!p) {
      p = getHostedZone(zoneId, {
        client,
        logger: logger(ctx),
        retry: timing.retry,
        cert,
        signal: ctx.signal,
      });
      detailsById.set(zoneId, p);
      p.catch(() => detailsById.delete(zoneId));
    }
    return p;
  }

  async function groupByZone(
    chs: ChallengeInput[],
    ctx: SolverContext,
    skipMissing = false,
  ): Promise<ZoneGroup[]> {
    const groups = new Map<string, ZoneGroup>();
    for (const ch of chs) {
      if (ch.type !== 'dns-01') continue;
      let zone: HostedZone;
      try {
        zone = await zoneFor(ch.domain, ch.certName, ctx);
      } catch (err) {
        if (!skipMissing) throw err;
        logger(ctx).warn(
          { cert: ch.certName, domain: ch.domain },
          'no Route53 zone for cleanup; nothing was written there',
        );
        continue;
      }
      let g = groups.get(zone.id);
      if (!g) {
        g = { zone, names: new Map() };
        groups.set(zone.id, g);
      }
      const name = normalizeName(ch.dnsRecordName);
      const entry = g.names.get(name) ?? { values: [], domain: ch.domain };
      if (!entry.values.includes(ch.dnsValue)) entry.values.push(ch.dnsValue);
      g.names.set(name, entry);
    }
    return [...groups.values()];
  }

  async function readTxt(
    zoneId: string,
    name: string,
    cert: string,
    domain: string,
    ctx: SolverContext,
  ): Promise<CurrentSet | undefined> {
    const res = await awsCall<ListResourceRecordSetsResponse>(
      client,
      new ListResourceRecordSetsCommand({
        HostedZoneId: zoneId,
        StartRecordName: `${name}.`,
        StartRecordType: 'TXT',
        MaxItems: 1,
      }),
      {
        action: 'ListResourceRecordSets',
        resource: `hostedzone/${zoneId}`,
        cert,
        domain,
        logger: logger(ctx),
        signal: ctx.signal,
      },
      timing.retry,
    );
    const set = res.ResourceRecordSets?.find(
      (s) => normalizeName(s.Name ?? '') === name && s.Type === 'TXT' && s.SetIdentifier === undefined,
    );
    return currentFrom(set);
  }

  /** One ChangeBatch per zone, built from the current sets under the zone lock. Returns the change id, if any. */
  async function changeZone(
    g: ZoneGroup,
    cert: string,
    verb: 'present' | 'cleanup',
    ctx: SolverContext,
  ): Promise<string | undefined> {
    return lockZone(g.zone.id, async () => {
      const changes: Change[] = [];
      for (const [name, { values, domain }] of g.names) {
        const current = await readTxt(g.zone.id, name, cert, domain, ctx);
        const change =
          verb === 'present' ? addChange(name, current, values) : removeChange(name, current, values);
        if (change) changes.push(change);
      }
      if (changes.length === 0) return undefined;
      const firstDomain = [...g.names.values()][0]?.domain;
      const id = await submitChangeBatch(g.zone.id, changes, `certkeeper ${verb} ${cert}`, {
        client,
        logger: logger(ctx),
        retry: timing.retry,
        cert,
        domain: g.names.size === 1 ? firstDomain : undefined,
        signal: ctx.signal,
      });
      logger(ctx).info(
        {
          cert,
          zoneId: g.zone.id,
          zone: g.zone.name || undefined,
          names: [...g.names.keys()],
          changeId: id,
          action: verb,
        },
        verb === 'present' ? 'Route53 TXT records written' : 'Route53 TXT records removed',
      );
      return id;
    });
  }

  async function presentAll(chs: ChallengeInput[], ctx: SolverContext): Promise<void> {
    const byCert = groupCerts(chs);
    for (const [cert, list] of byCert) {
      for (const g of await groupByZone(list, ctx)) {
        const id = await changeZone(g, cert, 'present', ctx);
        if (id) {
          const m = pending.get(cert) ?? new Map<string, string>();
          m.set(g.zone.id, id);
          pending.set(cert, m);
        }
      }
    }
  }

  async function cleanupAll(chs: ChallengeInput[], ctx: SolverContext): Promise<void> {
    const errors: unknown[] = [];
    for (const [cert, list] of groupCerts(chs)) {
      pending.delete(cert);
      let groups: ZoneGroup[];
      try {
        groups = await groupByZone(list, ctx, true);
      } catch (err) {
        errors.push(err);
        continue;
      }
      // Every zone gets its cleanup attempt even when another zone failed.
      for (const g of groups) {
        try {
          await changeZone(g, cert, 'cleanup', ctx);
        } catch (err) {
          errors.push(err);
        }
      }
    }
    if (errors.length) throw errors[0];
  }

  function waitFor(
    cert: string,
    zoneId: string,
    changeId: string,
    deadline: number,
    ctx: SolverContext,
    cutBy?: string,
  ): Promise<void> {
    return waitInsync(
      {
        zoneId,
        changeId,
        deadline,
        pollMs: timing.pollMs,
        maxPollMs: timing.maxPollMs,
        timeoutSeconds: config.propagationTimeoutSeconds,
        cutBy,
        hint: cutBy
          ? "the CA's authorization runs out before Route53 synced: retry later (check the AWS Health Dashboard)"
          : 'Route53 normally syncs within a minute: check the AWS Health Dashboard, or raise challenge.propagationTimeoutSeconds',
      },
      { client, logger: logger(ctx), retry: timing.retry, cert, signal: ctx.signal },
    );
  }

  async function check(chs: ChallengeInput[], ctx: SolverContext): Promise<void> {
    const { until: deadline, cutBy } = clampWait(config.propagationTimeoutSeconds * 1000, ctx.deadline);
    for (const [cert, list] of groupCerts(chs)) {
      const changes = pending.get(cert);
      if (changes) {
        for (const [zoneId, changeId] of changes) await waitFor(cert, zoneId, changeId, deadline, ctx, cutBy);
        pending.delete(cert);
      }
      if (!config.checkAuthoritative) continue;
      for (const g of await groupByZone(list, ctx)) {
        let nameservers = config.nameservers;
        if (!nameservers) {
          const details = await detailsFor(g.zone.id, cert, ctx);
          if (details.nameServers.length === 0) {
            logger(ctx).warn(
              { cert, zoneId: g.zone.id },
              'zone has no public delegation set (private zone?): skipping the authoritative check; set challenge.nameservers to check',
            );
            continue;
          }
          nameservers = details.nameServers;
        }
        const expect: TxtExpectation[] = [...g.names].map(([name, v]) => ({
          name,
          values: v.values,
          domain: v.domain,
        }));
        await waitForTxtRecords(expect, {
          nameservers,
          timeoutMs: Math.max(1000, deadline - Date.now()),
          intervalMs: timing.propagationIntervalMs,
          logger: logger(ctx),
          signal: ctx.signal,
          cert,
          resolveHost: deps.resolveHost,
          cutBy,
        });
      }
    }
  }

  const solver: ChallengeSolver = {
    type: 'dns-01',
    present: (ch, ctx) => presentAll([ch], ctx),
    cleanup: (ch, ctx) => cleanupAll([ch], ctx),
    presentAll,
    cleanupAll,
    check,
  };
  return solver;
}

function groupCerts(chs: ChallengeInput[]): Map<string, ChallengeInput[]> {
  const m = new Map<string, ChallengeInput[]>();
  for (const ch of chs) m.set(ch.certName, [...(m.get(ch.certName) ?? []), ch]);
  return m;
}

/** One line of `check-config --preflight`; the shape src/cli/preflight.ts prints ({ what, ok, fix }). */
export interface Route53PreflightCheck {
  what: string;
  ok: boolean;
  fix?: string;
  cert: string;
  domain: string;
  zoneId?: string;
  zoneName?: string;
  private?: boolean;
  error?: CertkeeperError;
}

export interface Route53PreflightDeps {
  logger: Logger;
  /** Certificate name (either key). */
  cert?: string;
  certName?: string;
  /** The certificate's domains; wildcards count as their base name. */
  domains: string[];
  client?: Route53Client;
  signal?: AbortSignal;
  retry?: RetryPolicy;
}

/**
 * `certkeeper check-config --preflight`: for each domain of one certificate, the zone is found (or the
 * configured hostedZoneId exists and holds it) and its records can be listed with the configured
 * credentials. Changes nothing. Never throws for a Route53 problem: each domain gets a check with
 * `ok: false`, the error's sentence in `what` and its hint in `fix`.
 */
export async function preflight(
  config: Route53ChallengeConfig,
  deps: Route53PreflightDeps,
): Promise<Route53PreflightCheck[]> {
  const cert = deps.cert ?? deps.certName ?? '';
  const client = deps.client ?? sharedRoute53Client({ region: config.region, roleArn: config.roleArn });
  const ctx = { client, logger: deps.logger, retry: deps.retry, cert, signal: deps.signal };
  const domains = [...new Set(deps.domains.map((d) => normalizeName(d.replace(/^\*\./, ''))))];
  const out: Route53PreflightCheck[] = [];
  let explicit: ZoneDetails | undefined;
  for (const domain of domains) {
    try {
      if (config.hostedZoneId && !explicit)
        explicit = await getHostedZone(config.hostedZoneId, { ...ctx, domain });
      const zone = explicit ?? (await findHostedZone(domain, config.privateZone, ctx));
      if (explicit && !inZone(domain, explicit.name)) {
        throw new CertkeeperError(
          'config',
          `hosted zone ${explicit.id} is ${explicit.name}, which does not hold ${domain}`,
          {
            cert,
            domain,
            field: 'challenge.hostedZoneId',
            permanent: true,
            hint: `set challenge.hostedZoneId to the zone of ${domain}, or remove it to let certkeeper find the zone`,
          },
        );
      }
      await awsCall<ListResourceRecordSetsResponse>(
        client,
        new ListResourceRecordSetsCommand({
          HostedZoneId: zone.id,
          StartRecordName: `_acme-challenge.${domain}.`,
          StartRecordType: 'TXT',
          MaxItems: 1,
        }),
        {
          action: 'ListResourceRecordSets',
          resource: `hostedzone/${zone.id}`,
          cert,
          domain,
          logger: deps.logger,
          signal: deps.signal,
        },
        deps.retry,
      );
      out.push({
        what: `${cert}: Route53 zone ${zone.name} (${zone.id}${zone.private ? ', private' : ''}) holds ${domain} and can be listed`,
        ok: true,
        cert,
        domain,
        zoneId: zone.id,
        zoneName: zone.name,
        private: zone.private,
      });
    } catch (err) {
      const e = toAwsError(err, { action: 'preflight', resource: '*', cert, domain, logger: deps.logger });
      out.push({
        what: `${cert}: Route53 zone for ${domain}: ${e.message}`,
        ok: false,
        fix: e.hint,
        cert,
        domain,
        error: e,
      });
    }
  }
  return out;
}
