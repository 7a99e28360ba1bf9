import { createRequire } from 'node:module';

/**
 * node's modules that cost milliseconds to load (crypto ~3 ms, tls ~4 ms with net, child_process, worker_threads,
 * http, ...) and that modules on every command's path import for a function only some commands call (the store's
 * key checks, the lock's host name, the listener checks of `run`). Their wrapper is an object with a getter per
 * export that loads the real module on first use: `status` and `check-config` never load crypto, tls, net,
 * child_process or worker_threads. Functions are called as the module's own (none of these read `this` from the
 * module object); the export names are node's at build time (the same major or older at run time). assert is itself
 * a function: its wrapper is one too, and loads the real one only for a check that fails (a truthy value passes
 * without it, as assert.ok does). fastify's router, fastify and sonic-boom (pino's writer) import it for checks
 * that pass, and it brings six more of node's modules (~0.25 MB resident in the idle daemon).
 */
export const HEAVY_BUILTIN =
  /^(node:)?(crypto|tls|net|http|https|http2|child_process|worker_threads|dns|dns\/promises|zlib|dgram|readline|v8|vm|perf_hooks|assert|assert\/strict)$/;
const CALLABLE_BUILTIN = /^(node:)?assert(\/strict)?$/;
const nodeRequire = createRequire(import.meta.url);
export function lazyBuiltin(id) {
  const names = Object.keys(nodeRequire(id)).filter((k) => k !== 'default' && k !== '__esModule');
  return `let real;
const load = () => (real ??= require(${JSON.stringify(id)}));
const lazy = ${CALLABLE_BUILTIN.test(id) ? 'function assert(...args) { if (args.length === 0 || !args[0]) return load()(...args); }' : '{}'};
for (const k of ${JSON.stringify(names)}) Object.defineProperty(lazy, k, { get: () => load()[k], enumerable: true });
module.exports = lazy;`;
}
