/**
 * `npm run build [-- --outdir DIR]`: certkeeper as it is published and run (package.json bin, the Docker image).
 *
 *   DIR/cli/main.js         the bin: turns on Node's compile cache (Node 22.1+; V8 keeps the compiled code of
 *                           every bundled file on disk between runs) and loads certkeeper.js
 *   DIR/cli/certkeeper.js   the CLI, bundled by esbuild from src/cli/main.ts with its dependencies inlined
 *                           (commander, zod, yaml, pino, acme-client, fastify, ...): a start resolves and reads a
 *                           few files instead of ~600 modules and their package.json files
 *   DIR/cli/chunks/*.js     the rest of the bundle, split where the code already imports lazily (renew, run,
 *                           revoke, preflight, deployers): `status` never reads the ACME client, the idle daemon
 *                           keeps neither the ACME client nor the configuration schema. As one 3.3 MB file, the
 *                           daemon held its whole source on the V8 heap: +6.6 MB RSS idle (Node 20, image flags)
 *   DIR/cli/load-worker.js  the configuration loader's worker thread (src/config/load-worker.ts)
 *
 * Left as runtime imports (loaded only when configured, from node_modules): the AWS SDK, dockerode, pg, nodemailer.
 * Type checking is `npm run typecheck`; esbuild only strips the types.
 */
import { chmod, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { builtinModules } from 'node:module';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import * as esbuild from 'esbuild';
import { HEAVY_BUILTIN, lazyBuiltin } from './lazy-builtin.mjs';

const { values } = parseArgs({ options: { outdir: { type: 'string', default: 'dist' } } });
const root = resolve(import.meta.dirname, '..');

/** A module whose every use throws, naming what is left out. */
const refuse = (what) =>
  `module.exports = () => { throw new Error(${JSON.stringify(`${what} is not part of the certkeeper bundle`)}); };`;
/** A class whose construction throws. */
const refuseClass = (name, what) =>
  `class ${name} { constructor() { throw new Error(${JSON.stringify(`${what} is not part of the certkeeper bundle`)}); } }`;

/**
 * Parts of dependencies certkeeper never calls, left out of the bundle (less to read, parse and keep in memory):
 * each is the import `path` made from a folder matching `from` (any folder without), and what stands in its place.
 */
const STUBS = [
  // acme-client's node-forge helpers (acme.forge): certkeeper uses node:crypto
  {
    name: 'acme-client-forge',
    path: /^\.\/crypto\/forge$/,
    from: /acme-client[\\/]src$/,
    contents:
      "module.exports = new Proxy({}, { get(_, k) { throw new Error('acme.forge.' + String(k) + ' is not part of the certkeeper bundle'); } });",
  },
  // zod's translated error messages other than English (z.locales): certkeeper words its own errors
  {
    name: 'zod-locales',
    path: /^\.\.\/locales\/index\.js$/,
    from: /zod[\\/]v4[\\/]classic$/,
    contents: 'export {};',
  },
  // mime-db (133 KB of media types) reaches the bundle through axios -> form-data -> mime-types, for file uploads
  // acme-client never makes: an empty table
  { name: 'mime-db', path: /^mime-db$/, from: /mime-types$/, contents: 'module.exports = {};' },
  // fastify's schema compilers (ajv, fast-json-stringify: ~330 KB): the API's routes declare no schemas and
  // src/daemon/app.ts gives fastify compilers that refuse, so nothing requires these
  {
    name: '@fastify/ajv-compiler',
    path: /^@fastify\/ajv-compiler$/,
    contents: refuse('@fastify/ajv-compiler'),
  },
  {
    name: '@fastify/fast-json-stringify-compiler',
    path: /^@fastify\/fast-json-stringify-compiler$/,
    contents: refuse('@fastify/fast-json-stringify-compiler'),
  },
  // What follows is code the idle daemon would otherwise keep the source of on its heap.
  // fastify's inject() (light-my-request and its cookie parsers): the API is tested through real requests
  {
    name: 'light-my-request',
    path: /^light-my-request$/,
    from: /fastify$/,
    contents: refuse("fastify's inject() (light-my-request)"),
  },
  // prom-client's Pushgateway client (and through it zlib, ~0.1 MB resident): the daemon is scraped, it pushes
  // nothing
  {
    name: 'prom-client-pushgateway',
    path: /^\.\/lib\/pushgateway$/,
    from: /prom-client$/,
    contents: `module.exports = ${refuseClass('Pushgateway', 'prom-client Pushgateway')};`,
  },
  // prom-client's Summary metrics (tdigest): certkeeper has counters, gauges and histograms
  {
    name: 'tdigest',
    path: /^tdigest$/,
    from: /prom-client[\\/]lib$/,
    contents: `module.exports = { TDigest: ${refuseClass('TDigest', 'prom-client Summary')} };`,
  },
  // the OpenTelemetry API, which prom-client reads only for exemplars (off): the stub answers as the API does with no
  // tracer registered, no active span
  {
    name: '@opentelemetry/api',
    path: /^@opentelemetry\/api$/,
    from: /prom-client[\\/]lib[\\/]metrics$/,
    contents:
      'module.exports = { trace: { getSpan: () => undefined }, context: { active: () => undefined } };',
  },
];

const unused = {
  name: 'certkeeper-unused',
  setup(build) {
    for (const stub of STUBS) {
      build.onResolve({ filter: stub.path }, (a) =>
        !stub.from || stub.from.test(a.resolveDir) ? { path: stub.name, namespace: 'unused' } : undefined,
      );
    }
    // acme-client's crypto module (WebCrypto through @peculiar/x509 and asn1js) becomes certkeeper's node:crypto
    // version of the functions acme-client itself calls (src/acme/acme-client-crypto.ts; equality tested)
    build.onResolve({ filter: /^\.\/crypto$/ }, (a) =>
      /acme-client[\\/]src$/.test(a.resolveDir)
        ? { path: resolve(root, 'src', 'acme', 'acme-client-crypto.ts') }
        : undefined,
    );
    build.onLoad({ filter: /.*/, namespace: 'unused' }, (a) => ({
      contents: STUBS.find((s) => s.name === a.path).contents,
      loader: 'js',
    }));
  },
};
const outdir = resolve(root, values.outdir);
// CommonJS dependencies call require() for node's own modules; an ES module has no require of its own.
const banner = {
  js: "import { createRequire as __ckCreateRequire } from 'node:module'; const require = __ckCreateRequire(import.meta.url);",
};

const LAZY_PACKAGES = /^(@aws-sdk\/|@smithy\/|dockerode$|pg$|pg-native$|nodemailer$)/;
const BUILTIN = new RegExp(`^(node:)?(${builtinModules.map((m) => m.replace(/[/]/g, '\\/')).join('|')})$`);

/**
 * Imports that stay imports, loaded when the code using them first runs:
 * - the AWS SDK, dockerode, pg and nodemailer stay in node_modules (esbuild would hoist their static imports to
 *   the top of the bundle: every start would pay ~70 ms for dockerode alone);
 * - node's own modules: an ES import of node:http builds its ES facade, which reads every export, including the
 *   lazy ones that load undici (~25 ms); require() does not, and only the modules a command uses load.
 * Each becomes a small CommonJS module inside the bundle that require()s the real one; it runs when the
 * (lazily initialised) module importing it does. Except where certkeeper's own ES modules import one of node's
 * light modules (fs, path, os, events, stream, util, url, ...): that stays an ES import. esbuild would give each
 * such import its own copy of the CommonJS module's exports, a getter per export (2,000 getters in the idle daemon:
 * ~0.24 MB of its heap); node builds one ES facade per module, whose reads load nothing these commands do not.
 */
const lazyImports = {
  name: 'certkeeper-lazy-imports',
  setup(build) {
    const lazy = (a) =>
      a.namespace === 'lazy' ? { path: a.path, external: true } : { path: a.path, namespace: 'lazy' };
    build.onResolve({ filter: LAZY_PACKAGES }, lazy);
    build.onResolve({ filter: BUILTIN }, (a) =>
      a.kind === 'import-statement' && a.namespace !== 'lazy' && !HEAVY_BUILTIN.test(a.path)
        ? { path: a.path.startsWith('node:') ? a.path : `node:${a.path}`, external: true }
        : lazy(a),
    );
    build.onLoad({ filter: /.*/, namespace: 'lazy' }, (a) => ({
      contents: HEAVY_BUILTIN.test(a.path)
        ? lazyBuiltin(a.path)
        : `module.exports = require(${JSON.stringify(a.path)});`,
      loader: 'js',
    }));
  },
};

await rm(outdir, { recursive: true, force: true });
await mkdir(join(outdir, 'cli'), { recursive: true });
const result = await esbuild.build({
  metafile: !!process.env.CK_METAFILE,
  absWorkingDir: root,
  entryPoints: { certkeeper: 'src/cli/main.ts', 'load-worker': 'src/config/load-worker.ts' },
  outdir: join(outdir, 'cli'),
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  banner,
  legalComments: 'linked',
  logLevel: 'warning',
  plugins: [unused, lazyImports],
  splitting: true,
  chunkNames: 'chunks/[name]-[hash]',
  minifyWhitespace: true,
  minifySyntax: true,
});
if (process.env.CK_METAFILE) await writeFile(process.env.CK_METAFILE, JSON.stringify(result.metafile));
// The createRequire banner only where the code calls require: esbuild routes every require of the bundle through
// its runtime chunk's __require, so only a few files keep it; each banner costs a module import and a
// createRequire at load (~0.1 ms each on Node 20).
for (const dir of [join(outdir, 'cli'), join(outdir, 'cli', 'chunks')]) {
  for (const f of await readdir(dir)) {
    if (!f.endsWith('.js')) continue;
    const file = join(dir, f);
    const text = await readFile(file, 'utf8');
    if (text.startsWith(banner.js) && !/\brequire\b/.test(text.slice(banner.js.length)))
      await writeFile(file, text.slice(banner.js.length).replace(/^\n/, ''));
  }
}
await writeFile(
  join(outdir, 'cli', 'main.js'),
  `#!/usr/bin/env node
// certkeeper's bin (made by scripts/build.mjs).
import module from 'node:module';
import { fileURLToPath } from 'node:url';

// \`certkeeper run\` idles almost all the time. Where Node can replace its own process (process.execve, Node 22.15+),
// the bin restarts itself once, same pid, with the settings docker/entrypoint.sh gives the image: a 1 MiB young
// generation, no optimizing or baseline compiler, single-threaded GC, two malloc arenas (about 12 MB less resident
// memory idle). Elsewhere (Node 20 to 22.14) it sets the V8 flags that V8 still reads once running, before the
// bundle loads: the young generation never grows past its initial 1 MiB (--semi-space-growth-factor=1; V8 would
// grow it to 16 MiB during start-up and keep it), and no optimizing or baseline compiler (114 -> 75 MB idle with
// 1,000 certificates on Node 20). Both drop the bytecode of functions not run since the last collection
// (--bytecode-old-age=1; V8 waits for 5-6): start-up code, recompiled from source if it ever runs again (-1.6 MB idle).
// The process users start is the one that runs: no second process.
// CERTKEEPER_V8_TUNING=0, or any of these flags already given, leaves the process as it was started.
const DAEMON_FLAGS = ['--max-semi-space-size=1', '--no-opt', '--no-sparkplug', '--single-threaded-gc', '--bytecode-old-age=1'];
const RUNNING_FLAGS = ['--semi-space-growth-factor=1', '--no-opt', '--no-sparkplug', '--bytecode-old-age=1'];
const args = process.argv.slice(2);
const commandOf = (argv) => {
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '-c' || argv[i] === '--config') i++;
    else if (!argv[i].startsWith('-')) return argv[i];
  }
  return undefined;
};
if (
  commandOf(args) === 'run' &&
  process.env.CERTKEEPER_V8_TUNING !== '0' &&
  !process.execArgv.some((a) => DAEMON_FLAGS.includes(a) || a.startsWith('--max-semi-space-size'))
) {
  if (typeof process.execve === 'function') {
    const env = { ...process.env, MALLOC_ARENA_MAX: process.env.MALLOC_ARENA_MAX ?? '2' };
    process.execve(process.execPath, [process.execPath, ...DAEMON_FLAGS, ...process.execArgv, fileURLToPath(import.meta.url), ...args], env);
  }
  // (--single-threaded-gc and --max-semi-space-size only take effect at start: V8 crashes or ignores them here)
  // A worker thread's isolate resets the young generation's growth factor: the configuration loader sets these again.
  const v8 = await import('node:v8');
  for (const flag of RUNNING_FLAGS) v8.setFlagsFromString(flag);
  globalThis[Symbol.for('certkeeper.runningV8Flags')] = RUNNING_FLAGS;
}

// Node 22.1+ keeps the compiled bundle on disk (NODE_COMPILE_CACHE, else the system's temporary folder) and skips
// most of its parse and compile on the next start; Node 20 has no compile cache and just runs it.
// NODE_DISABLE_COMPILE_CACHE=1 turns it off.
try {
  module.enableCompileCache?.();
} catch {
  // an unwritable cache folder only costs speed
}
await import('./certkeeper.js');
`,
);
await chmod(join(outdir, 'cli', 'main.js'), 0o755);
