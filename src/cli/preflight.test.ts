import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfigText } from '../config/load.js';
import { silentLogger } from '../log.js';
import { preflight } from './preflight.js';

let work: string;

beforeAll(async () => {
  work = await fs.mkdtemp(join(tmpdir(), 'ck-preflight-'));
});
afterAll(async () => {
  await fs.rm(work, { recursive: true, force: true });
});

describe('check-config --preflight', () => {
  it('reports missing storage and webroots with the fix, and creates nothing', async () => {
    await fs.mkdir(join(work, 'www-present'));
    const config = parseConfigText(
      `acme: { directoryUrl: "https://127.0.0.1:1/dir" }
storage: { path: ./missing/letsencrypt }
certificates:
  - { name: a, domains: [a.example.com], challenge: { type: http-01, webroot: ./www-missing } }
  - { name: b, domains: [b.example.com], challenge: { type: http-01, webroot: ./www-present } }
`,
      { baseDir: work },
    );
    const before = (await fs.readdir(work)).sort();
    const checks = await preflight(config, silentLogger);
    expect((await fs.readdir(work)).sort()).toEqual(before); // nothing created
    expect(before).toEqual(['www-present']);

    const byWhat = (re: RegExp) => checks.find((c) => re.test(c.what));
    expect(byWhat(/^storage /)).toEqual({
      what: `storage ${join(work, 'missing/letsencrypt')} does not exist`,
      ok: false,
      fix: `mount the certificate volume there, or create it (certkeeper renew and run create it when its parent is writable): mkdir -p ${join(work, 'missing/letsencrypt')}`,
    });
    expect(byWhat(/^webroot of a /)).toMatchObject({
      what: `webroot of a ${join(work, 'www-missing')} does not exist`,
      ok: false,
    });
    expect(byWhat(/^webroot of a /)?.fix).toMatch(/mkdir -p .*www-missing$/);
    expect(byWhat(/^webroot of b /)).toEqual({
      what: `webroot of b ${join(work, 'www-present')} is writable`,
      ok: true,
    });
  });

  it('a file where a folder belongs is reported, not written to', async () => {
    await fs.writeFile(join(work, 'not-a-dir'), 'x');
    const config = parseConfigText(
      `acme: { directoryUrl: "https://127.0.0.1:1/dir" }\nstorage: { path: ./not-a-dir }\n`,
      {
        baseDir: work,
      },
    );
    const [storage] = await preflight(config, silentLogger);
    expect(storage).toMatchObject({ what: `storage ${join(work, 'not-a-dir')} is not a folder`, ok: false });
    expect(await fs.readFile(join(work, 'not-a-dir'), 'utf8')).toBe('x');
  });
});
