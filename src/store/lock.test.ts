import { spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FileLocker, processStartedAt } from './lock.js';

let dir: string;
beforeEach(async () => {
  dir = await fs.mkdtemp(join(tmpdir(), 'ck-lock-'));
});
afterEach(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

const file = (name: string) => join(dir, `${name}.lock.json`);
const waitFor = async (cond: () => boolean) => {
  for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
  return cond();
};

describe('FileLocker', () => {
  it('is exclusive, names its holder, and frees on release', async () => {
    const a = new FileLocker(dir);
    const l = await a.tryLock('x');
    expect(l).toBeDefined();
    expect(await a.tryLock('x')).toBeUndefined();
    expect(await a.holder('x')).toMatchObject({ host: hostname(), pid: process.pid });
    await expect(a.lock('x', { waitMs: 100 })).rejects.toMatchObject({
      code: 'CK_ERR_LOCKED',
      message: expect.stringContaining(`pid ${process.pid}`),
      hint: expect.stringContaining(`kill ${process.pid}`),
    });
    await l!.release();
    expect(await a.holder('x')).toBeUndefined();
    const again = await a.tryLock('x');
    expect(again).toBeDefined();
    await again!.release();
  });

  it('takes over at once from a holder on this host that no longer runs, or whose pid was reused', async () => {
    const dead = spawnSync(process.execPath, ['-e', '0']).pid!;
    await fs.writeFile(file('dead'), JSON.stringify({ host: hostname(), pid: dead, token: 'old' }));
    const locker = new FileLocker(dir);
    expect(await locker.tryLock('dead')).toBeDefined();
    // our own pid, but another process start time: a pid reused after a restart
    await fs.writeFile(
      file('reused'),
      JSON.stringify({ host: hostname(), pid: process.pid, startedAt: 'another-boot:1', token: 'old' }),
    );
    expect(await locker.tryLock('reused')).toBeDefined();
    // the live holder with its real start time is respected
    await fs.writeFile(
      file('alive'),
      JSON.stringify({
        host: hostname(),
        pid: process.pid,
        startedAt: processStartedAt(process.pid),
        token: 'x',
      }),
    );
    expect(await locker.tryLock('alive')).toBeUndefined();
  });

  it('a holder on another host keeps its lock while its heartbeat is fresh, and loses it when stale', async () => {
    const locker = new FileLocker(dir, { staleMs: 60_000 });
    await fs.writeFile(file('remote'), JSON.stringify({ host: 'other-host', pid: 1, token: 'r' }));
    expect(await locker.tryLock('remote')).toBeUndefined();
    const old = new Date(Date.now() - 120_000);
    await fs.utimes(file('remote'), old, old);
    expect(await locker.tryLock('remote')).toBeDefined();
  });

  it('aborts `lost` when the lock file is removed or taken by someone else (compromised)', async () => {
    const locker = new FileLocker(dir, { refreshMs: 20 });
    const l1 = (await locker.tryLock('gone'))!;
    await fs.rm(file('gone'));
    expect(await waitFor(() => l1.lost.aborted)).toBe(true);
    expect(l1.lost.reason).toMatchObject({ code: 'CK_ERR_LOCK_LOST' });
    await l1.release();

    const l2 = (await locker.tryLock('stolen'))!;
    await fs.writeFile(file('stolen'), JSON.stringify({ host: 'elsewhere', pid: 7, token: 'thief' }));
    expect(await waitFor(() => l2.lost.aborted)).toBe(true);
    // releasing a lost lock leaves the new holder's file alone
    await l2.release();
    expect(JSON.parse(await fs.readFile(file('stolen'), 'utf8'))).toMatchObject({ token: 'thief' });
  });

  it('lock() waits for the holder to let go', async () => {
    const locker = new FileLocker(dir, { pollMs: 20 });
    const l = (await locker.tryLock('w'))!;
    setTimeout(() => void l.release(), 100);
    const got = await locker.lock('w', { waitMs: 5000 });
    expect(got.lost.aborted).toBe(false);
    await got.release();
  });
});
