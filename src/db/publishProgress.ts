import type { Db } from './open.js';

/**
 * How far the publish of each lecture got (table publish_progress, created by RETENTION_MIGRATION
 * in db/retention.ts): the publish job writes it after each confirmed file, `lectern uploads`
 * reads it. Bytes of files the store already held count as done, so a re-run catches up at once.
 */

export interface PublishProgressRecord {
  lectureId: string;
  filesDone: number;
  filesTotal: number;
  bytesDone: number;
  bytesTotal: number;
  updatedAtMs: number;
}

export class PublishProgressRepo {
  readonly #stmt;

  constructor(db: Db, private readonly now: () => number = Date.now) {
    this.#stmt = {
      set: db.prepare<{ id: string; filesDone: number; filesTotal: number; bytesDone: number; bytesTotal: number; now: number }>(
        `INSERT INTO publish_progress (lecture_id, files_done, files_total, bytes_done, bytes_total, updated_at_ms)
         VALUES (@id, @filesDone, @filesTotal, @bytesDone, @bytesTotal, @now)
         ON CONFLICT (lecture_id) DO UPDATE SET files_done = excluded.files_done, files_total = excluded.files_total,
           bytes_done = excluded.bytes_done, bytes_total = excluded.bytes_total, updated_at_ms = excluded.updated_at_ms`,
      ),
      get: db.prepare<{ id: string }, { lecture_id: string; files_done: number; files_total: number; bytes_done: number; bytes_total: number; updated_at_ms: number }>(
        `SELECT * FROM publish_progress WHERE lecture_id = @id`,
      ),
    };
  }

  set(lectureId: string, p: { filesDone: number; filesTotal: number; bytesDone: number; bytesTotal: number }): void {
    this.#stmt.set.run({ id: lectureId, ...p, now: this.now() });
  }

  get(lectureId: string): PublishProgressRecord | undefined {
    const r = this.#stmt.get.get({ id: lectureId });
    return r && { lectureId: r.lecture_id, filesDone: r.files_done, filesTotal: r.files_total, bytesDone: r.bytes_done, bytesTotal: r.bytes_total, updatedAtMs: r.updated_at_ms };
  }
}
