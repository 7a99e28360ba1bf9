/**
 * A small Route53 on 127.0.0.1 speaking the REST/XML API (2013-04-01) for the calls certkeeper makes:
 * ListHostedZonesByName, GetHostedZone, ListResourceRecordSets, ChangeResourceRecordSets, GetChange.
 * The real @aws-sdk/client-route-53 talks to it through its `endpoint` option.
 *
 * Knobs: seeded zones (public/private), throttle the next N requests (400 Throttling), deny actions
 * (403 AccessDenied), changes go PENDING → INSYNC after K GetChange calls (or a timer), every call is
 * recorded. TXT sets are published to pebble-challtestsrv (clear-txt, then one set-txt per value, since
 * challtestsrv appends values per host) when a change goes INSYNC, so Pebble and the authoritative check
 * see what Route53 would serve.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

const NS = 'https://route53.amazonaws.com/doc/2013-04-01/';

export interface FakeZoneSeed {
  id: string;
  /** Without trailing dot. */
  name: string;
  private?: boolean;
  nameServers?: string[];
}

export interface FakeRecordSet {
  name: string;
  type: string;
  ttl: number;
  values: string[];
}

export interface FakeCall {
  action: string;
  method: string;
  path: string;
  query: Record<string, string>;
  zoneId?: string;
  status: number;
  /** Access key id from the SigV4 Authorization header (which credentials signed the call). */
  accessKeyId?: string;
  /** Whether the call carried a session token (temporary credentials). */
  sessionToken?: boolean;
  /** ChangeResourceRecordSets: the batch comment. */
  comment?: string;
  /** ChangeResourceRecordSets: the changes of the batch. */
  changes?: Array<{ action: string; name: string; type: string; ttl: number; values: string[] }>;
}

export interface FakeRoute53Options {
  zones: FakeZoneSeed[];
  /** After K GetChange calls for a change it is INSYNC (call K+1 sees it); default 1. 0: INSYNC at once. */
  insyncAfterGetChanges?: number;
  /** ...or after this many ms, whichever comes first (default 1000), so cleanup changes nobody polls still settle. */
  insyncAfterMs?: number;
  /** pebble-challtestsrv management URL, e.g. http://127.0.0.1:8055 */
  challtestsrv?: string;
  throttleFirst?: number;
}

export interface FakeRoute53 {
  url: string;
  calls: FakeCall[];
  /** Next `n` requests answer 400 Throttling. */
  throttleNext(n: number, code?: 'Throttling' | 'PriorRequestNotComplete'): void;
  /** Answer 403 AccessDenied for this action (optionally only on one zone). */
  deny(action: string, zoneId?: string): void;
  allowAll(): void;
  /** Current record sets of a zone (SOA/NS included). */
  records(zoneId: string): FakeRecordSet[];
  txt(zoneId: string, name: string): string[] | undefined;
  /** The values at `name` of `type` in whichever seeded zone holds it (what DNS would answer), e.g. for CNAMEs. */
  lookup(name: string, type: string): string[] | undefined;
  /** Put a TXT set in a zone as if someone else had (published immediately). */
  seedTxt(zoneId: string, name: string, values: string[], ttl?: number): Promise<void>;
  /** Resolves when every INSYNC publish to challtestsrv has been sent. */
  idle(): Promise<void>;
  /** Marks every PENDING change INSYNC now (publishing it) and waits for the publishes. */
  settleAll(): Promise<void>;
  /**
   * While held, changes are accepted and go INSYNC but are not published to DNS (a broken delegation or a slow
   * secondary); releasing publishes what was held back.
   */
  holdPublishing(hold: boolean): void;
  /** Counts per action, optionally since a call index. */
  count(action?: string, since?: number): number;
  close(): Promise<void>;
}

interface Zone extends FakeZoneSeed {
  callerRef: string;
  sets: Map<string, FakeRecordSet>;
}

interface ChangeRec {
  id: string;
  status: 'PENDING' | 'INSYNC';
  submittedAt: string;
  comment?: string;
  getCalls: number;
  zoneId: string;
  names: Set<string>;
  timer?: NodeJS.Timeout;
}

const esc = (s: string) =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const unesc = (s: string) =>
  s
    .replace(/&#x([0-9a-f]+);/gi, (_, h: string) => String.fromCodePoint(Number.parseInt(h, 16)))
    .replace(/&#(\d+);/g, (_, d: string) => String.fromCodePoint(Number(d)))
    .replace(/&quot;/g, '"')
    .replace(/&apos;/g, "'")
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');

/** Route53 names: lower-case with trailing dot. */
const fqdn = (n: string) => `${n.toLowerCase().replace(/\.$/, '')}.`;
/** Route53 sorts names with labels reversed: www.example.com. → com.example.www */
const sortKey = (n: string) => fqdn(n).slice(0, -1).split('.').reverse().join('.');
const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

function tag(xml: string, name: string): string | undefined {
  const m = new RegExp(`<${name}>([\\s\\S]*?)</${name}>`).exec(xml);
  return m ? unesc(m[1]!) : undefined;
}
function tags(xml: string, name: string): string[] {
  return [...xml.matchAll(new RegExp(`<${name}>([\\s\\S]*?)</${name}>`, 'g'))].map((m) => m[1]!);
}

function xmlDoc(root: string, inner: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<${root} xmlns="${NS}">${inner}</${root}>`;
}

class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export async function startFakeRoute53(opts: FakeRoute53Options): Promise<FakeRoute53> {
  const zones = new Map<string, Zone>();
  for (const z of opts.zones) {
    const name = fqdn(z.name);
    const nameServers = z.private
      ? []
      : (z.nameServers ?? ['ns-1.fake-route53.invalid', 'ns-2.fake-route53.invalid']);
    const sets = new Map<string, FakeRecordSet>();
    sets.set(`${name}|SOA`, {
      name,
      type: 'SOA',
      ttl: 900,
      values: [`${nameServers[0] ?? 'ns.invalid'}. awsdns-hostmaster.amazon.com. 1 7200 900 1209600 86400`],
    });
    if (nameServers.length)
      sets.set(`${name}|NS`, { name, type: 'NS', ttl: 172800, values: nameServers.map((n) => `${n}.`) });
    zones.set(z.id, { ...z, nameServers, callerRef: randomBytes(6).toString('hex'), sets });
  }
  const changes = new Map<string, ChangeRec>();
  const calls: FakeCall[] = [];
  let throttle = opts.throttleFirst ?? 0;
  let throttleCode = 'Throttling';
  const denied: Array<{ action: string; zoneId?: string }> = [];
  const insyncAfter = opts.insyncAfterGetChanges ?? 1;
  const insyncAfterMs = opts.insyncAfterMs ?? 1000;
  let publishChain: Promise<void> = Promise.resolve();
  let publishError: unknown;

  let publishingHeld = false;
  const held = new Map<Zone, Set<string>>();
  function publish(zone: Zone, names: Iterable<string>): void {
    if (publishingHeld) {
      const set = held.get(zone) ?? new Set<string>();
      for (const n of names) set.add(n);
      held.set(zone, set);
      return;
    }
    if (!opts.challtestsrv) return;
    const base = opts.challtestsrv;
    const snapshot = [...names].map((n) => ({ host: n, values: zone.sets.get(`${n}|TXT`)?.values ?? [] }));
    publishChain = publishChain.then(async () => {
      for (const { host, values } of snapshot) {
        try {
          await post(`${base}/clear-txt`, { host });
          for (const v of values) await post(`${base}/set-txt`, { host, value: parseTxt(v) });
        } catch (err) {
          publishError = err;
        }
      }
    });
  }

  function settle(ch: ChangeRec): void {
    if (ch.status === 'INSYNC') return;
    ch.status = 'INSYNC';
    if (ch.timer) clearTimeout(ch.timer);
    const zone = zones.get(ch.zoneId);
    if (zone) publish(zone, ch.names);
  }

  function zoneOr404(id: string): Zone {
    const z = zones.get(id.replace(/^\/?hostedzone\//, ''));
    if (!z) throw new ApiError(404, 'NoSuchHostedZone', `No hosted zone found with ID: ${id}`);
    return z;
  }

  function hostedZoneXml(z: Zone): string {
    return `<HostedZone><Id>/hostedzone/${z.id}</Id><Name>${esc(fqdn(z.name))}</Name><CallerReference>${z.callerRef}</CallerReference><Config><Comment>seeded</Comment><PrivateZone>${z.private ? 'true' : 'false'}</PrivateZone></Config><ResourceRecordSetCount>${z.sets.size}</ResourceRecordSetCount></HostedZone>`;
  }

  function changeInfoXml(c: ChangeRec): string {
    return `<ChangeInfo><Id>/change/${c.id}</Id><Status>${c.status}</Status><SubmittedAt>${c.submittedAt}</SubmittedAt>${c.comment ? `<Comment>${esc(c.comment)}</Comment>` : ''}</ChangeInfo>`;
  }

  function listHostedZonesByName(q: Record<string, string>): string {
    const maxItems = Math.min(Number(q.maxitems ?? 100) || 100, 100);
    const sorted = [...zones.values()].sort(
      (a, b) => cmp(sortKey(a.name), sortKey(b.name)) || cmp(a.id, b.id),
    );
    let start = 0;
    if (q.dnsname) {
      const key = sortKey(q.dnsname);
      start = sorted.findIndex((z) => {
        const c = cmp(sortKey(z.name), key);
        return c > 0 || (c === 0 && (!q.hostedzoneid || cmp(z.id, q.hostedzoneid) >= 0));
      });
      if (start < 0) start = sorted.length;
    } else if (q.hostedzoneid) {
      throw new ApiError(400, 'InvalidInput', 'The input is not valid: hostedzoneid requires dnsname');
    }
    const page = sorted.slice(start, start + maxItems);
    const next = sorted[start + maxItems];
    return xmlDoc(
      'ListHostedZonesByNameResponse',
      `<HostedZones>${page.map(hostedZoneXml).join('')}</HostedZones>${q.dnsname ? `<DNSName>${esc(fqdn(q.dnsname))}</DNSName>` : ''}${q.hostedzoneid ? `<HostedZoneId>${esc(q.hostedzoneid)}</HostedZoneId>` : ''}<IsTruncated>${next ? 'true' : 'false'}</IsTruncated>${next ? `<NextDNSName>${esc(fqdn(next.name))}</NextDNSName><NextHostedZoneId>${next.id}</NextHostedZoneId>` : ''}<MaxItems>${maxItems}</MaxItems>`,
    );
  }

  function getHostedZone(z: Zone): string {
    const deleg = z.private
      ? '<VPCs><VPC><VPCRegion>us-east-1</VPCRegion><VPCId>vpc-0fake</VPCId></VPC></VPCs>'
      : `<DelegationSet><NameServers>${z.nameServers!.map((n) => `<NameServer>${esc(n)}</NameServer>`).join('')}</NameServers></DelegationSet>`;
    return xmlDoc('GetHostedZoneResponse', `${hostedZoneXml(z)}${deleg}`);
  }

  function rrsetXml(s: FakeRecordSet): string {
    return `<ResourceRecordSet><Name>${esc(s.name)}</Name><Type>${s.type}</Type><TTL>${s.ttl}</TTL><ResourceRecords>${s.values.map((v) => `<ResourceRecord><Value>${esc(v)}</Value></ResourceRecord>`).join('')}</ResourceRecords></ResourceRecordSet>`;
  }

  function listRecordSets(z: Zone, q: Record<string, string>): string {
    const maxItems = Math.min(Number(q.maxitems ?? 300) || 300, 300);
    if (q.type && !q.name)
      throw new ApiError(400, 'InvalidInput', 'The input is not valid: type requires name');
    const sorted = [...z.sets.values()].sort(
      (a, b) => cmp(sortKey(a.name), sortKey(b.name)) || cmp(a.type, b.type),
    );
    let start = 0;
    if (q.name) {
      const key = sortKey(q.name);
      start = sorted.findIndex((s) => {
        const c = cmp(sortKey(s.name), key);
        return c > 0 || (c === 0 && (!q.type || cmp(s.type, q.type) >= 0));
      });
      if (start < 0) start = sorted.length;
    }
    const page = sorted.slice(start, start + maxItems);
    const next = sorted[start + maxItems];
    return xmlDoc(
      'ListResourceRecordSetsResponse',
      `<ResourceRecordSets>${page.map(rrsetXml).join('')}</ResourceRecordSets><IsTruncated>${next ? 'true' : 'false'}</IsTruncated>${next ? `<NextRecordName>${esc(next.name)}</NextRecordName><NextRecordType>${next.type}</NextRecordType>` : ''}<MaxItems>${maxItems}</MaxItems>`,
    );
  }

  function changeRecordSets(z: Zone, body: string, call: FakeCall): string {
    if (!body.includes('<ChangeResourceRecordSetsRequest'))
      throw new ApiError(400, 'InvalidInput', 'Missing ChangeResourceRecordSetsRequest');
    const batch = /<ChangeBatch>([\s\S]*)<\/ChangeBatch>/.exec(body)?.[1];
    if (!batch) throw new ApiError(400, 'InvalidInput', 'Missing ChangeBatch');
    const comment = tag(batch.replace(/<Changes>[\s\S]*<\/Changes>/, ''), 'Comment');
    const parsed = tags(batch, 'Change').map((c) => {
      const set = tags(c, 'ResourceRecordSet')[0] ?? '';
      return {
        action: tag(c, 'Action') ?? '',
        name: fqdn(tag(set, 'Name') ?? ''),
        type: tag(set, 'Type') ?? '',
        ttl: Number(tag(set, 'TTL') ?? Number.NaN),
        values: tags(set, 'Value').map(unesc),
      };
    });
    call.changes = parsed;
    call.comment = comment;
    if (parsed.length === 0)
      throw new ApiError(400, 'InvalidInput', 'The input is not valid: ChangeBatch has no Changes');
    // Validate the whole batch against a copy first: a batch applies atomically or not at all.
    const next = new Map(z.sets);
    const seen = new Set<string>();
    const errors: string[] = [];
    for (const c of parsed) {
      const key = `${c.name}|${c.type}`;
      if (seen.has(key)) {
        errors.push(`Duplicate Resource Record: '${c.name}' ${c.type}`);
        continue;
      }
      seen.add(key);
      const zoneName = fqdn(z.name);
      if (c.name !== zoneName && !c.name.endsWith(`.${zoneName}`)) {
        errors.push(`RRSet with DNS name ${c.name} is not permitted in zone ${zoneName}`);
        continue;
      }
      if (!['CREATE', 'UPSERT', 'DELETE'].includes(c.action))
        throw new ApiError(400, 'InvalidInput', `Invalid action ${c.action}`);
      if (!Number.isFinite(c.ttl) || c.values.length === 0) {
        throw new ApiError(
          400,
          'InvalidInput',
          'Invalid request: Expected exactly one of [AliasTarget, all of [TTL, and ResourceRecords]]',
        );
      }
      if (c.type === 'TXT' && c.values.some((v) => !/^(".*")(\s+".*")*$/.test(v))) {
        errors.push(
          `Invalid Resource Record: 'FATAL problem: InvalidCharacterString (Value should be enclosed in quotation marks) encountered with '${c.values[0]}''`,
        );
        continue;
      }
      const cur = next.get(key);
      if (c.action === 'CREATE' && cur) {
        errors.push(
          `Tried to create resource record set [name='${c.name}', type='${c.type}'] but it already exists`,
        );
      } else if (c.action === 'DELETE') {
        if (!cur)
          errors.push(
            `Tried to delete resource record set [name='${c.name}', type='${c.type}'] but it was not found`,
          );
        else if (cur.ttl !== c.ttl || [...cur.values].sort().join('\n') !== [...c.values].sort().join('\n')) {
          errors.push(
            `Tried to delete resource record set [name='${c.name}', type='${c.type}'] but the values provided do not match the current values`,
          );
        } else next.delete(key);
      } else {
        next.set(key, { name: c.name, type: c.type, ttl: c.ttl, values: [...new Set(c.values)] });
      }
    }
    if (errors.length) throw new ApiError(400, 'InvalidChangeBatch', `[${errors.join(', ')}]`);
    z.sets = next;
    const rec: ChangeRec = {
      id: `C${randomBytes(7).toString('hex').toUpperCase()}`,
      status: 'PENDING',
      submittedAt: new Date().toISOString().replace(/\.\d+Z$/, '.000Z'),
      comment,
      getCalls: 0,
      zoneId: z.id,
      names: new Set(parsed.filter((c) => c.type === 'TXT').map((c) => c.name)),
    };
    changes.set(rec.id, rec);
    if (insyncAfter <= 0) settle(rec);
    else {
      rec.timer = setTimeout(() => settle(rec), insyncAfterMs);
      rec.timer.unref();
    }
    return xmlDoc('ChangeResourceRecordSetsResponse', changeInfoXml(rec));
  }

  async function getChange(id: string): Promise<string> {
    const c = changes.get(id.replace(/^\/?change\//, ''));
    if (!c)
      throw new ApiError(404, 'NoSuchChange', `A change with the specified change ID does not exist: ${id}`);
    c.getCalls++;
    // The response that settles the change still says PENDING; the next call sees INSYNC.
    const body = xmlDoc('GetChangeResponse', changeInfoXml(c));
    if (c.getCalls >= insyncAfter) settle(c);
    // INSYNC means the authoritative servers answer with the change: never say so before DNS has it.
    if (body.includes('<Status>INSYNC</Status>')) await publishChain;
    return body;
  }

  function route(
    method: string,
    path: string,
    q: Record<string, string>,
    body: string,
    call: FakeCall,
  ): string | Promise<string> {
    const p = path.replace(/\/+$/, '');
    if (method === 'GET' && p === '/2013-04-01/hostedzonesbyname') {
      call.action = 'ListHostedZonesByName';
      check(call);
      return listHostedZonesByName(q);
    }
    const rrset = /^\/2013-04-01\/hostedzone\/([^/]+)\/rrset$/.exec(p);
    if (rrset && (method === 'GET' || method === 'POST')) {
      const zoneId = decodeURIComponent(rrset[1]!);
      call.zoneId = zoneId;
      call.action = method === 'GET' ? 'ListResourceRecordSets' : 'ChangeResourceRecordSets';
      check(call);
      return method === 'GET'
        ? listRecordSets(zoneOr404(zoneId), q)
        : changeRecordSets(zoneOr404(zoneId), body, call);
    }
    const zone = /^\/2013-04-01\/hostedzone\/([^/]+)$/.exec(p);
    if (method === 'GET' && zone) {
      call.action = 'GetHostedZone';
      call.zoneId = decodeURIComponent(zone[1]!);
      check(call);
      return getHostedZone(zoneOr404(call.zoneId));
    }
    const change = /^\/2013-04-01\/change\/([^/]+)$/.exec(p);
    if (method === 'GET' && change) {
      call.action = 'GetChange';
      check(call);
      return getChange(decodeURIComponent(change[1]!));
    }
    throw new ApiError(404, 'UnknownOperationException', `fake Route53 does not implement ${method} ${path}`);
  }

  function check(call: FakeCall): void {
    if (throttle > 0) {
      throttle--;
      throw new ApiError(
        400,
        throttleCode,
        throttleCode === 'Throttling'
          ? 'Rate exceeded'
          : 'The request was rejected because Route 53 was still processing a prior request.',
      );
    }
    const d = denied.find((x) => x.action === call.action && (!x.zoneId || x.zoneId === call.zoneId));
    if (d) {
      const resource = call.zoneId
        ? `arn:aws:route53:::hostedzone/${call.zoneId}`
        : call.action === 'GetChange'
          ? 'arn:aws:route53:::change/*'
          : '*';
      throw new ApiError(
        403,
        'AccessDenied',
        `User: arn:aws:iam::123456789012:user/certkeeper-test is not authorized to perform: route53:${call.action} on resource: ${resource} because no identity-based policy allows the route53:${call.action} action`,
      );
    }
  }

  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      const url = new URL(req.url ?? '/', 'http://localhost');
      const query = Object.fromEntries(url.searchParams);
      const call: FakeCall = {
        action: 'Unknown',
        method: req.method ?? 'GET',
        path: url.pathname,
        query,
        status: 200,
        accessKeyId: /Credential=([^/]+)\//.exec(String(req.headers.authorization ?? ''))?.[1],
        sessionToken: req.headers['x-amz-security-token'] !== undefined,
      };
      calls.push(call);
      const requestId = randomBytes(16).toString('hex');
      let status = 200;
      let out: string;
      try {
        if (!/^AWS4-HMAC-SHA256 Credential=/.test(String(req.headers.authorization ?? ''))) {
          throw new ApiError(403, 'MissingAuthenticationToken', 'Missing Authentication Token');
        }
        out = await route(
          req.method ?? 'GET',
          url.pathname,
          query,
          Buffer.concat(chunks).toString('utf8'),
          call,
        );
      } catch (err) {
        const e = err instanceof ApiError ? err : new ApiError(500, 'InternalFailure', String(err));
        status = e.status;
        out = `<?xml version="1.0"?>\n<ErrorResponse xmlns="${NS}"><Error><Type>${status >= 500 ? 'Receiver' : 'Sender'}</Type><Code>${e.code}</Code><Message>${esc(e.message)}</Message></Error><RequestId>${requestId}</RequestId></ErrorResponse>`;
      }
      call.status = status;
      res.writeHead(status, {
        'content-type': 'text/xml',
        'x-amzn-requestid': requestId,
        'content-length': Buffer.byteLength(out),
      });
      res.end(out);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    calls,
    throttleNext(n, code = 'Throttling') {
      throttle = n;
      throttleCode = code;
    },
    deny(action, zoneId) {
      denied.push({ action, zoneId });
    },
    allowAll() {
      denied.length = 0;
    },
    records(zoneId) {
      return [...zoneOr404(zoneId).sets.values()].map((s) => ({ ...s, values: [...s.values] }));
    },
    txt(zoneId, name) {
      return zoneOr404(zoneId)
        .sets.get(`${fqdn(name)}|TXT`)
        ?.values.slice();
    },
    lookup(name, type) {
      for (const z of zones.values()) {
        const set = z.sets.get(`${fqdn(name)}|${type}`);
        if (set) return set.values.slice();
      }
      return undefined;
    },
    async seedTxt(zoneId, name, values, ttl = 300) {
      const z = zoneOr404(zoneId);
      z.sets.set(`${fqdn(name)}|TXT`, {
        name: fqdn(name),
        type: 'TXT',
        ttl,
        values: values.map((v) => `"${v}"`),
      });
      publish(z, [fqdn(name)]);
      await publishChain;
    },
    async idle() {
      await publishChain;
      if (publishError) throw publishError;
    },
    async settleAll() {
      for (const c of changes.values()) settle(c);
      await publishChain;
      if (publishError) throw publishError;
    },
    holdPublishing(hold) {
      publishingHeld = hold;
      if (hold) return;
      // Released: what was held back reaches DNS now (a slow secondary catching up, long after INSYNC).
      for (const [zone, names] of held) publish(zone, names);
      held.clear();
    },
    count(action, since = 0) {
      return calls.slice(since).filter((c) => !action || c.action === action).length;
    },
    async close() {
      for (const c of changes.values()) if (c.timer) clearTimeout(c.timer);
      await publishChain.catch(() => undefined);
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}

/** `"abc"` → abc; `"a" "b"` → ab (what a resolver returns joined). */
function parseTxt(v: string): string {
  return [...v.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((m) => m[1]!.replace(/\\(.)/g, '$1')).join('');
}

async function post(url: string, body: unknown): Promise<void> {
  const u = new URL(url);
  if (!['127.0.0.1', 'localhost', '[::1]'].includes(u.hostname))
    throw new Error(`refusing to publish to non-loopback ${url}`);
  const res = await fetch(url, {
    method: 'POST',
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(5000),
  });
  if (!res.ok) throw new Error(`challtestsrv ${u.pathname}: HTTP ${res.status}`);
  await res.arrayBuffer();
}
