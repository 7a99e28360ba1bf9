import type { Config } from '../../config/schema.js';
import type { CertStore } from '../../store/store.js';

const ACM_ARN = /^arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate\/[A-Za-z0-9-]+$/;

/**
 * ARNs certkeeper renews: every ACM ARN in the `deploy` part of the state files (where the acm deployer keeps
 * `acm:<region>: { arn }`), plus every `arn:` configured on an acm deployer (managed even before the first run).
 * Unreadable state files are reported through `onError` and skipped, so one broken file does not hide the rest.
 */
export async function managedArnsFromStore(
  store: CertStore,
  opts: { names?: string[]; config?: Config; onError?: (name: string, err: unknown) => void } = {},
): Promise<Set<string>> {
  const arns = new Set<string>();
  const names = new Set([...(opts.names ?? []), ...(await store.listNames())]);
  for (const name of names) {
    try {
      const state = await store.readState(name);
      collect(state?.deploy, arns, 0);
    } catch (err) {
      opts.onError?.(name, err);
    }
  }
  for (const c of opts.config?.certificates ?? []) {
    for (const d of c.deploy) if (d.type === 'acm' && d.arn) arns.add(d.arn);
  }
  return arns;
}

function collect(v: unknown, out: Set<string>, depth: number): void {
  if (depth > 6 || v === null || v === undefined) return;
  if (typeof v === 'string') {
    if (ACM_ARN.test(v)) out.add(v);
    return;
  }
  if (Array.isArray(v)) {
    for (const x of v) collect(x, out, depth + 1);
    return;
  }
  if (typeof v === 'object') for (const x of Object.values(v)) collect(x, out, depth + 1);
}
