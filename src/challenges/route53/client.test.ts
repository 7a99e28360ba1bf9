/**
 * The production client path: buildRoute53Client() with no injected endpoint or credentials. The SDK finds
 * the endpoints in AWS_ENDPOINT_URL_ROUTE_53 / AWS_ENDPOINT_URL_STS and the base credentials in the env
 * (default chain); roleArn makes it call sts:AssumeRole at a tiny local STS. This file sets process.env
 * for its own worker (vitest runs each file in its own fork) and restores it.
 */

import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ListHostedZonesByNameCommand } from '@aws-sdk/client-route-53';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FakeRoute53, startFakeRoute53 } from '../../../test/fakes/route53-server.js';
import type { CertkeeperError } from '../../errors.js';
import { silentLogger } from '../../log.js';
import { awsCall, toAwsError } from './aws-call.js';
import { buildRoute53Client } from './client.js';

const ROLE_OK = 'arn:aws:iam::123456789012:role/certkeeper-dns';
const ROLE_DENIED = 'arn:aws:iam::123456789012:role/not-allowed';

let fake: FakeRoute53;
let sts: Server;
const assumeCalls: URLSearchParams[] = [];
const saved: Record<string, string | undefined> = {};

function stsXml(params: URLSearchParams): { status: number; body: string } {
  const ns = 'https://sts.amazonaws.com/doc/2011-06-15/';
  if (params.get('RoleArn') === ROLE_DENIED) {
    return {
      status: 403,
      body: `<ErrorResponse xmlns="${ns}"><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>User: arn:aws:iam::123456789012:user/base is not authorized to perform: sts:AssumeRole on resource: ${ROLE_DENIED}</Message></Error><RequestId>r1</RequestId></ErrorResponse>`,
    };
  }
  const exp = new Date(Date.now() + 3600_000).toISOString();
  return {
    status: 200,
    body: `<AssumeRoleResponse xmlns="${ns}"><AssumeRoleResult><Credentials><AccessKeyId>ASIAASSUMEDFAKE</AccessKeyId><SecretAccessKey>assumed-fake-secret</SecretAccessKey><SessionToken>assumed-fake-token</SessionToken><Expiration>${exp}</Expiration></Credentials><AssumedRoleUser><AssumedRoleId>AROAFAKE:${params.get('RoleSessionName')}</AssumedRoleId><Arn>arn:aws:sts::123456789012:assumed-role/certkeeper-dns/${params.get('RoleSessionName')}</Arn></AssumedRoleUser></AssumeRoleResult><ResponseMetadata><RequestId>r2</RequestId></ResponseMetadata></AssumeRoleResponse>`,
  };
}

beforeAll(async () => {
  fake = await startFakeRoute53({ zones: [{ id: 'ZROLE', name: 'role.test' }] });
  sts = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => {
      body += c;
    });
    req.on('end', () => {
      const params = new URLSearchParams(body);
      assumeCalls.push(params);
      const out = stsXml(params);
      res.writeHead(out.status, { 'content-type': 'text/xml' });
      res.end(out.body);
    });
  });
  await new Promise<void>((r) => sts.listen(0, '127.0.0.1', r));
  const env: Record<string, string | undefined> = {
    AWS_ENDPOINT_URL_ROUTE_53: fake.url,
    AWS_ENDPOINT_URL_STS: `http://127.0.0.1:${(sts.address() as AddressInfo).port}`,
    AWS_ACCESS_KEY_ID: 'AKIDBASEFAKE',
    AWS_SECRET_ACCESS_KEY: 'base-fake-secret',
    AWS_SESSION_TOKEN: undefined,
    AWS_PROFILE: undefined,
    AWS_REGION: undefined,
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_CONFIG_FILE: '/nonexistent/aws-config',
    AWS_SHARED_CREDENTIALS_FILE: '/nonexistent/aws-credentials',
  };
  for (const [k, v] of Object.entries(env)) {
    saved[k] = process.env[k];
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
});
afterAll(async () => {
  for (const [k, v] of Object.entries(saved)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  await fake?.close();
  await new Promise((r) => sts?.close(r));
});

describe('buildRoute53Client', () => {
  it('uses the default chain and AWS_ENDPOINT_URL_ROUTE_53, region us-east-1 by default', async () => {
    const client = buildRoute53Client();
    try {
      expect(await client.config.region()).toBe('us-east-1');
      await client.send(new ListHostedZonesByNameCommand({}));
      expect(fake.calls.at(-1)).toMatchObject({
        action: 'ListHostedZonesByName',
        accessKeyId: 'AKIDBASEFAKE',
        sessionToken: false,
      });
    } finally {
      client.destroy();
    }
  });

  it('retries Throttling and PriorRequestNotComplete on its own (SDK adaptive retry)', async () => {
    const client = buildRoute53Client();
    try {
      const since = fake.calls.length;
      fake.throttleNext(1, 'PriorRequestNotComplete');
      const res = await client.send(new ListHostedZonesByNameCommand({ DNSName: 'role.test' }));
      expect(res.HostedZones?.[0]?.Id).toBe('/hostedzone/ZROLE');
      expect(fake.calls.slice(since).map((c) => c.status)).toEqual([400, 200]);
    } finally {
      client.destroy();
    }
  });

  it('assumes roleArn through STS and signs Route53 calls with the temporary credentials', async () => {
    const client = buildRoute53Client({ roleArn: ROLE_OK, sessionName: 'certkeeper' });
    try {
      await client.send(new ListHostedZonesByNameCommand({}));
      await client.send(new ListHostedZonesByNameCommand({}));
      expect(fake.calls.at(-1)).toMatchObject({ accessKeyId: 'ASIAASSUMEDFAKE', sessionToken: true });
      const assumed = assumeCalls.filter((p) => p.get('RoleArn') === ROLE_OK);
      // Cached: one AssumeRole for both calls.
      expect(assumed).toHaveLength(1);
      expect(assumed[0]!.get('Action')).toBe('AssumeRole');
      expect(assumed[0]!.get('RoleSessionName')).toBe('certkeeper');
    } finally {
      client.destroy();
    }
  });

  it('says sts:AssumeRole is missing when the role cannot be assumed, without any secret', async () => {
    const client = buildRoute53Client({ roleArn: ROLE_DENIED });
    try {
      const err = await awsCall(client, new ListHostedZonesByNameCommand({}), {
        action: 'ListHostedZonesByName',
        resource: '*',
        cert: 'c',
        logger: silentLogger,
      }).then(
        () => undefined,
        (e: CertkeeperError) => e,
      );
      expect(err?.code).toBe('CK_ERR_AWS_ACCESS_DENIED');
      expect(err?.message).toContain('sts:AssumeRole');
      expect(err?.hint).toContain('roleArn');
      const shown = JSON.stringify(err?.toJSON()) + err?.describe();
      for (const secret of ['base-fake-secret', 'assumed-fake-secret', 'assumed-fake-token'])
        expect(shown).not.toContain(secret);
    } finally {
      client.destroy();
    }
  });

  it('maps missing credentials to a hint about the default chain', () => {
    const e = toAwsError(
      Object.assign(new Error('Could not load credentials from any providers'), {
        name: 'CredentialsProviderError',
      }),
      {
        action: 'ChangeResourceRecordSets',
        resource: 'hostedzone/Z1',
        logger: silentLogger,
      },
    );
    expect(e.code).toBe('CK_ERR_AWS_CREDENTIALS');
    expect(e.hint).toContain('AWS_PROFILE');
  });
});
