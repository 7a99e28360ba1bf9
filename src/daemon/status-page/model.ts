/**
 * What the status page and the metrics say about one certificate, beyond the status row: when its renewal was
 * planned (kept once it is due, so "overdue" can be seen), whether the live serial was deployed, which CA issued
 * it and with which ACME profile. Built on the daemon's in-memory state (StateCache); no secrets.
 */
import { readFile } from 'node:fs/promises';
import { isDeployed } from '../../core/health.js';
import { certInfo } from '../../crypto/pem.js';
import { planCertificate } from '../../plan/plan.js';
import type { CertStore } from '../../store/store.js';
import type { CachedCert } from '../cache.js';

/**
 * The planned renewal moment. For the expiry and ARI rules it is the rule's moment (1/3 of the lifetime left, the
 * ARI choice, or the emergency point), also once it has passed and also during a failure backoff; a placeholder is
 * due since it was made; other event-driven reasons (nothing stored, domains or key type changed, revoked) are
 * due since this daemon first saw them so. Undefined for certificates that are not configured.
 */
export class RenewalClock {
  private readonly dueSince = new Map<string, { key: string; at: Date }>();

  constructor(private readonly renewBeforeFraction: number | undefined) {}

  plannedAt(e: CachedCert, now: Date): Date | undefined {
    if (!e.config) return undefined;
    if (e.live && (e.state?.placeholder || e.live.placeholder)) return e.live.notBefore;
    // Planned from the epoch: no rule's moment has come, so the plan names the moment the rules choose.
    const rules = planCertificate(e.config, e.state, e.live, {
      now: new Date(0),
      renewBeforeFraction: this.renewBeforeFraction,
    });
    if (!rules.due && rules.renewAt) {
      this.dueSince.delete(e.name);
      return rules.renewAt;
    }
    const key = `${e.live?.serial ?? '-'}|${rules.reason}`;
    const seen = this.dueSince.get(e.name);
    if (seen?.key === key) return seen.at;
    this.dueSince.set(e.name, { key, at: now });
    return now;
  }
}

/**
 * "Deployed" (the one health function's verdict: no deploy pending for the live serial, the last round succeeded).
 * Undefined when there is nothing to deploy: no deployers, no live certificate, or only the placeholder.
 */
export function deployedOf(e: CachedCert): boolean | undefined {
  if (!e.config?.deploy.length || !e.live || e.live.placeholder || e.state?.placeholder) return undefined;
  return isDeployed(e.live, e.state);
}

/** The ACME profile configured for the certificate (when the configuration has profiles), else undefined. */
export function profileOf(e: CachedCert): string | undefined {
  const cfg = e.config as { profile?: unknown } | undefined;
  const st = e.state as { profile?: unknown } | undefined;
  const p = cfg?.profile ?? st?.profile;
  return typeof p === 'string' ? p : undefined;
}

/** Issuer names of live certificates, read from live/<name>/cert.pem once per serial. */
export class IssuerCache {
  private readonly known = new Map<string, { serial: string; issuer: string }>();

  constructor(private readonly store: Pick<CertStore, 'livePaths'>) {}

  get(e: CachedCert): string | undefined {
    const k = this.known.get(e.name);
    return k && e.live && k.serial === e.live.serial ? k.issuer : undefined;
  }

  /** Reads what is missing (bounded concurrency); unreadable files leave the issuer unknown. */
  async fill(entries: CachedCert[]): Promise<void> {
    const todo = entries.filter(
      (e) => e.live && !e.live.placeholder && !e.state?.placeholder && this.get(e) === undefined,
    );
    let next = 0;
    const worker = async () => {
      while (next < todo.length) {
        const e = todo[next++]!;
        try {
          const info = certInfo(await readFile(this.store.livePaths(e.name).cert, 'utf8'));
          this.known.set(e.name, { serial: info.serial, issuer: issuerName(info.issuer) });
        } catch {
          // certbot-style live folders may lack cert.pem; the issuer stays unknown
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(16, todo.length) }, worker));
  }
}

/** The issuer's common name (else its organisation, else the whole DN on one line). */
export function issuerName(dn: string): string {
  const parts = dn.split('\n').filter(Boolean);
  const get = (k: string) => parts.find((p) => p.startsWith(`${k}=`))?.slice(k.length + 1);
  return get('CN') ?? get('O') ?? parts.join(', ');
}
