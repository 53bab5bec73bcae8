import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parseDocument } from 'yaml';
import { z } from 'zod';
import { LecternError } from '../util/errors.js';
import { DEFAULT_CONFIG_PATH } from './paths.js';
import { formatProblems } from './problems.js';
import { configSchema, describeValue, type Config } from './schema.js';

/**
 * Loads and validates the configuration. Every problem is collected and reported at once as
 * `path: message`, so IT staff fix a file in one pass instead of one error per restart. The
 * messages say what is expected and what was given; zod's own wording is only a last resort.
 */

export { DEFAULT_CONFIG_PATH };
export const BUILT_IN_SOURCE = '(built-in defaults)';

/** The result of loadConfig. */
export interface LoadedConfig {
  /** Validated and complete, with every path absolute. */
  config: Config;
  /** The file read, or BUILT_IN_SOURCE. */
  source: string;
}

export type ValidationResult = { ok: true; config: Config } | { ok: false; problems: string[] };

/**
 * Validates an already-parsed document (pure: no file system, no environment). An empty value
 * (`key:` with nothing after it, or `~`) means "use the default", so commenting out every line
 * under a section leaves a valid file.
 */
export function validateConfig(raw: unknown): ValidationResult {
  if (raw !== undefined && raw !== null && !isMapping(raw)) {
    return { ok: false, problems: [`(top level): must be a mapping of sections (agent, log, sources, capture, ...), got ${describeValue(raw)}`] };
  }
  const result = configSchema.safeParse(dropEmptyValues(raw ?? {}), { reportInput: true, error: messageFor });
  if (result.success) return { ok: true, config: result.data };
  return { ok: false, problems: result.error.issues.flatMap(formatIssue) };
}

export { formatProblems };

/**
 * Chooses the file (`path`, else $LECTERN_CONFIG, else /etc/lectern/config.yaml if present, else
 * the built-in defaults), parses and validates it and makes its paths absolute. Throws
 * CONFIG_UNREADABLE or CONFIG_INVALID (with `details.problems`).
 */
export function loadConfig(opts: { path?: string | undefined; env?: NodeJS.ProcessEnv; cwd?: string } = {}): LoadedConfig {
  const env = opts.env ?? process.env;
  const cwd = opts.cwd ?? process.cwd();
  // An empty LECTERN_CONFIG counts as unset, as shells and unit files leave it that way.
  const explicit = opts.path ?? (env.LECTERN_CONFIG ? env.LECTERN_CONFIG : undefined);
  const file = explicit ?? (existsSync(DEFAULT_CONFIG_PATH) ? DEFAULT_CONFIG_PATH : undefined);
  if (file === undefined) {
    const result = validateConfig({});
    if (!result.ok) throw invalid(result.problems, BUILT_IN_SOURCE);
    return { config: resolvePaths(result.config, { baseDir: cwd, env, dataDirSet: false }), source: BUILT_IN_SOURCE };
  }

  const source = path.resolve(cwd, file);
  const raw = parseYaml(readConfigFile(source), source);
  const result = validateConfig(raw);
  if (!result.ok) throw invalid(result.problems, source);
  return { config: resolvePaths(result.config, { baseDir: path.dirname(source), env, dataDirSet: hasDataDir(raw) }), source };
}

function readConfigFile(source: string): string {
  try {
    return readFileSync(source, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    const hint = code === 'ENOENT' ? '; write an example with: lectern config init FILE' : code === 'EACCES' ? '; check its owner and mode' : '';
    throw new LecternError('CONFIG_UNREADABLE', `cannot read the configuration file ${source} (${code})${hint}`, { cause: err, details: { source } });
  }
}

function parseYaml(text: string, source: string): unknown {
  const doc = parseDocument(text, { prettyErrors: true });
  if (doc.errors.length > 0) {
    const problems = doc.errors.map((e) => {
      const pos = e.linePos?.[0];
      // prettyErrors adds " at line L, column C:" and a source excerpt; the position leads here instead.
      const message =
        e.code === 'MULTIPLE_DOCS'
          ? "the file holds more than one YAML document (a '---' line between them); lectern reads exactly one"
          : (e.message.split('\n')[0] ?? e.message).replace(/ at line \d+, column \d+:?$/, '');
      return `${pos ? `line ${pos.line}, column ${pos.col}` : '(YAML)'}: ${message}`;
    });
    throw invalid(problems, source);
  }
  return doc.toJS() as unknown;
}

function invalid(problems: string[], source: string): LecternError {
  return new LecternError('CONFIG_INVALID', formatProblems(problems, source), { details: { problems, source } });
}

function isMapping(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function dropEmptyValues(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(dropEmptyValues);
  if (!isMapping(value)) return value;
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) if (v !== null) out[key] = dropEmptyValues(v);
  return out;
}

function hasDataDir(raw: unknown): boolean {
  return isMapping(raw) && isMapping(raw.agent) && raw.agent.dataDir !== undefined && raw.agent.dataDir !== null;
}

/** Relative paths are relative to the configuration file (or the working directory without one). */
function resolvePaths(config: Config, ctx: { baseDir: string; env: NodeJS.ProcessEnv; dataDirSet: boolean }): Config {
  const abs = (p: string): string => path.resolve(ctx.baseDir, p);
  // Under systemd, StateDirectory= names the one place the service may write (ProtectSystem=strict
  // makes /etc read-only), so it beats the default even when a file is read; an explicit dataDir wins.
  const stateDirectory = ctx.env.STATE_DIRECTORY?.split(':')[0];
  const dataDir = !ctx.dataDirSet && stateDirectory ? stateDirectory : abs(config.agent.dataDir);
  // A bare name that systemd passed as a credential (LoadCredential=) stays bare: readSecret looks
  // it up in $CREDENTIALS_DIRECTORY. Anything else is a path like the others.
  const credentials = ctx.env.CREDENTIALS_DIRECTORY;
  const secretFile = (p: string): string => (!p.includes('/') && credentials && existsSync(path.join(credentials, p)) ? p : abs(p));
  const withSecretFile = <T extends { passwordFile?: string | undefined }>(s: T): T =>
    s.passwordFile === undefined ? s : { ...s, passwordFile: secretFile(s.passwordFile) };

  const storage = config.storage;
  return {
    ...config,
    agent: { ...config.agent, dataDir },
    sources: config.sources.map((s) => (s.kind === 'synthetic' || s.kind === 'v4l2' ? s : withSecretFile(s))),
    storage:
      storage.kind === 'file'
        ? { ...storage, root: storage.root !== undefined ? abs(storage.root) : path.join(dataDir, 'store') }
        : {
            ...storage,
            ...(storage.accessKeyIdFile !== undefined ? { accessKeyIdFile: secretFile(storage.accessKeyIdFile) } : {}),
            ...(storage.secretAccessKeyFile !== undefined ? { secretAccessKeyFile: secretFile(storage.secretAccessKeyFile) } : {}),
          },
    import: config.import.folder !== undefined ? { ...config.import, folder: abs(config.import.folder) } : config.import,
    schedule: {
      ...config.schedule,
      source: config.schedule.source === 'none' || /^https?:\/\//i.test(config.schedule.source) ? config.schedule.source : abs(config.schedule.source),
      cacheDir: config.schedule.cacheDir !== undefined ? abs(config.schedule.cacheDir) : path.join(dataDir, 'schedule'),
    },
    api: {
      ...config.api,
      ...(config.api.socketPath !== undefined ? { socketPath: abs(config.api.socketPath) } : {}),
      ...(config.api.tokenFile !== undefined ? { tokenFile: secretFile(config.api.tokenFile) } : {}),
      ...(config.api.kioskPinFile !== undefined ? { kioskPinFile: secretFile(config.api.kioskPinFile) } : {}),
    },
  };
}

// ---- messages --------------------------------------------------------------------------------

type RawIssue = z.core.$ZodRawIssue;

/** Marks an unknown-keys message that carries the typo hints (JSON) from messageFor to formatIssue. */
const KEY_HINTS = 'key hints:';

/**
 * The per-parse error map: zod asks it for a message only when the schema did not give one
 * (refinements carry their own). It sees the schema that raised the issue, so number bounds are
 * read back from the schema rather than repeated here.
 */
function messageFor(iss: RawIssue): string | undefined {
  const numberSchema = [iss.schema, iss.inst].find((s): s is z.ZodNumber => s instanceof z.ZodNumber);
  if (numberSchema && (iss.code === 'too_small' || iss.code === 'too_big' || iss.code === 'invalid_type')) {
    const expected = numberExpectation(numberSchema);
    return iss.input === undefined ? `is required (${expected})` : `must be ${expected}, got ${describeValue(iss.input)}`;
  }
  switch (iss.code) {
    case 'unrecognized_keys':
      // One hint per key, in key order; formatIssue splits them into one problem each.
      return KEY_HINTS + JSON.stringify(iss.keys.map((key) => closestKey(key, knownKeys(iss.inst)) ?? null));
    case 'invalid_type': {
      if (iss.input === undefined) return `is required (${iss.expected})`;
      const got = `got ${describeValue(iss.input)}`;
      // YAML reads `room: 101` as a number; the fix is quotes, so say so.
      if (iss.expected === 'string' && (typeof iss.input === 'number' || typeof iss.input === 'boolean')) {
        return `must be a string, ${got}; write it in quotes ("${String(iss.input)}")`;
      }
      return `must be ${TYPE_NAMES[iss.expected] ?? iss.expected}, ${got}`;
    }
    case 'too_small':
      if (iss.origin === 'string' && Number(iss.minimum) === 1) return 'must not be empty';
      if (iss.origin === 'array') return `must have at least ${String(iss.minimum)} entr${Number(iss.minimum) === 1 ? 'y' : 'ies'}`;
      return undefined;
    case 'invalid_value':
      return `must be one of ${iss.values.map((v) => JSON.stringify(v)).join(', ')}, got ${describeValue(iss.input)}`;
    case 'invalid_union': {
      const { discriminator, options } = iss as { discriminator?: unknown; options?: unknown };
      if (typeof discriminator !== 'string' || !Array.isArray(options)) return undefined;
      // A member whose discriminator has a default shows up as undefined here.
      const expected = options.filter((o) => typeof o === 'string').join(', ');
      const value = isMapping(iss.input) ? iss.input[discriminator] : undefined;
      if (value === undefined) return `is required; set it to one of ${expected}`;
      return `unknown ${unionNoun(iss.path ?? [], discriminator)}${discriminator} ${describeValue(value)}; expected one of ${expected}`;
    }
    default:
      return undefined;
  }
}

const TYPE_NAMES: Record<string, string> = {
  object: 'a mapping (key: value lines)',
  array: 'a list (lines starting with "- ")',
  string: 'a string',
  boolean: 'true or false',
  number: 'a number',
  int: 'an integer',
};

function numberExpectation(schema: z.ZodNumber): string {
  const what = schema.isInt ? 'an integer' : 'a number';
  // Unbounded sides come back as ±MAX_SAFE_INTEGER (or ±Infinity, or null): not worth saying.
  const bound = (v: number | null): number | undefined => (v === null || Math.abs(v) >= Number.MAX_SAFE_INTEGER ? undefined : v);
  const min = bound(schema.minValue);
  const max = bound(schema.maxValue);
  if (min !== undefined && max !== undefined) return `${what} between ${min} and ${max}`;
  if (min !== undefined) return `${what} of ${min} or more`;
  if (max !== undefined) return `${what} of ${max} or less`;
  return what;
}

/** "sources.1.kind" -> "source ", "storage.kind" -> "storage ": names what the kind is of. */
function unionNoun(issuePath: readonly PropertyKey[], discriminator: string): string {
  const at = issuePath.at(-1) === discriminator ? issuePath.slice(0, -1) : issuePath;
  const inList = typeof at.at(-1) === 'number';
  const key = (inList ? at.at(-2) : at.at(-1)) as unknown;
  if (typeof key !== 'string') return '';
  return `${inList && key.endsWith('s') ? key.slice(0, -1) : key} `;
}

function knownKeys(inst: unknown): string[] {
  const shape = (inst as { _zod?: { def?: { shape?: Record<string, unknown> } } } | undefined)?._zod?.def?.shape;
  return shape ? Object.keys(shape) : [];
}

/** A known key the unknown one is probably a typo of: same letters ignoring case, or 1-2 edits away. */
function closestKey(key: string, known: readonly string[]): string | undefined {
  const lower = key.toLowerCase();
  const exact = known.find((k) => k.toLowerCase() === lower);
  if (exact) return exact;
  if (key.length < 4) return undefined;
  let best: { key: string; distance: number } | undefined;
  for (const k of known) {
    const distance = editDistance(lower, k.toLowerCase());
    if (distance <= 2 && (best === undefined || distance < best.distance)) best = { key: k, distance };
  }
  return best?.key;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1);
      current[j] = Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, substitution);
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}

function formatIssue(issue: z.core.$ZodIssue): string[] {
  const where = (p: readonly PropertyKey[]): string => (p.length === 0 ? '(top level)' : p.map(String).join('.'));
  if (issue.code === 'unrecognized_keys') {
    const hints = issue.message.startsWith(KEY_HINTS) ? (JSON.parse(issue.message.slice(KEY_HINTS.length)) as (string | null)[]) : [];
    return issue.keys.map((key, i) => {
      const hint = hints[i];
      return `${where([...issue.path, key])}: unknown key${hint ? `; did you mean ${hint}?` : ''}`;
    });
  }
  return [`${where(issue.path)}: ${issue.message}`];
}
