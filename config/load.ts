import fs from 'node:fs';
import path from 'node:path';
import { CONFIG_FILE_ENV, schema, type Config, type SettingKey, type SettingSpec } from './schema';
import { crossFieldProblems, type ConfigProblem } from './rules';

export type { ConfigProblem };

/** Thrown when the configuration is invalid; names every offending key. */
export class ConfigError extends Error {
  readonly problems: ConfigProblem[];

  constructor(problems: ConfigProblem[]) {
    super(formatProblems(problems));
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

function formatProblems(problems: ConfigProblem[]): string {
  const lines = problems.map((p) => `  - ${p.source}${p.key && !p.source.endsWith(p.key) ? ` (${p.key})` : ''}: ${p.reason}`);
  return `Invalid configuration, VClerk did not start:\n${lines.join('\n')}\nSee docs/configuration.md for every setting.`;
}

const entries = Object.entries(schema) as [SettingKey, SettingSpec<unknown>][];
const knownEnv = new Map(entries.map(([key, spec]) => [spec.env, key]));
const knownFileEnv = new Map(entries.map(([key, spec]) => [`${spec.env}_FILE`, key]));

/** Environment variables that belong to VClerk but are not settings themselves. */
const reservedEnv = new Set([CONFIG_FILE_ENV]);

interface RawValue {
  source: string;
  value: unknown;
}

/**
 * Builds the validated configuration from the environment (and the optional
 * config file it names). Collects every problem before failing, so one run
 * tells the operator everything that is wrong.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const problems: ConfigProblem[] = [];
  const raw = new Map<SettingKey, RawValue>();

  const fileValues = readConfigFile(env, problems);
  for (const [key, value] of fileValues) raw.set(key, { source: `${CONFIG_FILE_ENV}:${key}`, value });

  for (const [name, value] of Object.entries(env)) {
    if (value === undefined) continue;
    const key = knownEnv.get(name);
    const fileKey = knownFileEnv.get(name);
    if (key) {
      if (env[`${name}_FILE`] !== undefined) {
        problems.push({ source: name, key, reason: `set either ${name} or ${name}_FILE, not both` });
        continue;
      }
      raw.set(key, { source: name, value });
    } else if (fileKey) {
      const secret = readSecretFile(name, value, problems);
      if (secret !== undefined) raw.set(fileKey, { source: name, value: secret });
    } else if (name.startsWith('VCLERK_') && !reservedEnv.has(name)) {
      problems.push({ source: name, reason: `unknown setting${suggest(name)}` });
    }
  }

  const config: Record<string, unknown> = {};
  for (const [key, spec] of entries) {
    const given = raw.get(key);
    if (given === undefined || (typeof given.value === 'string' && given.value.trim() === '' && !('default' in spec))) {
      config[key] = 'default' in spec ? spec.default : undefined;
      continue;
    }
    const parsed = spec.type.parse(given.value);
    if (parsed.ok) {
      config[key] = parsed.value;
    } else {
      const shown = spec.secret ? '' : `, got ${JSON.stringify(given.value)}`;
      problems.push({ source: given.source, key, reason: `${parsed.reason}${shown}` });
    }
  }

  if (problems.length === 0) problems.push(...crossFieldProblems(config as Config));
  if (problems.length > 0) throw new ConfigError(problems);
  return Object.freeze(config) as Config;
}

function readConfigFile(env: NodeJS.ProcessEnv, problems: ConfigProblem[]): Map<SettingKey, unknown> {
  const values = new Map<SettingKey, unknown>();
  const file = env[CONFIG_FILE_ENV];
  if (!file) return values;
  let parsed: unknown;
  try {
    parsed = JSON.parse(fs.readFileSync(path.resolve(file), 'utf8'));
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code
      ? `cannot read the config file ${file} (${(err as NodeJS.ErrnoException).code})`
      : `the config file ${file} is not valid JSON`;
    problems.push({ source: CONFIG_FILE_ENV, reason });
    return values;
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    problems.push({ source: CONFIG_FILE_ENV, reason: `the config file ${file} must hold a JSON object` });
    return values;
  }
  for (const [key, value] of Object.entries(parsed)) {
    if (key in schema) values.set(key as SettingKey, value);
    else problems.push({ source: `${CONFIG_FILE_ENV}:${key}`, reason: `unknown setting${suggest(key)}` });
  }
  return values;
}

function readSecretFile(name: string, file: string, problems: ConfigProblem[]): string | undefined {
  try {
    // Docker secrets and most editors end files with a newline; it is never part of the value.
    return fs.readFileSync(file, 'utf8').replace(/\r?\n$/, '');
  } catch (err) {
    problems.push({ source: name, reason: `cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})` });
    return undefined;
  }
}

/** " (did you mean X?)" for a near miss, or an empty string. */
function suggest(name: string): string {
  const candidates = name.startsWith('VCLERK_') || name === name.toUpperCase()
    ? [...knownEnv.keys()]
    : entries.map(([key]) => key);
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    const d = distance(name.toLowerCase(), candidate.toLowerCase());
    if (d < bestDistance) {
      bestDistance = d;
      best = candidate;
    }
  }
  return best !== undefined && bestDistance <= 3 ? ` (did you mean ${best}?)` : '';
}

function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let previous = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const current = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, previous + (a[i - 1] === b[j - 1] ? 0 : 1));
      previous = current;
    }
  }
  return row[b.length]!;
}

/** The configuration with every secret masked: safe to log or print. */
export function redactConfig(config: Config): Record<string, unknown> {
  return Object.fromEntries(
    entries.map(([key, spec]) => [key, spec.secret && config[key] !== undefined ? '[redacted]' : config[key]]),
  );
}
