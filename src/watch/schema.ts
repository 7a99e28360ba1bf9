import * as z from 'zod';
import { watchLabel } from './label.js';

export { watchLabel } from './label.js';

/**
 * `watch: [{ address: host:port, sni?, name?, ... }]`: served certificates certkeeper does not issue (CloudFront,
 * load balancers, other servers) whose expiry, trust and name the daemon checks on a schedule.
 */
export const watchEntrySchema = z.strictObject({
  /** Where to connect: host:port, e.g. shop.example.com:443, 10.0.0.5:8443 or [2001:db8::1]:443. */
  address: z
    .string()
    .regex(
      /^(\[[0-9a-fA-F:.]+\]|[^\s:[\]/]+):\d{1,5}$/,
      'expected host:port, e.g. shop.example.com:443, 10.0.0.5:8443 or [2001:db8::1]:443',
    ),
  /** The name to send as SNI and to check the certificate against; default: the host of `address`. */
  sni: z
    .string()
    .regex(/^[A-Za-z0-9*]([A-Za-z0-9.-]*[A-Za-z0-9])?$/, 'expected a DNS name such as shop.example.com')
    .max(253)
    .optional(),
  /** A label for metrics, the status page and alerts (default: address, plus "/sni" when sni is given). */
  name: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9._:@/-]{0,127}$/, 'use letters, digits and . _ - : @ / (at most 128)')
    .optional(),
  /** PEM file of extra CA certificates to trust for this endpoint (internal CAs); the system roots always count. */
  caFile: z.string().min(1).optional(),
  /** Alert when fewer than this many days are left; default: less than `warnFraction` of the lifetime. */
  warnDays: z.number().positive().optional(),
  /** Alert when less than this fraction of the certificate's lifetime is left (default 1/8). */
  warnFraction: z.number().gt(0).lt(1).default(0.125),
  /** Seconds between probes (default 300). */
  intervalSeconds: z.number().int().min(10).max(86_400).default(300),
  /** Seconds for the TCP connect and TLS handshake. */
  timeoutSeconds: z.number().positive().max(60).default(5),
});
export type WatchEntry = z.infer<typeof watchEntrySchema>;

export const watchSchema = z.array(watchEntrySchema).max(10_000).default([]);

/** Labels must be unique: they are the metrics' `endpoint` label. */
export const watchListSchema = watchSchema.superRefine((list, ctx) => {
  const seen = new Map<string, number>();
  list.forEach((e, i) => {
    const label = watchLabel(e);
    const first = seen.get(label);
    if (first !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: [i],
        message: `has the same label "${label}" as watch[${first}]: give one of them a distinct name`,
      });
    } else seen.set(label, i);
  });
});
