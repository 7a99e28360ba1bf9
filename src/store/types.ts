/**
 * The storage contract: the certbot file store (store.ts) and the PostgreSQL store implement it; the pipeline,
 * the CLI and the daemon only see these interfaces. store/ never imports deploy/.
 */
import type { IssuedCertificate } from '../core/certificate.js';
import type { KeyType } from '../core/keys.js';
import type { CertState } from '../core/state.js';

export type { IssuedCertificate } from '../core/certificate.js';
export type { CertState } from '../core/state.js';

export interface Lock {
  release(): Promise<void>;
  /** Aborts when the lock is lost (compromised / lease gone): the holder must stop before writing. */
  readonly lost: AbortSignal;
}

export interface LockHolderInfo {
  host: string;
  pid: number;
  /** When the holding process started (ISO), so a reused pid is not mistaken for the holder. */
  startedAt?: string;
  /** Cluster node name, when there is one. */
  node?: string;
  /** When the lock was taken (ISO). */
  since?: string;
}

export interface Locker {
  /** undefined when someone alive holds it (holder info available through holder()). */
  tryLock(name: string): Promise<Lock | undefined>;
  /** Waits up to waitMs, then throws CertkeeperError kind 'lock' (code CK_ERR_LOCKED) naming the holder. */
  lock(name: string, opts: { waitMs: number; signal?: AbortSignal }): Promise<Lock>;
  holder(name: string): Promise<LockHolderInfo | undefined>;
}

export interface SaveInput {
  domains: string[];
  keyType: KeyType;
  /** What the CA returned: leaf first, then intermediates. */
  fullchainPem: string;
  keyPem: string;
  placeholder?: boolean;
  /**
   * State written together with the switch (one state write per save): e.g. lastAttempt, failures, and the
   * intent `pendingDeploy`, which is written *before* live/ switches so a crash right after is finished later.
   */
  state?: Partial<CertState>;
}

export interface Store {
  readonly locker: Locker;
  /** Names with live files or state: configured ones and adopted certbot ones alike. */
  listNames(): Promise<string[]>;
  /** The certificate live now, or undefined when there is none. */
  current(name: string, state?: CertState): Promise<IssuedCertificate | undefined>;
  /** Writes a new version and switches live to it atomically; returns what is live afterwards. */
  save(name: string, input: SaveInput): Promise<IssuedCertificate>;
  /** Switches live back to the newest complete version older than the current one. */
  rollback(name: string): Promise<IssuedCertificate | undefined>;
  readState(name: string): Promise<CertState | undefined>;
  /**
   * Optional: throws a 'store' error (code CK_ERR_DISK_FULL, with the fix) when there is too little room to store a
   * certificate, so nothing is ordered that could not be kept.
   */
  checkSpace?(name: string): Promise<void>;
  /** Read-modify-write of the state (shallow merge; a key set to undefined is removed). Callers hold the lock. */
  updateState(name: string, patch: Partial<CertState>): Promise<CertState>;
}
