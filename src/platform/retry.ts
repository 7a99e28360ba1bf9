import { CertkeeperError } from '../errors.js';
import { sleep as defaultSleep } from './sleep.js';

const NO_RETRY = Symbol.for('certkeeper.noRetry');

/** Marks an error as one retrying cannot fix: retry() stops at once and the failure backoff waits long. */
export function noRetry<E extends object>(err: E): E {
  (err as Record<symbol, unknown>)[NO_RETRY] = true;
  return err;
}

/** True for errors marked with noRetry() and for CertkeeperErrors flagged permanent. */
export function isNoRetry(err: unknown): boolean {
  if (!err || typeof err !== 'object') return false;
  if ((err as Record<symbol, unknown>)[NO_RETRY] === true) return true;
  return err instanceof CertkeeperError && err.permanent;
}

export interface RetryOptions {
  /** Waits before attempts 2, 3, …: one attempt more than there are delays. */
  delaysMs: readonly number[];
  signal?: AbortSignal;
  /** Besides the no-retry marker: which errors are worth another attempt (default: all). */
  retryable?: (err: unknown) => boolean;
  onRetry?: (err: unknown, attempt: number, delayMs: number) => void;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

/**
 * The one retry helper: runs `fn` until it succeeds, the delays are used up, the error is marked no-retry (or not
 * retryable), or the signal aborts; then the last error is thrown.
 */
export async function retry<T>(fn: (attempt: number) => Promise<T>, opts: RetryOptions): Promise<T> {
  const sleep = opts.sleep ?? defaultSleep;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (err) {
      const delay = opts.delaysMs[attempt - 1];
      if (delay === undefined || opts.signal?.aborted || isNoRetry(err) || opts.retryable?.(err) === false)
        throw err;
      opts.onRetry?.(err, attempt, delay);
      try {
        await sleep(delay, opts.signal);
      } catch {
        throw err;
      }
    }
  }
}
