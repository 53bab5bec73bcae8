import { afterEach, describe, expect, it } from 'vitest';
import path from 'node:path';
import { closeDatabase, MIGRATIONS, openDatabase, UploadsRepo, type Db } from '../../src/db/index.js';
import { UPLOADS_MIGRATION } from '../../src/db/uploads.js';
import { silentLogger } from '../../src/log/logger.js';
import type { MultipartState } from '../../src/storage/s3Multipart.js';
import { makeTmpDir } from '../helpers/tmp.js';

/**
 * The durable multipart state on a real SQLite file: what it commits survives closing the file
 * (the kill test, s3-resume.test.ts, shows it survives SIGKILL too), and it keeps the invariants
 * the uploader relies on.
 */

const tmp = makeTmpDir();
const dbs: Db[] = [];
afterEach(() => {
  for (const db of dbs.splice(0)) closeDatabase(db);
});

function open(file = path.join(tmp.dir, 'state.db')): { db: Db; repo: UploadsRepo } {
  const db = openDatabase(file, { logger: silentLogger });
  dbs.push(db);
  return { db, repo: new UploadsRepo(db, () => 1_000) };
}

const SHA = 'a'.repeat(64);
const upload = (uploadId: string, startedMs = 1): Parameters<UploadsRepo['begin']>[0] => ({ key: 'lectures/x/cam.ts', uploadId, sizeBytes: 12 * 1024 * 1024, sha256: SHA, partSizeBytes: 5 * 1024 * 1024, startedMs });

describe('UploadsRepo (db/uploads.ts)', () => {
  it('is migration 4 and implements the uploader’s MultipartState', () => {
    const { db, repo } = open(path.join(tmp.dir, 'm.db'));
    expect(MIGRATIONS[3]).toBe(UPLOADS_MIGRATION);
    expect(db.pragma('user_version', { simple: true })).toBe(MIGRATIONS.length);
    const state: MultipartState = repo; // structural: db/ may not import storage/
    expect(typeof state.forgetPart).toBe('function');
  });

  it('keeps an upload and its confirmed parts across a reopen, and finds it by key, content and part size', async () => {
    const file = path.join(tmp.dir, 'reopen.db');
    const first = open(file);
    await first.repo.begin(upload('U1'));
    await first.repo.partDone('U1', { partNumber: 2, etag: '"e2"', sizeBytes: 5 });
    await first.repo.partDone('U1', { partNumber: 1, etag: '"e1"', sizeBytes: 5 });
    // A part sent again under its number replaces the first record, as on the server.
    await first.repo.partDone('U1', { partNumber: 2, etag: '"e2b"', sizeBytes: 5 });
    closeDatabase(first.db);
    dbs.splice(dbs.indexOf(first.db), 1);

    const { repo } = open(file);
    expect(await repo.find('lectures/x/cam.ts', SHA, 5 * 1024 * 1024)).toEqual(upload('U1'));
    expect(await repo.find('lectures/x/cam.ts', SHA, 8 * 1024 * 1024)).toBeUndefined();
    expect(await repo.find('lectures/x/cam.ts', 'b'.repeat(64), 5 * 1024 * 1024)).toBeUndefined();
    expect(await repo.find('lectures/x/other.ts', SHA, 5 * 1024 * 1024)).toBeUndefined();
    expect(await repo.parts('U1')).toEqual([
      { partNumber: 1, etag: '"e1"', sizeBytes: 5 },
      { partNumber: 2, etag: '"e2b"', sizeBytes: 5 },
    ]);
  });

  it('forgets single parts, ends uploads with their parts, ignores parts of unknown uploads, and prefers the newest upload', async () => {
    const { db, repo } = open(path.join(tmp.dir, 'ops.db'));
    await repo.begin(upload('OLD', 1));
    await repo.begin(upload('NEW', 2));
    expect((await repo.find('lectures/x/cam.ts', SHA, 5 * 1024 * 1024))?.uploadId).toBe('NEW');
    await repo.partDone('NEW', { partNumber: 1, etag: 'x', sizeBytes: 1 });
    await repo.partDone('NEW', { partNumber: 2, etag: 'y', sizeBytes: 1 });
    await repo.forgetPart('NEW', 1);
    expect((await repo.parts('NEW')).map((p) => p.partNumber)).toEqual([2]);
    await repo.partDone('GONE', { partNumber: 1, etag: 'z', sizeBytes: 1 });
    expect(await repo.parts('GONE')).toEqual([]);
    await repo.end('NEW');
    expect(db.prepare('SELECT count(*) AS n FROM multipart_parts').get()).toEqual({ n: 0 });
    expect(repo.list().map((u) => u.uploadId)).toEqual(['OLD']);
    // Part numbers outside S3's 1..10000 cannot be recorded.
    expect(() => db.prepare(`INSERT INTO multipart_parts VALUES ('OLD', 0, 'e', 1, 1)`).run()).toThrow(/CHECK/);
  });
});
