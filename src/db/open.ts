import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import type { Logger } from '../log/logger.js';
import { describeError, LecternError } from '../util/errors.js';
import { MIGRATIONS } from './migrations.js';

/** An open state database. This module is the only importer of better-sqlite3. */
export type Db = Database.Database;

export interface OpenDatabaseOptions {
  logger: Logger;
  /** For CLI inspection: no migrations, no journal-mode change, no writes. */
  readonly?: boolean;
  /** Defaults to the program's MIGRATIONS; tests pass their own. */
  migrations?: readonly string[];
}

const BUSY_TIMEOUT_MS = 5_000;

/**
 * Opens (creating if needed) the state database, enforces the durability pragmas, verifies the
 * file and brings the schema up to date. Throws LecternError DB_CORRUPT when the file is damaged
 * and DB_OPEN_FAILED for anything else that keeps it from opening.
 */
export function openDatabase(path: string, opts: OpenDatabaseOptions): Db {
  const readonly = opts.readonly ?? false;
  const migrations = opts.migrations ?? MIGRATIONS;
  const inMemory = path === ':memory:' || path === '';
  if (!readonly && !inMemory) {
    try {
      mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    } catch (err) {
      throw new LecternError('DB_OPEN_FAILED', `cannot create the directory for ${path}: ${describeError(err)}`, { cause: err, details: { path } });
    }
  }

  let db: Db;
  try {
    db = new Database(path, { readonly, fileMustExist: readonly, timeout: BUSY_TIMEOUT_MS });
  } catch (err) {
    throw openError(path, err);
  }

  try {
    if (!readonly) applyPragmas(db, path, inMemory, opts.logger);
    const problems = integrityCheck(db, { quick: true });
    if (problems.length > 0) {
      throw new LecternError('DB_CORRUPT', `${path} failed its integrity check: ${problems.slice(0, 5).join('; ')}`, {
        details: { path, problems: problems.slice(0, 20) },
      });
    }
    if (!readonly) migrate(db, path, migrations, opts.logger);
    else checkVersionKnown(db, path, migrations);
  } catch (err) {
    db.close();
    throw err instanceof LecternError ? err : openError(path, err);
  }
  opts.logger.debug('database open', { path, readonly, schemaVersion: userVersion(db) });
  return db;
}

/** Checkpoints the WAL into the main file (so the -wal file does not linger) and closes. */
export function closeDatabase(db: Db): void {
  if (!db.open) return;
  try {
    if (!db.readonly && !db.memory) db.pragma('wal_checkpoint(TRUNCATE)');
  } finally {
    db.close();
  }
}

/**
 * SQLite's own consistency check; returns the problems found, empty when the database is sound.
 * `quick` skips the index-content cross-check (O(N) instead of O(N log N)), which is enough to
 * catch a torn or overwritten page at startup.
 */
export function integrityCheck(db: Db, opts: { quick?: boolean } = {}): string[] {
  const pragma = opts.quick ? 'quick_check' : 'integrity_check';
  try {
    const rows = db.pragma(pragma, { simple: false }) as Record<string, unknown>[];
    // SQLite reports either one row per problem or one row of newline-separated problems.
    const messages = rows.flatMap((row) => String(Object.values(row)[0]).split('\n')).filter((line) => line.trim() !== '');
    return messages.length === 1 && messages[0] === 'ok' ? [] : messages;
  } catch (err) {
    // Badly damaged files make the check itself fail (SQLITE_CORRUPT, SQLITE_NOTADB); that is a
    // finding, not a crash of the checker.
    return [describeError(err)];
  }
}

function applyPragmas(db: Db, path: string, inMemory: boolean, logger: Logger): void {
  const mode = db.pragma('journal_mode = WAL', { simple: true });
  if (!inMemory && mode !== 'wal') logger.warn('database is not in WAL mode; the filesystem may not support it', { path, journalMode: mode });
  // better-sqlite3 is compiled with SQLITE_DEFAULT_WAL_SYNCHRONOUS=1: every reopen of a WAL
  // database starts at NORMAL, where a power cut can roll back acknowledged commits. Set FULL on
  // every open, not only on the one that switched the file to WAL.
  db.pragma('synchronous = FULL');
  db.pragma('foreign_keys = ON');
  db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
}

function migrate(db: Db, path: string, migrations: readonly string[], logger: Logger): void {
  const from = checkVersionKnown(db, path, migrations);
  for (let version = from; version < migrations.length; version++) {
    const sql = migrations[version] ?? '';
    // IMMEDIATE takes the write lock before reading, so two processes starting at once cannot
    // both apply the same migration; a throwing migration rolls back its schema and its version.
    db.transaction(() => {
      db.exec(sql);
      db.pragma(`user_version = ${version + 1}`);
    }).immediate();
  }
  if (from < migrations.length) logger.info('database schema migrated', { path, from, to: migrations.length });
}

function checkVersionKnown(db: Db, path: string, migrations: readonly string[]): number {
  const version = userVersion(db);
  if (version > migrations.length) {
    throw new LecternError(
      'DB_OPEN_FAILED',
      `${path} has schema version ${version}, newer than this lectern knows (${migrations.length}); it was written by a newer release`,
      { details: { path, version, known: migrations.length } },
    );
  }
  return version;
}

function userVersion(db: Db): number {
  return db.pragma('user_version', { simple: true }) as number;
}

function openError(path: string, err: unknown): LecternError {
  const code = err instanceof Database.SqliteError ? err.code : undefined;
  if (code !== undefined && (code === 'SQLITE_NOTADB' || code.startsWith('SQLITE_CORRUPT'))) {
    return new LecternError('DB_CORRUPT', `${path} is damaged: ${describeError(err)}`, { cause: err, details: { path, sqliteCode: code } });
  }
  return new LecternError('DB_OPEN_FAILED', `cannot open ${path}: ${describeError(err)}`, { cause: err, details: { path, sqliteCode: code } });
}
