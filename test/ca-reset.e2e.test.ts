/**
 * A CA that lost its state (Pebble restarted: every account and order forgotten). The next run must register a new
 * account (the old key kept aside) and retry the order once, instead of failing every run with a promise of a new
 * registration that never comes.
 */
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config/load.js';
import { renew } from '../src/renew.js';
import {
  type NginxHandle,
  type PebbleHandle,
  startNginx,
  startPebble,
  verifyChain,
} from './harness/index.js';

let pebble: PebbleHandle;
let nginx: NginxHandle;
let work: string;

beforeAll(async () => {
  work = await fs.mkdtemp(join(tmpdir(), 'ck-ca-reset-'));
  await fs.mkdir(join(work, 'www'));
  await fs.chmod(work, 0o755);
  nginx = await startNginx({ webroot: join(work, 'www'), workerUser: 'nobody nogroup' });
  pebble = await startPebble({ httpPort: nginx.httpPort });
});
afterAll(async () => {
  await pebble?.stop();
  await nginx?.stop();
  await fs.rm(work, { recursive: true, force: true });
});

describe('CA reset', () => {
  it('registers again after accountDoesNotExist and renews in the same run', async () => {
    const config = parseConfig({
      acme: { directoryUrl: pebble.directoryUrl, caBundle: pebble.caBundlePath },
      storage: { path: join(work, 'le') },
      selfCheck: { httpPort: nginx.httpPort, resolvers: [pebble.dnsServer], timeoutSeconds: 3 },
      certificates: [
        {
          name: 'reset',
          domains: ['reset.certkeeper.test'],
          challenge: { type: 'http-01', webroot: join(work, 'www') },
        },
      ],
    });
    const first = await renew(config);
    expect(first.results[0]?.error).toBeUndefined();
    const accountDir = join(
      work,
      'le',
      'accounts',
      new URL(pebble.directoryUrl).host.replace(':', '_'),
      'certkeeper',
    );
    const oldKey = await fs.readFile(join(accountDir, 'account.key'), 'utf8');

    await pebble.restart();
    const second = await renew(config, { force: true });
    expect(second.results[0]?.error).toBeUndefined();
    expect(second.results[0]?.status).toBe('renewed');
    const fullchain = await fs.readFile(join(work, 'le', 'live', 'reset', 'fullchain.pem'), 'utf8');
    expect(verifyChain(fullchain, await pebble.rootPem())).toBe(true);

    const files = await fs.readdir(accountDir);
    const aside = files.filter((f) => f.startsWith('account.key.lost-'));
    expect(aside).toHaveLength(1);
    expect(await fs.readFile(join(accountDir, aside[0]!), 'utf8')).toBe(oldKey);
    expect(await fs.readFile(join(accountDir, 'account.key'), 'utf8')).not.toBe(oldKey);
    // and the run after that uses the new account without registering again
    const third = await renew(config, { force: true });
    expect(third.results[0]?.status).toBe('renewed');
    expect((await fs.readdir(accountDir)).filter((f) => f.startsWith('account.key.lost-'))).toHaveLength(1);
  });
});
