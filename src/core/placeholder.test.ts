import { execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../config/load.js';
import { createSelfSigned } from '../crypto/selfsigned.js';
import { planCertificate } from '../plan/plan.js';
import { CertStore } from '../store/store.js';
import { health } from './health.js';
import { isForeignPlaceholder, isOwnPlaceholder } from './placeholder.js';

let dir: string;
beforeAll(async () => {
  dir = await fs.mkdtemp(join(tmpdir(), 'ck-dummy-'));
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

describe("certbot's init-letsencrypt dummy", () => {
  it('counts as a placeholder: due at once, never "valid"', async () => {
    // What init-letsencrypt.sh writes: openssl req -x509 ... -days 1 -subj '/CN=localhost'
    const live = join(dir, 'live', 'example.com');
    await fs.mkdir(live, { recursive: true });
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-nodes',
        '-newkey',
        'rsa:2048',
        '-days',
        '1',
        '-keyout',
        join(live, 'privkey.pem'),
        '-out',
        join(live, 'fullchain.pem'),
        '-subj',
        '/CN=localhost',
      ],
      { stdio: 'ignore' },
    );
    const store = new CertStore(dir);
    const cur = await store.current('example.com');
    expect(cur?.placeholder).toBe(true);
    expect(health(cur, undefined, { now: new Date(), dangerDays: 14 }).status).toBe('placeholder');
    const cert = parseConfig({
      acme: {},
      certificates: [
        { name: 'example.com', domains: ['example.com'], challenge: { type: 'http-01', webroot: '/w' } },
      ],
    }).certificates[0]!;
    expect(planCertificate(cert, undefined, cur, { now: new Date() })).toMatchObject({
      due: true,
      reason: 'placeholder',
    });
  });

  it('a real certificate, even self-signed for its names, is not one', async () => {
    const { certPem } = await createSelfSigned({
      commonName: 'example.com',
      altNames: ['example.com'],
      days: 30,
    });
    expect(isForeignPlaceholder(certPem)).toBe(false);
    const { certPem: local } = await createSelfSigned({
      commonName: 'localhost',
      altNames: ['localhost'],
      days: 1,
    });
    expect(isForeignPlaceholder(local)).toBe(true);
  });
});

describe("certkeeper's own placeholder", () => {
  it('is known from the certificate when its state file is gone (it is written without fsync)', async () => {
    const store = new CertStore(join(dir, 'own'));
    const { certPem, keyPem } = await createSelfSigned({
      commonName: 'p.test',
      altNames: ['p.test'],
      days: 7,
    });
    expect(isOwnPlaceholder(certPem)).toBe(true);
    await store.save('p.test', {
      domains: ['p.test'],
      keyType: 'ecdsa-p256',
      fullchainPem: certPem,
      keyPem,
      placeholder: true,
    });
    await fs.rm(store.statePath('p.test'));
    const cur = await store.current('p.test');
    expect(cur?.serial).toBeDefined();
    expect(cur?.placeholder).toBe(true);
  });

  it('a self-signed certificate from elsewhere is not ours', () => {
    const pem = execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-nodes',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-keyout',
        '/dev/null',
        '-days',
        '1',
        '-subj',
        '/CN=p.test/O=example',
      ],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] },
    );
    expect(isOwnPlaceholder(pem)).toBe(false);
  });
});
