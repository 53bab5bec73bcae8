import { redactUrl } from '../util/redact.js';

/**
 * One small logger for the whole program. Lines go to stderr (journald keeps them when lectern
 * runs as a service; stdout stays free for CLI output and `--json`). Every message and string
 * field passes through URL redaction, so a camera URL with a password cannot leak by accident.
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export type LogFields = Record<string, unknown>;

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  /** A logger whose lines carry `fields` (scope, recordingId, jobId…) as well. */
  child(fields: LogFields): Logger;
}

export interface LogSink {
  write(line: string): void;
}

const LEVEL_ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

// systemd's journal understands "<N>" prefixes as syslog priorities when stderr is the journal.
const SYSLOG_PRIORITY: Record<LogLevel, number> = { debug: 7, info: 6, warn: 4, error: 3 };

export interface LoggerOptions {
  level?: LogLevel;
  sink?: LogSink;
  /** Prefix lines with <N> syslog priorities (set when running under systemd). */
  syslogPrefix?: boolean;
  /** Extra secret values to blank out wherever they appear. */
  secrets?: readonly string[];
  now?: () => Date;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const sink = options.sink ?? { write: (line: string) => process.stderr.write(line) };
  const min = LEVEL_ORDER[options.level ?? 'info'];
  const now = options.now ?? (() => new Date());
  const secrets = options.secrets ?? [];

  const clean = (text: string): string => {
    let out = redactUrl(text);
    for (const s of secrets) if (s.length >= 4) out = out.split(s).join('***');
    return out;
  };

  const make = (bound: LogFields): Logger => {
    const emit = (level: LogLevel, msg: string, fields?: LogFields): void => {
      if (LEVEL_ORDER[level] < min) return;
      const all = { ...bound, ...fields };
      const scope = typeof all.scope === 'string' ? all.scope : undefined;
      delete all.scope;
      const rest = Object.entries(all)
        .filter(([, v]) => v !== undefined)
        .map(([k, v]) => `${k}=${formatValue(v)}`)
        .join(' ');
      const prefix = options.syslogPrefix ? `<${SYSLOG_PRIORITY[level]}>` : `${now().toISOString()} `;
      const line = `${prefix}${level.toUpperCase()} ${scope ? `[${scope}] ` : ''}${msg}${rest ? ` ${rest}` : ''}`;
      sink.write(`${clean(line)}\n`);
    };
    return {
      debug: (m, f) => emit('debug', m, f),
      info: (m, f) => emit('info', m, f),
      warn: (m, f) => emit('warn', m, f),
      error: (m, f) => emit('error', m, f),
      child: (fields) => make({ ...bound, ...fields }),
    };
  };
  return make({});
}

function formatValue(value: unknown): string {
  if (value instanceof Error) return JSON.stringify(value.message);
  if (typeof value === 'string') return /^[\w./:@+-]*$/.test(value) && value !== '' ? value : JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  try {
    return JSON.stringify(value);
  } catch {
    // Circular structures are not worth failing a log line over.
    return String(value);
  }
}

/** A logger that keeps lines in memory; for tests and for the CLI's quiet mode. */
export function createMemoryLogger(level: LogLevel = 'debug'): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const logger = createLogger({ level, sink: { write: (l) => lines.push(l.trimEnd()) } });
  return { logger, lines };
}

export const silentLogger: Logger = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
  child: () => silentLogger,
};
