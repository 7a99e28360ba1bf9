import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fetchRenewalInfo, nextAriState, renewalInfoUrl } from './ari.js';

let server: Server;
let base: string;
let answer: { status: number; body: string; retryAfter?: string } = { status: 200, body: '{}' };

beforeAll(async () => {
  server = createServer((req, res) => {
    if (req.url === '/dir') {
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
