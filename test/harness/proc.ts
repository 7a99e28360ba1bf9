import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';

/** A child process whose stdout+stderr go to a log file, killed when the test process exits. */
export interface ManagedProcess {
  readonly name: string;
  readonly child: ChildProcess;
  readonly logPath: string;
  /** Set once the process has exited. */
  exitCode(): number | string | null | undefined;
  /** Last `n` lines of the log (for error messages). */
  tail(n?: number): string;
  /** SIGTERM, wait up to `graceMs`, then SIGKILL; resolves when the process is gone. */
  stop(graceMs?: number): Promise<void>;
}

const running = new Set<ChildProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // Last resort when a test forgets stop() or the worker dies: no orphaned Pebble/nginx left behind.
  process.once('exit', () => {
    for (const c of running) {
      try {
        c.kill('SIGKILL');
      } catch {
        // already gone
      }
    }
  });
}

export function tailFile(path: string, n = 30): string {
  try {
    const lines = readFileSync(path, 'utf8').split('\n');
    return lines
      .slice(-n - 1)
      .join('\n')
      .trimEnd();
  } catch {
    return '(no output captured)';
  }
}

export function spawnManaged(
  name: string,
  command: string,
  args: string[],
  opts: { logPath: string; cwd?: string; env?: NodeJS.ProcessEnv },
): ManagedProcess {
  installExitHook();
  const fd = openSync(opts.logPath, 'a');
  let child: ChildProcess;
  try {
    child = spawn(command, args, { cwd: opts.cwd, env: opts.env, stdio: ['ignore', fd, fd] });
  } finally {
    closeSync(fd);
  }
  running.add(child);
  let exit: number | string | null | undefined;
  const exited = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      exit = code ?? signal;
      running.delete(child);
      resolve();
    });
    child.once('error', (err) => {
      exit = `spawn error: ${err.message}`;
      running.delete(child);
      resolve();
    });
  });
  return {
    name,
    child,
    logPath: opts.logPath,
    exitCode: () => exit,
    tail: (n = 30) => tailFile(opts.logPath, n),
    async stop(graceMs = 5000) {
      if (exit !== undefined) return;
      child.kill('SIGTERM');
      const timer = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), graceMs).unref());
      if ((await Promise.race([exited, timer])) === 'timeout') {
        child.kill('SIGKILL');
        await exited;
      }
    },
  };
}
