/**
 * The README's install ("Using it"): `npm pack` + `npm install -g ./certkeeper-<version>.tgz` leaves a copy that works
 * after the clone is deleted, while `npm install -g .` only links to the clone. Offline: `npm install -g .` runs as
 * written (npm links a folder without the registry); the tarball's dependencies would come from the registry, so
 * the test puts the tarball where npm would (lib/node_modules/certkeeper, the bin link) with this checkout's
 * production dependencies beside it, then deletes the clone and runs the installed command.
 */
import { execFile } from 'node:child_process';
import { promises as fs, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const REPO = resolve(import.meta.dirname, '..');
const VERSION = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')).version as string;
let ENV: Record<string, string>;

let work: string;
let clone: string;
let installLines: string[];

function productionPackages(): string[] {
  const lock = JSON.parse(readFileSync(join(REPO, 'package-lock.json'), 'utf8')) as {
    packages: Record<string, { dev?: boolean }>;
  };
  return Object.entries(lock.packages)
    .filter(([path, p]) => /^node_modules\/(@[^/]+\/)?[^/@][^/]*$/.test(path) && !p.dev)
    .map(([path]) => path);
}

beforeAll(async () => {
  const readme = await fs.readFile(join(REPO, 'README.md'), 'utf8');
  const using = readme.slice(
    readme.indexOf('## Using it'),
    readme.indexOf('**Where the configuration goes.**'),
  );
  installLines = (/```sh\n([\s\S]*?)```/.exec(using)?.[1] ?? '')
    .split('\n')
    .map((l) => l.replace(/\s+#.*$/, '').trim())
    .filter(Boolean);
  work = await fs.mkdtemp(join(tmpdir(), 'ck-install-'));
  // npm's cache and logs stay in this test's folder.
  ENV = {
    PATH: `${join(process.execPath, '..')}:/usr/bin:/bin`,
    HOME: work,
    npm_config_cache: join(work, 'npm-cache'),
    npm_config_update_notifier: 'false',
  };
  // A clone: what git would check out that the build needs, plus node_modules as `npm ci` leaves it.
  clone = join(work, 'certkeeper');
  await fs.mkdir(clone);
  for (const f of [
    'package.json',
    'package-lock.json',
    'tsconfig.json',
    'tsconfig.build.json',
    'README.md',
  ]) {
    await fs.copyFile(join(REPO, f), join(clone, f));
  }
  await fs.cp(join(REPO, 'src'), join(clone, 'src'), { recursive: true });
  await fs.symlink(await fs.realpath(join(REPO, 'node_modules')), join(clone, 'node_modules'));
}, 60_000);

afterAll(async () => {
  if (work) await fs.rm(work, { recursive: true, force: true });
});

describe('installing from a clone', () => {
  it('the README says: build, npm pack, install the tarball', () => {
    expect(installLines).toEqual([
      'npm ci && npm run build',
      'npm pack',
      `sudo npm install -g ./certkeeper-${VERSION}.tgz`,
    ]);
  });

  it('`npm install -g .` only links the clone (why the README does not use it)', async () => {
    await run(join(REPO, 'node_modules/.bin/tsc'), ['-p', 'tsconfig.build.json'], {
      cwd: clone,
      timeout: 120_000,
    });
    const prefix = join(work, 'linked');
    await run(
      'npm',
      ['install', '-g', '.', '--prefix', prefix, '--offline', '--no-audit', '--no-fund', '--ignore-scripts'],
      {
        cwd: clone,
        env: ENV,
        timeout: 60_000,
      },
    );
    const installed = join(prefix, 'lib/node_modules/certkeeper');
    expect((await fs.lstat(installed)).isSymbolicLink()).toBe(true);
    expect(await fs.realpath(installed)).toBe(await fs.realpath(clone));
  }, 180_000);

  it('the packed tarball holds the built command; installed, it runs after the clone is deleted', async () => {
    await run('npm', ['pack', '--ignore-scripts'], { cwd: clone, env: ENV, timeout: 60_000 });
    const tgz = join(clone, `certkeeper-${VERSION}.tgz`);
    const list = (await run('/usr/bin/tar', ['-tzf', tgz])).stdout.split('\n');
    expect(list).toContain('package/dist/cli/main.js');
    expect(list).toContain('package/package.json');
    expect(list.some((f) => f.startsWith('package/src/') || f.includes('.test.'))).toBe(false);

    // Where `npm install -g ./certkeeper-<version>.tgz` puts it: a copy, its dependencies, the bin link.
    const prefix = join(work, 'global');
    const pkg = join(prefix, 'lib/node_modules/certkeeper');
    await fs.mkdir(pkg, { recursive: true });
    await fs.mkdir(join(prefix, 'bin'));
    await run('/usr/bin/tar', ['-xzf', tgz, '-C', pkg, '--strip-components=1']);
    const present: string[] = [];
    for (const path of productionPackages())
      if (await fs.stat(join(REPO, path)).catch(() => undefined)) present.push(path);
    await run('/bin/cp', ['-a', '--parents', ...present, pkg], {
      cwd: await fs.realpath(REPO),
      timeout: 120_000,
    });
    const bin = JSON.parse(await fs.readFile(join(pkg, 'package.json'), 'utf8')).bin.certkeeper as string;
    await fs.symlink(join('../lib/node_modules/certkeeper', bin), join(prefix, 'bin/certkeeper'));

    await fs.rm(clone, { recursive: true, force: true });
    const certkeeper = join(prefix, 'bin/certkeeper');
    expect((await run(certkeeper, ['--version'], { env: ENV })).stdout.trim()).toBe(VERSION);
    const config = join(work, 'certkeeper.yml');
    await fs.writeFile(
      config,
      'acme: { directoryUrl: letsencrypt }\nstorage: { path: ./le }\ncertificates:\n  - { name: a, domains: [a.example.com], challenge: { type: http-01, webroot: ./www } }\n',
    );
    const check = await run(certkeeper, ['check-config'], { env: { ...ENV, CERTKEEPER_CONFIG: config } });
    expect(check.stdout).toMatch(/valid, 1 certificate\(s\)/);
  }, 180_000);
});
