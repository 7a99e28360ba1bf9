import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createTestCA, issueLeaf } from '../crypto/selfsigned.js';
import { CertStore } from './store.js';
import { readStatusSync } from './summary.js';

let root: string;
let store: CertStore;

beforeEach(async () => {
  root = await fs.mkdtemp(join(tmpdir(), 'ck-summary-'));
  store = new CertStore(root);
});
afterEach(() => fs.rm(root, { recursive: true, force: true }));

async function leaf(keyType: 'ecdsa-p256' | 'rsa-2048' = 'ecdsa-p256') {
  const ca = await createTestCA({ commonName: 'summary test CA' });
  const l = await issueLeaf(ca, { altNames: ['a.example.com', 'www.a.example.com'], days: 90, keyType });
  return { fullchainPem: l.certPem + ca.certPem, keyPem: l.keyPem, certPem: l.certPem };
}

/** What status used before: readState + current, reduced to the fields a status row reads. */
async function viaCurrent(name: string) {
  const state = await store.readState(name);
  const live = await store.current(name, state).catch(() => undefined);
  return {
    state,
    live: live && {
      domains: live.domains,
      keyType: live.keyType,
      serial: live.serial,
      notBefore: live.notBefore,
      notAfter: live.notAfter,
      ...(live.placeholder && { placeholder: true }),
    },
  };
}

describe('readStatusSync', () => {
  it('answers as readState + current do: a saved certificate, a missing one', async () => {
    const b = await leaf();
    await store.save('a', { domains: ['a.example.com'], keyType: 'ecdsa-p256', ...b });
    await store.updateState('a', { domains: ['a.example.com'], keyType: 'ecdsa-p256', version: 1 });
    const got = readStatusSync(store, 'a');
    expect(got.live?.serial).toMatch(/^[0-9A-F]+$/);
    expect(got).toEqual(await viaCurrent('a'));
    expect(readStatusSync(store, 'nothing')).toEqual({ state: undefined });
    expect(await viaCurrent('nothing')).toEqual({ state: undefined, live: undefined });
  });

  it('reads an adopted certbot folder without state: names from the certificate, key type from the key', async () => {
    const b = await leaf('rsa-2048');
    const live = join(root, 'live', 'old');
    await fs.mkdir(live, { recursive: true });
    await fs.writeFile(join(live, 'fullchain.pem'), b.fullchainPem);
    await fs.writeFile(join(live, 'privkey.pem'), b.keyPem, { mode: 0o600 });
    const got = readStatusSync(store, 'old');
    expect(got.live).toMatchObject({ keyType: 'rsa-2048', domains: ['a.example.com', 'www.a.example.com'] });
    expect(got).toEqual(await viaCurrent('old'));
    // without its key it is not live, as for current()
    await fs.rm(join(live, 'privkey.pem'));
    expect(readStatusSync(store, 'old').live).toBeUndefined();
    expect((await viaCurrent('old')).live).toBeUndefined();
  });

  it('names the state file when it is not JSON, as readState does', async () => {
    await fs.mkdir(join(root, 'state'), { recursive: true });
    await fs.writeFile(store.statePath('bad'), '{ nope');
    expect(() => readStatusSync(store, 'bad')).toThrow(/state\/bad\.json is not valid JSON/);
    await expect(store.readState('bad')).rejects.toThrow(/state\/bad\.json is not valid JSON/);
  });

  it('takes the live summary from the state only while .current points at the version the state names', async () => {
    const one = await leaf();
    const two = await leaf();
    await store.save('s', { domains: ['a.example.com'], keyType: 'ecdsa-p256', ...one });
    await store.save('s', { domains: ['a.example.com'], keyType: 'ecdsa-p256', ...two });
    expect(readStatusSync(store, 's')).toEqual(await viaCurrent('s'));
    // a crash between the switch and the state write: live shows version 2, the state still version 1 and its
    // serial; status must show what is live (the leaf is read), not what the state says
    const state = (await store.readState('s'))!;
    const shown = (await viaCurrent('s')).live!;
    await store.writeState('s', { ...state, version: 1, serial: 'AB', notAfter: new Date(0).toISOString() });
    const got = readStatusSync(store, 's');
    expect(got.live?.serial).toBe(shown.serial);
    expect(got.live?.notAfter.getTime()).toBe(shown.notAfter.getTime());
    // the state names the live version: its figures are used without reading the leaf (a broken leaf file shows it)
    await store.writeState('s', { ...state, serial: 'CD' });
    expect(readStatusSync(store, 's').live?.serial).toBe('CD');
    // the key gone: not live, whatever the state says
    await fs.rm(join(root, 'archive', 's', 'privkey2.pem'));
    expect(readStatusSync(store, 's').live).toBeUndefined();
    expect((await viaCurrent('s')).live).toBeUndefined();
  });
});
