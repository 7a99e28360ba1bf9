/**
 * A PRIVATE Docker daemon for end-to-end tests: its own data root, exec root, pid file and unix socket in a temp
 * folder, no bridge, no iptables — it never touches the host's Docker or network. Containers run with
 * `--network host` and listen on 127.0.0.1 only. No registry is contacted: the nginx image is made with
 * `docker import` from Debian's own nginx binary and the shared libraries it links (buildNginxImage).
 *
 * Needs root and Debian's docker.io (dockerd, containerd, runc) — CI: `apt-get install docker.io`.
 */
import { execFile } from 'node:child_process';
import { existsSync, promises as fs, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import Dockerode from 'dockerode';
import { requireBinaries } from './env.js';
import { pollUntil } from './ports.js';
import { type ManagedProcess, spawnManaged, tailFile } from './proc.js';

const run = promisify(execFile);

export const DOCKERD_BIN = '/usr/sbin/dockerd';
export const NGINX_IMAGE = 'certkeeper-test/nginx:local';

export interface DockerdHandle {
  /** unix:///tmp/…/docker.sock — use as DOCKER_HOST. */
  host: string;
  socketPath: string;
  docker: Dockerode;
  dir: string;
  /** `docker` CLI against this daemon; resolves with stdout. */
  cli(args: string[], opts?: { timeoutMs?: number }): Promise<string>;
  /** Removes every container, stops the daemon (and its containerd), unmounts and deletes its folders. */
  stop(): Promise<void>;
}

function dockerCliBin(): string {
  // Debian's docker.io puts the CLI in /usr/bin; fall back to whatever is on PATH.
  return existsSync('/usr/bin/docker') ? '/usr/bin/docker' : 'docker';
}

async function tryStart(dir: string, storageDriver?: string): Promise<{ proc: ManagedProcess; ok: boolean }> {
  const socketPath = join(dir, 'docker.sock');
  const configFile = join(dir, 'daemon.json');
  await fs.writeFile(configFile, '{}\n');
  const args = [
    '--data-root',
    join(dir, 'data'),
    '--exec-root',
    join(dir, 'exec'),
    '--pidfile',
    join(dir, 'dockerd.pid'),
    '--config-file',
    configFile,
    '-H',
    `unix://${socketPath}`,
    '--bridge=none',
    '--iptables=false',
    '--ip6tables=false',
    '--ip-forward=false',
    '--ip-masq=false',
    '--userland-proxy=false',
    '--log-level=warn',
    ...(storageDriver ? [`--storage-driver=${storageDriver}`] : []),
  ];
  const proc = spawnManaged('dockerd', DOCKERD_BIN, args, {
    logPath: join(dir, 'dockerd.log'),
    // No registry may ever be reached from a test: should anything ask this dockerd to pull (a `docker run` of an
    // image whose build failed), the request goes to a closed loopback port and fails at once.
    env: {
      PATH: '/usr/sbin:/usr/bin:/sbin:/bin',
      HTTP_PROXY: 'http://127.0.0.1:9',
      HTTPS_PROXY: 'http://127.0.0.1:9',
      NO_PROXY: '',
    },
  });
  const docker = new Dockerode({ socketPath });
  const ok = await pollUntil(async () => (await docker.ping()).toString() === 'OK', {
    attempts: 150,
    intervalMs: 100,
    abort: () => proc.exitCode() !== undefined,
  });
  return { proc, ok };
}

export async function startDockerd(): Promise<DockerdHandle> {
  requireBinaries(DOCKERD_BIN);
  if (process.getuid?.() !== 0)
    throw new Error('the Docker tests start a private dockerd and need root (CI runs .ci/run as root)');
  // Short path: unix socket paths are limited to 108 bytes.
  const dir = await fs.mkdtemp(join(tmpdir(), 'ck-dockerd-'));
  let { proc, ok } = await tryStart(dir);
  if (!ok) {
    // overlay2 on top of an overlay/tmpfs root can fail inside CI containers: vfs always works (slower, fine here).
    const first = tailFile(join(dir, 'dockerd.log'), 15);
    await proc.stop(5000);
    await cleanupMounts(dir);
    await fs.rm(join(dir, 'data'), { recursive: true, force: true });
    ({ proc, ok } = await tryStart(dir, 'vfs'));
    if (!ok) {
      const second = tailFile(join(dir, 'dockerd.log'), 15);
      await proc.stop(5000);
      await cleanupMounts(dir);
      await fs.rm(dir, { recursive: true, force: true });
      throw new Error(`private dockerd did not start (tried overlay2, then vfs):\n${first}\n---\n${second}`);
    }
  }
  const socketPath = join(dir, 'docker.sock');
  const docker = new Dockerode({ socketPath });
  const host = `unix://${socketPath}`;
  let stopped = false;
  const handle: DockerdHandle = {
    host,
    socketPath,
    docker,
    dir,
    async cli(args, opts = {}) {
      try {
        const { stdout } = await run(dockerCliBin(), ['-H', host, ...args], {
          timeout: opts.timeoutMs ?? 60_000,
          maxBuffer: 16 * 1024 * 1024,
          env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir, DOCKER_CONFIG: join(dir, 'cli') },
        });
        return stdout;
      } catch (err) {
        const e = err as { stderr?: string; message: string };
        throw new Error(`docker ${args.join(' ')} failed: ${e.stderr?.trim() || e.message}`);
      }
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      try {
        const list = await docker.listContainers({ all: true });
        await Promise.all(
          list.map((c) =>
            docker
              .getContainer(c.Id)
              .remove({ force: true })
              .catch(() => {}),
          ),
        );
      } catch {
        // daemon already gone
      }
      await proc.stop(15_000);
      // dockerd normally stops its managed containerd; make sure, by pid file, before deleting its folders.
      const ctrPid = readPid(join(dir, 'exec', 'containerd', 'containerd.pid'));
      if (ctrPid) {
        try {
          process.kill(ctrPid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
      await cleanupMounts(dir);
      await fs.rm(dir, { recursive: true, force: true }).catch(() => {});
    },
  };
  return handle;
}

function readPid(path: string): number | undefined {
  try {
    const n = Number(readFileSync(path, 'utf8').trim());
    return Number.isInteger(n) && n > 1 ? n : undefined;
  } catch {
    return undefined;
  }
}

/** Unmounts anything the daemon left mounted under `dir` (deepest first). */
async function cleanupMounts(dir: string): Promise<void> {
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4])
    .filter((m): m is string => !!m && (m === dir || m.startsWith(`${dir}/`)))
    .sort((a, b) => b.length - a.length);
  for (const m of mounts) await run('umount', ['-l', m]).catch(() => {});
}

// ------------------------------------------------------------------------------------------- nginx image

/** Like the official image's nginx.conf: workers as "nginx", logs to the container's stdout/stderr, conf.d included. */
const IMAGE_NGINX_CONF = `user nginx;
worker_processes 1;
error_log /var/log/nginx/error.log notice;
pid /var/run/nginx.pid;
events { worker_connections 256; }
http {
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log /var/log/nginx/access.log;
    sendfile on;
    keepalive_timeout 0;
    include /etc/nginx/conf.d/*.conf;
}
`;

/**
 * Builds `certkeeper-test/nginx:local` from Debian's /usr/sbin/nginx with `docker import` (no registry). The image
 * behaves like the official one where the tests look: `nginx -g 'daemon off;'` as PID 1, /etc/nginx/conf.d/*.conf
 * included, pid file /var/run/nginx.pid, logs to stdout/stderr.
 */
export async function buildNginxImage(d: DockerdHandle, tag = NGINX_IMAGE): Promise<string> {
  requireBinaries('/usr/sbin/nginx', '/usr/bin/ldd', '/usr/bin/tar');
  const root = await fs.mkdtemp(join(d.dir, 'rootfs-'));
  try {
    const files = new Set<string>(['/usr/sbin/nginx', '/etc/nginx/mime.types']);
    const { stdout } = await run('/usr/bin/ldd', ['/usr/sbin/nginx']);
    for (const m of stdout.matchAll(/(\/\S+\.so[^\s]*)/g)) files.add(m[1]!);
    for (const f of files) {
      const dest = join(root, f);
      await fs.mkdir(dirname(dest), { recursive: true });
      await fs.copyFile(await fs.realpath(f), dest); // dereference: the library symlink's name, the real file's bytes
      await fs.chmod(dest, (await fs.stat(f)).mode & 0o777);
    }
    for (const dir of [
      'etc/nginx/conf.d',
      'var/log/nginx',
      'var/lib/nginx',
      'var/cache/nginx',
      'var/lock',
      'run',
      'tmp',
      'dev',
      'proc',
      'sys',
    ]) {
      await fs.mkdir(join(root, dir), { recursive: true });
    }
    await fs.chmod(join(root, 'tmp'), 0o1777);
    await fs.symlink('/run', join(root, 'var/run'));
    await fs.symlink('/dev/stdout', join(root, 'var/log/nginx/access.log'));
    await fs.symlink('/dev/stderr', join(root, 'var/log/nginx/error.log'));
    await fs.writeFile(join(root, 'etc/nginx/nginx.conf'), IMAGE_NGINX_CONF);
    await fs.writeFile(
      join(root, 'etc/passwd'),
      'root:x:0:0:root:/root:/bin/false\nwww-data:x:33:33:www-data:/var/www:/bin/false\nnginx:x:101:101:nginx:/nonexistent:/bin/false\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n',
    );
    await fs.writeFile(
      join(root, 'etc/group'),
      'root:x:0:\nwww-data:x:33:\nnginx:x:101:\nnogroup:x:65534:\n',
    );
    const tarball = join(d.dir, 'nginx-rootfs.tar');
    await run('/usr/bin/tar', ['-C', root, '--numeric-owner', '--owner=0', '--group=0', '-cf', tarball, '.']);
    await d.cli(['import', '--change', 'CMD ["nginx", "-g", "daemon off;"]', tarball, tag]);
    await fs.rm(tarball, { force: true });
    return tag;
  } finally {
    await fs.rm(root, { recursive: true, force: true });
  }
}

// ------------------------------------------------------------------------------------------- node base image

/** The tag docker/Dockerfile builds FROM; an imported image with this tag lets `docker build` run offline. */
export const NODE_BASE_IMAGE = 'node:22-bookworm-slim';

/** What docker/Dockerfile's RUN lines call besides node (the real slim image has all of Debian's coreutils). */
const BASE_TOOLS = ['/bin/sh', '/bin/mv', '/bin/rm', '/bin/chmod', '/bin/mkdir', '/bin/chown', '/bin/ln'];

/**
 * Stands in for `node:22-bookworm-slim` without a registry: `docker import` of a rootfs holding `nodeBin` as
 * /usr/local/bin/node (where the official image has it), the few tools the Dockerfile's RUN lines use, the shared
 * libraries all of them link (ldd), /etc/passwd and /etc/group with the `node` user (uid/gid 1000), and /tmp.
 */
export async function buildNodeBaseImage(
  d: DockerdHandle,
  nodeBin: string,
  tag = NODE_BASE_IMAGE,
): Promise<string> {
  requireBinaries(nodeBin, '/usr/bin/ldd', '/usr/bin/tar', ...BASE_TOOLS);
  const root = await fs.mkdtemp(join(d.dir, 'noderoot-'));
  try {
    const files = new Map<string, string>([[nodeBin, '/usr/local/bin/node']]);
    for (const t of BASE_TOOLS) files.set(t, t);
    for (const bin of [nodeBin, ...BASE_TOOLS]) {
      const { stdout } = await run('/usr/bin/ldd', [bin]);
      for (const m of stdout.matchAll(/(\/\S+\.so[^\s]*)/g)) files.set(m[1]!, m[1]!);
    }
    for (const [from, to] of files) {
      const dest = join(root, to);
      await fs.mkdir(dirname(dest), { recursive: true });
      await fs.copyFile(await fs.realpath(from), dest);
      await fs.chmod(dest, (await fs.stat(from)).mode & 0o777);
    }
    for (const dir of ['tmp', 'root', 'home/node', 'dev', 'proc', 'sys', 'etc']) {
      await fs.mkdir(join(root, dir), { recursive: true });
    }
    await fs.chmod(join(root, 'tmp'), 0o1777);
    await fs.writeFile(
      join(root, 'etc/passwd'),
      'root:x:0:0:root:/root:/bin/sh\nnode:x:1000:1000::/home/node:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n',
    );
    await fs.writeFile(join(root, 'etc/group'), 'root:x:0:\nnode:x:1000:\nnogroup:x:65534:\n');
    const tarball = join(d.dir, 'node-rootfs.tar');
    await run('/usr/bin/tar', ['-C', root, '--numeric-owner', '--owner=0', '--group=0', '-cf', tarball, '.']);
    await d.cli([
      'import',
      '--change',
      'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
      '--change',
      'CMD ["node"]',
      tarball,
      tag,
    ]);
    await fs.rm(tarball, { force: true });
    return tag;
  } finally {
    await fs.rm(root, { recursive: true, force: true });
  }
}
