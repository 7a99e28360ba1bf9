import {
  GetHostedZoneCommand,
  type GetHostedZoneResponse,
  ListHostedZonesByNameCommand,
  type ListHostedZonesByNameResponse,
  type Route53Client,
} from '@aws-sdk/client-route-53';
import { CertkeeperError } from '../../errors.js';
import type { Logger } from '../../log.js';
import { awsCall, type RetryPolicy } from './aws-call.js';

export interface HostedZone {
  /** Bare id, "Z123", without "/hostedzone/". */
  id: string;
  /** Lower-case, no trailing dot; empty when only the id is known (explicit hostedZoneId). */
  name: string;
  private: boolean;
}

/** Route53 names: lower-case, trailing dot, octal escapes (\052 for "*"). We compare without the dot. */
export function normalizeName(name: string): string {
  return name
    .replace(/\\(\d{3})/g, (_, oct: string) => String.fromCharCode(Number.parseInt(oct, 8)))
    .replace(/\.$/, '')
    .toLowerCase();
}

export function bareZoneId(id: string): string {
  return id.replace(/^\/?hostedzone\//, '');
}

/** "a.b.example.com" → ["a.b.example.com", "b.example.com", "example.com", "com"]. */
export function suffixes(domain: string): string[] {
  const labels = normalizeName(domain).split('.');
  return labels.map((_, i) => labels.slice(i).join('.'));
}

export interface DiscoveryContext {
  client: Route53Client;
  logger: Logger;
  retry?: RetryPolicy;
  cert?: string;
  signal?: AbortSignal;
}

const PAGE = 10;
const MAX_PAGES_PER_NAME = 5;

/**
 * Longest-suffix match through ListHostedZonesByName: for each suffix of the domain, longest first,
 * ask for zones starting at that name and keep those whose name is exactly that suffix. Public zones
 * are chosen unless `privateZone` is set (then a private zone is preferred, a public one accepted).
 * Calls: one per label tried until a zone is found (two for "www.example.com" in "example.com").
 */
export async function findHostedZone(
  domain: string,
  privateZone: boolean,
  ctx: DiscoveryContext,
): Promise<HostedZone> {
  const seen = new Set<string>();
  let privateOnly = false;
  for (const candidate of suffixes(domain)) {
    const matches: HostedZone[] = [];
    let marker: { DNSName?: string; HostedZoneId?: string } = { DNSName: candidate };
    for (let page = 0; page < MAX_PAGES_PER_NAME; page++) {
      const res = await awsCall<ListHostedZonesByNameResponse>(
        ctx.client,
        new ListHostedZonesByNameCommand({ ...marker, MaxItems: PAGE }),
        {
          action: 'ListHostedZonesByName',
          resource: '*',
          cert: ctx.cert,
          domain,
          logger: ctx.logger,
          signal: ctx.signal,
        },
        ctx.retry,
      );
      const zones = res.HostedZones ?? [];
      let passed = false;
      for (const z of zones) {
        const name = normalizeName(z.Name ?? '');
        seen.add(`${name}${z.Config?.PrivateZone ? ' (private)' : ''}`);
        if (name === candidate)
          matches.push({ id: bareZoneId(z.Id ?? ''), name, private: z.Config?.PrivateZone === true });
        else passed = true;
      }
      // Zones come sorted by reversed labels: once a different name shows up, no more zones of this name follow.
      if (passed || !res.IsTruncated || !res.NextDNSName) break;
      marker = { DNSName: res.NextDNSName, HostedZoneId: res.NextHostedZoneId };
    }
    const pick = privateZone
      ? (matches.find((z) => z.private) ?? matches.find((z) => !z.private))
      : matches.find((z) => !z.private);
    if (matches.length) privateOnly = true;
    if (pick) {
      ctx.logger.debug(
        { cert: ctx.cert, domain, zoneId: pick.id, zone: pick.name, private: pick.private },
        'Route53 zone found',
      );
      return pick;
    }
  }
  const list = [...seen].sort();
  throw new CertkeeperError(
    'challenge',
    `no Route53 hosted zone covers ${domain} (zones seen: ${list.length ? list.join(', ') : 'none'})`,
    {
      cert: ctx.cert,
      domain,
      code: 'CK_ERR_DNS_ZONE_NOT_FOUND',
      permanent: true,
      hint: privateZone
        ? `create a hosted zone for ${domain} or a parent in this AWS account, or set challenge.hostedZoneId`
        : `create a public hosted zone for ${domain} or a parent in this AWS account, set challenge.hostedZoneId, or check that the credentials belong to the right account${privateOnly ? ' (only private zones matched: set privateZone: true if that is intended)' : ''}`,
    },
  );
}

export interface ZoneDetails extends HostedZone {
  /** NS host names of the delegation set (empty for private zones). */
  nameServers: string[];
}

/** GetHostedZone: name, privacy and the delegation set's nameservers. */
export async function getHostedZone(
  id: string,
  ctx: DiscoveryContext & { domain?: string },
): Promise<ZoneDetails> {
  const zoneId = bareZoneId(id);
  const res = await awsCall<GetHostedZoneResponse>(
    ctx.client,
    new GetHostedZoneCommand({ Id: zoneId }),
    {
      action: 'GetHostedZone',
      resource: `hostedzone/${zoneId}`,
      cert: ctx.cert,
      domain: ctx.domain,
      logger: ctx.logger,
      signal: ctx.signal,
    },
    ctx.retry,
  );
  return {
    id: zoneId,
    name: normalizeName(res.HostedZone?.Name ?? ''),
    private: res.HostedZone?.Config?.PrivateZone === true,
    nameServers: res.DelegationSet?.NameServers ?? [],
  };
}

/** True when `name` is the zone apex or below it. */
export function inZone(name: string, zoneName: string): boolean {
  const n = normalizeName(name);
  return n === zoneName || n.endsWith(`.${zoneName}`);
}
