/**
 * `certkeeper renew` with `cluster:` as a process, against a real PostgreSQL, Pebble and nginx: the first node
 * orders and stores in PostgreSQL; a second node's `renew` orders nothing — the certificate is already there — and
 * its own certbot folder now holds it.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promises as fs, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { accountDir } from '../../src/acme/account.js';
import { certInfo } from '../../src/crypto/pem.js';
import { type NginxHandle, type PebbleHandle, startNginx, startPebble } from '../harness/index.js';
import { type PostgresHandle, startPostgres } from '../harness/postgres.js';

const MAIN = join(import.meta.dirname, '..', '..', 'src', 'cli', 'main.ts');
const KEY = randomBytes(32).toString('base64');
let pgh: PostgresHandle;
let pebble: PebbleHandle;
let nginx: NginxHandle;
let work: string;

function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], {
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LOG_FORMAT: 'json', CK_CLUSTER_KEY: KEY },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 90_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

async function configFor(node: string): Promise<string> {
  const file = join(work, `${node}.json`);
  await fs.writeFile(
    file,
    JSON.stringify({
      acme: { directoryUrl: pebble.directoryUrl, caBundle: pebble.caBundlePath },
      storage: { path: `./${node}` },
      selfCheck: { httpPort: nginx.httpPort, resolvers: [pebble.dnsServer] },
      cluster: { postgres: { url: pgh.url }, node, keyEnv: 'CK_CLUSTER_KEY' },
      certificates: [
        { name: 'web', domains: ['web.cluster-cli.test'], challenge: { type: 'http-01', webroot: './www' } },
      ],
    }),
  );
  return file;
}

const orders = () =>
  [...readFileSync(join(pebble.dir, 'pebble.log'), 'utf8').matchAll(/Added order /g)].length;

beforeAll(async () => {
  work = await fs.mkdtemp(join(tmpdir(), 'ck-cluster-cli-'));
  await fs.mkdir(join(work, 'www'));
  pgh = await startPostgres();
  nginx = await startNginx({ webroot: join(work, 'www') });
  pebble = await startPebble({ httpPort: nginx.httpPort });
}, 120_000);

afterAll(async () => {
  await pebble?.stop();
  await nginx?.stop();
  await pgh?.stop();
  await fs.rm(work, { recursive: true, force: true });
});

describe('certkeeper renew and revoke with cluster:', { timeout: 180_000 }, () => {
  it('orders once, into PostgreSQL; another node finds it there and materialises it; a revocation anywhere is replaced once', async () => {
    const a = await cli(['renew', '-c', await configFor('node-a')]);
    expect(a.code, a.stderr).toBe(0);
    expect(a.stdout).toMatch(/issued/);
    expect(orders()).toBe(1);
    const c = new pg.Client({ connectionString: pgh.url });
    await c.connect();
    const rows = (
      await c.query(
        'SELECT version::int, serial, placeholder, stored_by FROM certificate_versions WHERE name = $1 ORDER BY version',
        ['web'],
      )
    ).rows;
    const head = (await c.query('SELECT version::int FROM certificates WHERE name = $1', ['web'])).rows;
    const accounts = (await c.query('SELECT directory_url, account_url, key_sealed FROM acme_accounts')).rows;
    await c.end();
    // The bootstrap placeholder (nothing was live anywhere) goes through the database too, so every node's nginx
    // can start; the certificate from the CA is the next version.
    expect(rows).toEqual([
      { version: 1, serial: expect.any(String), placeholder: true, stored_by: 'node-a' },
      { version: 2, serial: expect.any(String), placeholder: false, stored_by: 'node-a' },
    ]);
    expect(head).toEqual([{ version: 2 }]);
    const issued = rows[1].serial as string;
    const servedByA = certInfo(await fs.readFile(join(work, 'node-a', 'live', 'web', 'cert.pem'), 'utf8'));
    expect(servedByA.serial).toBe(issued);

    // The account node-a registered is the cluster's (its key sealed like the certificates' keys).
    const accountOf = async (node: string) =>
      JSON.parse(
        await fs.readFile(join(accountDir(join(work, node), pebble.directoryUrl), 'account.json'), 'utf8'),
      ).url as string;
    expect(accounts).toEqual([
      {
        directory_url: pebble.directoryUrl,
        account_url: await accountOf('node-a'),
        key_sealed: expect.any(Buffer),
      },
    ]);
    expect(accounts[0].key_sealed.toString('latin1')).not.toContain('PRIVATE KEY');

    const b = await cli(['renew', '-c', await configFor('node-b')]);
    expect(b.code, b.stderr).toBe(0);
    expect(b.stdout).toMatch(/not due/);
    expect(orders()).toBe(1);
    const onB = certInfo(await fs.readFile(join(work, 'node-b', 'live', 'web', 'cert.pem'), 'utf8'));
    expect(onB.serial).toBe(issued);
    expect(await accountOf('node-b')).toBe(await accountOf('node-a'));

    // Revoked on node-b: the mark is in PostgreSQL, so node-a's next renew replaces it (once).
    const rv = await cli(['revoke', 'web', '-c', await configFor('node-b')]);
    expect(rv.code, rv.stderr).toBe(0);
    const st = new pg.Client({ connectionString: pgh.url });
    await st.connect();
    const mark = (await st.query('SELECT state FROM certificate_state WHERE name = $1', ['web'])).rows[0]
      ?.state;
    expect(mark?.revokedSerial).toBe(issued);
    const a2 = await cli(['renew', '-c', await configFor('node-a')]);
    expect(a2.code, a2.stderr).toBe(0);
    expect(a2.stdout).toMatch(/renewed/);
    expect(orders()).toBe(2);
    const heads = (await st.query('SELECT version::int FROM certificates WHERE name = $1', ['web'])).rows;
    await st.end();
    expect(heads).toEqual([{ version: 3 }]);
    const renewed = certInfo(await fs.readFile(join(work, 'node-a', 'live', 'web', 'cert.pem'), 'utf8'));
    expect(renewed.serial).not.toBe(issued);
    expect(`${a.stderr}${b.stderr}`).not.toContain('PRIVATE KEY');
    expect(`${a.stderr}${b.stderr}`).not.toContain(KEY);
  });
});
