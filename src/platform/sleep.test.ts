import { describe, expect, it } from 'vitest';
import { sleep, within, withTimeout } from './sleep.js';

const never = new Promise<never>(() => {});

describe('sleep', () => {
  it('rejects with the signal reason when aborted, before or during the wait', async () => {
    const before = new AbortController();
    before.abort(new Error('stopped before'));
    await expect(sleep(60_000, before.signal)).rejects.toThrow('stopped before');
    const during = new AbortController();
    const p = sleep(60_000, during.signal);
    during.abort(new Error('stopped during'));
    await expect(p).rejects.toThrow('stopped during');
  });
});

describe('withTimeout', () => {
  it('passes the value through, and rejects with ETIMEDOUT naming the call when nothing comes', async () => {
    await expect(withTimeout(Promise.resolve(7), 1_000, 'x')).resolves.toBe(7);
    await expect(withTimeout(never, 5, 'Docker API: ping')).rejects.toMatchObject({
      code: 'ETIMEDOUT',
      message: 'Docker API: ping: no answer within 5 ms',
    });
  });
});

describe('within', () => {
  it('says whether the promise fulfilled in time and lets a rejection through', async () => {
    await expect(within(Promise.resolve(), 1_000)).resolves.toBe(true);
    await expect(within(never, 5)).resolves.toBe(false);
    await expect(within(Promise.reject(new Error('boom')), 1_000)).rejects.toThrow('boom');
  });
});
