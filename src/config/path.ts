import { resolve } from 'node:path';

export type Env = Record<string, string | undefined>;

/** Resolves which file to load: --config, then CERTKEEPER_CONFIG, then ./certkeeper.yml. (No schema code here.) */
export function configPath(explicit: string | undefined, env: Env = process.env): string {
  return resolve(explicit ?? env.CERTKEEPER_CONFIG ?? 'certkeeper.yml');
}
