/**
 * An in-memory Store + Locker for fast pipeline unit tests: the same contract as the file store
 * (src/store/types.ts), with knobs to make saving fail, a lock busy or a held lock lost.
 */
import type { IssuedCertificate } from '../../src/core/certificate.js';
import type { CertState } from '../../src/core/state.js';
import { certInfo, splitPemChain } from '../../src/crypto/pem.js';
import { CertkeeperError } from '../../src/errors.js';
import type { Lock, Locker, LockHolderInfo, SaveInput, Store } from '../../src/store/types.js';

export class MemoryLocker implements Locker {
  readonly held = new Map<string, AbortController>();
  /** Names some other (fake) process holds. */
  readonly foreign = new Map<string, LockHolderInfo>();

  async tryLock(name: string): Promise<Lock | undefined> {
    if (this.held.has(name) || this.foreign.has(name)) return undefined;
    const ac = new AbortController();
    this.held.set(name, ac);
    return {
      lost: ac.signal,
      release: async () => {
        if (this.held.get(name) === ac) this.held.delete(name);
      },
    };
  }

  async lock(name: string, _opts: { waitMs: number }): Promise<Lock> {
    const l = await this.tryLock(name);
    if (!l) throw new CertkeeperError('lock', `${name} is locked`, { code: 'CK_ERR_LOCKED', cert: name });
    return l;
  }

  async holder(name: string): Promise<LockHolderInfo | undefined> {
    return this.foreign.get(name) ?? (this.held.has(name) ? { host: 'here', pid: process.pid } : undefined);
  }

  /** Makes the current holder of `name` lose its lock (as if the lease were gone). */
  lose(name: string): void {
    this.held
      .get(name)
      ?.abort(new CertkeeperError('lock', 'the certificate lock was lost', { code: 'CK_ERR_LOCK_LOST' }));
  }
}

export class MemoryStore implements Store {
  readonly locker = new MemoryLocker();
  readonly states = new Map<string, CertState>();
  readonly live = new Map<string, IssuedCertificate>();
  /** Every save (placeholders included), in order. */
  readonly saved: { name: string; serial: string; placeholder: boolean }[] = [];
  stateWrites = 0;
  /** When set, the next saves throw it (e.g. an ENOSPC error). */
  saveError?: Error;
  /** When set, checkSpace throws it. */
  spaceError?: CertkeeperError;
  /** Called inside save() right before the switch (to observe the state at that moment). */
  beforeSwitch?: (name: string) => void;

  async listNames(): Promise<string[]> {
    return [...new Set([...this.states.keys(), ...this.live.keys()])].sort();
  }

  async current(name: string, state?: CertState): Promise<IssuedCertificate | undefined> {
    const l = this.live.get(name);
    if (!l) return undefined;
    const st = state ?? this.states.get(name);
    return { ...l, placeholder: st?.placeholder === true };
  }

  async save(name: string, input: SaveInput): Promise<IssuedCertificate> {
    if (this.saveError) throw this.saveError;
    const blocks = splitPemChain(input.fullchainPem);
    const info = certInfo(blocks[0]!);
    const version = (this.live.get(name)?.version ?? 0) + 1;
    this.beforeSwitch?.(name);
    const cert: IssuedCertificate = {
      name,
      domains: input.domains,
      keyType: input.keyType,
      certPem: blocks[0]!,
      chainPem: blocks.slice(1).join(''),
      fullchainPem: blocks.join(''),
      keyPem: input.keyPem,
      serial: info.serial,
      notBefore: info.notBefore,
      notAfter: info.notAfter,
      version,
      paths: { cert: '/mem/cert', chain: '/mem/chain', fullchain: '/mem/fullchain', privkey: '/mem/privkey' },
      placeholder: input.placeholder === true,
    };
    this.live.set(name, cert);
    this.saved.push({ name, serial: info.serial, placeholder: input.placeholder === true });
    await this.updateState(name, {
      domains: input.domains,
      keyType: input.keyType,
      serial: info.serial,
      notBefore: info.notBefore.toISOString(),
      notAfter: info.notAfter.toISOString(),
      version,
      placeholder: input.placeholder === true,
      ...input.state,
    });
    return cert;
  }

  async rollback(): Promise<IssuedCertificate | undefined> {
    return undefined;
  }

  async readState(name: string): Promise<CertState | undefined> {
    const s = this.states.get(name);
    return s && structuredClone(s);
  }

  async updateState(name: string, patch: Partial<CertState>): Promise<CertState> {
    const next: CertState = { ...(this.states.get(name) ?? { name }), ...patch, name };
    for (const k of Object.keys(next) as (keyof CertState)[]) if (next[k] === undefined) delete next[k];
    this.states.set(name, structuredClone(next));
    this.stateWrites++;
    return next;
  }

  async checkSpace(): Promise<void> {
    if (this.spaceError) throw this.spaceError;
  }
}
