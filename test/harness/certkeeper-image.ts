/**
 * Builds the certkeeper image from docker/Dockerfile in a private dockerd without any registry, as
 * test/docker-image.test.ts explains: the base `node:22-bookworm-slim` is imported from a Node binary
 * (buildNodeBaseImage), and the build stage gets `--build-arg PREBUILT=1` with a context whose prebuilt/ holds dist/
 * built here and this checkout's production node_modules (hard links). The runtime stage is the Dockerfile as
 * users build it. Node in the image: opts.nodeBin, else $CERTKEEPER_NODE22, else the Node running the test.
 */
import { execFile } from 'node:child_process';
import { promises as fs, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { buildNodeBaseImage, type DockerdHandle } from './dockerd.js';

const run = promisify(execFile);
const REPO = resolve(import.meta.dirname, '..', '..');

function productionPackages(): string[] {
  const lock = JSON.parse(readFileSync(join(REPO, 'package-lock.json'), 'utf8')) as {
    packages: Record<string, { dev?: boolean }>;
  };
  return Object.entries(lock.packages)
    .filter(([path, p]) => /^node_modules\/(@[^/]+\/)?[^/@][^/]*$/.test(path) && !p.dev)
    .map(([path]) => path);
}

/**
 * The build context: what docker/Dockerfile.dockerignore lets through, plus prebuilt/{dist,node_modules}: the bundle
 * `npm run build` makes in the image's build stage, and this checkout's production dependencies (hard links).
 * One place for every image test, so a file the Dockerfile starts to COPY is added once.
 */
export async function makeImageContext(ctx: string): Promise<void> {
  for (const f of ['package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json']) {
    await fs.copyFile(join(REPO, f), join(ctx, f));
  }
  await fs.mkdir(join(ctx, 'scripts'));
  for (const f of ['build.mjs', 'lazy-builtin.mjs'])
    await fs.copyFile(join(REPO, 'scripts', f), join(ctx, 'scripts', f));
  await fs.mkdir(join(ctx, 'docker'));
  await fs.copyFile(join(REPO, 'docker/entrypoint.sh'), join(ctx, 'docker/entrypoint.sh'));
  await fs.cp(join(REPO, 'docker/monitoring'), join(ctx, 'docker/monitoring'), { recursive: true });
  await fs.cp(join(REPO, 'src'), join(ctx, 'src'), {
    recursive: true,
    filter: (p) => !p.endsWith('.test.ts'),
  });
  const pre = join(ctx, 'prebuilt');
  await fs.mkdir(pre);
  const compile = run(process.execPath, [join(REPO, 'scripts/build.mjs'), '--outdir', join(pre, 'dist')], {
    cwd: REPO,
    timeout: 60_000,
  });
  const present: string[] = [];
  for (const path of productionPackages()) {
    // Optional packages for other platforms are in the lock but not installed here.
    if (await fs.stat(join(REPO, path)).catch(() => undefined)) present.push(path);
  }
  // Hard links need one file system; fall back to a copy.
  const copy = run('/bin/cp', ['-al', '--parents', ...present, pre], { cwd: REPO, timeout: 60_000 }).catch(
    () => run('/bin/cp', ['-a', '--parents', ...present, pre], { cwd: REPO, timeout: 120_000 }),
  );
  await Promise.all([compile, copy]);
}

export async function buildCertkeeperImage(
  d: DockerdHandle,
  opts: { tag: string; nodeBin?: string },
): Promise<string> {
  const ctx = await fs.mkdtemp(join(d.dir, 'ck-context-'));
  try {
    const base = buildNodeBaseImage(d, opts.nodeBin ?? (process.env.CERTKEEPER_NODE22 || process.execPath));
    await Promise.all([makeImageContext(ctx), base]);
    await d.cli(
      ['build', '--build-arg', 'PREBUILT=1', '-f', join(REPO, 'docker/Dockerfile'), '-t', opts.tag, ctx],
      { timeoutMs: 180_000 },
    );
    return opts.tag;
  } finally {
    await fs.rm(ctx, { recursive: true, force: true });
  }
}
