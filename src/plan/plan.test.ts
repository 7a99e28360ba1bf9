import { describe, expect, it } from 'vitest';
import { parseConfig } from '../config/load.js';
import { nextAttemptAfter, planCertificate } from './plan.js';

const cert = parseConfig({
  acme: {},
  certificates: [
    {
      name: 'a',
      domains: ['a.example.com', 'www.a.example.com'],
      challenge: { type: 'http-01', webroot: '/w' },
    },
  ],
}).certificates[0]!;

const day = 86_400_000;
const notBefore = new Date('2026-01-01T00:00:00Z');
const notAfter = new Date(notBefore.getTime() + 90 * day);
const live = {
  notBefore,
  notAfter,
  domains: ['www.a.example.com', 'a.example.com'],
  keyType: 'ecdsa-p256' as const,
  serial: 'AB',
};
const at = (days: number) => new Date(notBefore.getTime() + days * day);
const opts = (now: Date) => ({ now, renewBeforeFraction: 1 / 3 });

describe('planCertificate', () => {
  it('issues what is missing and replaces placeholders', () => {
    expect(planCertificate(cert, undefined, undefined, opts(at(0)))).toMatchObject({
      due: true,
      reason: 'missing',
    });
    expect(planCertificate(cert, { name: 'a', placeholder: true }, live, opts(at(0)))).toMatchObject({
      due: true,
      reason: 'placeholder',
    });
  });

  it('renews when less than a third of the lifetime is left (day 60 of 90)', () => {
    const before = planCertificate(cert, { name: 'a' }, live, opts(at(59)));
    expect(before).toMatchObject({ due: false, reason: 'not-due' });
    expect(before.renewAt?.toISOString()).toBe(at(60).toISOString());
    expect(planCertificate(cert, { name: 'a' }, live, opts(at(60)))).toMatchObject({
      due: true,
      reason: 'expiring',
    });
  });

  it('renews when the configured domains or key type changed, and on --force', () => {
    const other = { ...cert, domains: ['a.example.com'] };
    expect(planCertificate(other, { name: 'a' }, live, opts(at(1)))).toMatchObject({
      due: true,
      reason: 'config-changed',
    });
    expect(planCertificate(cert, { name: 'a', keyType: 'rsa-2048' }, live, opts(at(1)))).toMatchObject({
      due: true,
      reason: 'config-changed',
    });
    expect(planCertificate(cert, { name: 'a' }, live, { ...opts(at(1)), force: true })).toMatchObject({
      due: true,
      reason: 'forced',
    });
    expect(planCertificate(cert, { name: 'a', revokedSerial: 'AB' }, live, opts(at(1)))).toMatchObject({
      due: true,
      reason: 'revoked',
    });
  });

  it('lets ARI move the renewal earlier or later, with an emergency rule under it', () => {
    const ari = (selectedAt: Date) => ({
      name: 'a',
      ari: { start: '', end: '', selectedAt: selectedAt.toISOString(), fetchedAt: '' },
    });
    expect(planCertificate(cert, ari(at(30)), live, opts(at(31)))).toMatchObject({
      due: true,
      reason: 'ari-window',
    });
    // ARI says day 70: not due on day 65 although the 1/3 rule would say so
    expect(planCertificate(cert, ari(at(70)), live, opts(at(65)))).toMatchObject({ due: false });
    // ARI says day 85, but under half the margin (day 75) is an emergency
    expect(planCertificate(cert, ari(at(85)), live, opts(at(75)))).toMatchObject({
      due: true,
      reason: 'emergency',
    });
  });

  it('honours the failure backoff only when asked (scheduled runs)', () => {
    const state = { name: 'a', nextAttemptAfter: at(61).toISOString() };
    expect(planCertificate(cert, state, live, { ...opts(at(60.5)), respectBackoff: true })).toMatchObject({
      due: false,
      reason: 'backoff',
    });
    expect(planCertificate(cert, state, live, opts(at(60.5)))).toMatchObject({ due: true });
    // also a certificate never issued waits out its backoff, unless forced
    expect(
      planCertificate(cert, state, undefined, { ...opts(at(60.5)), respectBackoff: true }),
    ).toMatchObject({ due: false, reason: 'backoff' });
    expect(
      planCertificate(cert, state, undefined, { ...opts(at(60.5)), respectBackoff: true, force: true }),
    ).toMatchObject({ due: true, reason: 'missing' });
    expect(planCertificate(cert, state, live, { ...opts(at(61)), respectBackoff: true })).toMatchObject({
      due: true,
      reason: 'expiring',
    });
  });
});

describe('profile-changed', () => {
  it('a certificate is due when its configured profile differs from the one it was ordered under', () => {
    const tls = { ...cert, profile: 'tlsserver' };
    // ordered under tlsserver, still tlsserver: not due
    expect(planCertificate(tls, { name: 'a', profile: 'tlsserver' }, live, opts(at(1)))).toMatchObject({
      due: false,
      reason: 'not-due',
    });
    // CA default → tlsserver
    expect(planCertificate(tls, { name: 'a' }, live, opts(at(1)))).toMatchObject({
      due: true,
      reason: 'profile-changed',
      detail: 'profile changed (CA default → tlsserver)',
    });
    // tlsserver → shortlived, and a profile removed from the config (back to the CA default)
    expect(
      planCertificate(
        { ...cert, profile: 'shortlived' },
        { name: 'a', profile: 'tlsserver' },
        live,
        opts(at(1)),
      ),
    ).toMatchObject({
      due: true,
      reason: 'profile-changed',
      detail: 'profile changed (tlsserver → shortlived)',
    });
    expect(planCertificate(cert, { name: 'a', profile: 'tlsserver' }, live, opts(at(1)))).toMatchObject({
      due: true,
      reason: 'profile-changed',
    });
    // neither side has one: unchanged
    expect(planCertificate(cert, { name: 'a' }, live, opts(at(1)))).toMatchObject({ due: false });
  });
});

describe('nextAttemptAfter', () => {
  it('front-loads (1 min, 10 min, 100 min, daily), caps by lifetime, and respects a later Retry-After', () => {
    const now = new Date(0);
    const d90 = 90 * 86_400_000;
    expect(nextAttemptAfter(1, now, { lifetime: d90 }).getTime()).toBe(60_000);
    expect(nextAttemptAfter(2, now, { lifetime: d90 }).getTime()).toBe(600_000);
    expect(nextAttemptAfter(3, now, { lifetime: d90 }).getTime()).toBe(6_000_000);
    expect(nextAttemptAfter(30, now, { lifetime: d90 }).getTime()).toBe(86_400_000);
    // a 6-day certificate is never left a whole day: at most 1/24 of its lifetime (6 h)
    expect(nextAttemptAfter(30, now, { lifetime: 6 * 86_400_000 }).getTime()).toBe(6 * 3600_000);
    // permanent errors wait the cap at once
    expect(nextAttemptAfter(1, now, { lifetime: d90, permanent: true }).getTime()).toBe(86_400_000);
    expect(nextAttemptAfter(1, now, { retryAfter: new Date(3600_000) }).getTime()).toBe(3600_000);
  });
});
