import { spawn } from 'node:child_process';

/**
 * The one process runner (exec DNS programs, nginx reload/test commands): argv without a shell, in its own process
 * group; on timeout or abort the whole group gets SIGTERM, then SIGKILL after a grace period. Keeps only the tails
 * of the output. Resolves with the exit status (never rejects on exit codes); rejects when it cannot start.
 */
export interface RunOptions {
  timeoutMs: number;
  /** Grace between SIGTERM and SIGKILL (default 2 s). */
  killGraceMs?: number;
  signal?: AbortSignal;
  /** Also keep the tail of stdout (default: stdout is ignored). */
  captureStdout?: boolean;
  /** Bytes kept of each stream (default 2048). */
  tailBytes?: number;
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  /** Stopped because the caller's signal aborted. */
  aborted: boolean;
  stderrTail: string;
  stdoutTail: string;
  durationMs: number;
}

/** Keeps only the last `max` bytes of a stream. */
function tailCollector(max: number) {
  let buf = Buffer.alloc(0);
  let truncated = false;
  return {
    push(chunk: Buffer) {
      buf = Buffer.concat([buf, chunk]);
      if (buf.length > max) {
        buf = buf.subarray(buf.length - max);
        truncated = true;
      }
    },
    /** The tail as text; a line cut in half at the start is dropped. */
    text: () => {
      const t = buf.toString('utf8');
      return (truncated ? t.slice(t.indexOf('\n') + 1) : t).trim();
    },
  };
}

export function runProcess(argv: string[], opts: RunOptions): Promise<RunResult> {
  const started = Date.now();
  const max = opts.tailBytes ?? 2048;
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), {
      shell: false,
      detached: true,
      stdio: ['ignore', opts.captureStdout ? 'pipe' : 'ignore', 'pipe'],
      windowsHide: true,
    });
    const stderr = tailCollector(max);
    const stdout = tailCollector(max);
    child.stderr!.on('data', (c: Buffer) => stderr.push(c));
    child.stdout?.on('data', (c: Buffer) => stdout.push(c));
    let timedOut = false;
    let aborted = false;
    let settled = false;
    let killTimer: NodeJS.Timeout | undefined;
    let exitTimer: NodeJS.Timeout | undefined;
    const killGroup = (sig: NodeJS.Signals) => {
      try {
        if (child.pid) process.kill(-child.pid, sig);
      } catch {
        try {
          child.kill(sig);
        } catch {
          /* already gone */
        }
      }
    };
    const stop = () => {
      killGroup('SIGTERM');
      killTimer = setTimeout(() => killGroup('SIGKILL'), opts.killGraceMs ?? 2000);
    };
    const timer = setTimeout(() => {
      timedOut = true;
      stop();
    }, opts.timeoutMs);
    const onAbort = () => {
      aborted = true;
      stop();
    };
    if (opts.signal?.aborted) onAbort();
    else opts.signal?.addEventListener('abort', onAbort, { once: true });
    const finish = (code: number | null, signal: NodeJS.Signals | null) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearTimeout(killTimer);
      clearTimeout(exitTimer);
      opts.signal?.removeEventListener('abort', onAbort);
      resolve({
        code,
        signal,
        timedOut,
        aborted,
        stderrTail: stderr.text(),
        stdoutTail: stdout.text(),
        durationMs: Date.now() - started,
      });
    };
    child.once('error', (err) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      reject(err);
    });
    // 'close' waits for the pipes to drain; a grandchild that keeps them open must not hold us past exit + 1 s.
    child.once('exit', (code, signal) => {
      exitTimer = setTimeout(() => finish(code, signal), 1000);
    });
    child.once('close', (code, signal) => finish(code, signal));
  });
}
