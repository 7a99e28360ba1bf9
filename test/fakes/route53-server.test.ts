import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  ChangeResourceRecordSetsCommand,
  GetChangeCommand,
  GetHostedZoneCommand,
  ListHostedZonesByNameCommand,
  ListResourceRecordSetsCommand,
  Route53Client,
} from '@aws-sdk/client-route-53';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FakeRoute53, startFakeRoute53 } from './route53-server.js';

// The fake is only useful if the real SDK parses what it sends: every test goes through Route53Client.
let fake: FakeRoute53;
let client: Route53Client;
let cts: Server;
const published: Array<{ path: string; body: { host: string; value?: string } }> = [];

beforeAll(async () => {
  // A stand-in for challtestsrv's management API that records what the fake publishes.
  cts = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => {
      body += c;
    });
    req.on('end', () => {
      published.push({ path: req.url ?? '', body: JSON.parse(body) });
      res.end();
    });
  });
  await new Promise<void>((r) => cts.listen(0, '127.0.0.1', r));
  fake = await startFakeRoute53({
    zones: [
      { id: 'ZA', name: 'a.test' },
      { id: 'ZB', name: 'b.test', nameServers: ['ns1.b.test', 'ns2.b.test'] },
      { id: 'ZBPRIV', name: 'b.test', private: true },
      { id: 'ZC', name: 'c.test' },
    ],
    challtestsrv: `http://127.0.0.1:${(cts.address() as AddressInfo).port}`,
    insyncAfterGetChanges: 1,
    insyncAfterMs: 60_000,
  });
  client = new Route53Client({
    region: 'us-east-1',
    endpoint: fake.url,
    maxAttempts: 1,
    credentials: { accessKeyId: 'AKIDFAKE', secretAccessKey: 'fake' },
  });
});
afterAll(async () => {
  client?.destroy();
  await fake?.close();
  await new Promise((r) => cts?.close(r));
});

describe('fake Route53 through the real SDK', () => {
  it('lists zones by reversed name with pagination markers', async () => {
    const first = await client.send(new ListHostedZonesByNameCommand({ DNSName: 'b.test', MaxItems: 2 }));
    expect(first.HostedZones?.map((z) => [z.Id, z.Name, z.Config?.PrivateZone])).toEqual([
      ['/hostedzone/ZB', 'b.test.', false],
      ['/hostedzone/ZBPRIV', 'b.test.', true],
    ]);
    expect(first.IsTruncated).toBe(true);
    expect(first.NextDNSName).toBe('c.test.');
    const next = await client.send(
      new ListHostedZonesByNameCommand({
        DNSName: first.NextDNSName,
        HostedZoneId: first.NextHostedZoneId,
        MaxItems: 2,
      }),
    );
    expect(next.HostedZones?.map((z) => z.Id)).toEqual(['/hostedzone/ZC']);
    expect(next.IsTruncated).toBe(false);
  });

  it('returns the delegation set of public zones and VPCs of private ones', async () => {
    const pub = await client.send(new GetHostedZoneCommand({ Id: 'ZB' }));
    expect(pub.HostedZone?.Name).toBe('b.test.');
    expect(pub.DelegationSet?.NameServers).toEqual(['ns1.b.test', 'ns2.b.test']);
    const priv = await client.send(new GetHostedZoneCommand({ Id: '/hostedzone/ZBPRIV' }));
    expect(priv.DelegationSet).toBeUndefined();
    expect(priv.VPCs?.[0]?.VPCId).toBe('vpc-0fake');
    await expect(client.send(new GetHostedZoneCommand({ Id: 'ZNONE' }))).rejects.toMatchObject({
      name: 'NoSuchHostedZone',
      $metadata: { httpStatusCode: 404 },
    });
  });

  it('applies a batch atomically, goes PENDING → INSYNC, and publishes every value of a name', async () => {
    const name = '_acme-challenge.a.test.';
    const res = await client.send(
      new ChangeResourceRecordSetsCommand({
        HostedZoneId: 'ZA',
        ChangeBatch: {
          Comment: 'two values',
          Changes: [
            {
              Action: 'UPSERT',
              ResourceRecordSet: {
                Name: name,
                Type: 'TXT',
                TTL: 60,
                ResourceRecords: [{ Value: '"v1"' }, { Value: '"v2"' }],
              },
            },
          ],
        },
      }),
    );
    expect(res.ChangeInfo?.Status).toBe('PENDING');
    expect(res.ChangeInfo?.Id).toMatch(/^\/change\/C[0-9A-F]+$/);
    expect(res.ChangeInfo?.SubmittedAt).toBeInstanceOf(Date);
    const list = await client.send(
      new ListResourceRecordSetsCommand({
        HostedZoneId: 'ZA',
        StartRecordName: name,
        StartRecordType: 'TXT',
        MaxItems: 1,
      }),
    );
    expect(list.ResourceRecordSets?.[0]).toMatchObject({
      Name: name,
      Type: 'TXT',
      TTL: 60,
      ResourceRecords: [{ Value: '"v1"' }, { Value: '"v2"' }],
    });

    // A DELETE whose values do not match fails the whole batch, including the valid CREATE beside it.
    await expect(
      client.send(
        new ChangeResourceRecordSetsCommand({
          HostedZoneId: 'ZA',
          ChangeBatch: {
            Changes: [
              {
                Action: 'CREATE',
                ResourceRecordSet: {
                  Name: '_acme-challenge.x.a.test.',
                  Type: 'TXT',
                  TTL: 60,
                  ResourceRecords: [{ Value: '"x"' }],
                },
              },
              {
                Action: 'DELETE',
                ResourceRecordSet: { Name: name, Type: 'TXT', TTL: 60, ResourceRecords: [{ Value: '"v1"' }] },
              },
            ],
          },
        }),
      ),
    ).rejects.toMatchObject({ name: 'InvalidChangeBatch', $metadata: { httpStatusCode: 400 } });
    expect(fake.txt('ZA', '_acme-challenge.x.a.test')).toBeUndefined();

    const id = res.ChangeInfo!.Id!;
    expect((await client.send(new GetChangeCommand({ Id: id }))).ChangeInfo?.Status).toBe('PENDING');
    expect((await client.send(new GetChangeCommand({ Id: id }))).ChangeInfo?.Status).toBe('INSYNC');
    await fake.idle();
    expect(published).toEqual([
      { path: '/clear-txt', body: { host: name } },
      { path: '/set-txt', body: { host: name, value: 'v1' } },
      { path: '/set-txt', body: { host: name, value: 'v2' } },
    ]);
  });

  it('rejects two changes for one name in a batch and names outside the zone', async () => {
    const rrs = (n: string, v: string) => ({
      Name: n,
      Type: 'TXT' as const,
      TTL: 60,
      ResourceRecords: [{ Value: `"${v}"` }],
    });
    await expect(
      client.send(
        new ChangeResourceRecordSetsCommand({
          HostedZoneId: 'ZC',
          ChangeBatch: {
            Changes: [
              { Action: 'UPSERT', ResourceRecordSet: rrs('_acme-challenge.c.test.', 'a') },
              { Action: 'UPSERT', ResourceRecordSet: rrs('_acme-challenge.c.test.', 'b') },
            ],
          },
        }),
      ),
    ).rejects.toMatchObject({ name: 'InvalidChangeBatch' });
    await expect(
      client.send(
        new ChangeResourceRecordSetsCommand({
          HostedZoneId: 'ZC',
          ChangeBatch: {
            Changes: [{ Action: 'UPSERT', ResourceRecordSet: rrs('_acme-challenge.a.test.', 'a') }],
          },
        }),
      ),
    ).rejects.toThrow(/not permitted in zone c\.test\./);
  });

  it('throttles and denies with the error shapes the SDK classifies', async () => {
    fake.throttleNext(1);
    const thr = await client.send(new ListHostedZonesByNameCommand({})).catch((e) => e);
    expect(thr).toMatchObject({ name: 'Throttling', $metadata: { httpStatusCode: 400 } });
    expect(thr.$fault).toBe('client');
    fake.deny('GetHostedZone', 'ZA');
    const denied = await client.send(new GetHostedZoneCommand({ Id: 'ZA' })).catch((e) => e);
    expect(denied).toMatchObject({ name: 'AccessDenied', $metadata: { httpStatusCode: 403 } });
    expect(denied.message).toContain('route53:GetHostedZone on resource: arn:aws:route53:::hostedzone/ZA');
    await expect(client.send(new GetHostedZoneCommand({ Id: 'ZB' }))).resolves.toBeDefined();
    fake.allowAll();
    expect(fake.calls.at(-1)).toMatchObject({ action: 'GetHostedZone', zoneId: 'ZB', status: 200 });
  });
});
