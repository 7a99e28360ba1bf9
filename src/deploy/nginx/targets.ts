/**
 * The three ways certkeeper reaches nginx. Each target can test the configuration (optional) and reload; the
 * deployer in index.ts decides what to do with the outcome. Docker API calls used (for a socket proxy):
 *   GET  /containers/json?filters=…   (label mode)      GET  /containers/{id}/json   (inspect)
 *   POST /containers/{id}/exec   POST /exec/{id}/start   GET /exec/{id}/json
 *   POST /containers/{id}/kill?signal=SIGHUP             (reload: signal)
 */
import { promises as fs } from 'node:fs';
import { PassThrough } from 'node:stream';
import type Dockerode from 'dockerode';
import { CertkeeperError } from '../../errors.js';
import { runProcess } from '../../platform/process.js';
import { sleep, withTimeout } from '../../platform/sleep.js';

export interface TestOutcome {
  ok: boolean;
  /** stdout + stderr of the test, trimmed. */
  output: string;
}

export interface NginxTarget {
  /** e.g. `docker container "web"`, for messages. */
  readonly description: string;
  /** undefined when this target has nothing to test with. */
  test(): Promise<TestOutcome | undefined>;
  reload(): Promise<void>;
  /** Host to verify against when verify.address is not set. */
  defaultVerifyHost(): Promise<string>;
}

export interface TargetOptions {
  cert: string;
  field: string;
  timeoutMs: number;
}

// ---------------------------------------------------------------------------------------------- docker

export interface DockerTargetConfig {
  selector: { container: string } | { label: string };
  reload: 'signal' | 'exec';
  testConfig: boolean;
}

/** nginx in one container (or every running container with the label), reached through the Docker API. */
export function dockerTarget(docker: Dockerode, cfg: DockerTargetConfig, opts: TargetOptions): NginxTarget {
  const sel = cfg.selector;
  const description =
    'label' in sel ? `docker containers with label ${sel.label}` : `docker container "${sel.container}"`;
  let resolved: Promise<Dockerode.ContainerInspectInfo[]> | undefined;
  const containers = () => {
    resolved ??= findContainers(docker, cfg, opts).catch((err) => {
      resolved = undefined;
      throw err;
    });
    return resolved;
  };
  return {
    description,
    async test() {
      if (!cfg.testConfig) return undefined;
      const outputs: string[] = [];
      for (const c of await containers()) {
        const r = await dockerExec(docker, c, ['nginx', '-t'], opts);
        if (r.exitCode !== 0) return { ok: false, output: `${containerName(c)}: ${r.output}` };
        outputs.push(r.output);
      }
      return { ok: true, output: outputs.join('\n') };
    },
    async reload() {
      for (const c of await containers()) {
        if (cfg.reload === 'exec') {
          const r = await dockerExec(docker, c, ['nginx', '-s', 'reload'], opts);
          if (r.exitCode !== 0) {
            throw new CertkeeperError(
              'deploy',
              `\`nginx -s reload\` failed in container ${containerName(c)}: ${firstErrorLine(r.output)}`,
              {
                cert: opts.cert,
                field: opts.field,
                hint: 'check that nginx runs as the main process of that container with its default pid file, or use reload: signal',
              },
            );
          }
        } else {
          await dockerCall(opts, `send SIGHUP to container ${containerName(c)}`, () =>
            docker.getContainer(c.Id).kill({ signal: 'SIGHUP' }),
          );
        }
      }
    },
    async defaultVerifyHost() {
      const first = (await containers())[0];
      if (!first || first.HostConfig?.NetworkMode === 'host') return '127.0.0.1';
      for (const net of Object.values(first.NetworkSettings?.Networks ?? {}))
        if (net?.IPAddress) return net.IPAddress;
      return '127.0.0.1';
    },
  };
}

function containerName(c: Dockerode.ContainerInspectInfo): string {
  return `"${c.Name.replace(/^\//, '')}"`;
}

async function findContainers(
  docker: Dockerode,
  cfg: DockerTargetConfig,
  opts: TargetOptions,
): Promise<Dockerode.ContainerInspectInfo[]> {
  const sel = cfg.selector;
  if ('label' in sel) {
    const list = await dockerCall(opts, `list containers with label ${sel.label}`, () =>
      docker.listContainers({ filters: { label: [sel.label], status: ['running'] } }),
    );
    if (list.length === 0) {
      throw new CertkeeperError('deploy', `no running Docker container has the label ${sel.label}`, {
        cert: opts.cert,
        field: `${opts.field}.docker.label`,
        code: 'CK_ERR_CONTAINER_NOT_FOUND',
        hint: `start the nginx container with that label (compose: labels: ["${sel.label}"]) or fix ${opts.field}.docker.label; the certificate is stored and nginx picks it up at its next reload`,
      });
    }
    return Promise.all(
      list.map((c) =>
        dockerCall(opts, `inspect container ${c.Id.slice(0, 12)}`, () => docker.getContainer(c.Id).inspect()),
      ),
    );
  }
  const info = await dockerCall(
    opts,
    `inspect container "${sel.container}"`,
    () => docker.getContainer(sel.container).inspect(),
    {
      404: () =>
        new CertkeeperError('deploy', `Docker container "${sel.container}" not found`, {
          cert: opts.cert,
          field: `${opts.field}.docker.container`,
          code: 'CK_ERR_CONTAINER_NOT_FOUND',
          hint: `start the nginx container or fix ${opts.field}.docker.container (the container's name, see \`docker ps\`); the certificate is stored and nginx picks it up at its next reload`,
        }),
    },
  );
  if (!info.State?.Running) {
    throw new CertkeeperError(
      'deploy',
      `Docker container "${sel.container}" is not running (${info.State?.Status ?? 'unknown state'})`,
      {
        cert: opts.cert,
        field: `${opts.field}.docker.container`,
        code: 'CK_ERR_CONTAINER_NOT_RUNNING',
        hint: 'start the nginx container; the certificate is stored and nginx loads it when it starts',
      },
    );
  }
  return [info];
}

/** Runs a Docker API call; maps "no daemon" and HTTP errors to deploy errors that say what to fix. */
async function dockerCall<T>(
  opts: TargetOptions,
  what: string,
  fn: () => Promise<T>,
  byStatus: Record<number, () => CertkeeperError> = {},
): Promise<T> {
  try {
    return await withTimeout(fn(), opts.timeoutMs, `Docker API: ${what}`);
  } catch (err) {
    if (err instanceof CertkeeperError) throw err;
    const e = err as { statusCode?: number; code?: string; message?: string; json?: { message?: string } };
    if (e.statusCode !== undefined && byStatus[e.statusCode]) throw byStatus[e.statusCode]!();
    if (e.code === 'ENOENT' || e.code === 'ECONNREFUSED' || e.code === 'EACCES' || e.code === 'ECONNRESET') {
      throw new CertkeeperError('deploy', `cannot reach the Docker API to ${what} (${e.code})`, {
        cert: opts.cert,
        field: `${opts.field}.docker`,
        code: 'CK_ERR_DOCKER_UNREACHABLE',
        hint: 'mount the Docker socket (/var/run/docker.sock) into certkeeper or set DOCKER_HOST (e.g. tcp://docker-proxy:2375); without Docker use signal: {pidFile} or command: [...]',
        cause: err,
      });
    }
    if (e.statusCode === 403) {
      throw new CertkeeperError('deploy', `the Docker API refused to ${what} (403)`, {
        cert: opts.cert,
        field: `${opts.field}.docker`,
        hint: 'allow this call in your Docker socket proxy (certkeeper needs containers list/inspect, exec create/start/inspect and kill)',
        cause: err,
      });
    }
    const detail = (e.json?.message ?? e.message ?? String(err)).split('\n')[0];
    throw new CertkeeperError('deploy', `Docker API: could not ${what}: ${detail}`, {
      cert: opts.cert,
      field: `${opts.field}.docker`,
      hint: 'check the Docker daemon and the container (docker ps, docker logs)',
      cause: err,
    });
  }
}

/** exec in a running container, collecting output, bounded by opts.timeoutMs. */
export async function dockerExec(
  docker: Dockerode,
  c: Dockerode.ContainerInspectInfo,
  cmd: string[],
  opts: TargetOptions,
): Promise<{ exitCode: number; output: string }> {
  const what = `run \`${cmd.join(' ')}\` in container ${containerName(c)}`;
  const exec = await dockerCall(opts, what, () =>
    docker.getContainer(c.Id).exec({ Cmd: cmd, AttachStdout: true, AttachStderr: true, Tty: false }),
  );
  const chunks: Buffer[] = [];
  await dockerCall(opts, what, async () => {
    const stream = await exec.start({ hijack: true, stdin: false });
    const sink = new PassThrough();
    sink.on('data', (b: Buffer) => chunks.push(b));
    docker.modem.demuxStream(stream, sink, sink);
    await new Promise<void>((resolve, reject) => {
      stream.once('end', resolve);
      stream.once('close', resolve);
      stream.once('error', reject);
    }).finally(() => (stream as unknown as { destroy?: () => void }).destroy?.());
  });
  const inspected = await dockerCall(opts, what, () => exec.inspect());
  // The stream can end a moment before the exec is marked finished; ask again a bounded number of times.
  let info = inspected;
  for (let i = 0; i < 20 && info.Running; i++) {
    await sleep(50);
    info = await dockerCall(opts, what, () => exec.inspect());
  }
  return { exitCode: info.ExitCode ?? -1, output: Buffer.concat(chunks).toString('utf8').trim() };
}

// ---------------------------------------------------------------------------------------------- signal

/** nginx whose master pid is readable from a pid file in our PID namespace (same host, or compose `pid: service:nginx`). */
export function signalTarget(
  cfg: { pidFile: string; signal: NodeJS.Signals; testCommand?: string[] },
  opts: TargetOptions,
): NginxTarget {
  return {
    description: `nginx with pid file ${cfg.pidFile}`,
    test: async () => (cfg.testCommand ? runCommand(cfg.testCommand, opts, 'testCommand') : undefined),
    async reload() {
      let text: string;
      try {
        text = await fs.readFile(cfg.pidFile, 'utf8');
      } catch (err) {
        throw new CertkeeperError(
          'deploy',
          `cannot read nginx's pid file ${cfg.pidFile} (${(err as NodeJS.ErrnoException).code})`,
          {
            cert: opts.cert,
            field: `${opts.field}.signal.pidFile`,
            hint: 'point signal.pidFile at the file named by nginx\'s "pid" directive and share it with certkeeper (docker: a volume on /run, plus pid: "service:nginx")',
            cause: err,
          },
        );
      }
      const pid = Number(text.trim());
      // pid 1 is right in a shared PID namespace (nginx is PID 1 of its container); 0 or less would signal a group.
      if (!Number.isInteger(pid) || pid < 1) {
        throw new CertkeeperError(
          'deploy',
          `nginx's pid file ${cfg.pidFile} holds "${text.trim().slice(0, 20)}", not a process id`,
          {
            cert: opts.cert,
            field: `${opts.field}.signal.pidFile`,
            hint: "check that this is nginx's pid file (nginx -T | grep pid)",
          },
        );
      }
      try {
        process.kill(pid, cfg.signal);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        throw new CertkeeperError(
          'deploy',
          code === 'ESRCH'
            ? `no process ${pid} (from ${cfg.pidFile}) in certkeeper's PID namespace`
            : `cannot send ${cfg.signal} to nginx (pid ${pid}): ${code}`,
          {
            cert: opts.cert,
            field: `${opts.field}.signal.pidFile`,
            hint:
              code === 'ESRCH'
                ? 'run certkeeper in nginx\'s PID namespace (compose: pid: "service:nginx") or use docker: {container} instead'
                : 'run certkeeper as the user nginx runs as, or as root',
            cause: err,
          },
        );
      }
    },
    defaultVerifyHost: async () => '127.0.0.1',
  };
}

// ---------------------------------------------------------------------------------------------- command

/** A plain host: reload with a command, e.g. ["systemctl", "reload", "nginx"] or ["nginx", "-s", "reload"]. */
export function commandTarget(
  cfg: { command: string[]; testCommand?: string[] },
  opts: TargetOptions,
): NginxTarget {
  return {
    description: `command ${cfg.command[0]}`,
    test: async () => (cfg.testCommand ? runCommand(cfg.testCommand, opts, 'testCommand') : undefined),
    async reload() {
      const r = await runCommand(cfg.command, opts, 'command');
      if (!r.ok) {
        throw new CertkeeperError(
          'deploy',
          `reload command \`${cfg.command.join(' ')}\` failed: ${firstErrorLine(r.output)}`,
          {
            cert: opts.cert,
            field: `${opts.field}.command`,
            hint: 'run the command by hand as the certkeeper user and fix what it reports',
          },
        );
      }
    },
    defaultVerifyHost: async () => '127.0.0.1',
  };
}

/**
 * The command without a shell through the one process runner (own process group, killed as a group at
 * opts.timeoutMs). Resolves ok:false on a non-zero exit; throws when it cannot start.
 */
export async function runCommand(argv: string[], opts: TargetOptions, key: string): Promise<TestOutcome> {
  const [file] = argv;
  let r: Awaited<ReturnType<typeof runProcess>>;
  try {
    r = await runProcess(argv, { timeoutMs: opts.timeoutMs, captureStdout: true, tailBytes: 64 * 1024 });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new CertkeeperError('deploy', `cannot run ${file} (${code ?? String(err)})`, {
      cert: opts.cert,
      field: `${opts.field}.${key}`,
      hint: `give the full path of an executable in ${opts.field}.${key}[0]`,
      cause: err,
    });
  }
  const output = [r.stdoutTail, r.stderrTail].filter(Boolean).join('\n').trim();
  if (r.code === 0 && !r.timedOut) return { ok: true, output };
  if (r.timedOut) return { ok: false, output: `${output}\n(killed after ${opts.timeoutMs} ms)`.trim() };
  return {
    ok: false,
    output: output || (r.signal ? `killed by ${r.signal}` : `exit code ${String(r.code)}`),
  };
}

// ---------------------------------------------------------------------------------------------- helpers

/** The line of nginx's output that says what is wrong ("nginx: [emerg] …"), else the first non-empty line. */
export function firstErrorLine(output: string): string {
  const lines = output
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  return lines.find((l) => /\[(emerg|alert|crit|error)\]/.test(l)) ?? lines[0] ?? '(no output)';
}
