/**
 * Soak: the daemon keeps 90-second certificates alive for several minutes. Debian's Pebble 2.4 issues them
 * (certificateValidityPeriod: 90) and rejects a share of good nonces (PEBBLE_WFE_NONCEREJECT); in the middle, the CA
 * goes away (a local proxy in front of Pebble cuts every connection) exactly when the certificate becomes due.
 * Sampled every second: the certificate on disk never expires, and /readyz (over real HTTP) answers 200 whenever
 * the certificate is fresh — more than half of its lifetime left, so with lifetime-relative windows it is nowhere
 * near its danger window — and the renewal that failed in the outage succeeds after it.
 *
 * Nothing here asserts how long anything took: the bounds are in counts of samples and renewals.
 */
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config/load.js';
import { certInfo } from '../src/crypto/pem.js';
import { createDaemon, type Daemon } from '../src/daemon/daemon.js';
import { silentLogger } from '../src/log.js';
import { CertStore } from '../src/store/store.js';
import { type ProfileProxy, startProfileProxy } from './fakes/acme-profile-proxy.js';
import {
  type NginxHandle,
  type PebbleHandle,
  simpleRequest,
  startNginx,
  startPebble,
} from './harness/index.js';

const LIFETIME_S = 90;
const SOAK_SAMPLES = 240; // one a second: four minutes, about five renewals
const OUTAGE_SAMPLES = 12;

let pebble: PebbleHandle;
let nginx: NginxHandle;
let proxy: ProfileProxy;
let daemon: Daemon | undefined;
let work: string;

beforeAll(async () => {
  work = await fs.mkdtemp(join(tmpdir(), 'ck-soak-'));
  const webroot = join(work, 'www');
  await fs.mkdir(webroot);
  nginx = await startNginx({ webroot });
  pebble = await startPebble({
    httpPort: nginx.httpPort,
    nonceReject: 15,
    certificateValidityPeriod: LIFETIME_S,
  });
  proxy = await startProfileProxy({ pebble });
});

afterAll(async () => {
  await daemon?.stop({ graceMs: 5000 });
  await proxy?.stop();
  await pebble?.stop();
  await nginx?.stop();
  await fs.rm(work, { recursive: true, force: true });
});

interface Sample {
  at: number;
  serial?: string;
  notBefore?: number;
  notAfter?: number;
  ready: number;
  caDown: boolean;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('soak: 90-second certificates kept alive by the daemon', () => {
  it(
    'never expired, ready while fresh, renewed through nonce rejections and a CA outage',
    async () => {
      const storage = join(work, 'le');
      const config = parseConfig(
        {
          acme: { directoryUrl: proxy.directoryUrl, caBundle: pebble.caBundlePath, orderTimeoutSeconds: 20 },
          storage: { path: storage },
          selfCheck: { httpPort: nginx.httpPort, resolvers: [pebble.dnsServer], timeoutSeconds: 3 },
          server: { listen: '127.0.0.1:0' },
          certificates: [
            {
              name: 'short',
              domains: ['short.certkeeper.test'],
              challenge: { type: 'http-01', webroot: join(work, 'www') },
            },
          ],
        },
        { env: {} },
      );
      daemon = createDaemon(config, { logger: silentLogger, processMetrics: false });
      await daemon.start();
      const { port } = await daemon.listen();
      await daemon.queue.idle();
      const store = new CertStore(storage);
      const certPath = join(storage, 'live', 'short', 'cert.pem');

      const samples: Sample[] = [];
      let outageLeft = 0;
      let outageDone = false;
      let failuresSeen = 0;
      for (let i = 0; i < SOAK_SAMPLES; i++) {
        const at = Date.now();
        const info = await fs
          .readFile(certPath, 'utf8')
          .then(certInfo)
          .catch(() => undefined);
        const ready = (await simpleRequest(`http://127.0.0.1:${port}/readyz`, { timeoutMs: 2000 })).status;
        const state = await store.readState('short');
        if (state?.lastAttempt?.result === 'failure') failuresSeen++;
        samples.push({
          at,
          serial: info?.serial,
          notBefore: info?.notBefore.getTime(),
          notAfter: info?.notAfter.getTime(),
          ready,
          caDown: outageLeft > 0,
        });
        // The outage starts a second before the second certificate becomes due (half its lifetime left), so the
        // renewal attempt meets a CA that is not there.
        if (
          !outageDone &&
          outageLeft === 0 &&
          info &&
          samples.some((s) => s.serial && s.serial !== info.serial)
        ) {
          const dueAt = info.notAfter.getTime() - (info.notAfter.getTime() - info.notBefore.getTime()) / 2;
          if (dueAt - at <= 1000) {
            proxy.down();
            outageLeft = OUTAGE_SAMPLES;
          }
        } else if (outageLeft > 0 && --outageLeft === 0) {
          proxy.up();
          outageDone = true;
        }
        await sleep(Math.max(0, 1000 - (Date.now() - at)));
      }

      // the certificate on disk never expired, at any sample
      const withCert = samples.filter((s) => s.notAfter !== undefined);
      expect(withCert).toHaveLength(samples.length);
      const expired = samples.filter((s) => s.notAfter! <= s.at);
      expect(expired).toEqual([]);

      // /readyz said 200 whenever the certificate had more than half its lifetime left (and had been live a second)
      const fresh = samples.filter(
        (s, i) =>
          i > 0 &&
          samples[i - 1]!.serial === s.serial &&
          s.notAfter! - s.at > (s.notAfter! - s.notBefore!) / 2,
      );
      expect(fresh.length).toBeGreaterThan(SOAK_SAMPLES / 3);
      expect(fresh.filter((s) => s.ready !== 200)).toEqual([]);

      // renewed again and again (90-second certificates for four minutes), through the outage
      const serials = new Set(samples.map((s) => s.serial));
      expect(serials.size).toBeGreaterThanOrEqual(4);
      expect(outageDone).toBe(true);
      // the attempt in the outage failed (the state said so), and a later one succeeded
      expect(failuresSeen).toBeGreaterThan(0);
      const afterOutage = samples.slice(samples.findLastIndex((s) => s.caDown) + 1);
      expect(new Set(afterOutage.map((s) => s.serial)).size).toBeGreaterThanOrEqual(2);
      expect((await store.readState('short'))?.lastAttempt?.result).toBe('success');
    },
    (SOAK_SAMPLES + 120) * 1000,
  );
});
