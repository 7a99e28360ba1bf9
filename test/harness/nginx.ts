/**
 * Runs Debian's nginx in the foreground (daemon off, master process on) with everything — pid, logs, temp
 * paths — inside a temp prefix, listening on 127.0.0.1 only. Port 80-style server serves the webroot's
 * /.well-known/acme-challenge/; an optional TLS port serves several certificates selected by SNI.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { requireBinaries } from './env.js';
import { freePort, isListening, pollUntil } from './ports.js';
import { type ManagedProcess, spawnManaged, tailFile } from './proc.js';

export const NGINX_BIN = '/usr/sbin/nginx';

export interface NginxTlsServer {
  serverName: string;
  certPath: string;
  keyPath: string;
}

export interface NginxOptions {
  /** Directory whose `.well-known/acme-challenge/` is served over HTTP (the webroot solver writes there). */
  webroot: string;
  httpPort?: number;
  /** All on one httpsPort, selected by SNI; the first one is the default server. */
  tlsServers?: NginxTlsServer[];
  httpsPort?: number;
  /**
   * `user` for worker processes when nginx runs as root (otherwise ignored by nginx). Default: the current user, so
   * workers can read temp-dir webroots; pass 'nobody' to test that challenge files are world-readable.
   */
  workerUser?: string;
}

export interface NginxHandle {
  httpPort: number;
  httpsPort?: number;
  prefix: string;
  confPath: string;
  pidFile: string;
  errorLog: string;
  /** SIGHUP the master and wait until new workers run (throws with the error log if the config was refused). */
  reload(): Promise<void>;
  stop(): Promise<void>;
}

/** nginx quoting for paths in the config. */
function q(s: string): string {
  return `"${s.replace(/(["\\$])/g, '\\$1')}"`;
}

function renderConfig(p: {
  prefix: string;
  webroot: string;
  httpPort: number;
  httpsPort?: number;
  tlsServers: NginxTlsServer[];
  user?: string;
}): string {
  const tls = p.tlsServers
    .map(
      (s, i) => `
    server {
        listen 127.0.0.1:${p.httpsPort} ssl${i === 0 ? ' default_server' : ''};
        server_name ${s.serverName};
        ssl_certificate ${q(s.certPath)};
        ssl_certificate_key ${q(s.keyPath)};
        location / { default_type text/plain; return 200 "${s.serverName}\\n"; }
    }`,
    )
    .join('\n');
  return `# written by certkeeper's test harness
${p.user ? `user ${p.user};\n` : ''}daemon off;
master_process on;
worker_processes 1;
pid ${q(join(p.prefix, 'nginx.pid'))};
error_log ${q(join(p.prefix, 'logs', 'error.log'))} notice;
events { worker_connections 64; }
http {
    access_log ${q(join(p.prefix, 'logs', 'access.log'))};
    client_body_temp_path ${q(join(p.prefix, 'tmp', 'body'))};
    proxy_temp_path ${q(join(p.prefix, 'tmp', 'proxy'))};
    fastcgi_temp_path ${q(join(p.prefix, 'tmp', 'fastcgi'))};
    uwsgi_temp_path ${q(join(p.prefix, 'tmp', 'uwsgi'))};
    scgi_temp_path ${q(join(p.prefix, 'tmp', 'scgi'))};
    default_type application/octet-stream;
    keepalive_timeout 0;

    server {
        listen 127.0.0.1:${p.httpPort} default_server;
        server_name _;
        location ^~ /.well-known/acme-challenge/ {
            root ${q(p.webroot)};
            default_type text/plain;
        }
        location / { return 404; }
    }
${tls}
}
`;
}

function countMatches(text: string, re: RegExp): number {
  return (text.match(re) ?? []).length;
}

export async function startNginx(opts: NginxOptions): Promise<NginxHandle> {
  requireBinaries(NGINX_BIN);
  const portsChosenHere =
    opts.httpPort === undefined && (opts.httpsPort === undefined || !opts.tlsServers?.length);
  // A free port can be taken by a parallel test between our check and nginx's bind: try fresh ports then.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startNginxOnce(opts);
    } catch (err) {
      const clash = err instanceof Error && /address already in use/i.test(err.message);
      if (attempt >= 3 || !clash || !portsChosenHere) throw err;
    }
  }
}

async function startNginxOnce(opts: NginxOptions): Promise<NginxHandle> {
  const tlsServers = opts.tlsServers ?? [];
  const prefix = await mkdtemp(join(tmpdir(), 'ck-nginx-'));
  let proc: ManagedProcess | undefined;
  try {
    await mkdir(join(prefix, 'logs'));
    await mkdir(join(prefix, 'tmp'));
    const httpPort = opts.httpPort ?? (await freePort());
    const httpsPort = tlsServers.length > 0 ? (opts.httpsPort ?? (await freePort())) : opts.httpsPort;
    const isRoot = process.getuid?.() === 0;
    const user = isRoot ? (opts.workerUser ?? userInfo().username) : undefined;
    const confPath = join(prefix, 'nginx.conf');
    const pidFile = join(prefix, 'nginx.pid');
    const errorLog = join(prefix, 'logs', 'error.log');
    await writeFile(
      confPath,
      renderConfig({ prefix, webroot: opts.webroot, httpPort, httpsPort, tlsServers, user }),
    );

    const args = ['-p', prefix, '-c', confPath, '-e', errorLog];
    proc = spawnManaged('nginx', NGINX_BIN, args, {
      logPath: join(prefix, 'logs', 'stdout.log'),
      cwd: prefix,
      env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/bin' },
    });
    const p = proc;
    const dead = () => p.exitCode() !== undefined;
    const ready = await pollUntil(
      async () =>
        (await isListening(httpPort)) &&
        (httpsPort === undefined || tlsServers.length === 0 || (await isListening(httpsPort))) &&
        (await readFile(pidFile, 'utf8')).trim() !== '',
      { attempts: 100, abort: dead },
    );
    if (!ready) {
      throw new Error(
        `nginx did not start on 127.0.0.1:${httpPort} (exit: ${p.exitCode() ?? 'still running'}):\n` +
          `${tailFile(errorLog)}\n${p.tail(10)}`,
      );
    }

    let stopped = false;
    return {
      httpPort,
      httpsPort,
      prefix,
      confPath,
      pidFile,
      errorLog,
      async reload() {
        if (dead()) throw new Error(`nginx is not running (exit ${p.exitCode()}):\n${tailFile(errorLog)}`);
        const before = await readFile(errorLog, 'utf8').catch(() => '');
        const startedBefore = countMatches(before, /start worker process \d+/g);
        const oldWorkers = [...before.matchAll(/start worker process (\d+)/g)].map((m) => m[1]).slice(-1);
        const pid = Number((await readFile(pidFile, 'utf8')).trim());
        process.kill(pid, 'SIGHUP');
        let refused = '';
        const ok = await pollUntil(
          async () => {
            const after = (await readFile(errorLog, 'utf8')).slice(before.length);
            const emerg = after.split('\n').find((l) => /\[emerg\]/.test(l));
            if (emerg) {
              refused = emerg;
              return true;
            }
            return countMatches(before + after, /start worker process \d+/g) > startedBefore;
          },
          { attempts: 100, abort: dead },
        );
        if (refused) throw new Error(`nginx refused the new configuration and kept the old one: ${refused}`);
        if (!ok) throw new Error(`nginx did not start new workers after SIGHUP:\n${tailFile(errorLog)}`);
        // Wait for the old worker to leave so no new connection lands on it (bounded; it exits at once when idle).
        const old = oldWorkers[0];
        if (old) {
          await pollUntil(
            async () => (await readFile(errorLog, 'utf8')).includes(`worker process ${old} exited`),
            {
              attempts: 100,
              abort: dead,
            },
          );
        }
      },
      async stop() {
        if (stopped) return;
        stopped = true;
        // SIGTERM = fast shutdown of master and workers.
        await p.stop();
        await rm(prefix, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await proc?.stop();
    await rm(prefix, { recursive: true, force: true });
    throw err;
  }
}
