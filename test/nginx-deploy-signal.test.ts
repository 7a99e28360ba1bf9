/**
 * The nginx deployer without Docker, against a real nginx: `signal: {pidFile}` (shared PID namespace / same host)
 * and `command: [...]`, with `nginx -t` as testCommand. The served serial is read back over TLS.
 */
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSelfSigned } from '../src/crypto/selfsigned.js';
import { create } from '../src/deploy/nginx/index.js';
import { type NginxDeployInput, nginxDeploySchema } from '../src/deploy/nginx/schema.js';
import type { DeployContext, IssuedCertificate } from '../src/deploy/types.js';
import { CertkeeperError } from '../src/errors.js';
import { silentLogger } from '../src/log.js';
import { CertStore } from '../src/store/store.js';
import { probeServedCertificate } from '../src/verify/tls-probe.js';
import { NGINX_BIN, type NginxHandle, startNginx } from './harness/index.js';

const NAME = 'plain';
const DOMAIN = 'plain.certkeeper.test';
let work: string;
let store: CertStore;
let nginx: NginxHandle;

async function saveNew(opts: { mismatchedKey?: boolean } = {}): Promise<IssuedCertificate> {
  const c = await createSelfSigned({ commonName: DOMAIN, altNames: [DOMAIN], days: 30 });
  const keyPem = opts.mismatchedKey
    ? (await createSelfSigned({ commonName: 'other', altNames: ['other.test'], days: 1 })).keyPem
    : c.keyPem;
  return store.save(NAME, { domains: [DOMAIN], keyType: 'ecdsa-p256', fullchainPem: c.certPem, keyPem });
}

function ctx(): DeployContext & { rollbacks: number } {
  const c = {
    rollbacks: 0,
    logger: silentLogger,
    getState: () => undefined,
    setState: async () => {},
    rollback: async () => {
      c.rollbacks++;
      return store.rollback(NAME);
    },
  };
  return c;
}

function deployer(input: Omit<NginxDeployInput, 'type'>) {
  const config = nginxDeploySchema.parse({
    type: 'nginx',
    verify: { address: `127.0.0.1:${nginx.httpsPort}`, timeoutSeconds: 5 },
    ...input,
  });
  return create(config, { logger: silentLogger, field: 'certificates[0].deploy[0]' });
}

const served = async () =>
  (await probeServedCertificate({ host: '127.0.0.1', port: nginx.httpsPort! }, DOMAIN)).serial;

/**
 * What the next connections get: no waiting here. The deployer's verify returns only once every name has been
 * served the new serial for its settle period (old workers gone), so from then on every handshake must agree.
 */
async function servedNow(times = 5): Promise<string[]> {
  const seen = new Set<string>();
  for (let i = 0; i < times; i++) seen.add(await served());
  return [...seen];
}

beforeAll(async () => {
  work = await fs.mkdtemp(join(tmpdir(), 'ck-nginx-signal-'));
  store = new CertStore(join(work, 'le'));
  await saveNew();
  const paths = store.livePaths(NAME);
  nginx = await startNginx({
    webroot: join(work, 'www'),
    tlsServers: [{ serverName: DOMAIN, certPath: paths.fullchain, keyPath: paths.privkey }],
  });
});

afterAll(async () => {
  await nginx?.stop();
  await fs.rm(work, { recursive: true, force: true });
});

describe('nginx deployer, signal mode', () => {
  it('reloads a plain nginx through its pid file and verifies the new serial is served', async () => {
    const before = await served();
    const cert = await saveNew();
    expect(await served()).toBe(before); // stored is not served until the reload
    const d = deployer({ signal: { pidFile: nginx.pidFile } });
    const res = await d.deploy(cert, ctx());
    expect(res).toMatchObject({ ok: true, observedSerial: cert.serial });
    expect(res.detail).toContain(`serves serial ${cert.serial}`);
    expect(await servedNow()).toEqual([cert.serial]);
  });

  it('does not reload when nginx -t rejects the new files, and puts the previous version back live', async () => {
    const good = await store.current(NAME);
    const bad = await saveNew({ mismatchedKey: true });
    const c = ctx();
    const d = deployer({
      signal: { pidFile: nginx.pidFile },
      testCommand: [NGINX_BIN, '-t', '-q', '-p', nginx.prefix, '-c', nginx.confPath, '-e', nginx.errorLog],
    });
    const err = (await d.deploy(bad, c).catch((e: unknown) => e)) as CertkeeperError;
    expect(err).toBeInstanceOf(CertkeeperError);
    expect(err.kind).toBe('deploy');
    expect(err.code).toBe('CK_ERR_NGINX_TEST');
    expect(err.message).toMatch(/\[emerg\].*key values mismatch/);
    expect(err.message).toContain(`previous version (serial ${good!.serial}) is live again`);
    expect(c.rollbacks).toBe(1);
    expect((await store.current(NAME))?.serial).toBe(good!.serial);
    expect(await served()).toBe(good!.serial);
  });

  it('names the pid file when it is missing, and the process when it is gone', async () => {
    const cert = (await store.current(NAME))!;
    const missing = (await deployer({ signal: { pidFile: join(work, 'nope.pid') } })
      .deploy(cert, ctx())
      .catch((e: unknown) => e)) as CertkeeperError;
    expect(missing.message).toContain(`${join(work, 'nope.pid')}`);
    expect(missing.field).toBe('certificates[0].deploy[0].signal.pidFile');
    // A pid that cannot exist (above pid_max) stands for a process in another PID namespace.
    await fs.writeFile(join(work, 'gone.pid'), '4194305\n');
    const gone = (await deployer({ signal: { pidFile: join(work, 'gone.pid') } })
      .deploy(cert, ctx())
      .catch((e: unknown) => e)) as CertkeeperError;
    expect(gone.message).toContain('no process 4194305');
    expect(gone.hint).toContain('pid: "service:nginx"');
  });
});

describe('nginx deployer, command mode', () => {
  it('reloads with a command run without a shell, then verifies', async () => {
    const cert = await saveNew();
    const d = deployer({
      command: [NGINX_BIN, '-p', nginx.prefix, '-c', nginx.confPath, '-e', nginx.errorLog, '-s', 'reload'],
      testCommand: [NGINX_BIN, '-t', '-q', '-p', nginx.prefix, '-c', nginx.confPath, '-e', nginx.errorLog],
    });
    const res = await d.deploy(cert, ctx());
    expect(res).toMatchObject({ ok: true, observedSerial: cert.serial });
    expect(await servedNow()).toEqual([cert.serial]);
  });

  it('fails with the command output when the reload command fails', async () => {
    const cert = (await store.current(NAME))!;
    const err = (await deployer({
      command: [process.execPath, '-e', 'console.error("boom: cannot reload"); process.exit(3)'],
    })
      .deploy(cert, ctx())
      .catch((e: unknown) => e)) as CertkeeperError;
    expect(err.kind).toBe('deploy');
    expect(err.message).toContain('boom: cannot reload');
  });
});
