/**
 * Worker-thread side of loadConfigIsolated: parses and validates the configuration, posts back the plain result
 * (or the error's issues and hint) and exits, taking the YAML and schema libraries' memory with it.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { ConfigError } from '../errors.js';
import { loadConfig } from './load.js';

const { file, env } = workerData as { file: string; env: Record<string, string | undefined> };
try {
  parentPort!.postMessage({ ok: true, config: loadConfig(file, env) });
} catch (err) {
  parentPort!.postMessage(
    err instanceof ConfigError
      ? { ok: false, issues: err.issues, hint: err.hint }
      : { ok: false, issues: [`${file}: ${(err as Error).message}`] },
  );
}
