/**
 * A cluster on loopback for the multi-node tests and the bench: one real PostgreSQL, one Pebble, and N nodes —
 * each a separate process (fixtures/node.ts) with its own storage folder and its own nginx serving every
 * certificate by SNI. Pebble validates HTTP-01 against the LAST node's nginx only, so any certificate ordered by
 * another node proves the token travelled through PostgreSQL.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { createSelfSigned } from '../../src/crypto/selfsigned.js';
import { CertStore } from '../../src/store/store.js';
import { type NginxHandle, startNginx } from '../harness/nginx.js';
import { type PebbleHandle, startPebble } from '../harness/pebble.js';
import { freePort } from '../harness/ports.js';
import { type PostgresHandle, startPostgres } from '../harness/postgres.js';
import { fetchServedCertificate } from '../harness/tls.js';

export interface RigNode {
  name: string;
  storage: string;
  webroot: string;
  configPath: string;
  nginx: NginxHandle;
  proc?: ChildProcess;
  /** JSON events this node printed (all runs). */
  events: Record<string, unknown>[];
  env: Record<string, string>;
}

export interface Rig {
  pg: PostgresHandle;
  pebble: PebbleHandle;
  nodes: RigNode[];
  names: string[];
  work: string;
  forceFile: string;
  startNode(n: RigNode, extraEnv?: Record<string, string>): void;
  kill(n: RigNode, signal?: NodeJS.Signals): Promise<void>;
  sql<R extends pg.QueryResultRow>(text: string, params?: unknown[]): Promise<R[]>;
  /** name → { version, serial, stored_by } of the heads in PostgreSQL. */
  heads(): Promise<Map<string, { version: number; serial: string; storedBy: string }>>;
  /** Serials Pebble issued (from its log, without leading zeros) and the number of orders it created. */
  pebbleCounts(): { issuedSerials: string[]; orders: number };
  served(n: RigNode, name: string): Promise<string>;
  stop(): Promise<void>;
}

export const domainOf = (name: string) => `${name}.cluster.test`;

export async function startRig(opts: {
  nodes: number;
  certs: number;
  cycleMs?: number;
  concurrency?: number;
}): Promise<Rig> {
  const work = await mkdtemp(join(tmpdir(), 'ck-cluster-rig-'));
  const key = randomBytes(32).toString('base64');
  const names = Array.from({ length: opts.certs }, (_, i) => `c${i}`);
  const pgh = await startPostgres();
  const nodes: RigNode[] = [];
  let pebble: PebbleHandle | undefined;
  const procs = new Set<ChildProcess>();
  try {
    // Every node's certbot folder starts with a placeholder per certificate (what the bootstrap does), so each
    // nginx can start; the placeholders are due at once on every node.
    const shells = [];
    for (let i = 0; i < opts.nodes; i++) {
      const name = `n${i}`;
      const storage = join(work, name, 'letsencrypt');
      const webroot = join(work, name, 'webroot');
      await mkdir(join(webroot, '.well-known', 'acme-challenge'), { recursive: true });
      const store = new CertStore(storage);
      for (const c of names) {
        const ph = await createSelfSigned({ commonName: domainOf(c), altNames: [domainOf(c)], days: 7 });
        await store.save(c, {
          domains: [domainOf(c)],
          keyType: 'ecdsa-p256',
          fullchainPem: ph.certPem,
          keyPem: ph.keyPem,
          placeholder: true,
        });
      }
      shells.push({ name, storage, webroot, store });
    }
    const lastHttp = await freePort();
    for (const [i, s] of shells.entries()) {
      const nginx = await startNginx({
        webroot: s.webroot,
        httpPort: i === shells.length - 1 ? lastHttp : undefined,
        tlsServers: names.map((c) => ({
          serverName: domainOf(c),
          certPath: s.store.livePaths(c).fullchain,
          keyPath: s.store.livePaths(c).privkey,
        })),
      });
      nodes.push({ ...s, configPath: join(work, s.name, 'config.json'), nginx, events: [], env: {} });
    }
    pebble = await startPebble({ httpPort: lastHttp });
    const forceFile = join(work, 'force.json');
    for (const n of nodes) {
      const config = {
        acme: { directoryUrl: pebble.directoryUrl, caBundle: pebble.caBundlePath, orderTimeoutSeconds: 60 },
        storage: { path: n.storage },
        selfCheck: { enabled: true, httpPort: lastHttp, resolvers: [pebble.dnsServer], timeoutSeconds: 3 },
        renewal: { concurrency: opts.concurrency ?? 4 },
        cluster: {
          postgres: { url: pgh.url },
          node: n.name,
          keyEnv: 'CK_CLUSTER_KEY',
          syncIntervalSeconds: 2,
          lockLeaseSeconds: 6,
        },
        certificates: names.map((c) => ({
          name: c,
          domains: [domainOf(c)],
          challenge: { type: 'http-01', webroot: n.webroot },
          deploy: [
            {
              type: 'nginx',
              signal: { pidFile: n.nginx.pidFile },
              verify: { address: `127.0.0.1:${n.nginx.httpsPort}`, timeoutSeconds: 20, settleSeconds: 0 },
            },
          ],
        })),
      };
      await writeFile(n.configPath, JSON.stringify(config, null, 2));
      n.env = {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        CK_CONFIG: n.configPath,
        CK_CLUSTER_KEY: key,
        CK_CYCLE_MS: String(opts.cycleMs ?? 1000),
        CK_FORCE_FILE: forceFile,
        CK_WAIT_NODES: String(opts.nodes),
      };
    }

    const startNode = (n: RigNode, extraEnv: Record<string, string> = {}) => {
      const out = join(work, n.name, 'events.log');
      const errFd = openSync(join(work, n.name, 'node.log'), 'a');
      const child = spawn(
        process.execPath,
        ['--import', 'tsx', join(import.meta.dirname, 'fixtures', 'node.ts')],
        {
          env: { ...n.env, ...extraEnv },
          stdio: ['ignore', 'pipe', errFd],
        },
      );
      closeSync(errFd);
      procs.add(child);
      child.once('exit', () => procs.delete(child));
      let buf = '';
      child.stdout?.on('data', (d) => {
        buf += String(d);
        const lines = buf.split('\n');
        buf = lines.pop() ?? '';
        for (const l of lines) {
          try {
            n.events.push({ ...JSON.parse(l), pid: child.pid, at: Date.now() });
          } catch {
            // not an event line
          }
        }
        void writeFile(out, `${n.events.map((e) => JSON.stringify(e)).join('\n')}\n`).catch(() => {});
      });
      n.proc = child;
    };

    const sql = async <R extends pg.QueryResultRow>(text: string, params: unknown[] = []) => {
      const c = new pg.Client({ connectionString: pgh.url });
      await c.connect();
      try {
        return (await c.query<R>(text, params)).rows;
      } finally {
        await c.end();
      }
    };
    const p = pebble;
    return {
      pg: pgh,
      pebble: p,
      nodes,
      names,
      work,
      forceFile,
      startNode,
      async kill(n, signal = 'SIGKILL') {
        const child = n.proc;
        if (!child || child.exitCode !== null || child.signalCode !== null) return;
        const gone = new Promise<void>((r) => child.once('exit', () => r()));
        child.kill(signal);
        await gone;
      },
      sql,
      async heads() {
        const rows = await sql<{ name: string; version: string; serial: string; stored_by: string }>(
          `SELECT c.name, c.version, v.serial, v.stored_by
             FROM certificates c JOIN certificate_versions v USING (name, version)`,
        );
        return new Map(
          rows.map((r) => [r.name, { version: Number(r.version), serial: r.serial, storedBy: r.stored_by }]),
        );
      },
      pebbleCounts() {
        const log = readFileSync(join(p.dir, 'pebble.log'), 'utf8');
        const issuedSerials = [...log.matchAll(/Issued certificate serial ([0-9a-fA-F]+) for order/g)].map(
          (m) => m[1]!.toUpperCase().replace(/^0+/, ''),
        );
        const orders = [...log.matchAll(/Added order /g)].length;
        return { issuedSerials, orders };
      },
      async served(n, name) {
        const s = await fetchServedCertificate({
          host: '127.0.0.1',
          port: n.nginx.httpsPort as number,
          servername: domainOf(name),
        });
        return s.serial;
      },
      async stop() {
        for (const c of procs) c.kill('SIGKILL');
        for (const n of nodes) await n.nginx.stop().catch(() => {});
        await p.stop().catch(() => {});
        await pgh.stop();
        // CK_KEEP_RIG=1 keeps the nodes' logs and folders for a look after a failure.
        if (process.env.CK_KEEP_RIG) process.stderr.write(`cluster rig kept in ${work}\n`);
        else await rm(work, { recursive: true, force: true });
      },
    };
  } catch (err) {
    for (const c of procs) c.kill('SIGKILL');
    for (const n of nodes) await n.nginx.stop().catch(() => {});
    await pebble?.stop().catch(() => {});
    await pgh.stop();
    await rm(work, { recursive: true, force: true });
    throw err;
  }
}
