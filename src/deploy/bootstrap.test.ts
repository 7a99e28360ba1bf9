import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { CertificateConfig } from '../config/schema.js';
import { certInfo } from '../crypto/pem.js';
import { createSelfSigned } from '../crypto/selfsigned.js';
import { silentLogger } from '../log.js';
import { CertStore } from '../store/store.js';
import { ensureBootstrap, FFDHE2048_PEM, OPTIONS_SSL_NGINX, PLACEHOLDER_DAYS } from './bootstrap.js';

const certConfig: CertificateConfig = {
  name: 'www',
  domains: ['www.example.test', 'example.test'],
  keyType: 'ecdsa-p256',
  challenge: { type: 'http-01', webroot: '/var/www/certbot' },
  deploy: [],
};

let root: string;
let store: CertStore;
beforeEach(async () => {
  root = await fs.mkdtemp(join(tmpdir(), 'ck-bootstrap-'));
  store = new CertStore(root);
});
afterEach(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

describe('ensureBootstrap', () => {
  it('writes a short-lived self-signed placeholder, marked in state, plus the shared nginx files', async () => {
    expect(await ensureBootstrap(certConfig, store, silentLogger)).toBe(true);
    const live = await store.current('www');
    expect(live?.placeholder).toBe(true);
    const info = certInfo(live!.certPem);
    expect(info.subjectAltNames.sort()).toEqual(['example.test', 'www.example.test']);
    expect(info.issuer).toContain('certkeeper placeholder');
    const lifetimeDays = (info.notAfter.getTime() - Date.now()) / 86_400_000;
    expect(lifetimeDays).toBeGreaterThan(PLACEHOLDER_DAYS - 1);
    expect(lifetimeDays).toBeLessThanOrEqual(PLACEHOLDER_DAYS);
    const state = await store.readState('www');
    expect(state?.placeholder).toBe(true);
    expect(state?.serial).toBe(live!.serial);
    // nginx reads these paths; the key must not be world-readable
    const keyMode = (await fs.stat(join(root, 'live/www/privkey.pem'))).mode & 0o777;
    expect(keyMode).toBe(0o600);
    expect(await fs.readFile(join(root, 'options-ssl-nginx.conf'), 'utf8')).toBe(OPTIONS_SSL_NGINX);
    expect(await fs.readFile(join(root, 'ssl-dhparams.pem'), 'utf8')).toBe(FFDHE2048_PEM);
  });

  it('is idempotent: a second call keeps the placeholder already live', async () => {
    await ensureBootstrap(certConfig, store, silentLogger);
    const first = await store.current('www');
    expect(await ensureBootstrap(certConfig, store, silentLogger)).toBe(false);
    expect((await store.current('www'))?.serial).toBe(first?.serial);
  });

  it('never replaces a real certificate with a placeholder', async () => {
    const real = await createSelfSigned({
      commonName: 'www.example.test',
      altNames: certConfig.domains,
      days: 90,
    });
    const saved = await store.save('www', {
      domains: certConfig.domains,
      keyType: 'ecdsa-p256',
      fullchainPem: real.certPem,
      keyPem: real.keyPem,
    });
    expect(await ensureBootstrap(certConfig, store, silentLogger)).toBe(false);
    const live = await store.current('www');
    expect(live?.serial).toBe(saved.serial);
    expect(live?.placeholder).toBe(false);
    expect(await store.versions('www')).toEqual([1]);
  });

  it('leaves an adopted certbot live/ folder (plain files, no state) alone', async () => {
    const real = await createSelfSigned({
      commonName: 'www.example.test',
      altNames: certConfig.domains,
      days: 90,
    });
    await fs.mkdir(join(root, 'live/www'), { recursive: true });
    await fs.writeFile(join(root, 'live/www/fullchain.pem'), real.certPem);
    await fs.writeFile(join(root, 'live/www/privkey.pem'), real.keyPem, { mode: 0o600 });
    expect(await ensureBootstrap(certConfig, store, silentLogger)).toBe(false);
    expect(await fs.readFile(join(root, 'live/www/fullchain.pem'), 'utf8')).toBe(real.certPem);
  });

  it('keeps existing options-ssl-nginx.conf and ssl-dhparams.pem untouched', async () => {
    await fs.writeFile(join(root, 'options-ssl-nginx.conf'), '# mine\n');
    await fs.writeFile(join(root, 'ssl-dhparams.pem'), 'custom');
    await ensureBootstrap(certConfig, store, silentLogger);
    expect(await fs.readFile(join(root, 'options-ssl-nginx.conf'), 'utf8')).toBe('# mine\n');
    expect(await fs.readFile(join(root, 'ssl-dhparams.pem'), 'utf8')).toBe('custom');
  });
});

describe('ssl-dhparams.pem', () => {
  it('is exactly RFC 7919 ffdhe2048: p = 2^2048 - 2^1984 + (floor(2^1918 * e) + 560316) * 2^64 - 1, g = 2', () => {
    const der = Buffer.from(FFDHE2048_PEM.replace(/-----[^-]+-----|\s/g, ''), 'base64');
    // SEQUENCE(0x30 0x82 len16) { INTEGER(0x02 0x82 0x0101, 0x00 + 256 bytes), INTEGER(0x02 0x01 g) }
    expect([...der.subarray(0, 2)]).toEqual([0x30, 0x82]);
    expect([...der.subarray(4, 9)]).toEqual([0x02, 0x82, 0x01, 0x01, 0x00]);
    const p = BigInt(`0x${der.subarray(9, 9 + 256).toString('hex')}`);
    expect([...der.subarray(265)]).toEqual([0x02, 0x01, 0x02]);

    // e = sum 1/k!, computed in fixed point with 64 guard bits.
    const scale = 1918n + 64n;
    let term = 1n << scale;
    let e = 0n;
    for (let k = 1n; term > 0n; k++) {
      e += term;
      term /= k;
    }
    const floorE = e >> 64n;
    const expected = (1n << 2048n) - (1n << 1984n) + (floorE + 560316n) * (1n << 64n) - 1n;
    expect(p === expected).toBe(true);
  });
});
