import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { closeDatabase, integrityCheck, MIGRATIONS, openDatabase, type Db } from '../../src/db/index.js';
import { silentLogger } from '../../src/log/logger.js';
import type { LecternError } from '../../src/util/errors.js';
import { isLecternError } from '../../src/util/errors.js';

let dir: string;
const open: Db[] = [];

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lectern-'));
});

afterEach(() => {
  for (const db of open.splice(0)) if (db.open) db.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

function openDb(file: string, opts: { readonly?: boolean; migrations?: readonly string[] } = {}): Db {
  const db = openDatabase(file, { logger: silentLogger, ...opts });
  open.push(db);
  return db;
}

function pragmas(db: Db) {
  return {
    journalMode: db.pragma('journal_mode', { simple: true }),
    synchronous: db.pragma('synchronous', { simple: true }),
    foreignKeys: db.pragma('foreign_keys', { simple: true }),
    busyTimeout: db.pragma('busy_timeout', { simple: true }),
  };
}

function tables(db: Db): string[] {
  return db
    .prepare<[], { name: string }>(`SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name`)
    .all()
    .map((r) => r.name);
}

function expectLecternError(fn: () => unknown, code: LecternError['code']): LecternError {
  try {
    fn();
  } catch (err) {
    if (!isLecternError(err)) throw err;
    expect(err.code).toBe(code);
    return err;
  }
  throw new Error(`expected LecternError ${code}, nothing was thrown`);
}

/** A database holding enough job rows to span many pages, checkpointed into the main file. */
function populatedDatabase(file: string): void {
  const db = openDb(file);
  const insert = db.prepare(
    `INSERT INTO jobs (kind, key, payload, state, max_attempts, run_after_ms, created_at_ms, updated_at_ms)
     VALUES ('k', ?, ?, 'queued', 3, 0, 0, 0)`,
  );
  db.transaction(() => {
    for (let i = 0; i < 3_000; i++) insert.run(`key-${i}`, JSON.stringify({ n: i, pad: 'p'.repeat(150) }));
  })();
  closeDatabase(db);
}

function overwrite(file: string, offset: number, bytes: Buffer): void {
  const fd = fs.openSync(file, 'r+');
  try {
    fs.writeSync(fd, bytes, 0, bytes.length, offset);
  } finally {
    fs.closeSync(fd);
  }
}

describe('openDatabase pragmas', () => {
  it('sets WAL, synchronous FULL, foreign keys and a busy timeout on a fresh file, creating its directory 0700', () => {
    const file = path.join(dir, 'nested', 'state', 'lectern.db');
    const db = openDb(file);
    expect(pragmas(db)).toEqual({ journalMode: 'wal', synchronous: 2, foreignKeys: 1, busyTimeout: 5_000 });
    expect(fs.statSync(path.dirname(file)).mode & 0o777).toBe(0o700);
    expect(fs.existsSync(`${file}-wal`)).toBe(true);
  });

  it('sets the same pragmas again when reopening a database that is already in WAL mode', () => {
    const file = path.join(dir, 'lectern.db');
    const first = openDb(file);
    first.prepare(`INSERT INTO jobs (kind, key, payload, state, max_attempts, run_after_ms, created_at_ms, updated_at_ms)
                   VALUES ('k', 'a', '{}', 'queued', 1, 0, 0, 0)`).run();
    // Plain close, not closeDatabase: the file stays a WAL database, which is the case where
    // better-sqlite3's compiled default would silently drop to synchronous=NORMAL.
    first.close();
    const again = openDb(file);
    expect(pragmas(again)).toEqual({ journalMode: 'wal', synchronous: 2, foreignKeys: 1, busyTimeout: 5_000 });
    expect(again.prepare('SELECT count(*) AS n FROM jobs').get()).toEqual({ n: 1 });
  });

  it('enforces foreign keys', () => {
    const db = openDb(path.join(dir, 'fk.db'), {
      migrations: ['CREATE TABLE parent (id INTEGER PRIMARY KEY); CREATE TABLE child (parent_id INTEGER REFERENCES parent(id))'],
    });
    expect(() => db.prepare('INSERT INTO child (parent_id) VALUES (42)').run()).toThrow(/FOREIGN KEY/);
  });
});

describe('migrations', () => {
  it('applies the program migrations and creates the jobs table', () => {
    const db = openDb(path.join(dir, 'lectern.db'));
    expect(db.pragma('user_version', { simple: true })).toBe(MIGRATIONS.length);
    expect(tables(db)).toContain('jobs');
  });

  it('applies each migration once; reopening keeps the version and appended migrations run on the next open', () => {
    const file = path.join(dir, 'm.db');
    const v2 = ['CREATE TABLE one (x INTEGER)', 'CREATE TABLE two (x INTEGER)'];
    closeDatabase(openDb(file, { migrations: v2 }));
    // Re-running a CREATE TABLE would throw "already exists": reopening must not.
    const reopened = openDb(file, { migrations: v2 });
    expect(reopened.pragma('user_version', { simple: true })).toBe(2);
    closeDatabase(reopened);
    const upgraded = openDb(file, { migrations: [...v2, 'CREATE TABLE three (x INTEGER)'] });
    expect(upgraded.pragma('user_version', { simple: true })).toBe(3);
    expect(tables(upgraded)).toEqual(['one', 'three', 'two']);
  });

  it('rolls back both the schema and the version when a migration throws', () => {
    const file = path.join(dir, 'bad.db');
    const good = 'CREATE TABLE one (x INTEGER)';
    // The CREATE succeeds inside the migration before the INSERT fails on the STRICT type check.
    const broken = `CREATE TABLE half (x INTEGER) STRICT; INSERT INTO half (x) VALUES ('not a number')`;
    const err = expectLecternError(() => openDb(file, { migrations: [good, broken] }), 'DB_OPEN_FAILED');
    expect(err.message).toContain(file);

    const db = openDb(file, { migrations: [good] });
    expect(db.pragma('user_version', { simple: true })).toBe(1);
    expect(tables(db)).toEqual(['one']);
    closeDatabase(db);

    const fixed = openDb(file, { migrations: [good, 'CREATE TABLE half (x INTEGER) STRICT'] });
    expect(fixed.pragma('user_version', { simple: true })).toBe(2);
    expect(tables(fixed)).toEqual(['half', 'one']);
  });

  it('refuses a database written by a newer schema', () => {
    const file = path.join(dir, 'newer.db');
    closeDatabase(openDb(file, { migrations: ['CREATE TABLE a (x)', 'CREATE TABLE b (x)'] }));
    const err = expectLecternError(() => openDb(file, { migrations: ['CREATE TABLE a (x)'] }), 'DB_OPEN_FAILED');
    expect(err.message).toMatch(/schema version 2, newer than this lectern knows \(1\)/);
  });
});

describe('readonly open', () => {
  it('applies no migrations and cannot write', () => {
    const file = path.join(dir, 'ro.db');
    closeDatabase(openDb(file, { migrations: ['CREATE TABLE a (x INTEGER)'] }));
    const ro = openDb(file, { readonly: true, migrations: ['CREATE TABLE a (x INTEGER)', 'CREATE TABLE b (x INTEGER)'] });
    expect(ro.pragma('user_version', { simple: true })).toBe(1);
    expect(tables(ro)).toEqual(['a']);
    expect(() => ro.prepare('INSERT INTO a (x) VALUES (1)').run()).toThrow(/readonly/);
  });

  it('does not create a missing file', () => {
    const file = path.join(dir, 'missing.db');
    expectLecternError(() => openDb(file, { readonly: true }), 'DB_OPEN_FAILED');
    expect(fs.existsSync(file)).toBe(false);
  });
});

describe('closeDatabase and integrityCheck', () => {
  it('reports a healthy database as ok and leaves no WAL behind after close', () => {
    const file = path.join(dir, 'lectern.db');
    populatedDatabase(file);
    const db = openDb(file);
    expect(integrityCheck(db)).toEqual([]);
    expect(integrityCheck(db, { quick: true })).toEqual([]);
    closeDatabase(db);
    expect(db.open).toBe(false);
    expect(fs.existsSync(`${file}-wal`)).toBe(false);
    closeDatabase(db); // already closed: a no-op, not a throw
  });
});

describe('corrupted files', () => {
  it('fails with DB_CORRUPT naming the file when a page in the middle is overwritten', () => {
    const file = path.join(dir, 'lectern.db');
    populatedDatabase(file);
    const pageBytes = 4_096;
    const pages = fs.statSync(file).size / pageBytes;
    expect(pages).toBeGreaterThan(50);
    // A torn write on a lying disk leaves whole sectors of garbage: overwrite one page from its
    // header on. (Bytes changed only inside a row's text are NOT detected — quick_check verifies
    // structure, not content — so the test damages what a real torn page damages.)
    overwrite(file, Math.floor(pages / 2) * pageBytes, Buffer.alloc(pageBytes, 0xa5));
    const err = expectLecternError(() => openDb(file), 'DB_CORRUPT');
    expect(err.message).toContain(file);
    expect(err.message).toMatch(/integrity check/);
    // Observed with SQLite 3.53: the check itself fails with "database disk image is malformed"
    // for an interior page, and lists "Tree N page M: ..." lines for a leaf page; either is a finding.
    expect(err.details.problems).toEqual(expect.arrayContaining([expect.stringMatching(/malformed|page \d+/i)]));
  });

  it('fails with DB_CORRUPT when the file header is garbage', () => {
    const file = path.join(dir, 'lectern.db');
    populatedDatabase(file);
    overwrite(file, 0, Buffer.alloc(100, 0x41));
    const err = expectLecternError(() => openDb(file), 'DB_CORRUPT');
    expect(err.message).toContain(file);
    expect(err.details.sqliteCode).toBe('SQLITE_NOTADB');
  });

  it('fails with DB_CORRUPT when the schema page is damaged', () => {
    const file = path.join(dir, 'lectern.db');
    populatedDatabase(file);
    overwrite(file, 100, Buffer.alloc(200, 0xff));
    const err = expectLecternError(() => openDb(file), 'DB_CORRUPT');
    expect(err.details.sqliteCode).toBe('SQLITE_CORRUPT');
  });

  it('fails with DB_OPEN_FAILED (not DB_CORRUPT) when the path cannot be a database at all', () => {
    const asDir = path.join(dir, 'is-a-directory');
    fs.mkdirSync(asDir);
    expectLecternError(() => openDb(asDir), 'DB_OPEN_FAILED');
  });
});
