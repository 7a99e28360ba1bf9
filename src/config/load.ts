import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parseDocument } from 'yaml';
import type { z } from 'zod';
import { ConfigError } from '../errors.js';
import type { Env } from './path.js';
import { profileProblems } from './profiles.js';
import { type Config, configSchema } from './schema.js';

export { configPath, type Env } from './path.js';

/** `certificates[1].domains[0]` from ['certificates', 1, 'domains', 0]. */
export function formatPath(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else out += out ? `.${String(seg)}` : String(seg);
  }
  return out || '(top level)';
}

function describeIssue(issue: z.core.$ZodIssue): string {
  const path = formatPath(issue.path);
  if (issue.code === 'unrecognized_keys') {
    return `${path}: unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')} (check the spelling against the config reference in the README)`;
  }
  if (issue.code === 'invalid_type' && /received undefined/.test(issue.message)) {
    return `${path}: is required (expected ${issue.expected})`;
  }
  if (issue.code === 'invalid_union' && 'discriminator' in issue && issue.discriminator) {
    return `${path}: ${issue.message.replace('Invalid discriminator value. Expected', 'expected one of')}`;
  }
  return `${path}: ${issue.message}`;
}

const ENV_REF = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

/** Replaces ${VAR} and ${VAR:-default} in every string value; `$${` escapes a literal `${`. */
export function substituteEnv(
  value: unknown,
  env: Env,
  path: PropertyKey[] = [],
  problems: string[] = [],
): unknown {
  if (typeof value === 'string') {
    return value
      .replace(ENV_REF, (whole, name: string, fallback: string | undefined, offset: number, full: string) => {
        if (offset > 0 && full[offset - 1] === '$') return whole;
        const v = env[name];
        if (v !== undefined && v !== '') return v;
        if (fallback !== undefined) return fallback;
        problems.push(
          `${formatPath(path)}: environment variable ${name} is not set (set it, or write \${${name}:-default})`,
        );
        return '';
      })
      .replace(/\$\$\{/g, '${');
  }
  if (Array.isArray(value)) return value.map((v, i) => substituteEnv(v, env, [...path, i], problems));
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [k, substituteEnv(v, env, [...path, k], problems)]),
    );
  }
  return value;
}

/** Validates an already-parsed config object. Throws ConfigError listing every problem with its path. */
export function parseConfig(
  raw: unknown,
  { env = process.env, baseDir }: { env?: Env; baseDir?: string } = {},
): Config {
  const problems: string[] = [];
  const substituted = substituteEnv(raw ?? {}, env, [], problems);
  if (problems.length) throw new ConfigError(problems);
  const result = configSchema.safeParse(substituted);
  if (!result.success) throw new ConfigError(result.error.issues.map(describeIssue));
  const config = result.data;
  const seen = new Map<string, number>();
  config.certificates.forEach((c, i) => {
    const prev = seen.get(c.name);
    if (prev !== undefined)
      problems.push(
        `certificates[${i}].name: "${c.name}" is already used by certificates[${prev}]; names must be unique`,
      );
    seen.set(c.name, i);
    const dup = c.domains.find((d, j) => c.domains.indexOf(d) !== j);
    if (dup) problems.push(`certificates[${i}].domains: "${dup}" is listed twice`);
    c.domains.forEach((d, j) => {
      if (d.startsWith('*.') && c.challenge.type === 'http-01') {
        problems.push(
          `certificates[${i}].domains[${j}]: wildcard "${d}" needs a dns-01 challenge (HTTP-01 cannot validate wildcards)`,
        );
      }
    });
  });
  problems.push(...profileProblems(config.certificates, config.acme));
  // One effective profile per certificate, so the plan, the order and the state see the same value.
  for (const c of config.certificates) c.profile ??= config.acme.profile;
  if (config.server.token && config.server.tokenFile)
    problems.push('server: set token or tokenFile, not both');
  if (problems.length) throw new ConfigError(problems);
  if (baseDir) resolvePaths(config, baseDir);
  return config;
}

function resolvePaths(config: Config, baseDir: string): void {
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(baseDir, p));
  config.storage.path = abs(config.storage.path);
  if (config.acme.caBundle) config.acme.caBundle = abs(config.acme.caBundle);
  if (config.server.tokenFile) config.server.tokenFile = abs(config.server.tokenFile);
  for (const c of config.certificates) {
    if (c.challenge.type === 'http-01') c.challenge.webroot = abs(c.challenge.webroot);
    for (const d of c.deploy) if (d.type === 'nginx' && d.signal) d.signal.pidFile = abs(d.signal.pidFile);
  }
}

/** Parses YAML text. Relative paths in the file are resolved against `baseDir` (the file's folder). */
export function parseConfigText(
  text: string,
  opts: { env?: Env; baseDir?: string; source?: string } = {},
): Config {
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length) {
    throw new ConfigError(
      doc.errors.map((e) => `${opts.source ?? 'config'}: YAML syntax error: ${e.message.split('\n')[0]}`),
      { hint: 'fix the YAML syntax at the line given' },
    );
  }
  return parseConfig(doc.toJS(), opts);
}

export function loadConfig(file: string, env: Env = process.env): Config {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ConfigError([`${file}: cannot read the configuration file (${code ?? String(err)})`], {
      hint: 'pass --config FILE or set CERTKEEPER_CONFIG to the path of your certkeeper.yml',
    });
  }
  return parseConfigText(text, { env, baseDir: dirname(file), source: file });
}
