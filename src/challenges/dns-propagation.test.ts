import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CHALLTESTSRV_BIN,
  freePorts,
  isListening,
  type ManagedProcess,
  pollUntil,
  requireBinaries,
  spawnChalltestsrv,
} from '../../test/harness/index.js';
import { CertkeeperError } from '../errors.js';
import { silentLogger } from '../log.js';
import { parseHostPort, queryTxt, resolveNameServers, waitForTxtRecords } from './dns-propagation.js';

// challtestsrv alone (no Pebble): a real DNS server on loopback whose TXT data we set over HTTP.
let cts: ManagedProcess;
let dir: string;
let dnsServer: string;
let mgmt: string;

async function post(path: string, body: unknown) {
  const res = await fetch(`${mgmt}${path}`, {
    method: 'POST',
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(5000),
  });
  expect(res.status).toBe(200);
}

beforeAll(async () => {
  requireBinaries(CHALLTESTSRV_BIN);
  dir = await mkdtemp(join(tmpdir(), 'ck-prop-'));
  const [dnsPort, mgmtPort] = (await freePorts(2)) as [number, number];
  cts = spawnChalltestsrv({ dnsPort, mgmtPort, dir });
  const up = await pollUntil(() => isListening(mgmtPort), {
    attempts: 100,
    abort: () => cts.exitCode() !== undefined,
  });
  if (!up) throw new Error(`challtestsrv did not start:\n${cts.tail()}`);
  dnsServer = `127.0.0.1:${dnsPort}`;
  mgmt = `http://127.0.0.1:${mgmtPort}`;
});
afterAll(async () => {
  await cts?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('parseHostPort', () => {
  it('understands host, host:port and IPv6 forms', () => {
    expect(parseHostPort('ns-1.awsdns-01.org')).toEqual({ host: 'ns-1.awsdns-01.org', port: 53 });
    expect(parseHostPort('127.0.0.1:8053')).toEqual({ host: '127.0.0.1', port: 8053 });
    expect(parseHostPort('[::1]:5353')).toEqual({ host: '::1', port: 5353 });
    expect(parseHostPort('::1')).toEqual({ host: '::1', port: 53 });
  });

  it('resolves nameserver host names through the injected resolver, keeps IPs as they are', async () => {
    const seen: string[] = [];
    const servers = await resolveNameServers(['ns1.dns01.test', '127.0.0.2:5300'], async (h) => {
      seen.push(h);
      return ['127.0.0.9'];
    });
    expect(seen).toEqual(['ns1.dns01.test']);
    expect(servers).toEqual([
      { host: '127.0.0.9', port: 53, label: 'ns1.dns01.test' },
      { host: '127.0.0.2', port: 5300, label: '127.0.0.2:5300' },
    ]);
  });
});

describe('waitForTxtRecords against a real DNS server', () => {
  it('sees every value at a name (apex + wildcard share one name)', async () => {
    await post('/set-txt', { host: '_acme-challenge.p1.dns01.test.', value: 'apex' });
    await post('/set-txt', { host: '_acme-challenge.p1.dns01.test.', value: 'wild' });
    const server = (await resolveNameServers([dnsServer]))[0]!;
    expect(await queryTxt(server, '_acme-challenge.p1.dns01.test')).toEqual({ values: ['apex', 'wild'] });
    await waitForTxtRecords([{ name: '_acme-challenge.p1.dns01.test', values: ['apex', 'wild'] }], {
      nameservers: [dnsServer],
      timeoutMs: 2000,
      intervalMs: 20,
      logger: silentLogger,
    });
  });

  it('waits until a value appears', async () => {
    const later = setTimeout(
      () => void post('/set-txt', { host: '_acme-challenge.p2.dns01.test.', value: 'late' }),
      150,
    );
    try {
      await waitForTxtRecords([{ name: '_acme-challenge.p2.dns01.test', values: ['late'] }], {
        nameservers: [dnsServer],
        timeoutMs: 5000,
        intervalMs: 20,
        maxIntervalMs: 50,
        logger: silentLogger,
      });
    } finally {
      clearTimeout(later);
    }
  });

  it('gives up at the bound naming the record, the server and what it answered', async () => {
    await post('/set-txt', { host: '_acme-challenge.p3.dns01.test.', value: 'other' });
    const err = await waitForTxtRecords(
      [{ name: '_acme-challenge.p3.dns01.test', values: ['mine'], domain: 'p3.dns01.test' }],
      {
        nameservers: [dnsServer],
        timeoutMs: 300,
        intervalMs: 50,
        logger: silentLogger,
        cert: 'c3',
      },
    ).catch((e) => e);
    expect(err).toBeInstanceOf(CertkeeperError);
    expect(err.code).toBe('CK_ERR_DNS_PROPAGATION');
    expect(err.domain).toBe('p3.dns01.test');
    expect(err.cert).toBe('c3');
    expect(err.message).toContain(`_acme-challenge.p3.dns01.test not visible on nameserver ${dnsServer}`);
    expect(err.message).toContain('values [other]');
  });
});
