import { Route53Client } from '@aws-sdk/client-route-53';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type FakeRoute53, startFakeRoute53 } from '../../../test/fakes/route53-server.js';
import { CertkeeperError } from '../../errors.js';
import { silentLogger } from '../../log.js';
import type { ChallengeInput, SolverDeps } from '../types.js';
import { create, preflight } from './index.js';
import { type Route53ChallengeConfig, route53ChallengeSchema } from './schema.js';

const ctx = { logger: silentLogger };
const selfCheck: SolverDeps['selfCheck'] = { enabled: true, httpPort: 80, timeoutSeconds: 5 };
const fastRetry = { attempts: 4, baseMs: 5, maxMs: 20 };

let fake: FakeRoute53;
let client: Route53Client;

function sdkClient(url: string, maxAttempts = 1): Route53Client {
  // The real SDK client; maxAttempts 1 leaves retrying to certkeeper's own layer unless a test asks otherwise.
  return new Route53Client({
    region: 'us-east-1',
    endpoint: url,
    maxAttempts,
    credentials: { accessKeyId: 'AKIDFAKE', secretAccessKey: 'fake-secret' },
  });
}

function cfg(over: Partial<Route53ChallengeConfig> = {}): Route53ChallengeConfig {
  return route53ChallengeSchema.parse({
    type: 'dns-01',
    provider: 'route53',
    checkAuthoritative: false,
    propagationTimeoutSeconds: 5,
    ...over,
  });
}

function solver(over: Partial<Route53ChallengeConfig> = {}, c: Route53Client = client) {
  return create(cfg(over), {
    logger: silentLogger,
    selfCheck,
    client: c,
    timing: { pollMs: 5, maxPollMs: 20, retry: fastRetry },
  });
}

function ch(certName: string, identifier: string, value: string): ChallengeInput {
  const wildcard = identifier.startsWith('*.');
  const domain = identifier.replace(/^\*\./, '');
  return {
    certName,
    domain,
    wildcard,
    type: 'dns-01',
    token: `tok-${value}`,
    keyAuthorization: `ka-${value}`,
    dnsRecordName: `_acme-challenge.${domain}`,
    dnsValue: value,
  };
}

beforeAll(async () => {
  fake = await startFakeRoute53({
    zones: [
      { id: 'ZPUB', name: 'dns01.test' },
      { id: 'ZPRIV', name: 'dns01.test', private: true },
      { id: 'ZSUB', name: 'sub.dns01.test' },
      { id: 'ZPRIVONLY', name: 'internal.test', private: true },
      { id: 'ZOTHER', name: 'other.test' },
    ],
    insyncAfterGetChanges: 2,
    insyncAfterMs: 60_000,
  });
  client = sdkClient(fake.url);
});
afterAll(async () => {
  client?.destroy();
  await fake?.close();
});
afterEach(() => {
  fake.allowAll();
  fake.throttleNext(0);
});

describe('zone discovery', () => {
  it('takes the longest suffix and the public zone', async () => {
    const s = solver();
    await s.presentAll!(
      [ch('c-disc', 'a.sub.dns01.test', 'v-sub'), ch('c-disc', 'b.dns01.test', 'v-b')],
      ctx,
    );
    expect(fake.txt('ZSUB', '_acme-challenge.a.sub.dns01.test')).toEqual(['"v-sub"']);
    expect(fake.txt('ZPUB', '_acme-challenge.b.dns01.test')).toEqual(['"v-b"']);
    expect(fake.txt('ZPRIV', '_acme-challenge.b.dns01.test')).toBeUndefined();
    await s.cleanupAll!(
      [ch('c-disc', 'a.sub.dns01.test', 'v-sub'), ch('c-disc', 'b.dns01.test', 'v-b')],
      ctx,
    );
  });

  it('uses the private zone only when asked', async () => {
    const s = solver({ privateZone: true });
    await s.presentAll!([ch('c-priv', 'p.dns01.test', 'v-p')], ctx);
    expect(fake.txt('ZPRIV', '_acme-challenge.p.dns01.test')).toEqual(['"v-p"']);
    expect(fake.txt('ZPUB', '_acme-challenge.p.dns01.test')).toBeUndefined();
    await s.cleanupAll!([ch('c-priv', 'p.dns01.test', 'v-p')], ctx);
    expect(fake.txt('ZPRIV', '_acme-challenge.p.dns01.test')).toBeUndefined();
  });

  it('skips discovery with an explicit hostedZoneId', async () => {
    const since = fake.calls.length;
    const s = solver({ hostedZoneId: '/hostedzone/ZPRIV' });
    await s.presentAll!([ch('c-explicit', 'e.dns01.test', 'v-e')], ctx);
    expect(fake.count('ListHostedZonesByName', since)).toBe(0);
    expect(fake.txt('ZPRIV', '_acme-challenge.e.dns01.test')).toEqual(['"v-e"']);
    await s.cleanupAll!([ch('c-explicit', 'e.dns01.test', 'v-e')], ctx);
  });

  it('names the domain and the zones seen when no zone covers it', async () => {
    const s = solver();
    const err = await s.presentAll!([ch('c-none', 'www.nowhere.example', 'v')], ctx).catch((e) => e);
    expect(err).toBeInstanceOf(CertkeeperError);
    expect(err.kind).toBe('challenge');
    expect(err.code).toBe('CK_ERR_DNS_ZONE_NOT_FOUND');
    expect(err.domain).toBe('www.nowhere.example');
    expect(err.cert).toBe('c-none');
    expect(err.message).toContain('no Route53 hosted zone covers www.nowhere.example');
    expect(err.message).toMatch(/zones seen: .*dns01\.test/);
    expect(err.hint).toMatch(/hosted zone/);
  });

  it('says so when only a private zone matched', async () => {
    const err = await solver().presentAll!([ch('c-po', 'x.internal.test', 'v')], ctx).catch((e) => e);
    expect(err.message).toContain('internal.test (private)');
    expect(err.hint).toContain('privateZone: true');
  });
});

describe('records', () => {
  it('writes apex and wildcard values in one ChangeBatch per zone', async () => {
    const since = fake.calls.length;
    const s = solver();
    const chs = [
      ch('c-wild', 'w.dns01.test', 'apex-v'),
      ch('c-wild', '*.w.dns01.test', 'wild-v'),
      ch('c-wild', 'www.w.dns01.test', 'www-v'),
    ];
    await s.presentAll!(chs, ctx);
    const batches = fake.calls.slice(since).filter((c) => c.action === 'ChangeResourceRecordSets');
    expect(batches).toHaveLength(1);
    expect(batches[0]!.changes).toEqual([
      {
        action: 'UPSERT',
        name: '_acme-challenge.w.dns01.test.',
        type: 'TXT',
        ttl: 60,
        values: ['"apex-v"', '"wild-v"'],
      },
      {
        action: 'UPSERT',
        name: '_acme-challenge.www.w.dns01.test.',
        type: 'TXT',
        ttl: 60,
        values: ['"www-v"'],
      },
    ]);
    // check() waits for INSYNC through GetChange: PENDING twice, then INSYNC.
    const beforeCheck = fake.calls.length;
    await s.check!(chs, ctx);
    expect(fake.count('GetChange', beforeCheck)).toBe(3);
    await s.cleanupAll!(chs, ctx);
    expect(fake.txt('ZPUB', '_acme-challenge.w.dns01.test')).toBeUndefined();
    expect(fake.txt('ZPUB', '_acme-challenge.www.w.dns01.test')).toBeUndefined();
    expect(fake.calls.slice(since).filter((c) => c.action === 'ChangeResourceRecordSets')).toHaveLength(2);
  });

  it('keeps values other certificates placed there, and removes exactly ours', async () => {
    await fake.seedTxt('ZPUB', '_acme-challenge.shared.dns01.test', ['someone-else']);
    const s = solver();
    const mine = [ch('c-share', 'shared.dns01.test', 'mine')];
    await s.presentAll!(mine, ctx);
    expect(fake.txt('ZPUB', '_acme-challenge.shared.dns01.test')).toEqual(['"someone-else"', '"mine"']);
    await s.cleanupAll!(mine, ctx);
    expect(fake.txt('ZPUB', '_acme-challenge.shared.dns01.test')).toEqual(['"someone-else"']);
    // A second cleanup finds nothing of ours and changes nothing.
    const since = fake.calls.length;
    await s.cleanupAll!(mine, ctx);
    expect(fake.count('ChangeResourceRecordSets', since)).toBe(0);
  });

  it('keeps both values when two certificates present at one name concurrently', async () => {
    const a = solver();
    const b = solver();
    await Promise.all([
      a.presentAll!([ch('cert-apex', 'both.dns01.test', 'from-a')], ctx),
      b.presentAll!([ch('cert-wild', '*.both.dns01.test', 'from-b')], ctx),
    ]);
    expect(fake.txt('ZPUB', '_acme-challenge.both.dns01.test')?.sort()).toEqual(['"from-a"', '"from-b"']);
    await a.cleanupAll!([ch('cert-apex', 'both.dns01.test', 'from-a')], ctx);
    expect(fake.txt('ZPUB', '_acme-challenge.both.dns01.test')).toEqual(['"from-b"']);
    await b.cleanupAll!([ch('cert-wild', '*.both.dns01.test', 'from-b')], ctx);
    expect(fake.txt('ZPUB', '_acme-challenge.both.dns01.test')).toBeUndefined();
  });

  it('gives up waiting for INSYNC at the bound, naming the change', async () => {
    const slow = await startFakeRoute53({
      zones: [{ id: 'ZS', name: 'slow.test' }],
      insyncAfterGetChanges: 1_000_000,
      insyncAfterMs: 600_000,
    });
    const c = sdkClient(slow.url);
    try {
      const s = create(cfg({ propagationTimeoutSeconds: 1 }), {
        logger: silentLogger,
        selfCheck,
        client: c,
        timing: { pollMs: 50, maxPollMs: 200, retry: fastRetry },
      });
      const chs = [ch('c-slow', 'slow.test', 'v')];
      await s.presentAll!(chs, ctx);
      const err = await s.check!(chs, ctx).catch((e) => e);
      expect(err).toBeInstanceOf(CertkeeperError);
      expect(err.code).toBe('CK_ERR_DNS_PROPAGATION');
      expect(err.message).toMatch(/still PENDING after 1s/);
      const polls = slow.count('GetChange');
      expect(polls).toBeGreaterThan(1);
      expect(polls).toBeLessThan(25);
      await s.cleanupAll!(chs, ctx);
      expect(slow.txt('ZS', '_acme-challenge.slow.test')).toBeUndefined();
    } finally {
      c.destroy();
      await slow.close();
    }
  });
  it("stops the INSYNC wait at the order's deadline (the CA's authorization expiry) and says so", async () => {
    const slow = await startFakeRoute53({
      zones: [{ id: 'ZD', name: 'deadline.test' }],
      insyncAfterGetChanges: 1_000_000,
      insyncAfterMs: 600_000,
    });
    const c = sdkClient(slow.url);
    try {
      // 300 s configured, but the authorization runs out in half a second
      const s = create(cfg({ propagationTimeoutSeconds: 300 }), {
        logger: silentLogger,
        selfCheck,
        client: c,
        timing: { pollMs: 50, maxPollMs: 200, retry: fastRetry },
      });
      const chs = [ch('c-deadline', 'deadline.test', 'v')];
      await s.presentAll!(chs, ctx);
      const deadline = {
        at: Date.now() + 500,
        reason: "the CA's authorization expires at 2030-01-01T00:00:00.000Z",
      };
      const err = await s.check!(chs, { ...ctx, deadline }).catch((e) => e);
      expect(err).toBeInstanceOf(CertkeeperError);
      expect(err.code).toBe('CK_ERR_DNS_PROPAGATION');
      expect(err.message).toMatch(
        /still PENDING: the INSYNC wait stopped at the order's deadline: the CA's authorization expires at 2030-01-01T00:00:00\.000Z$/,
      );
      expect(err.hint).toMatch(/authorization runs out/);
      expect(slow.count('GetChange')).toBeLessThan(25);
      await s.cleanupAll!(chs, ctx);
    } finally {
      c.destroy();
      await slow.close();
    }
  });
});

describe('AWS errors', () => {
  it('retries throttled responses (own retry layer)', async () => {
    const since = fake.calls.length;
    fake.throttleNext(3);
    const s = solver();
    await s.presentAll!([ch('c-thr', 't.dns01.test', 'v-t')], ctx);
    expect(fake.txt('ZPUB', '_acme-challenge.t.dns01.test')).toEqual(['"v-t"']);
    expect(fake.calls.slice(since).filter((c) => c.status === 400)).toHaveLength(3);
    await s.cleanupAll!([ch('c-thr', 't.dns01.test', 'v-t')], ctx);
  });

  it('retries PriorRequestNotComplete through the SDK retry strategy too', async () => {
    const c = sdkClient(fake.url, 3);
    try {
      const since = fake.calls.length;
      fake.throttleNext(1, 'PriorRequestNotComplete');
      const s = create(cfg(), {
        logger: silentLogger,
        selfCheck,
        client: c,
        timing: { retry: { attempts: 1, baseMs: 1, maxMs: 1 } },
      });
      await s.presentAll!([ch('c-prnc', 'prnc.dns01.test', 'v')], ctx);
      expect(fake.calls.slice(since).filter((x) => x.status === 400)).toHaveLength(1);
      expect(fake.txt('ZPUB', '_acme-challenge.prnc.dns01.test')).toEqual(['"v"']);
      await s.cleanupAll!([ch('c-prnc', 'prnc.dns01.test', 'v')], ctx);
    } finally {
      c.destroy();
    }
  });

  it('stops retrying at the bound and says what to do', async () => {
    fake.throttleNext(1000);
    const since = fake.calls.length;
    const err = await solver({ hostedZoneId: 'ZPUB' }).presentAll!(
      [ch('c-thr2', 't2.dns01.test', 'v')],
      ctx,
    ).catch((e) => e);
    expect(fake.calls.length - since).toBe(fastRetry.attempts);
    expect(err.code).toBe('CK_ERR_AWS_THROTTLED');
    expect(err.kind).toBe('aws');
    expect(err.permanent).toBe(false);
    expect(err.hint).toMatch(/5 requests per second/);
  });

  it('names the missing IAM action and zone on AccessDenied, without retrying', async () => {
    fake.deny('ChangeResourceRecordSets', 'ZPUB');
    const since = fake.calls.length;
    const err = await solver().presentAll!([ch('c-deny', 'd.dns01.test', 'v')], ctx).catch((e) => e);
    expect(err).toBeInstanceOf(CertkeeperError);
    expect(err.kind).toBe('aws');
    expect(err.code).toBe('CK_ERR_AWS_ACCESS_DENIED');
    expect(err.cert).toBe('c-deny');
    expect(err.domain).toBe('d.dns01.test');
    expect(err.message).toContain('route53:ChangeResourceRecordSets on hostedzone/ZPUB');
    expect(err.hint).toContain('arn:aws:route53:::hostedzone/ZPUB');
    expect(err.permanent).toBe(true);
    expect(fake.count('ChangeResourceRecordSets', since)).toBe(1);
    expect(JSON.stringify(err.toJSON())).not.toContain('fake-secret');
  });

  it('explains an unknown hostedZoneId', async () => {
    const err = await solver({ hostedZoneId: 'ZNOPE' }).presentAll!(
      [ch('c-nz', 'n.dns01.test', 'v')],
      ctx,
    ).catch((e) => e);
    expect(err.code).toBe('CK_ERR_AWS_NO_SUCH_ZONE');
    expect(err.hint).toContain('hostedZoneId');
  });
});

describe('preflight', () => {
  it('finds each zone and lists it, changing nothing', async () => {
    const since = fake.calls.length;
    const res = await preflight(cfg(), {
      logger: silentLogger,
      certName: 'pf',
      domains: ['dns01.test', '*.dns01.test', 'a.sub.dns01.test'],
      client,
    });
    expect(
      res.map(({ ok, domain, zoneId, zoneName, private: p }) => ({
        ok,
        domain,
        zoneId,
        zoneName,
        private: p,
      })),
    ).toEqual([
      { ok: true, domain: 'dns01.test', zoneId: 'ZPUB', zoneName: 'dns01.test', private: false },
      { ok: true, domain: 'a.sub.dns01.test', zoneId: 'ZSUB', zoneName: 'sub.dns01.test', private: false },
    ]);
    expect(res[0]!.what).toBe('pf: Route53 zone dns01.test (ZPUB) holds dns01.test and can be listed');
    expect(fake.count('ChangeResourceRecordSets', since)).toBe(0);
  });

  it('rejects an explicit zone that does not hold the domain', async () => {
    const [check] = await preflight(cfg({ hostedZoneId: 'ZOTHER' }), {
      logger: silentLogger,
      cert: 'pf',
      domains: ['x.dns01.test'],
      client,
    });
    expect(check!.ok).toBe(false);
    expect(check!.error?.kind).toBe('config');
    expect(check!.error?.field).toBe('challenge.hostedZoneId');
    expect(check!.what).toContain('other.test, which does not hold x.dns01.test');
    expect(check!.fix).toContain('hostedZoneId');
  });

  it('reports a zone that cannot be listed, and a domain without a zone, one check each', async () => {
    fake.deny('ListResourceRecordSets');
    const res = await preflight(cfg(), {
      logger: silentLogger,
      cert: 'pf',
      domains: ['dns01.test', 'nowhere.example'],
      client,
    });
    expect(res.map((c) => c.ok)).toEqual([false, false]);
    expect(res[0]!.error?.code).toBe('CK_ERR_AWS_ACCESS_DENIED');
    expect(res[0]!.what).toContain('route53:ListResourceRecordSets on hostedzone/ZPUB');
    expect(res[0]!.fix).toContain('arn:aws:route53:::hostedzone/ZPUB');
    expect(res[1]!.error?.code).toBe('CK_ERR_DNS_ZONE_NOT_FOUND');
  });
});

describe('schema', () => {
  const base = { type: 'dns-01', provider: 'route53' };
  it('accepts the documented forms and applies defaults', () => {
    const c = route53ChallengeSchema.parse({
      ...base,
      hostedZoneId: '/hostedzone/Z0123ABC',
      roleArn: 'arn:aws:iam::123456789012:role/certkeeper-dns',
      region: 'cn-north-1',
      nameservers: ['ns-1.awsdns-01.org', '127.0.0.1:8053', '[::1]:5353'],
    });
    expect(c).toMatchObject({ privateZone: false, checkAuthoritative: true, propagationTimeoutSeconds: 300 });
  });
  it.each([
    [{ nameservers: ['bad host'] }, 'host:port'],
    [{ nameservers: ['a:b:c'] }, 'host:port'],
    [{ hostedZoneId: 'example.com' }, 'hosted zone ID'],
    [{ roleArn: 'certkeeper-dns' }, 'role ARN'],
    [{ region: 'US East' }, 'AWS region'],
  ])('rejects %j with a message saying what is expected', (over, words) => {
    const res = route53ChallengeSchema.safeParse({ ...base, ...over });
    expect(res.success).toBe(false);
    expect(res.error?.issues[0]?.message).toContain(words);
  });
});
