import 'reflect-metadata';
import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import https from 'node:https';
import * as x509 from '@peculiar/x509';
import * as acme from 'acme-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { splitPemChain } from '../../src/crypto/pem.js';
import { simpleRequest } from '../harness/http.js';
import { type PebbleHandle, startPebble } from '../harness/pebble.js';
import { verifyChain } from '../harness/tls.js';
import { type AriServer, ariCertId, ariParts, startAriServer } from './ari-server.js';

/** Issues one certificate from the harness Pebble over DNS-01 through challtestsrv (no real DNS involved). */
async function issueFromPebble(pebble: PebbleHandle, name: string): Promise<string> {
  acme.axios.defaults.httpsAgent = new https.Agent({ ca: await readFile(pebble.caBundlePath, 'utf8') });
  const client = new acme.Client({
    directoryUrl: pebble.directoryUrl,
    accountKey: await acme.crypto.createPrivateEcdsaKey(),
    backoffAttempts: 5,
    backoffMin: 50,
    backoffMax: 500,
  });
  const [, csr] = await acme.crypto.createCsr({ commonName: name, altNames: [name] });
  return client.auto({
    csr,
    termsOfServiceAgreed: true,
    challengePriority: ['dns-01'],
    skipChallengeVerification: true, // the self-check would ask the system resolver; Pebble asks challtestsrv
    challengeCreateFn: async (authz, _ch, keyAuthorization) =>
      pebble.setTxt(`_acme-challenge.${authz.identifier.value}`, keyAuthorization),
    challengeRemoveFn: async (authz) => pebble.clearTxt(`_acme-challenge.${authz.identifier.value}`),
  });
}

describe('ARI fake beside Pebble', () => {
  let pebble: PebbleHandle | undefined;
  let ari: AriServer | undefined;
  let fullchain: string;

  beforeAll(async () => {
    pebble = await startPebble();
    fullchain = await issueFromPebble(pebble, 'ari.example.test');
  });
  afterAll(async () => {
    await ari?.stop();
    await pebble?.stop();
  });

  it('computes the certID of a Pebble-issued certificate from its AKI (= the intermediate key) and serial', async () => {
    const p = pebble as PebbleHandle;
    expect(verifyChain(fullchain, await p.rootPem())).toBe(true);
    const leaf = new X509Certificate(splitPemChain(fullchain)[0] as string);
    const id = ariCertId(fullchain);
    const [akiPart, serialPart] = id.split('.') as [string, string];
    expect(BigInt(`0x${Buffer.from(serialPart, 'base64url').toString('hex')}`)).toBe(
      BigInt(`0x${leaf.serialNumber}`),
    );
    const inter = new X509Certificate(await p.intermediatePem());
    expect(Buffer.from(akiPart, 'base64url')).toEqual(ariParts(leaf.raw).keyIdentifier);
    // Pebble's AKI is the intermediate's subject key identifier.
    const ski = new x509.X509Certificate(await p.intermediatePem()).getExtension(
      x509.SubjectKeyIdentifierExtension,
    );
    expect(Buffer.from(akiPart, 'base64url').toString('hex')).toBe(ski?.keyId);
    expect(leaf.checkIssued(inter)).toBe(true);
  });

  it('adds renewalInfo to the upstream directory and answers windows with Retry-After', async () => {
    const p = pebble as PebbleHandle;
    const seen: string[] = [];
    ari = await startAriServer({
      upstreamDirectoryUrl: p.directoryUrl,
      caBundlePath: p.caBundlePath,
      respond: (certId) => {
        seen.push(certId);
        return certId.startsWith('broken')
          ? { status: 503, body: { type: 'urn:ietf:params:acme:error:serverInternal' }, retryAfterSeconds: 7 }
          : undefined;
      },
    });
    const dir = JSON.parse((await simpleRequest(ari.directoryUrl)).body) as Record<string, string>;
    const upstream = JSON.parse(
      (await simpleRequest(p.directoryUrl, { ca: await readFile(p.caBundlePath, 'utf8') })).body,
    );
    expect(dir.renewalInfo).toBe(ari.renewalInfoUrl);
    expect(dir.newOrder).toBe(upstream.newOrder);
    expect(dir.newNonce).toBe(upstream.newNonce);

    const id = ariCertId(fullchain);
    // Default: a window in the future, with the default Retry-After.
    let res = await simpleRequest(`${dir.renewalInfo}/${id}`);
    expect(res.status).toBe(200);
    expect(res.headers['retry-after']).toBe('21600');
    const def = JSON.parse(res.body).suggestedWindow;
    expect(Date.parse(def.start)).toBeGreaterThan(Date.now());
    expect(Date.parse(def.end)).toBeGreaterThan(Date.parse(def.start));

    // '*' applies to all, a specific window wins over it.
    const past = { start: new Date(Date.now() - 3_600_000), end: new Date(Date.now() - 60_000) };
    ari.setWindow('*', { start: '2030-01-01T00:00:00Z', end: '2030-01-02T00:00:00Z' });
    ari.setWindow(id, past);
    res = await simpleRequest(`${dir.renewalInfo}/${id}`);
    expect(JSON.parse(res.body).suggestedWindow).toEqual({
      start: past.start.toISOString(),
      end: past.end.toISOString(),
    });
    res = await simpleRequest(`${dir.renewalInfo}/AAAA.BBBB`);
    expect(JSON.parse(res.body).suggestedWindow.start).toBe('2030-01-01T00:00:00Z');

    // respond() can answer an error with its own Retry-After; malformed IDs are refused.
    res = await simpleRequest(`${dir.renewalInfo}/broken.AQ`);
    expect(res.status).toBe(503);
    expect(res.headers['retry-after']).toBe('7');
    expect((await simpleRequest(`${dir.renewalInfo}/no-dot-here`)).status).toBe(400);
    expect((await simpleRequest(`${ari.directoryUrl.replace('/directory', '/elsewhere')}`)).status).toBe(404);

    expect(ari.requests).toEqual([id, id, 'AAAA.BBBB', 'broken.AQ', 'no-dot-here']);
    expect(seen).toEqual([id, id, 'AAAA.BBBB', 'broken.AQ']);
  });
});
