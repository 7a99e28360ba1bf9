import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CertkeeperError } from '../../errors.js';
import { silentLogger } from '../../log.js';
import type { ChallengeInput, SolverDeps } from '../types.js';
import { create } from './index.js';
import { execChallengeSchema } from './schema.js';

const HOOK = resolve(import.meta.dirname, '../../../test/fixtures/exec-dns-hook.sh');
const ctx = { logger: silentLogger };
const selfCheck: SolverDeps['selfCheck'] = { enabled: true, httpPort: 80, timeoutSeconds: 5 };

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ck-exec-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function solver(mode: string, log: string, over: Record<string, unknown> = {}) {
  const config = execChallengeSchema.parse({
    type: 'dns-01',
    provider: 'exec',
    command: [HOOK, log, mode],
    ...over,
  });
  return create(config, { logger: silentLogger, selfCheck, killGraceMs: 200 });
}

const ch: ChallengeInput = {
  certName: 'exec-cert',
  domain: 'e.dns01.test',
  wildcard: true,
  type: 'dns-01',
  token: 'tok',
  keyAuthorization: 'tok.thumb',
  dnsRecordName: '_acme-challenge.e.dns01.test',
  dnsValue: 'value-with-$(no)-shell;`x`',
};

describe('exec DNS provider', () => {
  it('runs the program with action, domain, record name and value as separate arguments, no shell', async () => {
    const log = join(dir, 'ok.log');
    const s = solver('ok', log);
    await s.present(ch, ctx);
    await s.cleanup(ch, ctx);
    const lines = (await readFile(log, 'utf8')).trim().split('\n');
    expect(lines).toEqual([
      '4|present|e.dns01.test|_acme-challenge.e.dns01.test|value-with-$(no)-shell;`x`',
      '4|cleanup|e.dns01.test|_acme-challenge.e.dns01.test|value-with-$(no)-shell;`x`',
    ]);
  });

  it('fails on a non-zero exit naming the program and what to do; the stderr tail goes to the log only', async () => {
    const lines: string[] = [];
    const logger = pino({ level: 'debug' }, { write: (l: string) => lines.push(l) });
    const err = await solver('fail', join(dir, 'fail.log'))
      .present(ch, { logger })
      .catch((e) => e);
    expect(err).toBeInstanceOf(CertkeeperError);
    expect(err.kind).toBe('challenge');
    expect(err.code).toBe('CK_ERR_EXEC_HOOK');
    expect(err.cert).toBe('exec-cert');
    expect(err.domain).toBe('e.dns01.test');
    expect(err.message).toContain('exited with code 3');
    expect(err.message).not.toContain('zone not found');
    expect(err.message).toContain('challenge.exec_stderr');
    expect(err.hint).toMatch(/exit 0/);
    const logged = lines.map((l) => JSON.parse(l)).find((l) => l.event === 'challenge.exec_stderr');
    expect(logged?.stderr).toContain('error: zone not found for e.dns01.test');
  });

  it('keeps secrets a failing program prints out of the error and redacts them in the log', async () => {
    const lines: string[] = [];
    const logger = pino({ level: 'debug' }, { write: (l: string) => lines.push(l) });
    const err = await solver('leak', join(dir, 'leak.log'))
      .present(ch, { logger })
      .catch((e) => e);
    expect(err).toBeInstanceOf(CertkeeperError);
    expect(JSON.stringify(err.toJSON())).not.toMatch(/SECRET/);
    expect(err.describe()).not.toMatch(/SECRET/);
    const all = lines.join('\n');
    expect(all).toContain('challenge.exec_stderr');
    expect(all).toContain('dns.example');
    expect(all).not.toMatch(/SECRET/);
  });

  it('kills the program (and its children) at the timeout', async () => {
    const started = Date.now();
    const err = await solver('hang', join(dir, 'hang.log'), { timeoutSeconds: 1 })
      .present(ch, ctx)
      .catch((e) => e);
    const took = Date.now() - started;
    expect(err).toBeInstanceOf(CertkeeperError);
    expect(err.message).toContain('timed out after 1s and was killed');
    expect(err.hint).toContain('timeoutSeconds');
    // Bounded: well before the fixture's 30 s sleep would end.
    expect(took).toBeLessThan(10_000);
  });

  it('names a missing program', async () => {
    const config = execChallengeSchema.parse({
      type: 'dns-01',
      provider: 'exec',
      command: [join(dir, 'no-such-program')],
    });
    const err = await create(config, { logger: silentLogger, selfCheck })
      .present(ch, ctx)
      .catch((e) => e);
    expect(err.code).toBe('CK_ERR_EXEC_HOOK');
    expect(err.message).toContain('ENOENT');
    expect(err.field).toBe('challenge.command');
    expect(err.permanent).toBe(true);
  });

  it('runs the calls for one record name one after another, every cleanup even after a failure', async () => {
    const log = join(dir, 'seq.log');
    const s = solver('ok', log);
    const wild = { ...ch, dnsValue: 'wild' };
    const apex = { ...ch, wildcard: false, dnsValue: 'apex' };
    const other = {
      ...ch,
      domain: 'o.dns01.test',
      dnsRecordName: '_acme-challenge.o.dns01.test',
      dnsValue: 'other',
    };
    await s.presentAll!([apex, wild, other], ctx);
    const lines = (await readFile(log, 'utf8')).trim().split('\n');
    expect(
      lines.filter((l) => l.includes('_acme-challenge.e.dns01.test')).map((l) => l.split('|').at(-1)),
    ).toEqual(['apex', 'wild']);
    expect(lines).toHaveLength(3);

    const failing = solver('fail', join(dir, 'seq-fail.log'));
    const err = await failing.cleanupAll!([apex, wild], ctx).catch((e) => e);
    expect(err.code).toBe('CK_ERR_EXEC_HOOK');
    expect((await readFile(join(dir, 'seq-fail.log'), 'utf8')).trim().split('\n')).toHaveLength(2);
  });

  it('skips the propagation check unless asked', async () => {
    const s = solver('ok', join(dir, 'noop.log'));
    await expect(s.check!([ch], ctx)).resolves.toBeUndefined();
  });
});
