import { describe, expect, it } from 'vitest';
import { clampWait } from '../challenges/types.js';
import { CertkeeperError } from '../errors.js';
import { authorizationDeadline, checkOrderedProfile, csrNames, newOrderPayload } from './order.js';
import { assertProfileOffered, offeredProfiles } from './profiles.js';

const dir = (profiles?: unknown) => ({ newOrder: 'https://ca.test/new-order', meta: { profiles } });

describe('profiles offered by a directory', () => {
  it('reads meta.profiles, dropping names and text a CA should not send', () => {
    expect(offeredProfiles(dir({ classic: 'c', tlsserver: 't' }))).toEqual({ classic: 'c', tlsserver: 't' });
    expect(offeredProfiles(dir({ 'bad name': 'x', ok: 'line\nbreak\u0007' }))).toEqual({ ok: 'linebreak' });
    expect(offeredProfiles({ newOrder: 'x' })).toBeUndefined();
    expect(offeredProfiles(dir(['classic']))).toBeUndefined();
  });

  it('a configured profile must be offered; the error lists what is', () => {
    const ctx = { directoryUrl: 'https://ca.test/dir', field: 'acme.profile', cert: 'a' };
    expect(() => assertProfileOffered(dir({ classic: '', tlsserver: '' }), 'tlsserver', ctx)).not.toThrow();
    const err = (() => {
      try {
        assertProfileOffered(dir({ tlsserver: '', classic: '' }), 'shortlived', ctx);
      } catch (e) {
        return e as CertkeeperError;
      }
    })();
    expect(err).toBeInstanceOf(CertkeeperError);
    expect(err).toMatchObject({ code: 'CK_ERR_PROFILE', cert: 'a', field: 'acme.profile', permanent: true });
    expect(err?.message).toBe(
      'acme.profile: the CA at https://ca.test/dir does not offer the profile "shortlived"; it offers: classic, tlsserver',
    );
    expect(() => assertProfileOffered({ newOrder: 'x' }, 'tlsserver', ctx)).toThrow(/offers no profiles/);
  });
});

describe('the order payload and CSR', () => {
  it('types identifiers dns/ip and carries profile and replaces only when set', () => {
    expect(newOrderPayload({ domains: ['a.example.com', '192.0.2.1', '2001:db8::1'] })).toEqual({
      identifiers: [
        { type: 'dns', value: 'a.example.com' },
        { type: 'ip', value: '192.0.2.1' },
        { type: 'ip', value: '2001:db8::1' },
      ],
    });
    expect(newOrderPayload({ domains: ['a.example.com'], profile: 'tlsserver', replaces: 'x.y' })).toEqual({
      identifiers: [{ type: 'dns', value: 'a.example.com' }],
      replaces: 'x.y',
      profile: 'tlsserver',
    });
  });

  it('refuses an order the CA placed under another profile than the one asked for', () => {
    expect(() => checkOrderedProfile({ profile: 'tlsserver' }, 'tlsserver', 'a')).not.toThrow();
    // a CA that does not echo the profile (Pebble 2.4), or no profile asked for: nothing to compare
    expect(() => checkOrderedProfile({}, 'tlsserver', 'a')).not.toThrow();
    expect(() => checkOrderedProfile({ profile: 'classic' }, undefined, 'a')).not.toThrow();
    expect(() => checkOrderedProfile({ profile: 'classic' }, 'shortlived', 'a')).toThrow(
      'the CA created the order under the profile "classic" instead of "shortlived"',
    );
  });

  it('never puts an IP address in the CN', () => {
    expect(csrNames(['192.0.2.1', 'a.example.com'])).toEqual({
      altNames: ['192.0.2.1', 'a.example.com'],
      commonName: 'a.example.com',
    });
    expect(csrNames(['192.0.2.1'])).toEqual({ altNames: ['192.0.2.1'] });
    expect(csrNames([`${'x'.repeat(60)}.example.com`]).commonName).toBeUndefined();
  });
});

describe('the authorization deadline', () => {
  const order = { at: Date.parse('2030-01-01T00:05:00Z'), reason: 'the order timeout' };
  it('the earliest expiry of the authorizations still to validate bounds the order', () => {
    const d = authorizationDeadline(
      [
        { status: 'valid', expires: '2030-01-01T00:00:10Z' },
        { status: 'pending', expires: '2030-01-01T00:01:00Z' },
        { status: 'pending', expires: '2030-01-01T00:02:00Z' },
      ],
      order,
    );
    expect(d).toEqual({
      at: Date.parse('2030-01-01T00:01:00Z'),
      reason: "the CA's authorization expires at 2030-01-01T00:01:00.000Z",
      hint: expect.stringMatching(/authorizations run out/),
    });
    // days-long authorizations (classic) leave the order timeout in charge
    expect(authorizationDeadline([{ status: 'pending', expires: '2030-01-08T00:00:00Z' }], order)).toBe(
      order,
    );
    expect(authorizationDeadline([{ status: 'pending' }], order)).toBe(order);
  });

  it('clampWait cuts a solver wait at the deadline and says so', () => {
    const now = 1_000_000;
    expect(clampWait(60_000, undefined, now)).toEqual({ until: now + 60_000 });
    expect(clampWait(60_000, { at: now + 120_000, reason: 'r' }, now)).toEqual({ until: now + 60_000 });
    expect(clampWait(60_000, { at: now + 5000, reason: 'authz' }, now)).toEqual({
      until: now + 5000,
      cutBy: 'authz',
    });
  });
});
