/**
 * Debian's PostgreSQL 15 in a temp folder: `initdb` + `pg_ctl start`, listening on 127.0.0.1 only, on a free
 * port, with its unix socket inside the temp folder. PostgreSQL refuses to run as root, so when the tests run as
 * root the cluster belongs to the `postgres` system user (the temp folder is chowned to it) and the commands run
 * through `runuser -u postgres --`. The server is stopped by the pid in postmaster.pid.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { chown, mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { requireBinaries } from './env.js';
import { freePort, isListening, pollUntil } from './ports.js';
import { tailFile } from './proc.js';

const run = promisify(execFile);

export const PG_BIN_DIR = '/usr/lib/postgresql/15/bin';
const INITDB = join(PG_BIN_DIR, 'initdb');
const PG_CTL = join(PG_BIN_DIR, 'pg_ctl');
const RUNUSER = '/usr/sbin/runuser';

export interface PostgresHandle {
  /** postgres://certkeeper@127.0.0.1:<port>/postgres (trust authentication on loopback). */
  url: string;
  port: number;
  dir: string;
  /** pid of the postmaster now running (changes on restart). */
  pid(): Promise<number | undefined>;
  /** Fast shutdown (every connection is cut, as when the server goes away), then start again on the same port. */
  restart(opts?: { downMs?: number }): Promise<void>;
  /** Fast shutdown only; `start()` brings it back. */
  stopServer(): Promise<void>;
  start(): Promise<void>;
  /** Stops the server by pid and removes the folder. */
  stop(): Promise<void>;
}

const live = new Set<string>();
let exitHook = false;

function asPostgres(cmd: string, args: string[]): [string, string[]] {
  const root = typeof process.getuid === 'function' && process.getuid() === 0;
  return root ? [RUNUSER, ['-u', 'postgres', '--', cmd, ...args]] : [cmd, args];
}

async function readPid(dataDir: string): Promise<number | undefined> {
  try {
    const first = (await readFile(join(dataDir, 'postmaster.pid'), 'utf8')).split('\n')[0];
    const pid = Number(first);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export async function startPostgres(): Promise<PostgresHandle> {
  requireBinaries(INITDB, PG_CTL);
  const root = typeof process.getuid === 'function' && process.getuid() === 0;
  const dir = await mkdtemp(join(tmpdir(), 'ck-pg-'));
  const dataDir = join(dir, 'data');
  const sockDir = join(dir, 'sock');
  const logPath = join(dir, 'postgres.log');
  await mkdir(sockDir);
  if (root) {
    const { stdout } = await run('id', ['-u', 'postgres']);
    const { stdout: g } = await run('id', ['-g', 'postgres']);
    for (const p of [dir, sockDir]) await chown(p, Number(stdout.trim()), Number(g.trim()));
  }
  const port = await freePort();
  try {
    const [c, a] = asPostgres(INITDB, [
      '-D',
      dataDir,
      '-U',
      'certkeeper',
      '--auth=trust',
      '--encoding=UTF8',
      '--no-sync',
    ]);
    await run(c, a, { cwd: dir });
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw new Error(`initdb failed: ${(err as Error).message}`);
  }

  const start = async () => {
    const opts = [
      `-c listen_addresses=127.0.0.1`,
      `-p ${port}`,
      `-c unix_socket_directories=${sockDir}`,
      '-c fsync=off',
      '-c max_connections=300',
      '-c log_min_messages=warning',
    ].join(' ');
    const [c, a] = asPostgres(PG_CTL, ['-D', dataDir, '-l', logPath, '-w', '-t', '30', '-o', opts, 'start']);
    try {
      await run(c, a, { cwd: dir });
    } catch (err) {
      throw new Error(`pg_ctl start failed: ${(err as Error).message}\n${tailFile(logPath)}`);
    }
    if (!(await pollUntil(() => isListening(port), { attempts: 200 })))
      throw new Error(`PostgreSQL is not listening on 127.0.0.1:${port}:\n${tailFile(logPath)}`);
    live.add(dataDir);
    if (!exitHook) {
      exitHook = true;
      process.once('exit', () => {
        // Last resort: a worker that forgot stop() leaves no postmaster behind (pid read synchronously).
        for (const d of live) {
          try {
            const pid = Number(readFileSync(join(d, 'postmaster.pid'), 'utf8').split('\n')[0]);
            if (pid > 0) process.kill(pid, 'SIGQUIT');
          } catch {
            // gone
          }
        }
      });
    }
  };

  const stopServer = async () => {
    const pid = await readPid(dataDir);
    live.delete(dataDir);
    if (pid === undefined || !alive(pid)) return;
    process.kill(pid, 'SIGINT'); // fast shutdown: disconnects every client
    const gone = await pollUntil(() => !alive(pid), { attempts: 200, intervalMs: 50 });
    if (!gone) {
      process.kill(pid, 'SIGQUIT');
      await pollUntil(() => !alive(pid), { attempts: 100, intervalMs: 50 });
    }
  };

  await start();
  const url = `postgres://certkeeper@127.0.0.1:${port}/postgres`;
  let stopped = false;
  return {
    url,
    port,
    dir,
    pid: () => readPid(dataDir),
    start,
    stopServer,
    async restart({ downMs = 0 } = {}) {
      await stopServer();
      if (downMs > 0) await new Promise((r) => setTimeout(r, downMs));
      await start();
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await stopServer();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
