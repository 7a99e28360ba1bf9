import type { Change, ResourceRecordSet } from '@aws-sdk/client-route-53';

/** TTL for records certkeeper writes; short, so resolvers do not keep stale challenge values. */
export const CHALLENGE_TTL = 60;

/** Route53 keeps TXT values as quoted character-strings: abc → "abc". Challenge values are base64url, nothing to escape. */
export function quoteTxt(value: string): string {
  return `"${value.replace(/(["\\])/g, '\\$1')}"`;
}

/** The current TXT record set at one name (undefined when absent). */
export interface CurrentSet {
  ttl: number;
  /** Raw Route53 values, quotes included, in Route53's order. */
  values: string[];
}

export function currentFrom(set: ResourceRecordSet | undefined): CurrentSet | undefined {
  if (!set) return undefined;
  return { ttl: set.TTL ?? CHALLENGE_TTL, values: (set.ResourceRecords ?? []).map((r) => r.Value ?? '') };
}

/**
 * The change that adds `ours` to the values already at `name`, keeping every other value (another
 * certificate's, or the apex and wildcard of the same order). Undefined when all of ours are there.
 */
export function addChange(name: string, current: CurrentSet | undefined, ours: string[]): Change | undefined {
  const existing = current?.values ?? [];
  const add = [...new Set(ours.map(quoteTxt))].filter((v) => !existing.includes(v));
  if (add.length === 0) return undefined;
  return {
    Action: 'UPSERT',
    ResourceRecordSet: {
      Name: `${name}.`,
      Type: 'TXT',
      TTL: CHALLENGE_TTL,
      ResourceRecords: [...existing, ...add].map((Value) => ({ Value })),
    },
  };
}

/**
 * The change that removes exactly `ours` from `name`: UPSERT of what is left, or DELETE (with the
 * current values and TTL, as Route53 requires) when nothing else is left. Undefined when none of ours is there.
 */
export function removeChange(
  name: string,
  current: CurrentSet | undefined,
  ours: string[],
): Change | undefined {
  if (!current) return undefined;
  const remove = new Set(ours.map(quoteTxt));
  const left = current.values.filter((v) => !remove.has(v));
  if (left.length === current.values.length) return undefined;
  if (left.length === 0) {
    return {
      Action: 'DELETE',
      ResourceRecordSet: {
        Name: `${name}.`,
        Type: 'TXT',
        TTL: current.ttl,
        ResourceRecords: current.values.map((Value) => ({ Value })),
      },
    };
  }
  return {
    Action: 'UPSERT',
    ResourceRecordSet: {
      Name: `${name}.`,
      Type: 'TXT',
      TTL: current.ttl,
      ResourceRecords: left.map((Value) => ({ Value })),
    },
  };
}
