/**
 * Unit level: schema rules, error classification, and the failure paths that need no nginx (no Docker daemon at
 * a socket path, commands that fail). The real nginx runs in test/nginx-deploy-signal.test.ts and
 * test/docker-nginx.test.ts.
 */
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Dockerode from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../config/load.js';
import { createSelfSigned } from '../../crypto/selfsigned.js';
import { CertkeeperError } from '../../errors.js';
import { silentLogger } from '../../log.js';
import { CertStore } from '../../store/store.js';
import type { DeployContext, IssuedCertificate } from '../types.js';
import { create, deployerName, mentionsCertificateFiles } from './index.js';
import { nginxDeploySchema } from './schema.js';
import { firstErrorLine } from './targets.js';

let work: string;
let cert: IssuedCertificate;
const ctx: DeployContext = {
  logger: silentLogger,
  getState: () => undefined,
  setState: async () => {},
  rollback: async () => {
    throw new Error('rollback must not be called here');
  },
};

beforeAll(async () => {
  work = await fs.mkdtemp(join(tmpdir(), 'ck-nginx-unit-'));
  const c = await createSelfSigned({
    commonName: 'u.certkeeper.test',
    altNames: ['u.certkeeper.test'],
    days: 1,
  });
  cert = await new CertStore(work).save('u', {
    domains: ['u.certkeeper.test'],
    keyType: 'ecdsa-p256',
    fullchainPem: c.certPem,
    keyPem: c.keyPem,
  });
});
afterAll(async () => {
  await fs.rm(work, { recursive: true, force: true });
});

function configWith(deploy: unknown) {
  return parseConfig(
    {
      acme: { directoryUrl: 'https://127.0.0.1:14000/dir' },
      certificates: [
        {
          name: 'u',
          domains: ['u.certkeeper.test'],
          challenge: { type: 'http-01', webroot: '/tmp/w' },
          deploy: [deploy],
        },
      ],
    },
    { env: {} },
  );
}

describe('nginx deploy schema', () => {
  it('fills defaults: SIGHUP reload, nginx -t first, verify on 10 s', () => {
    const d = configWith({ type: 'nginx', docker: { container: 'web' } }).certificates[0]!.deploy[0]!;
    expect(d).toMatchObject({
      reload: 'signal',
      testConfig: true,
      timeoutSeconds: 30,
      verify: { enabled: true, timeoutSeconds: 10, settleSeconds: 1 },
    });
  });

  it('needs exactly one way to reach nginx, with a message naming the choices', () => {
    expect(() => configWith({ type: 'nginx' })).toThrow(
      /certificates\[0\]\.deploy\[0\]: say how to reach nginx: set one of docker/,
    );
    expect(() =>
      configWith({ type: 'nginx', command: ['x'], signal: { pidFile: '/run/nginx.pid' } }),
    ).toThrow(/only one of docker, signal, command/);
    expect(() => configWith({ type: 'nginx', docker: { label: 'nolabel' } })).toThrow(
      /docker\.label: expected KEY=VALUE/,
    );
    expect(() =>
      configWith({ type: 'nginx', docker: { container: 'web' }, verify: { address: 'nginx' } }),
    ).toThrow(/verify\.address: expected host:port/);
    expect(() =>
      configWith({ type: 'nginx', docker: { container: 'web' }, testCommand: ['nginx', '-t'] }),
    ).toThrow(/testCommand/);
  });

  it('names deployers by what they reach', () => {
    expect(deployerName(nginxDeploySchema.parse({ type: 'nginx', docker: { label: 'a=b' } }))).toBe(
      'nginx:docker:a=b',
    );
    expect(
      deployerName(nginxDeploySchema.parse({ type: 'nginx', signal: { pidFile: '/run/nginx.pid' } })),
    ).toBe('nginx:signal:/run/nginx.pid');
  });
});

describe('classifying nginx -t output', () => {
  it('picks the [emerg] line and tells certificate problems from config problems', () => {
    const keyMismatch =
      'nginx: [emerg] SSL_CTX_use_PrivateKey("/etc/letsencrypt/live/u/privkey.pem") failed (SSL: error:05800074:x509 certificate routines::key values mismatch)\nnginx: configuration file /etc/nginx/nginx.conf test failed';
    expect(firstErrorLine(keyMismatch)).toMatch(/^nginx: \[emerg\] SSL_CTX_use_PrivateKey/);
    expect(mentionsCertificateFiles(keyMismatch, 'u')).toBe(true);
    expect(mentionsCertificateFiles(keyMismatch, 'other')).toBe(false);
    const syntax = 'nginx: [emerg] unknown directive "foo" in /etc/nginx/conf.d/a.conf:3';
    expect(mentionsCertificateFiles(syntax, 'u')).toBe(false);
    expect(mentionsCertificateFiles('cannot load certificate "/etc/letsencrypt/archive/u.v2/x"', 'u')).toBe(
      false,
    );
  });
});

describe('failure paths without nginx', () => {
  it('no Docker daemon at the socket: a deploy error that says how to give access', async () => {
    const docker = new Dockerode({ socketPath: join(work, 'no-docker.sock') });
    const d = create(nginxDeploySchema.parse({ type: 'nginx', docker: { container: 'web' } }), {
      logger: silentLogger,
      docker,
    });
    const err = (await d.deploy(cert, ctx).catch((e: unknown) => e)) as CertkeeperError;
    expect(err).toBeInstanceOf(CertkeeperError);
    expect(err.code).toBe('CK_ERR_DOCKER_UNREACHABLE');
    expect(err.cert).toBe('u');
    expect(err.hint).toContain('DOCKER_HOST');
  });

  it('a failing testCommand stops before the reload command runs', async () => {
    const marker = join(work, 'reloaded');
    const d = create(
      nginxDeploySchema.parse({
        type: 'nginx',
        command: [process.execPath, '-e', `require('fs').writeFileSync(${JSON.stringify(marker)}, 'x')`],
        testCommand: [
          process.execPath,
          '-e',
          'console.error("nginx: [emerg] unknown directive \\"x\\" in /etc/nginx/a.conf:1"); process.exit(1)',
        ],
      }),
      { logger: silentLogger },
    );
    const err = (await d.deploy(cert, ctx).catch((e: unknown) => e)) as CertkeeperError;
    expect(err.code).toBe('CK_ERR_NGINX_TEST');
    expect(err.message).toContain('unknown directive "x"');
    await expect(fs.access(marker)).rejects.toThrow();
  });

  it('a command that does not exist is named', async () => {
    const d = create(nginxDeploySchema.parse({ type: 'nginx', command: [join(work, 'no-such-binary')] }), {
      logger: silentLogger,
    });
    const err = (await d.deploy(cert, ctx).catch((e: unknown) => e)) as CertkeeperError;
    expect(err.message).toContain('no-such-binary');
    expect(err.message).toContain('ENOENT');
  });
});
