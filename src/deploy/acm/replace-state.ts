/**
 * The progress of one `acm replace`, kept in the store as <storage>/acm-replace/<region>-<certificate id>.json and
 * written atomically (0600) before and after every step, so that a crash anywhere is finished by the next run:
 * no second RequestCertificate, no second swap. It holds ARNs, record names and times, never a secret.
 */
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { CertkeeperError } from '../../errors.js';
import { readIfExists, writeFileAtomic } from '../../store/fsutil.js';

/** In order: each step is written once it is done ('requesting' is the intent written before the request). */
export const REPLACE_STEPS = [
  'requesting',
  'requested',
  'records-written',
  'issued',
  'swapped',
  'confirmed',
  'done',
] as const;
export type ReplaceStep = (typeof REPLACE_STEPS)[number];

export interface SwapRecord {
  resource: string;
  kind: 'cloudfront' | 'elbv2';
  /** What was changed, in words ("listener :443 default certificate"). */
  changes: string[];
  at: string;
}

export interface ReplaceState {
  version: 1;
  oldArn: string;
  region: string;
  domains: string[];
  keyAlgorithm: string;
  step: ReplaceStep;
  /** When RequestCertificate was first sent (its IdempotencyToken holds for an hour). */
  requestedAt?: string;
  newArn?: string;
  /** Validation CNAMEs written to Route53, per zone. */
  records?: { zoneId: string; name: string; value: string }[];
  swapped: SwapRecord[];
  /** InUseBy entries certkeeper does not change (API Gateway, AppSync, ...): for a human. */
  manual: string[];
  oldDeletedAt?: string;
  updatedAt: string;
  lastError?: { code: string; message: string; at: string };
}

const ACM_ARN = /^arn:aws[a-z-]*:acm:([a-z0-9-]+):(\d{12}):certificate\/([A-Za-z0-9-]+)$/;

/** File name for an ARN: region and certificate id, both checked (never a path from outside as it is). */
export function stateIdFor(arn: string): string {
  const m = ACM_ARN.exec(arn);
  if (!m) {
    throw new CertkeeperError('config', `"${arn}" is not an ACM certificate ARN`, {
      field: 'ARN',
      permanent: true,
      hint: 'pass ARNs as arn:aws:acm:<region>:<account>:certificate/<id> (see certkeeper acm audit)',
    });
  }
  return `${m[1]}-${m[3]}`;
}

export function stepIndex(step: ReplaceStep | undefined): number {
  return step ? REPLACE_STEPS.indexOf(step) : -1;
}

export class ReplaceStateStore {
  constructor(readonly dir: string) {}

  static forStorage(storagePath: string): ReplaceStateStore {
    return new ReplaceStateStore(join(storagePath, 'acm-replace'));
  }

  path(arn: string): string {
    return join(this.dir, `${stateIdFor(arn)}.json`);
  }

  async read(arn: string): Promise<ReplaceState | undefined> {
    const file = this.path(arn);
    const text = await readIfExists(file);
    if (text === undefined) return undefined;
    let s: ReplaceState;
    try {
      s = JSON.parse(text) as ReplaceState;
    } catch {
      throw new CertkeeperError('store', `${file} is not valid JSON`, {
        code: 'CK_ERR_ACM_REPLACE_STATE',
        permanent: true,
        hint: `look at the file; if no replacement was requested yet, delete it and run again`,
      });
    }
    if (s.version !== 1 || s.oldArn !== arn || !REPLACE_STEPS.includes(s.step)) {
      throw new CertkeeperError('store', `${file} does not hold the progress of ${arn}`, {
        code: 'CK_ERR_ACM_REPLACE_STATE',
        permanent: true,
        hint: 'move the file away and run again (a replacement already requested is found again by its tag)',
      });
    }
    s.swapped ??= [];
    s.manual ??= [];
    return s;
  }

  async write(s: ReplaceState): Promise<void> {
    await fs.mkdir(this.dir, { recursive: true, mode: 0o700 });
    await writeFileAtomic(this.path(s.oldArn), `${JSON.stringify(s, null, 2)}\n`, 0o600);
  }

  async list(): Promise<ReplaceState[]> {
    let names: string[];
    try {
      names = await fs.readdir(this.dir);
    } catch {
      return [];
    }
    const out: ReplaceState[] = [];
    for (const n of names.filter((x) => x.endsWith('.json')).sort()) {
      try {
        const s = JSON.parse(await fs.readFile(join(this.dir, n), 'utf8')) as ReplaceState;
        if (s.version === 1 && typeof s.oldArn === 'string') out.push(s);
      } catch {
        // an unreadable file is reported when its ARN is replaced
      }
    }
    return out;
  }
}
