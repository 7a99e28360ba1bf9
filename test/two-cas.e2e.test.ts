/**
 * Two configurations with two CAs (each Pebble has its own HTTPS root) renewed at the same time in one process:
 * acme-client's HTTP settings are process-wide, so one configuration's CA bundle must not replace the other's.
 */
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config/load.js';
import { renew } from '../src/pipeline/renew.js';
import {
  type NginxHandle,
  type PebbleHandle,
  startNginx,
  startPebble,
  verifyChain,
} from './harness/index.js';

let work: string;
let nginx: NginxHandle;
let pebbles: PebbleHandle[] = [];

beforeAll(async () => {
  work = await fs.mkdtemp(join(tmpdir(), 'ck-two-cas-'));
  await fs.mkdir(join(work, 'www'));
  nginx = await startNginx({ webroot: join(work, 'www') });
  pebbles = await Promise.all([
    startPebble({ httpPort: nginx.httpPort }),
    startPebble({ httpPort: nginx.httpPort }),
  ]);
});

afterAll(async () => {
  await Promise.all(pebbles.map((p) => p.stop()));
  await nginx?.stop();
  await fs.rm(work, { recursive: true, force: true });
});

describe('two CAs in one process', () => {
  it('renews both at once, each trusting only its own bundle', async () => {
    const configs = pebbles.map((p, i) =>
      parseConfig({
        acme: { directoryUrl: p.directoryUrl, caBundle: p.caBundlePath, email: 'ops@certkeeper.test' },
        storage: { path: join(work, `le-${i}`) },
        selfCheck: { httpPort: nginx.httpPort, resolvers: [p.dnsServer], timeoutSeconds: 3 },
        certificates: ['a', 'b', 'c'].map((n) => ({
          name: `${n}${i}`,
          domains: [`${n}${i}.two-cas.certkeeper.test`],
          challenge: { type: 'http-01' as const, webroot: join(work, 'www') },
        })),
      }),
    );
    for (let round = 0; round < 2; round++) {
      const reports = await Promise.all(configs.map((c) => renew(c, { force: true })));
      for (const r of reports) {
        expect(r.results.map((x) => x.error?.message)).toEqual([undefined, undefined, undefined]);
        expect(r.ok).toBe(true);
      }
    }
    for (const [i, p] of pebbles.entries()) {
      const fullchain = await fs.readFile(join(work, `le-${i}`, 'live', `a${i}`, 'fullchain.pem'), 'utf8');
      expect(verifyChain(fullchain, await p.rootPem())).toBe(true);
    }
  });
});
