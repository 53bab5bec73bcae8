import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parseDocument } from 'yaml';
import type { z } from 'zod';
import { LecternError } from '../util/errors.js';
import { redactUrl } from '../util/redact.js';
import { configSchema, type Config } from './schema.js';

/**
 * Loads and validates the configuration. Every problem is collected and reported at once as
 * `path: message`, so IT staff fix a file in one pass instead of one error per restart.
 */

export const DEFAULT_CONFIG_PATH = '/etc/lectern/config.yaml';
export const BUILT_IN_SOURCE = '(built-in defaults)';

export interface LoadedConfig {
  /** Validated, with every path absolute. */
  config: Config;
  /** The file read, or BUILT_IN_SOURCE. */
  source: string;
}

export type ValidationResult = { ok: true; config: Config } | { ok: false; problems: string[] };

/** Validates an already-parsed document (pure: no file system, no environment). */
export function validateConfig(raw: unknown): ValidationResult {
  if (raw !== undefined && raw !== null && (typeof raw !== 'object' || Array.isArray(raw))) {
    return { ok: false, problems: [`(top level): must be a mapping of sections (agent, sources, capture, ...), got ${describeValue(raw)}`] };
  }
  const result = configSchema.safeParse(raw ?? {}, { reportInput: true });
  if (result.success) return { ok: true, config: result.data };
  return { ok: false, problems: result.error.issues.flatMap(formatIssue) };
}

export function formatProblems(problems: readonly string[], source: string): string {
  return [`${source}: ${problems.length} problem${problems.length === 1 ? '' : 's'}`, ...problems.map((p) => `  ${p}`)].join('\n');
}

export function loadConfig(opts: { path?: string; env?: NodeJS.ProcessEnv; cwd?: string } = {}): LoadedConfig {
  const env = opts.env ?? process.env;
  const cwd = opts.cwd ?? process.cwd();
  const explicit = opts.path ?? (env.LECTERN_CONFIG ? env.LECTERN_CONFIG : undefined);
  const file = explicit ?? (existsSync(DEFAULT_CONFIG_PATH) ? DEFAULT_CONFIG_PATH : undefined);

  let raw: unknown = {};
  let source = BUILT_IN_SOURCE;
  let baseDir = cwd;
  if (file !== undefined) {
    source = path.resolve(cwd, file);
    baseDir = path.dirname(source);
    let text: string;
    try {
      text = readFileSync(source, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'error';
      throw new LecternError('CONFIG_UNREADABLE', `cannot read the configuration file ${source} (${code})`, { cause: err, details: { source } });
    }
    const doc = parseDocument(text, { prettyErrors: true });
    if (doc.errors.length > 0) {
      const problems = doc.errors.map((e) => {
        const pos = e.linePos?.[0];
        return `${pos ? `line ${pos.line}, column ${pos.col}` : 'YAML'}: ${e.message.split('\n')[0] ?? e.message}`;
      });
      throw invalid(problems, source);
    }
    raw = doc.toJS() as unknown;
  }

  const result = validateConfig(raw);
  if (!result.ok) throw invalid(result.problems, source);
  return { config: resolvePaths(result.config, { baseDir, env, fromFile: file !== undefined, rawDataDirSet: hasDataDir(raw) }), source };
}

function invalid(problems: string[], source: string): LecternError {
  return new LecternError('CONFIG_INVALID', formatProblems(problems, source), { details: { problems, source } });
}

function hasDataDir(raw: unknown): boolean {
  const agent = (raw as { agent?: { dataDir?: unknown } } | null)?.agent;
  return typeof agent === 'object' && agent !== null && agent.dataDir !== undefined;
}

/** Relative paths are relative to the configuration file (or the working directory without one). */
function resolvePaths(config: Config, ctx: { baseDir: string; env: NodeJS.ProcessEnv; fromFile: boolean; rawDataDirSet: boolean }): Config {
  const abs = (p: string): string => path.resolve(ctx.baseDir, p);
  // Under systemd, StateDirectory= tells where the service may write; it wins over the default.
  const dataDir = !ctx.rawDataDirSet && ctx.env.STATE_DIRECTORY ? (ctx.env.STATE_DIRECTORY.split(':')[0] ?? '') : abs(config.agent.dataDir);
  return {
    ...config,
    agent: { ...config.agent, dataDir },
    storage: resolveStoragePaths(config.storage, abs, dataDir),
    sources: config.sources.map((s) =>
      // A bare name may be a systemd credential; it is looked up when the secret is read.
      s.kind === 'rtsp' && s.passwordFile !== undefined && s.passwordFile.includes('/') ? { ...s, passwordFile: abs(s.passwordFile) } : s,
    ),
  };
}

function resolveStoragePaths(storage: Config['storage'], abs: (p: string) => string, dataDir: string): Config['storage'] {
  if (storage.kind === 'file') return { ...storage, root: storage.root ? abs(storage.root) : path.join(dataDir, 'store') };
  // As for camera passwords: a bare name may be a systemd credential, looked up when read.
  const file = (p: string | undefined): string | undefined => (p !== undefined && p.includes('/') ? abs(p) : p);
  const accessKeyIdFile = file(storage.accessKeyIdFile);
  const secretAccessKeyFile = file(storage.secretAccessKeyFile);
  return { ...storage, ...(accessKeyIdFile ? { accessKeyIdFile } : {}), ...(secretAccessKeyFile ? { secretAccessKeyFile } : {}) };
}

function formatIssue(issue: z.core.$ZodIssue): string[] {
  const where = (p: readonly PropertyKey[]): string => (p.length === 0 ? '(top level)' : p.map(String).join('.'));
  const got = 'input' in issue ? `, got ${describeValue(issue.input)}` : '';
  switch (issue.code) {
    case 'unrecognized_keys':
      return issue.keys.map((k) => `${where([...issue.path, k])}: unknown key`);
    case 'too_small':
      if (issue.origin === 'array') return [`${where(issue.path)}: must have at least ${String(issue.minimum)} entr${issue.minimum === 1 ? 'y' : 'ies'}`];
      if (issue.origin === 'string') return [`${where(issue.path)}: must not be empty`];
      return [`${where(issue.path)}: must be ${rangeText(issue)}${got}`];
    case 'too_big':
      return [`${where(issue.path)}: must be ${rangeText(issue)}${got}`];
    case 'invalid_type':
      if ('input' in issue && issue.input === undefined) return [`${where(issue.path)}: is required (${issue.expected})`];
      return [`${where(issue.path)}: must be ${article(issue.expected)}${got}`];
    case 'invalid_value':
      return [`${where(issue.path)}: must be one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}${got}`];
    case 'invalid_union': {
      const disc = (issue as { discriminator?: string; options?: unknown[] }).discriminator;
      const options = (issue as { options?: unknown[] }).options;
      if (disc !== undefined) {
        const input = (issue as { input?: Record<string, unknown> }).input;
        const value = input && typeof input === 'object' ? input[disc] : undefined;
        const path = issue.path.at(-1) === disc ? issue.path : [...issue.path, disc];
        return [`${where(path)}: unknown ${disc} ${describeValue(value)}; expected one of ${(options ?? []).filter((o) => typeof o === 'string').join(', ')}`];
      }
      return [`${where(issue.path)}: ${issue.message}`];
    }
    case 'invalid_format':
    case 'custom':
    default:
      // No input echoed here: a refinement may be about a secret (a password inside a URL).
      return [`${where(issue.path)}: ${issue.message}`];
  }
}

function rangeText(issue: z.core.$ZodIssueTooSmall | z.core.$ZodIssueTooBig): string {
  // The schema always sets both bounds together on integers; name the full range so the fix is obvious.
  const kind = issue.origin === 'int' || issue.origin === 'number' ? 'a number' : 'a value';
  if (issue.code === 'too_small') return `${kind} ${issue.inclusive === false ? '>' : '>='} ${String(issue.minimum)}`;
  return `${kind} ${issue.inclusive === false ? '<' : '<='} ${String(issue.maximum)}`;
}

function article(expected: string): string {
  return /^[aeiou]/.test(expected) ? `an ${expected}` : `a ${expected}`;
}

function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  const text = redactUrl(JSON.stringify(value));
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}
