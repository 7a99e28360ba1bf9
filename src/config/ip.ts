import { isIP } from 'node:net';

/**
 * Only a name with a colon can be IPv6 and only digits and dots IPv4: the cheap test first (node's isIP runs a long
 * regular expression; configuration checks and status call this for every name).
 */
const maybeIp = (name: string) => name.includes(':') || /^[\d.]+$/.test(name);

/** True for an IPv4 or IPv6 address literal (no brackets, no zone). */
export function isIpAddress(name: string): boolean {
  return maybeIp(name) && isIP(name) !== 0;
}

/**
 * The one spelling of an address, so config, order identifiers, CSR, certificate SANs and state compare equal:
 * IPv4 as written (node rejects leading zeros), IPv6 in RFC 5952 form ("::1", lower case, zeros compressed), as
 * the WHATWG URL serialiser writes it. Anything else is returned unchanged.
 */
export function canonicalIp(name: string): string {
  if (!name.includes(':') || isIP(name) !== 6) return name;
  return new URL(`http://[${name}]/`).hostname.slice(1, -1);
}

/** RFC 8555 §9.7.7 / RFC 8738: "dns" for names, "ip" for address literals. */
export function identifierOf(name: string): { type: 'dns' | 'ip'; value: string } {
  return isIpAddress(name) ? { type: 'ip', value: canonicalIp(name) } : { type: 'dns', value: name };
}

/** "host" for URLs: IPv6 literals in brackets. */
export function urlHost(name: string): string {
  return name.includes(':') && isIP(name) === 6 ? `[${name}]` : name;
}
