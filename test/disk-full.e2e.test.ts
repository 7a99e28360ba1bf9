/**
 * A full disk, for real: storage on a small tmpfs (mounting needs root; CI runs as root). Nothing is ordered that
 * could not be stored; a certificate the CA issued while the disk filled up is stored later without a new order;
 * no temp files or partial versions are left; the failure is recorded with its fix.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, promises as fs, openSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AcmeRequestEvent, acmeEvents } from '../src/acme/events.js';
import { parseConfig } from '../src/config/load.js';
import { renew } from '../src/pipeline/renew.js';
import { CertStore } from '../src/store/store.js';
import { type NginxHandle, type PebbleHandle, startNginx, startPebble } from './harness/index.js';

let pebble: PebbleHandle;
let nginx: NginxHandle;
let work: string;
let mnt: string;
let mounted = false;
const orders: string[] = [];
const onRequest = (e: AcmeRequestEvent) => {
  if (e.endpoint === 'newOrder') orders.push(e.endpoint);
};

beforeAll(async () => {
  work = await fs.mkdtemp(join(tmpdir(), 'ck-diskfull-'));
  mnt = join(work, 'storage');
  await fs.mkdir(mnt);
  // Needs root (CAP_SYS_ADMIN). Where mounting is not allowed this fails with the reason, it is never skipped.
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=2m,mode=0755', 'tmpfs', mnt]);
  mounted = true;
  await fs.mkdir(join(work, 'www'));
  nginx = await startNginx({ webroot: join(work, 'www') });
  pebble = await startPebble({ httpPort: nginx.httpPort });
  acmeEvents.on('request', onRequest);
});

afterAll(async () => {
  acmeEvents.off('request', onRequest);
  await pebble?.stop();
  await nginx?.stop();
  if (mounted) execFileSync('umount', [mnt]);
  await fs.rm(work, { recursive: true, force: true });
});

function config() {
  return parseConfig({
    acme: { directoryUrl: pebble.directoryUrl, caBundle: pebble.caBundlePath, email: 'ops@certkeeper.test' },
    storage: { path: mnt },
    selfCheck: { httpPort: nginx.httpPort, resolvers: [pebble.dnsServer], timeoutSeconds: 3 },
    certificates: [
      {
        name: 'full',
        domains: ['full.certkeeper.test'],
        challenge: { type: 'http-01', webroot: join(work, 'www') },
      },
    ],
  });
}

/** Fills the tmpfs until `leaveBytes` are free (0: until ENOSPC). */
async function fill(file: string, leaveBytes: number): Promise<void> {
  const st = await fs.statfs(mnt);
  const free = Number(st.bavail) * Number(st.bsize);
  const fh = await fs.open(file, 'a');
  try {
    if (leaveBytes > 0) {
      await fh.write(Buffer.alloc(Math.max(0, free - leaveBytes)));
      return;
    }
    const chunk = Buffer.alloc(4096);
    for (;;) await fh.write(chunk);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
  } finally {
    await fh.close();
  }
}

/** Fills the tmpfs to the last byte, synchronously (inside the pipeline's event, before the order goes on). */
function fillSync(file: string): void {
  const fd = openSync(file, 'a');
  const chunk = Buffer.alloc(4096);
  try {
    for (;;) writeSync(fd, chunk);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
  } finally {
    closeSync(fd);
  }
  // and the last partial block
  try {
    writeFileSync(`${file}-tail`, Buffer.alloc(1));
  } catch {
    // full
  }
}

async function leftovers(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await fs.readdir(dir, { recursive: true }))
    if (/\.tmp-/.test(String(e))) out.push(String(e));
  return out;
}

describe('storage on a full disk', () => {
  it('too little free space: nothing is ordered, the failure is recorded with its fix, no temp files', async () => {
    const filler = join(mnt, 'filler');
    await fill(filler, 600 * 1024);
    try {
      const before = orders.length;
      const report = await renew(config());
      expect(report.results[0]).toMatchObject({ status: 'failed', error: { code: 'CK_ERR_DISK_FULL' } });
      expect(orders.length).toBe(before);
      const state = await new CertStore(mnt).readState('full');
      expect(state?.lastAttempt).toMatchObject({
        result: 'failure',
        code: 'CK_ERR_DISK_FULL',
        hint: expect.stringMatching(/free space/),
      });
      expect(await leftovers(mnt)).toEqual([]);
    } finally {
      await fs.rm(filler, { force: true });
    }
  });

  it('the disk fills up during the order: the issued certificate is kept and stored later without a new order', async () => {
    const filler = join(mnt, 'filler');
    const store = new CertStore(mnt);
    // the ACME account exists already (a dry run registers it), as on any renewal after the first
    await renew(config(), { dryRun: true });
    const before = orders.length;
    const report = await renew(config(), {
      store,
      onEvent: (e) => {
        if (e.type === 'obtaining') fillSync(filler);
      },
    });
    expect(report.results[0]?.status).toBe('failed');
    expect(report.results[0]?.error).toMatchObject({ kind: 'store' });
    expect(String(report.results[0]?.error?.hint)).toMatch(
      /free space.*stored at the next attempt without a new order/,
    );
    expect(orders.length).toBe(before + 1);
    expect(await leftovers(mnt)).toEqual([]);
    // no partial version in the archive: only the placeholder's (version 0) files, each one complete
    const archive = (await fs.readdir(join(mnt, 'archive', 'full'))).sort();
    expect(archive.filter((f) => !/0\.pem$|^\.v0$/.test(f))).toEqual([]);

    await fs.rm(filler, { force: true });
    await fs.rm(`${filler}-tail`, { force: true });
    const again = await renew(config(), { store });
    expect(again.results[0]).toMatchObject({ status: 'issued', version: 1 });
    expect(orders.length).toBe(before + 1);
    const live = await store.current('full');
    expect(live?.placeholder).toBe(false);
    expect(live?.domains).toEqual(['full.certkeeper.test']);
  });
});
