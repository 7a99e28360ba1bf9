import { describe, expect, it } from 'vitest';
import { parseConfig } from '../config/load.js';

const base = { acme: { directoryUrl: 'https://ca.example.test/dir' } };

describe('watch configuration', () => {
  it('takes host:port entries with defaults, labels them and resolves caFile against the config folder', () => {
    const c = parseConfig(
      {
        ...base,
        watch: [
          { address: 'shop.example.com:443' },
          { address: 'd1.cloudfront.net:443', sni: 'www.example.com' },
          { address: '[2001:db8::1]:8443', name: 'v6', caFile: 'ca/internal.pem', warnDays: 21 },
        ],
      },
      { baseDir: '/etc/certkeeper' },
    );
    expect(c.watch[0]).toMatchObject({
      address: 'shop.example.com:443',
      warnFraction: 0.125,
      intervalSeconds: 300,
    });
    expect(c.watch[2]!.caFile).toBe('/etc/certkeeper/ca/internal.pem');
  });

  it('names the field and the fix for a bad address and for two entries with one label', () => {
    expect(() => parseConfig({ ...base, watch: [{ address: 'https://shop.example.com' }] })).toThrow(
      /watch\[0\]\.address: expected host:port/,
    );
    expect(() =>
      parseConfig({ ...base, watch: [{ address: 'a.example.com:443' }, { address: 'a.example.com:443' }] }),
    ).toThrow(/same label "a\.example\.com:443" as watch\[0\]: give one of them a distinct name/);
    expect(() => parseConfig({ ...base, server: { metricsListen: '9108' } })).toThrow(
      /metricsListen.*expected host:port/s,
    );
  });
});
