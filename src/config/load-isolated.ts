import { setFlagsFromString } from 'node:v8';
import { Worker } from 'node:worker_threads';
import { ConfigError } from '../errors.js';
import type { Env } from './path.js';
import type { Config } from './schema.js';

/**
 * loadConfig in a short-lived worker thread. The long-running daemon needs the validated configuration, not the
 * YAML parser and schema library that produce it (about 12 MB resident together): they load, run and go away with
 * the worker. Same result and same ConfigError as loadConfig.
 */
export function loadConfigIsolated(file: string, env: Env = process.env): Promise<Config> {
  const workerData = { file, env: { ...env } };
  // Built, this is the bundle dist/cli/certkeeper.js beside dist/cli/load-worker.js. From the .ts sources (tests, `npm run demo`, under tsx or vitest) the worker
  // registers tsx itself: loader hooks are per thread.
  const worker = import.meta.url.endsWith('.ts')
    ? new Worker(
        `import('tsx/esm/api').then(({ register }) => { register(); return import(${JSON.stringify(new URL('./load-worker.ts', import.meta.url).href)}); });`,
        { eval: true, workerData },
      )
    : new Worker(new URL('./load-worker.js', import.meta.url), { workerData });
  worker.once('online', restoreRunningV8Flags);
  return new Promise((resolve, reject) => {
    worker.once(
      'message',
      (m: { ok: true; config: Config } | { ok: false; issues: string[]; hint?: string }) => {
        if (m.ok) resolve(m.config);
        else reject(new ConfigError(m.issues, { hint: m.hint }));
        void worker.terminate();
      },
    );
    worker.once('error', reject);
    worker.once('exit', (code) =>
      reject(new Error(`the configuration loader stopped (exit ${code}) before answering`)),
    );
  });
}

/**
 * The V8 flags the bin (dist/cli/main.js) set while running, for `run` on a Node that cannot restart itself with them
 * (no process.execve). Creating a worker's isolate puts --semi-space-growth-factor back to V8's minimum of 2 for the
 * whole process, so they are set again once the worker runs: else the daemon's young generation grows to 16 MiB at
 * the first busy moment after the configuration was loaded, and keeps it.
 */
function restoreRunningV8Flags(): void {
  const flags = (globalThis as { [k: symbol]: unknown })[Symbol.for('certkeeper.runningV8Flags')];
  if (Array.isArray(flags)) for (const f of flags) setFlagsFromString(String(f));
}
