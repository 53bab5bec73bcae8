import type { Db } from './open.js';

/**
 * What storage/retention.ts needs to know about lectures, and where it records what it deleted.
 * Implements storage's RetentionCatalog structurally (db/ may not import storage/); the agent
 * wires it in. A lecture's id is its recording's id and the key of its transcode and publish jobs.
 */

/**
 * Migration SQL (appended to MIGRATIONS): one row per lecture whose local files were deleted,
 * and the publish progress of each lecture (written by the publish job, read by `lectern uploads`).
 */
export const RETENTION_MIGRATION = `
CREATE TABLE retention_purges (
  lecture_id TEXT PRIMARY KEY,
  reason TEXT NOT NULL CHECK (reason IN ('kept', 'low_disk')),
  published_at_ms INTEGER NOT NULL,
  purged_at_ms INTEGER NOT NULL,
  freed_bytes INTEGER NOT NULL CHECK (freed_bytes >= 0)
) STRICT;
CREATE TABLE publish_progress (
  lecture_id TEXT PRIMARY KEY,
  files_done INTEGER NOT NULL CHECK (files_done >= 0),
  files_total INTEGER NOT NULL CHECK (files_total >= 0),
  bytes_done INTEGER NOT NULL CHECK (bytes_done >= 0),
  bytes_total INTEGER NOT NULL CHECK (bytes_total >= 0),
  updated_at_ms INTEGER NOT NULL
) STRICT;
`;

/** 'kept': its keep time after publication passed; 'low_disk': deleted early by the free-space guard. */
export type PurgeReason = 'kept' | 'low_disk';

/** Field for field the same as storage's RetentionLecture. */
export interface PublishedLectureRecord {
  lectureId: string;
  publishedAtMs: number;
  lecturePrefix: string;
  readyKey: string;
}

export interface PurgeRecord {
  lectureId: string;
  reason: PurgeReason;
  publishedAtMs: number;
  purgedAtMs: number;
  freedBytes: number;
}

export class RetentionRepo {
  readonly #stmt;
  readonly #publishKind: string;

  /** `publishKind`: the job kind whose done state means "published" (upload/'s PUBLISH_JOB). */
  constructor(db: Db, publishKind = 'publish') {
    this.#stmt = {
      // Only jobs whose result names where the lecture went: without it nothing can be checked.
      published: db.prepare<{ kind: string }, { lecture_id: string; published_at_ms: number; lecture_prefix: string; ready_key: string }>(
        `SELECT j.key AS lecture_id, j.finished_at_ms AS published_at_ms,
                json_extract(j.result, '$.lecturePrefix') AS lecture_prefix, json_extract(j.result, '$.readyKey') AS ready_key
         FROM jobs j
         WHERE j.kind = @kind AND j.state = 'done'
           AND json_type(j.result, '$.lecturePrefix') = 'text' AND json_type(j.result, '$.readyKey') = 'text'
           AND NOT EXISTS (SELECT 1 FROM retention_purges p WHERE p.lecture_id = j.key)
         ORDER BY j.finished_at_ms, j.id`,
      ),
      busy: db.prepare<{ id: string }, { busy: number }>(
        `SELECT EXISTS (SELECT 1 FROM recordings WHERE id = @id AND state = 'recording')
             OR EXISTS (SELECT 1 FROM jobs WHERE key = @id AND state IN ('queued', 'running')) AS busy`,
      ),
      segmentPaths: db.prepare<{ id: string }, { path: string }>(`SELECT DISTINCT path FROM segments WHERE recording_id = @id ORDER BY path`),
      // An imported copy is content-addressed: another lecture still holding it keeps it.
      pathShared: db.prepare<{ path: string; id: string }, { n: number }>(
        `SELECT count(*) AS n FROM segments s
         WHERE s.path = @path AND s.recording_id <> @id
           AND NOT EXISTS (SELECT 1 FROM retention_purges p WHERE p.lecture_id = s.recording_id)`,
      ),
      markPurged: db.prepare<{ id: string; reason: PurgeReason; published: number; purged: number; freed: number }>(
        `INSERT INTO retention_purges (lecture_id, reason, published_at_ms, purged_at_ms, freed_bytes)
         VALUES (@id, @reason, @published, @purged, @freed)
         ON CONFLICT (lecture_id) DO NOTHING`,
      ),
      purged: db.prepare<[], { lecture_id: string; reason: PurgeReason; published_at_ms: number; purged_at_ms: number; freed_bytes: number }>(
        `SELECT * FROM retention_purges ORDER BY purged_at_ms, lecture_id`,
      ),
    };
    this.#publishKind = publishKind;
  }

  /** Published lectures whose local files are not deleted yet, oldest publication first. */
  published(): PublishedLectureRecord[] {
    return this.#stmt.published.all({ kind: this.#publishKind }).map((r) => ({
      lectureId: r.lecture_id,
      publishedAtMs: r.published_at_ms,
      lecturePrefix: r.lecture_prefix,
      readyKey: r.ready_key,
    }));
  }

  /** Live, or any of its jobs queued or running (a re-package, a re-publish): hands off. */
  isBusy(lectureId: string): boolean {
    return this.#stmt.busy.get({ id: lectureId })?.busy === 1;
  }

  /** The lecture's segment files, relative to the data directory. */
  segmentPaths(lectureId: string): string[] {
    return this.#stmt.segmentPaths.all({ id: lectureId }).map((r) => r.path);
  }

  /** Whether a lecture other than this one, not yet purged, lists the same segment file. */
  isPathShared(relativePath: string, lectureId: string): boolean {
    return (this.#stmt.pathShared.get({ path: relativePath, id: lectureId })?.n ?? 0) > 0;
  }

  markPurged(rec: PurgeRecord): void {
    this.#stmt.markPurged.run({ id: rec.lectureId, reason: rec.reason, published: rec.publishedAtMs, purged: rec.purgedAtMs, freed: rec.freedBytes });
  }

  /** Every purge so far, oldest first (status, tests). */
  purged(): PurgeRecord[] {
    return this.#stmt.purged.all().map((r) => ({
      lectureId: r.lecture_id,
      reason: r.reason,
      publishedAtMs: r.published_at_ms,
      purgedAtMs: r.purged_at_ms,
      freedBytes: r.freed_bytes,
    }));
  }
}
