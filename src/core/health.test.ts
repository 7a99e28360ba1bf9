import { describe, expect, it } from 'vitest';
import type { LiveSummary } from './certificate.js';
import { health, isDeployed } from './health.js';
import { DAY, windows } from './lifetime.js';

const t0 = Date.parse('2030-01-01T00:00:00Z');
const at = (days: number) => new Date(t0 + days * DAY);
const live = (lifetimeDays: number, extra: Partial<LiveSummary> = {}): LiveSummary => ({
  serial: 'AA',
  notBefore: at(0),
  notAfter: at(lifetimeDays),
  domains: ['a.example'],
  keyType: 'ecdsa-p256',
  ...extra,
});
const opts = (days: number) => ({ now: at(days), dangerDays: 14 });

describe('health', () => {
  it('names each state of a 90-day certificate', () => {
    expect(health(undefined, undefined, opts(0))).toMatchObject({ status: 'missing', ready: false });
    expect(health(live(90), undefined, opts(10))).toMatchObject({
      status: 'valid',
      ready: true,
      daysLeft: 80,
    });
    // renewal window from 1/3 left (day 60); danger from 14 days left (1/6 = 15 days, capped by dangerDays)
    expect(health(live(90), undefined, opts(61))).toMatchObject({ status: 'expiring', ready: true });
    expect(health(live(90), undefined, opts(76.5))).toMatchObject({ status: 'danger', ready: false });
    expect(health(live(90), undefined, opts(90))).toMatchObject({ status: 'expired', ready: false });
    expect(health(live(90, { placeholder: true }), undefined, opts(0))).toMatchObject({
      status: 'placeholder',
      ready: false,
    });
    expect(health(live(90), { name: 'a', placeholder: true }, opts(0)).status).toBe('placeholder');
    expect(health(live(90), { name: 'a', revokedSerial: 'AA' }, opts(1)).status).toBe('revoked');
  });

  it('scales the danger window with the lifetime: a 6-day certificate is not in danger for its whole life', () => {
    const six = live(6);
    expect(health(six, undefined, opts(1)).status).toBe('valid');
    // renews at 1/2 left (day 3), danger from 1/4 left (day 4.5)
    expect(health(six, undefined, opts(3.1)).status).toBe('expiring');
    expect(health(six, undefined, opts(4.6))).toMatchObject({ status: 'danger', ready: false });
    const w = windows(six, { dangerDays: 14 });
    expect(w.renewAt.getTime()).toBe(at(3).getTime());
    expect(w.dangerAt.getTime()).toBe(at(4.5).getTime());
    // 90-second certificates (Pebble) too
    const short = { ...six, notAfter: new Date(t0 + 90_000) };
    expect(health(short, undefined, { now: new Date(t0 + 30_000), dangerDays: 14 }).status).toBe('valid');
    expect(health(short, undefined, { now: new Date(t0 + 70_000), dangerDays: 14 }).status).toBe('danger');
  });

  it('honours a configured renewBeforeFraction', () => {
    expect(health(live(90), undefined, { ...opts(50), renewBeforeFraction: 0.5 }).status).toBe('expiring');
    expect(health(live(90), undefined, opts(50)).status).toBe('valid');
  });

  it('is not deployed while an intent is pending or the last deploy of the live serial failed', () => {
    const l = live(90);
    expect(isDeployed(l, undefined)).toBe(true);
    expect(isDeployed(l, { name: 'a', pendingDeploy: { serial: 'AA', at: '' } })).toBe(false);
    expect(isDeployed(l, { name: 'a', pendingDeploy: { serial: 'BB', at: '' } })).toBe(true);
    expect(isDeployed(l, { name: 'a', lastDeploy: { at: '', ok: false, serial: 'AA', results: [] } })).toBe(
      false,
    );
    expect(isDeployed(l, { name: 'a', lastDeploy: { at: '', ok: false, serial: 'BB', results: [] } })).toBe(
      true,
    );
    expect(isDeployed(l, { name: 'a', lastDeploy: { at: '', ok: true, serial: 'AA', results: [] } })).toBe(
      true,
    );
    expect(health(l, { name: 'a', pendingDeploy: { serial: 'AA', at: '' } }, opts(1)).deployed).toBe(false);
  });
});
