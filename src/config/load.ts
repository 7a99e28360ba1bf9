import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, isAbsolute, resolve } from 'node:path';
import { CORE_SCHEMA, load as loadYamlFast } from 'js-yaml';
import type { Document } from 'yaml';
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
  if (path === 'selfCheck' && issue.code === 'invalid_type') {
    return 'selfCheck: expected a section, not a single value; to turn the self-check off for every certificate write "selfCheck: { enabled: false }" (for one certificate: "challenge: { ..., selfCheck: false }")';
  }
  if (issue.code === 'invalid_union' && 'discriminator' in issue && issue.discriminator) {
    return `${path}: ${issue.message.replace('Invalid discriminator value. Expected', 'expected one of')}`;
  }
  return `${path}: ${issue.message}`;
}

/** `$${` (an escaped, literal `${`) or a `${VAR}` / `${VAR:-default}` reference, matched in one pass. */
const ENV_REF = /\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

/**
 * Replaces ${VAR} and ${VAR:-default} in every string value; `$${` in the file escapes a literal `${`. One pass over
 * the file's text: what a variable's value holds (a password with `$${` in it) is inserted as it is. Copy on write:
 * objects and lists without a reference are returned as they are (no copy of 10,000 certificates to change none),
 * and the path of a value is put together only for a problem.
 */
export function substituteEnv(
  value: unknown,
  env: Env,
  path: PropertyKey[] = [],
  problems: string[] = [],
): unknown {
  return substitute(value, env, [...path], problems);
}

function substitute(value: unknown, env: Env, path: PropertyKey[], problems: string[]): unknown {
  if (typeof value === 'string') {
    if (!value.includes('${')) return value;
    return value.replace(ENV_REF, (_whole, name: string | undefined, fallback: string | undefined) => {
      if (name === undefined) return '${'; // `$${`
      const v = env[name];
      if (v !== undefined && v !== '') return v;
      if (fallback !== undefined) return fallback;
      problems.push(
        `${formatPath(path)}: environment variable ${name} is not set (set it, or write \${${name}:-default})`,
      );
      return '';
    });
  }
  if (Array.isArray(value)) {
    let out: unknown[] | undefined;
    for (let i = 0; i < value.length; i++) {
      path.push(i);
      const v = substitute(value[i], env, path, problems);
      path.pop();
      if (v !== value[i]) {
        out ??= value.slice();
        out[i] = v;
      }
    }
    return out ?? value;
  }
  if (value && typeof value === 'object') {
    let changed: Map<string, unknown> | undefined;
    for (const k of Object.keys(value)) {
      const before = (value as Record<string, unknown>)[k];
      path.push(k);
      const v = substitute(before, env, path, problems);
      path.pop();
      if (v !== before) {
        changed ??= new Map();
        changed.set(k, v);
      }
    }
    // fromEntries defines own properties: a "__proto__" key stays a key
    return changed
      ? Object.fromEntries(Object.entries(value).map(([k, v]) => [k, changed.has(k) ? changed.get(k) : v]))
      : value;
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
  for (const n of config.notify) {
    if (n.type !== 'email') continue;
    if (n.smtp.passwordFile) n.smtp.passwordFile = abs(n.smtp.passwordFile);
    if (n.smtp.caBundle) n.smtp.caBundle = abs(n.smtp.caBundle);
  }
  for (const c of config.certificates) {
    if (c.challenge.type === 'http-01') c.challenge.webroot = abs(c.challenge.webroot);
    for (const d of c.deploy) if (d.type === 'nginx' && d.signal) d.signal.pidFile = abs(d.signal.pidFile);
  }
  for (const w of config.watch) if (w.caFile) w.caFile = abs(w.caFile);
}

/**
 * Alias expansions allowed while turning the YAML into values: 10,000 certificates may share one anchor, while a
 * "billion laughs" document (aliases of aliases, growing exponentially) is refused before it eats the memory.
 * The yaml library's default (100) refused 101 certificates sharing one `challenge: *webroot`.
 */
export const MAX_ALIAS_EXPANSIONS = 10_000;

/**
 * The `yaml` package (line and column errors, alias limits) is read only when js-yaml's fast path declines a file:
 * required at that moment from node_modules, it stays out of every start that reads a valid configuration
 * (157 KB of bundled code less to parse for `status`, `check-config` and the daemon).
 */
let yamlLib: typeof import('yaml') | undefined;
const slowYaml = (): typeof import('yaml') => {
  yamlLib ??= createRequire(import.meta.url)('yaml') as typeof import('yaml');
  return yamlLib;
};

/** JSON.parse for a file that is a JSON object (YAML's JSON subset), else undefined: the YAML parser decides. */
function parseJsonObject(text: string): unknown {
  if (!/^\s*\{/.test(text)) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/**
 * The fast reading of a YAML file: js-yaml (about 15x faster than the `yaml` package's document model: 10,000
 * certificates in ~65 ms instead of ~950 ms) with the YAML 1.2 core schema, the same one the `yaml` package reads.
 * Used only for a document that js-yaml reads without any error and whose values form a plain tree: any error
 * (syntax, duplicate key, unknown alias, several documents, custom tags) or any alias of a mapping or list (a
 * shared object, what an alias bomb is made of) returns undefined, and the `yaml` package reads it again with its
 * line and column messages and the alias expansion limit.
 */
function parseYamlFast(text: string): unknown {
  let value: unknown;
  try {
    value = loadYamlFast(text, { schema: CORE_SCHEMA });
  } catch {
    return undefined;
  }
  if (value === null || typeof value !== 'object') return undefined;
  const seen = new Set<object>();
  const stack: object[] = [value];
  while (stack.length) {
    const o = stack.pop()!;
    if (seen.has(o)) return undefined;
    seen.add(o);
    for (const v of Array.isArray(o) ? o : Object.values(o))
      if (v !== null && typeof v === 'object') stack.push(v);
  }
  return value;
}

/**
 * Parses YAML text. Relative paths in the file are resolved against `baseDir` (the file's folder). A file that is
 * plain JSON (a generated configuration) is read with JSON.parse: 10,000 certificates in ~5 ms instead of ~1 s.
 */
export function parseConfigText(
  text: string,
  opts: { env?: Env; baseDir?: string; source?: string } = {},
): Config {
  const json = parseJsonObject(text);
  if (json !== undefined) return parseConfig(json, opts);
  const fast = parseYamlFast(text);
  if (fast !== undefined) return parseConfig(fast, opts);
  const source = opts.source ?? 'config';
  const { LineCounter, parseDocument } = slowYaml();
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true, lineCounter });
  const at = (offset: number) => {
    const { line, col } = lineCounter.linePos(offset);
    return `line ${line}, column ${col}`;
  };
  if (doc.errors.length) {
    throw new ConfigError(
      doc.errors.map((e) => {
        const first = e.message.split('\n')[0]!;
        const where = / at line \d+, column \d+/.test(first) ? '' : ` (${at(e.pos[0])})`;
        return `${source}: YAML syntax error: ${first}${where}`;
      }),
      { hint: 'fix the YAML syntax at the line given' },
    );
  }
  const unresolved = unresolvedAliases(doc);
  if (unresolved.length) {
    const wildcard = unresolved.some((a) => a.source.startsWith('.'));
    throw new ConfigError(
      unresolved.map((a) =>
        a.source.startsWith('.')
          ? `${source}: ${at(a.offset)}: *${a.source} is read as a YAML alias, not as a wildcard name: quote wildcard names, e.g. domains: ["*${a.source}"]`
          : `${source}: ${at(a.offset)}: *${a.source} is a YAML alias, but no anchor &${a.source} is defined before it (quote the value if you meant the text "*${a.source}")`,
      ),
      {
        hint: wildcard
          ? 'in YAML a value starting with * is an alias: write wildcard domains in quotes, "*.example.com"'
          : 'define the anchor (&name) before its alias (*name), or quote the value',
      },
    );
  }
  let raw: unknown;
  try {
    raw = doc.toJS({ maxAliasCount: MAX_ALIAS_EXPANSIONS });
  } catch (err) {
    const message = (err as Error).message;
    if (/excessive alias count/i.test(message)) {
      throw new ConfigError(
        [
          `${source}: the YAML aliases expand to more than ${MAX_ALIAS_EXPANSIONS.toLocaleString('en')} copies (aliases of aliases: an "alias bomb"); refusing to load it`,
        ],
        {
          hint: 'write the repeated parts out, or share one anchor without nesting aliases inside anchored values',
        },
      );
    }
    throw new ConfigError([`${source}: cannot read the YAML: ${message}`], {
      hint: 'fix the YAML at the place named',
    });
  }
  return parseConfig(raw, opts);
}

/** Aliases (`*name`) with no anchor (`&name`) before them, in document order, with their offset in the text. */
function unresolvedAliases(doc: Document): { source: string; offset: number }[] {
  const { isAlias, isNode, visit } = slowYaml();
  const anchors = new Set<string>();
  const out: { source: string; offset: number }[] = [];
  visit(doc, (_key, node) => {
    if (isAlias(node)) {
      if (!anchors.has(node.source)) out.push({ source: node.source, offset: node.range?.[0] ?? 0 });
    } else if (isNode(node) && node.anchor) anchors.add(node.anchor);
  });
  return out;
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
