import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fetchRenewalInfo, nextAriState, renewalInfoUrl } from './ari.js';

let server: Server;
let base: string;
let answer: { status: number; body: string; retryAfter?: string } = { status: 200, body: '{}' };
const directoryRequests: Record<string, number> = {};

beforeAll(async () => {
  server = createServer((req, res) => {
    directoryRequests[req.url!] = (directoryRequests[req.url!] ?? 0) + 1;
    if (req.url === '/dir-down') {
      res.writeHead(503).end();
      return;
    }
    if (req.url === '/dir' || req.url === '/dir-shared') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ newOrder: `${base}/new-order`, renewalInfo: `${base}/ri` }));
      return;
    }
    res.writeHead(answer.status, {
      'content-type': 'application/json',
      ...(answer.retryAfter ? { 'retry-after': answer.retryAfter } : {}),
    });
    res.end(answer.body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

const now = new Date('2030-01-01T00:00:00Z');
const window = { suggestedWindow: { start: '2030-01-10T00:00:00Z', end: '2030-01-12T00:00:00Z' } };

describe('ARI', () => {
  it('reads renewalInfo from the directory and the window with its Retry-After, clamped', async () => {
    expect(await renewalInfoUrl(`${base}/dir`)).toBe(`${base}/ri`);
    answer = { status: 200, body: JSON.stringify(window), retryAfter: '21600' };
    const info = await fetchRenewalInfo(`${base}/ri`, 'aaa.bbb', { now });
    expect(info).toMatchObject({ start: new Date('2030-01-10T00:00:00Z'), retryAfterMs: 21_600_000 });
    answer = { status: 200, body: JSON.stringify(window), retryAfter: '1' };
    expect((await fetchRenewalInfo(`${base}/ri`, 'aaa.bbb', { now })).retryAfterMs).toBe(60_000);
    answer = { status: 200, body: JSON.stringify(window), retryAfter: String(90 * 86400) };
    expect((await fetchRenewalInfo(`${base}/ri`, 'aaa.bbb', { now })).retryAfterMs).toBe(12 * 3600_000);
  });

  it('errors name the certificate and carry the CA’s Retry-After; bad windows are refused', async () => {
    answer = { status: 503, body: '{}', retryAfter: '120' };
    const err = await fetchRenewalInfo(`${base}/ri`, 'aaa.bbb', { now, cert: 'shop' }).catch((e) => e);
    expect(err).toMatchObject({
      code: 'CK_ERR_ARI',
      cert: 'shop',
      retryAfter: new Date('2030-01-01T00:02:00Z'),
    });
    expect(err.hint).toMatch(/falls back/);
    answer = {
      status: 200,
      body: JSON.stringify({
        suggestedWindow: { start: '2030-01-12T00:00:00Z', end: '2030-01-10T00:00:00Z' },
      }),
    };
    await expect(fetchRenewalInfo(`${base}/ri`, 'aaa.bbb', { now })).rejects.toThrow(
      /no valid suggestedWindow/,
    );
  });

  it('asks an unreachable directory once for a whole job, not once per certificate', async () => {
    const results = await Promise.allSettled(
      Array.from({ length: 50 }, () => renewalInfoUrl(`${base}/dir-down`)),
    );
    for (let i = 0; i < 20; i++)
      results.push(...(await Promise.allSettled([renewalInfoUrl(`${base}/dir-down`)])));
    expect(results).toHaveLength(70);
    for (const r of results) {
      expect(r).toMatchObject({ status: 'rejected', reason: { code: 'CK_ERR_ARI' } });
      expect((r as PromiseRejectedResult).reason.message).toMatch(/answered HTTP 503/);
    }
    expect(directoryRequests['/dir-down']).toBe(1);
    // an answer is not kept here (the issuer keeps it): concurrent reads share one request, a later one asks again
    const urls = await Promise.all(Array.from({ length: 10 }, () => renewalInfoUrl(`${base}/dir-shared`)));
    expect(new Set(urls)).toEqual(new Set([`${base}/ri`]));
    expect(directoryRequests['/dir-shared']).toBe(1);
    await renewalInfoUrl(`${base}/dir-shared`);
    expect(directoryRequests['/dir-shared']).toBe(2);
  });

  it('picks a random moment inside the window once and keeps it until the window changes', () => {
    const info = {
      start: new Date('2030-01-10T00:00:00Z'),
      end: new Date('2030-01-12T00:00:00Z'),
      retryAfterMs: 3600_000,
    };
    const first = nextAriState(undefined, info, now, () => 0.25);
    expect(first.selectedAt).toBe('2030-01-10T12:00:00.000Z');
    expect(first.nextCheckAt).toBe('2030-01-01T01:00:00.000Z');
    expect(nextAriState(first, info, now, () => 0.9).selectedAt).toBe(first.selectedAt);
    const moved = { ...info, start: new Date('2030-01-05T00:00:00Z'), end: new Date('2030-01-06T00:00:00Z') };
    expect(nextAriState(first, moved, now, () => 0.5).selectedAt).toBe('2030-01-05T12:00:00.000Z');
    const past = { ...info, start: new Date('2029-12-01T00:00:00Z'), end: new Date('2029-12-02T00:00:00Z') };
    expect(nextAriState(undefined, past, now, () => 0.5).selectedAt).toBe(now.toISOString());
  });
});
