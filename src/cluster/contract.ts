/**
 * The Store/Locker contract the pipeline uses (shape agreed for this wave). The file store and PgStore both
 * implement it. When src/store/types.ts lands this file re-exports from there.
 */
import type { IssuedCertificate } from '../deploy/types.js';
import type { CertState } from '../store/state.js';
import type { SaveInput } from '../store/store.js';

export type { SaveInput };

export interface Lock {
  release(): Promise<void>;
  /** Aborts when the lock is lost (compromised / lease gone): the holder must stop before writing. */
  readonly lost: AbortSignal;
}
export interface LockHolderInfo {
  host: string;
  pid: number;
  startedAt?: string;
  node?: string;
  /** When the lock was taken (ISO). */
  since?: string;
}
export interface Locker {
  tryLock(name: string): Promise<Lock | undefined>;
  lock(name: string, opts: { waitMs: number; signal?: AbortSignal }): Promise<Lock>;
  holder(name: string): Promise<LockHolderInfo | undefined>;
}
export interface Store {
  readonly locker: Locker;
  listNames(): Promise<string[]>;
  current(name: string, state?: CertState): Promise<IssuedCertificate | undefined>;
  save(name: string, input: SaveInput): Promise<IssuedCertificate>;
  rollback(name: string): Promise<IssuedCertificate | undefined>;
  readState(name: string): Promise<CertState | undefined>;
  updateState(name: string, patch: Partial<CertState>): Promise<CertState>;
}
