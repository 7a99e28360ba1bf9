/** RFC 1123 host name, optionally a leading "*." wildcard label. Lower-case is enforced by normalising first. */
const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;

export function isValidDnsName(name: string, { allowWildcard = true } = {}): boolean {
  if (name.length === 0 || name.length > 253) return false;
  let rest = name;
  if (allowWildcard && rest.startsWith('*.')) rest = rest.slice(2);
  const labels = rest.split('.');
  if (labels.length < 2) return false;
  return labels.every((l) => LABEL.test(l) || /^xn--[a-z0-9-]+$/.test(l));
}

/** A certificate name is used as a folder name under live/ and archive/. */
export function isSafeFileName(name: string): boolean {
  return (
    name.length > 0 && name.length <= 200 && /^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name) && !name.includes('..')
  );
}
