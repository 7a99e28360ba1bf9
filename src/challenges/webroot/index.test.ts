import { promises as fs } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../log.js';
import type { ChallengeInput } from '../types.js';
import { create } from './index.js';

let dir: string;
let webroot: string;
let chdir: string;
let secret: string;
const ctx = { logger: silentLogger };

beforeEach(async () => {
  dir = await fs.mkdtemp(join(tmpdir(), 'ck-webroot-'));
  webroot = join(dir, 'www');
  chdir = join(webroot, '.well-known', 'acme-challenge');
  await fs.mkdir(webroot);
  // a root-only file elsewhere on the machine, the target of planted links
  secret = join(dir, 'secret.key');
  await fs.writeFile(secret, 'root only\n', { mode: 0o600 });
});
afterEach(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

const solver = (selfCheck = false, port = 80, timeoutSeconds = 5) =>
  create(
    { type: 'http-01', webroot, selfCheck },
    {
      logger: silentLogger,
      selfCheck: { enabled: selfCheck, httpPort: port, resolvers: undefined, timeoutSeconds },
    },
  );
const ch = (
  token = 'LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0',
  domain = 'a.certkeeper.test',
): ChallengeInput => ({
  certName: 'c',
  domain,
  wildcard: false,
  type: 'http-01',
  token,
  keyAuthorization: `${token}.thumb`,
  dnsRecordName: `_acme-challenge.${domain}`,
  dnsValue: 'x',
});
const secretIntact = async () => {
  expect(await fs.readFile(secret, 'utf8')).toBe('root only\n');
  expect((await fs.stat(secret)).mode & 0o777).toBe(0o600);
};

describe('webroot solver', () => {
  it('writes the token file 0644 in 0755 folders whatever the umask, and removes it', async () => {
    const old = process.umask(0);
    try {
      await solver().present(ch(), ctx);
    } finally {
      process.umask(old);
    }
    const file = join(chdir, ch().token);
    expect(await fs.readFile(file, 'utf8')).toBe(ch().keyAuthorization);
    expect((await fs.stat(file)).mode & 0o777).toBe(0o644);
    expect((await fs.stat(chdir)).mode & 0o777).toBe(0o755);
    expect((await fs.stat(join(webroot, '.well-known'))).mode & 0o777).toBe(0o755);
    await solver().cleanup(ch(), ctx);
    expect(await fs.readdir(chdir)).toEqual([]);
  });

  it('never follows a link planted at the token path', async () => {
    await fs.mkdir(chdir, { recursive: true });
    const file = join(chdir, ch().token);
    await fs.symlink(secret, file);
    await solver().present(ch(), ctx);
    await secretIntact();
    expect((await fs.lstat(file)).isFile()).toBe(true);
    await fs.rm(file);
    await fs.symlink(secret, file);
    await solver().cleanup(ch(), ctx);
    await secretIntact();
  });

  it('survives a link swapped in while presenting, over and over (symlink race)', async () => {
    await fs.mkdir(chdir, { recursive: true });
    const file = join(chdir, ch().token);
    let stop = false;
    const attacker = (async () => {
      while (!stop) {
        await fs.rm(file, { force: true }).catch(() => {});
        await fs.symlink(secret, file).catch(() => {});
        await new Promise((r) => setImmediate(r));
      }
    })();
    const s = solver();
    for (let i = 0; i < 100; i++) {
      await s.present(ch(), ctx).catch(() => {}); // losing the race is allowed; writing through the link is not
      await s.cleanup(ch(), ctx).catch(() => {});
    }
    stop = true;
    await attacker;
    await secretIntact();
  });

  it('refuses a challenge folder that is a link out of the webroot, and removes nothing through it', async () => {
    const elsewhere = join(dir, 'elsewhere');
    await fs.mkdir(elsewhere);
    await fs.mkdir(join(webroot, '.well-known'));
    await fs.symlink(elsewhere, chdir);
    await expect(solver().present(ch(), ctx)).rejects.toMatchObject({ kind: 'challenge' });
    expect(await fs.readdir(elsewhere)).toEqual([]);
    await fs.writeFile(join(elsewhere, ch().token), 'not ours');
    await solver().cleanup(ch(), ctx);
    expect(await fs.readdir(elsewhere)).toEqual([ch().token]);
  });

  it('refuses a token that is not RFC 8555 base64url', async () => {
    await expect(solver().present(ch('../../../secret.key'), ctx)).rejects.toMatchObject({
      code: 'CK_ERR_ACME_BAD_TOKEN',
    });
    await expect(solver().cleanup(ch('../../../secret.key'), ctx)).rejects.toMatchObject({
      code: 'CK_ERR_ACME_BAD_TOKEN',
    });
    await secretIntact();
  });

  describe('self-check', () => {
    let slow: Server;
    const sockets: Socket[] = [];
    beforeEach(async () => {
      // accepts and never answers: a self-check that would wait for its whole timeout
      slow = createServer((s) => sockets.push(s));
      await new Promise<void>((r) => slow.listen(0, '127.0.0.1', r));
    });
    afterEach(async () => {
      for (const s of sockets.splice(0)) s.destroy();
      await new Promise((r) => slow.close(r));
    });

    it('stops at once when the order is aborted (shutdown), with the abort reason', async () => {
      const port = (slow.address() as { port: number }).port;
      const s = solver(true, port, 120);
      const ac = new AbortController();
      const reason = new Error('shutting down');
      const checking = s.check!([ch(undefined, '127.0.0.1')], { logger: silentLogger, signal: ac.signal });
      // the probe is connected and waiting
      for (let i = 0; i < 200 && sockets.length === 0; i++) await new Promise((r) => setTimeout(r, 25));
      expect(sockets.length).toBeGreaterThan(0);
      ac.abort(reason);
      await expect(checking).rejects.toBe(reason);
    });
  });
});
