import { X509Certificate } from 'node:crypto';
import { Resolver } from 'node:dns/promises';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSelfSigned, createTestCA, issueLeaf } from '../../src/crypto/selfsigned.js';
import { requireBinaries } from './env.js';
import { simpleRequest } from './http.js';
import { type NginxHandle, startNginx } from './nginx.js';
import { type PebbleHandle, startPebble } from './pebble.js';
import { freePort, isListening } from './ports.js';
import { fetchServedCertificate, verifyChain } from './tls.js';

describe('harness: Pebble + challtestsrv + nginx on loopback', () => {
  let pebble: PebbleHandle | undefined;
  let nginx: NginxHandle | undefined;
  let work: string;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'ck-harness-test-'));
    await mkdir(join(work, 'webroot', '.well-known', 'acme-challenge'), { recursive: true });
    pebble = await startPebble();
    nginx = await startNginx({ webroot: join(work, 'webroot'), httpPort: pebble.httpPort });
  });

  afterAll(async () => {
    await nginx?.stop();
    await pebble?.stop();
    await rm(work, { recursive: true, force: true });
  });

  it('nginx serves the webroot on the port Pebble validates HTTP-01 against', async () => {
    const p = pebble as PebbleHandle;
    await writeFile(join(work, 'webroot', '.well-known', 'acme-challenge', 'tok123'), 'tok123.thumb');
    const res = await simpleRequest(`http://127.0.0.1:${p.httpPort}/.well-known/acme-challenge/tok123`);
    expect(res.status).toBe(200);
    expect(res.body).toBe('tok123.thumb');
    expect(
      (await simpleRequest(`http://127.0.0.1:${p.httpPort}/.well-known/acme-challenge/absent`)).status,
    ).toBe(404);
    expect((await simpleRequest(`http://127.0.0.1:${p.httpPort}/elsewhere`)).status).toBe(404);
  });

  it('Pebble serves its directory over HTTPS trusted by caBundlePath, and only by it', async () => {
    const p = pebble as PebbleHandle;
    const ca = await readFile(p.caBundlePath, 'utf8');
    const res = await simpleRequest(p.directoryUrl, { ca });
    expect(res.status).toBe(200);
    const dir = JSON.parse(res.body) as Record<string, unknown>;
    expect(dir.newOrder).toMatch(/^https:\/\/127\.0\.0\.1:\d+\//);
    expect(dir.newNonce).toBeTypeOf('string');
    await expect(simpleRequest(p.directoryUrl)).rejects.toThrow(/certificate/i);
  });

  it('exposes the root and intermediate over the management API', async () => {
    const p = pebble as PebbleHandle;
    const root = new X509Certificate(await p.rootPem());
    const inter = new X509Certificate(await p.intermediatePem());
    expect(root.ca).toBe(true);
    expect(inter.checkIssued(root)).toBe(true);
    expect(verifyChain(await p.intermediatePem(), await p.rootPem())).toBe(true);
  });

  it('challtestsrv answers A 127.0.0.1 for any name and TXT set/cleared through its API', async () => {
    const p = pebble as PebbleHandle;
    const resolver = new Resolver({ timeout: 1000, tries: 2 });
    resolver.setServers([p.dnsServer]);
    expect(await resolver.resolve4('anything.example.test')).toEqual(['127.0.0.1']);
    await p.setTxt('_acme-challenge.example.test', 'value-1');
    expect(await resolver.resolveTxt('_acme-challenge.example.test')).toEqual([['value-1']]);
    await p.clearTxt('_acme-challenge.example.test');
    const after = await resolver.resolveTxt('_acme-challenge.example.test').catch(() => []);
    expect(after).toEqual([]);
  });

  it('stop() closes every port', async () => {
    const p = pebble as PebbleHandle;
    const n = nginx as NginxHandle;
    const ports = [
      Number(new URL(p.directoryUrl).port),
      Number(new URL(p.managementUrl).port),
      Number(new URL(p.challtestsrvUrl).port),
      n.httpPort,
    ];
    for (const port of ports) expect(await isListening(port)).toBe(true);
    await n.stop();
    await p.stop();
    for (const port of ports) expect(await isListening(port)).toBe(false);
  });
});

describe('harness: nginx TLS by SNI, reload, served serial', () => {
  let nginx: NginxHandle | undefined;
  let work: string;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'ck-harness-tls-'));
  });
  afterAll(async () => {
    await nginx?.stop();
    await rm(work, { recursive: true, force: true });
  });

  it('serves each certificate by SNI and the new one after reload', async () => {
    const a = await createSelfSigned({ commonName: 'a.test', altNames: ['a.test'], days: 1 });
    const b = await createSelfSigned({ commonName: 'b.test', altNames: ['b.test'], days: 1 });
    for (const [n, c] of [
      ['a', a],
      ['b', b],
    ] as const) {
      await writeFile(join(work, `${n}.pem`), c.certPem);
      await writeFile(join(work, `${n}.key`), c.keyPem, { mode: 0o600 });
    }
    nginx = await startNginx({
      webroot: work,
      tlsServers: [
        { serverName: 'a.test', certPath: join(work, 'a.pem'), keyPath: join(work, 'a.key') },
        { serverName: 'b.test', certPath: join(work, 'b.pem'), keyPath: join(work, 'b.key') },
      ],
    });
    const port = nginx.httpsPort as number;
    const serialOf = (pem: string) => new X509Certificate(pem).serialNumber.toUpperCase();
    expect((await fetchServedCertificate({ host: '127.0.0.1', port, servername: 'a.test' })).serial).toBe(
      serialOf(a.certPem),
    );
    expect((await fetchServedCertificate({ host: '127.0.0.1', port, servername: 'b.test' })).serial).toBe(
      serialOf(b.certPem),
    );

    // Replace a.test's files (as a deploy would) — still the old one until reload.
    const ca = await createTestCA({ commonName: 'harness test CA' });
    const a2 = await issueLeaf(ca, { altNames: ['a.test'], days: 1 });
    await writeFile(join(work, 'a.pem'), a2.certPem);
    await writeFile(join(work, 'a.key'), a2.keyPem, { mode: 0o600 });
    expect((await fetchServedCertificate({ host: '127.0.0.1', port, servername: 'a.test' })).serial).toBe(
      serialOf(a.certPem),
    );
    await nginx.reload();
    const served = await fetchServedCertificate({
      host: '127.0.0.1',
      port,
      servername: 'a.test',
      ca: ca.certPem,
    });
    expect(served.serial).toBe(serialOf(a2.certPem));
    expect(verifyChain(served.pem, ca.certPem)).toBe(true);
    expect(verifyChain(served.pem, b.certPem)).toBe(false);
  });

  it('reload() reports a configuration nginx refuses', async () => {
    const n = nginx as NginxHandle;
    await writeFile(join(work, 'a.key'), 'not a key');
    await expect(n.reload()).rejects.toThrow(/refused/);
    // The old configuration keeps serving.
    expect(await isListening(n.httpsPort as number)).toBe(true);
  });
});

describe('harness: env', () => {
  it('names the apt package of a missing binary', async () => {
    expect(() => requireBinaries('/usr/bin/pebble', '/nonexistent/lego')).toThrow(/apt-get install -y lego/);
    expect(() => requireBinaries('/usr/bin/pebble')).not.toThrow();
    expect(await freePort()).toBeGreaterThan(0);
  });
});
