import type { AddressInfo } from 'node:net';
import { createSecureContext, createServer, type Server } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../test/harness/ports.js';
import { certInfo } from '../crypto/pem.js';
import { createSelfSigned } from '../crypto/selfsigned.js';
import { CertkeeperError } from '../errors.js';
import { silentLogger } from '../log.js';
import {
  parseAddress,
  probeServedCertificate,
  sameSerial,
  sniFor,
  verifyServedCertificate,
} from './tls-probe.js';

let server: Server;
let port: number;
let apex: { serial: string };
let wild: { serial: string };
let fallback: { serial: string };
const snisSeen: string[] = [];

beforeAll(async () => {
  const a = await createSelfSigned({
    commonName: 'a.certkeeper.test',
    altNames: ['a.certkeeper.test'],
    days: 1,
  });
  const w = await createSelfSigned({
    commonName: '*.w.certkeeper.test',
    altNames: ['*.w.certkeeper.test', 'w.certkeeper.test'],
    days: 1,
  });
  const f = await createSelfSigned({ commonName: 'default', altNames: ['default.certkeeper.test'], days: 1 });
  apex = certInfo(a.certPem);
  wild = certInfo(w.certPem);
  fallback = certInfo(f.certPem);
  const ctx = {
    a: createSecureContext({ cert: a.certPem, key: a.keyPem }),
    w: createSecureContext({ cert: w.certPem, key: w.keyPem }),
  };
  // Like nginx: pick the certificate by SNI, serve the default one for anything else.
  server = createServer({
    cert: f.certPem,
    key: f.keyPem,
    SNICallback: (name, cb) => {
      snisSeen.push(name);
      cb(
        null,
        name === 'a.certkeeper.test'
          ? ctx.a
          : name.endsWith('.w.certkeeper.test') || name === 'w.certkeeper.test'
            ? ctx.w
            : undefined,
      );
    },
  });
  server.on('secureConnection', (s) => s.end());
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
});

afterAll(async () => {
  await new Promise((r) => server.close(r));
});

describe('tls probe', () => {
  it('reads the served serial for an SNI', async () => {
    const got = await probeServedCertificate({ host: '127.0.0.1', port }, 'a.certkeeper.test');
    expect(sameSerial(got.serial, apex.serial)).toBe(true);
    const other = await probeServedCertificate({ host: '127.0.0.1', port }, 'nothing.certkeeper.test');
    expect(sameSerial(other.serial, fallback.serial)).toBe(true);
  });

  it('checks an IP-address certificate on a connection without SNI (the default certificate answers)', async () => {
    snisSeen.length = 0;
    const r = await verifyServedCertificate({
      cert: { name: 'ip', domains: ['127.0.0.1', '::1'], serial: fallback.serial },
      target: { host: '127.0.0.1', port },
      timeoutMs: 2000,
      settleMs: 0,
      logger: silentLogger,
    });
    expect(Object.keys(r.served).sort()).toEqual(['127.0.0.1', '::1']);
    // no handshake carried an SNI at all: an IP literal is not a valid server name (RFC 6066 §3)
    expect(snisSeen).toEqual([]);
  });

  it('verifies every domain, a wildcard through a concrete label', async () => {
    snisSeen.length = 0;
    const r = await verifyServedCertificate({
      cert: { name: 'w', domains: ['*.w.certkeeper.test', 'w.certkeeper.test'], serial: wild.serial },
      target: { host: '127.0.0.1', port },
      timeoutMs: 2000,
      settleMs: 0,
      logger: silentLogger,
    });
    expect(r.attempts).toBe(1);
    expect(snisSeen.sort()).toEqual(['certkeeper-verify.w.certkeeper.test', 'w.certkeeper.test']);
  });

  it('keeps checking every name until the new serial has been served without a miss for the settle period', async () => {
    // Like an nginx reload: new and old workers both accept for a moment, so answers alternate before they settle.
    const fresh = await createSelfSigned({ commonName: 's', altNames: ['s.certkeeper.test'], days: 1 });
    const old = await createSelfSigned({ commonName: 's', altNames: ['s.certkeeper.test'], days: 1 });
    const answers = ['new', 'old', 'new', 'new', 'old', 'new'];
    const ctxOf = (c: { certPem: string; keyPem: string }) =>
      createSecureContext({ cert: c.certPem, key: c.keyPem });
    const contexts = { new: ctxOf(fresh), old: ctxOf(old) };
    let handshakes = 0;
    const flip = createServer({
      cert: old.certPem,
      key: old.keyPem,
      SNICallback: (_name, cb) => {
        const which = answers[handshakes++] ?? 'new';
        cb(null, contexts[which === 'new' ? 'new' : 'old']);
      },
    });
    flip.on('secureConnection', (s) => s.end());
    await new Promise<void>((r) => flip.listen(0, '127.0.0.1', r));
    try {
      const r = await verifyServedCertificate({
        cert: {
          name: 's',
          domains: ['s.certkeeper.test', 't.certkeeper.test'],
          serial: certInfo(fresh.certPem).serial,
        },
        target: { host: '127.0.0.1', port: (flip.address() as AddressInfo).port },
        timeoutMs: 3000,
        intervalMs: 50,
        settleMs: 300,
        logger: silentLogger,
      });
      // Round 1 misses t, round 2 is clean, round 3 misses s again (which resets the settle period): the clean run
      // starts at round 4 and must then last 300 ms.
      expect(r.attempts).toBeGreaterThanOrEqual(5);
      expect(r.stableMs).toBeGreaterThanOrEqual(300);
      expect(handshakes).toBe(2 * r.attempts);
    } finally {
      await new Promise((r) => flip.close(r));
    }
  });

  it('reports "renewed but not deployed" with the served and the expected serial, after bounded retries', async () => {
    const err = await verifyServedCertificate({
      cert: { name: 'a', domains: ['a.certkeeper.test'], serial: wild.serial },
      target: { host: '127.0.0.1', port },
      timeoutMs: 600,
      intervalMs: 100,
      logger: silentLogger,
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CertkeeperError);
    const e = err as CertkeeperError;
    expect(e.kind).toBe('verify');
    expect(e.code).toBe('CK_ERR_NOT_DEPLOYED');
    expect(e.message).toContain('renewed but not deployed');
    expect(e.message).toContain(`serves serial ${apex.serial}`);
    expect(e.message).toContain(`expected ${wild.serial}`);
    expect(e.domain).toBe('a.certkeeper.test');
    expect(e.hint).toMatch(/live\/a\/fullchain\.pem/);
  });

  it('says when nothing listens at verify.address', async () => {
    const closed = await freePort();
    const err = (await verifyServedCertificate({
      cert: { name: 'a', domains: ['a.certkeeper.test'], serial: apex.serial },
      target: { host: '127.0.0.1', port: closed },
      timeoutMs: 300,
      intervalMs: 100,
      logger: silentLogger,
    }).catch((e: unknown) => e)) as CertkeeperError;
    expect(err.kind).toBe('verify');
    expect(err.message).toContain(`127.0.0.1:${closed}`);
    expect(err.message).toContain('connection refused');
    expect(err.hint).toContain('verify.address');
  });
});

describe('addresses', () => {
  it('parses host:port, names and bracketed IPv6', () => {
    expect(parseAddress('127.0.0.1:443')).toEqual({ host: '127.0.0.1', port: 443 });
    expect(parseAddress('nginx:8443')).toEqual({ host: 'nginx', port: 8443 });
    expect(parseAddress('[::1]:443')).toEqual({ host: '::1', port: 443 });
    expect(() => parseAddress('nginx')).toThrow(/host:port/);
    expect(() => parseAddress('x:70000')).toThrow(CertkeeperError);
  });
  it('maps wildcards to a concrete SNI', () => {
    expect(sniFor('*.example.test')).toBe('certkeeper-verify.example.test');
    expect(sniFor('a.example.test')).toBe('a.example.test');
  });
});
