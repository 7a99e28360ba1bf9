import { describe, expect, it } from 'vitest';
import { CertkeeperError } from '../errors.js';
import { isNoRetry, noRetry, retry } from './retry.js';

const instant = async () => {};

describe('retry', () => {
  it('retries with the given delays, then throws the last error', async () => {
    const waits: number[] = [];
    let n = 0;
    await expect(
      retry(
        async () => {
          n++;
          throw new Error(`fail ${n}`);
        },
        { delaysMs: [10, 20], sleep: async (ms) => void waits.push(ms) },
      ),
    ).rejects.toThrow('fail 3');
    expect(waits).toEqual([10, 20]);
    expect(
      await retry(async (a) => (a < 2 ? Promise.reject(new Error('x')) : 'ok'), {
        delaysMs: [1],
        sleep: instant,
      }),
    ).toBe('ok');
  });

  it('stops at once on a no-retry error or a permanent CertkeeperError', async () => {
    for (const err of [
      noRetry(new Error('bad config')),
      new CertkeeperError('acme', 'caa', { permanent: true }),
    ]) {
      let n = 0;
      await expect(
        retry(
          async () => {
            n++;
            throw err;
          },
          { delaysMs: [1, 1, 1], sleep: instant },
        ),
      ).rejects.toBe(err);
      expect(n).toBe(1);
      expect(isNoRetry(err)).toBe(true);
    }
    expect(isNoRetry(new Error('transient'))).toBe(false);
  });

  it('stops when the signal aborts', async () => {
    const ac = new AbortController();
    let n = 0;
    await expect(
      retry(
        async () => {
          n++;
          ac.abort();
          throw new Error('x');
        },
        { delaysMs: [1, 1], signal: ac.signal, sleep: instant },
      ),
    ).rejects.toThrow('x');
    expect(n).toBe(1);
  });
});
