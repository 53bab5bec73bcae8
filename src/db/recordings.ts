import type { Db } from './open.js';

/**
 * Durable record of every recording: its runs (one per ffmpeg process, so restarts leave gaps
 * we can measure) and every complete segment with bytes and sha256. Capture writes here the
 * moment a segment closes; transcode reads it. After a crash this table, not memory, is the truth.
 */

/** Migration SQL for these tables (appended to MIGRATIONS in migrations.ts). */
export const RECORDINGS_MIGRATION = `
CREATE TABLE recordings (
  id TEXT PRIMARY KEY,
  state TEXT NOT NULL CHECK (state IN ('recording', 'stopped', 'failed')),
  title TEXT NOT NULL,
  course TEXT,
  teacher TEXT,
  started_at_ms INTEGER NOT NULL,
  planned_end_ms INTEGER,
  stopped_at_ms INTEGER,
  stop_reason TEXT
) STRICT;
CREATE UNIQUE INDEX recordings_one_live ON recordings(state) WHERE state = 'recording';
CREATE TABLE recording_runs (
  recording_id TEXT NOT NULL REFERENCES recordings(id),
  source TEXT NOT NULL,
  run INTEGER NOT NULL,
  started_at_ms INTEGER NOT NULL,
  ended_at_ms INTEGER,
  end_reason TEXT,
  PRIMARY KEY (recording_id, source, run)
) STRICT;
CREATE TABLE segments (
  recording_id TEXT NOT NULL REFERENCES recordings(id),
  source TEXT NOT NULL,
  run INTEGER NOT NULL,
  seq INTEGER NOT NULL,
  path TEXT NOT NULL,
  bytes INTEGER NOT NULL,
  sha256 TEXT NOT NULL,
  start_seconds REAL NOT NULL,
  duration_seconds REAL NOT NULL,
  added_at_ms INTEGER NOT NULL,
  PRIMARY KEY (recording_id, source, run, seq)
) STRICT;
`;

/**
 * - `recording`: ffmpeg is (or should be) writing segments; at most one at a time.
 * - `stopped`: finished (by a stop, or closed after a crash); its segments are final.
 * - `failed`: nothing usable was recorded.
 */
export type RecordingState = 'recording' | 'stopped' | 'failed';

export interface RecordingRow {
  id: string;
  state: RecordingState;
  title: string;
  course: string | null;
  teacher: string | null;
  startedAtMs: number;
  plannedEndMs: number | null;
  stoppedAtMs: number | null;
  stopReason: string | null;
}

export interface RunRow {
  recordingId: string;
  source: string;
  run: number;
  startedAtMs: number;
  endedAtMs: number | null;
  endReason: string | null;
}

export interface SegmentRow {
  recordingId: string;
  source: string;
  run: number;
  seq: number;
  /** Relative to the data directory, so the data directory can move. */
  path: string;
  bytes: number;
  sha256: string;
  startSeconds: number;
  durationSeconds: number;
}

interface RawRecording {
  id: string;
  state: RecordingState;
  title: string;
  course: string | null;
  teacher: string | null;
  started_at_ms: number;
  planned_end_ms: number | null;
  stopped_at_ms: number | null;
  stop_reason: string | null;
}

function toRecording(r: RawRecording): RecordingRow {
  return {
    id: r.id,
    state: r.state,
    title: r.title,
    course: r.course,
    teacher: r.teacher,
    startedAtMs: r.started_at_ms,
    plannedEndMs: r.planned_end_ms,
    stoppedAtMs: r.stopped_at_ms,
    stopReason: r.stop_reason,
  };
}

export class RecordingRepo {
  readonly #db: Db;

  constructor(db: Db) {
    this.#db = db;
  }

  create(rec: { id: string; title: string; course?: string | null; teacher?: string | null; startedAtMs: number; plannedEndMs?: number | null }): RecordingRow {
    this.#db
      .prepare(
        `INSERT INTO recordings (id, state, title, course, teacher, started_at_ms, planned_end_ms)
         VALUES (?, 'recording', ?, ?, ?, ?, ?)`,
      )
      .run(rec.id, rec.title, rec.course ?? null, rec.teacher ?? null, rec.startedAtMs, rec.plannedEndMs ?? null);
    const row = this.get(rec.id);
    if (!row) throw new Error(`recording ${rec.id} vanished after insert`);
    return row;
  }

  get(id: string): RecordingRow | undefined {
    const raw = this.#db.prepare('SELECT * FROM recordings WHERE id = ?').get(id) as RawRecording | undefined;
    return raw && toRecording(raw);
  }

  /** The live recording, if any (the partial unique index allows at most one). */
  live(): RecordingRow | undefined {
    const raw = this.#db.prepare(`SELECT * FROM recordings WHERE state = 'recording'`).get() as RawRecording | undefined;
    return raw && toRecording(raw);
  }

  list(filter: { state?: RecordingState; limit?: number } = {}): RecordingRow[] {
    const rows = this.#db
      .prepare(`SELECT * FROM recordings WHERE (@state IS NULL OR state = @state) ORDER BY started_at_ms DESC LIMIT @limit`)
      .all({ state: filter.state ?? null, limit: filter.limit ?? 1000 }) as RawRecording[];
    return rows.map(toRecording);
  }

  /** Moves a live recording to a final state; returns false if it was not live. */
  finish(id: string, state: Exclude<RecordingState, 'recording'>, stoppedAtMs: number, reason: string): boolean {
    const info = this.#db
      .prepare(`UPDATE recordings SET state = ?, stopped_at_ms = ?, stop_reason = ? WHERE id = ? AND state = 'recording'`)
      .run(state, stoppedAtMs, reason, id);
    return info.changes === 1;
  }

  /** The next run number for a source: runs are never reused, so a restart never overwrites. */
  nextRun(recordingId: string, source: string): number {
    const row = this.#db
      .prepare('SELECT COALESCE(MAX(run), 0) AS last FROM recording_runs WHERE recording_id = ? AND source = ?')
      .get(recordingId, source) as { last: number };
    return row.last + 1;
  }

  startRun(recordingId: string, source: string, run: number, startedAtMs: number): void {
    this.#db
      .prepare('INSERT INTO recording_runs (recording_id, source, run, started_at_ms) VALUES (?, ?, ?, ?)')
      .run(recordingId, source, run, startedAtMs);
  }

  endRun(recordingId: string, source: string, run: number, endedAtMs: number, reason: string): void {
    this.#db
      .prepare(
        `UPDATE recording_runs SET ended_at_ms = ?, end_reason = ?
         WHERE recording_id = ? AND source = ? AND run = ? AND ended_at_ms IS NULL`,
      )
      .run(endedAtMs, reason, recordingId, source, run);
  }

  runs(recordingId: string): RunRow[] {
    const rows = this.#db
      .prepare('SELECT * FROM recording_runs WHERE recording_id = ? ORDER BY source, run')
      .all(recordingId) as Array<{ recording_id: string; source: string; run: number; started_at_ms: number; ended_at_ms: number | null; end_reason: string | null }>;
    return rows.map((r) => ({
      recordingId: r.recording_id,
      source: r.source,
      run: r.run,
      startedAtMs: r.started_at_ms,
      endedAtMs: r.ended_at_ms,
      endReason: r.end_reason,
    }));
  }

  /** Idempotent: a segment seen twice (watcher event and reconciliation scan) is stored once. */
  addSegment(seg: SegmentRow, addedAtMs: number): boolean {
    const info = this.#db
      .prepare(
        `INSERT INTO segments (recording_id, source, run, seq, path, bytes, sha256, start_seconds, duration_seconds, added_at_ms)
         VALUES (@recordingId, @source, @run, @seq, @path, @bytes, @sha256, @startSeconds, @durationSeconds, @addedAtMs)
         ON CONFLICT DO NOTHING`,
      )
      .run({ ...seg, addedAtMs });
    return info.changes === 1;
  }

  segments(recordingId: string, source?: string): SegmentRow[] {
    const rows = this.#db
      .prepare(
        `SELECT * FROM segments WHERE recording_id = @recordingId AND (@source IS NULL OR source = @source)
         ORDER BY source, run, seq`,
      )
      .all({ recordingId, source: source ?? null }) as Array<{
      recording_id: string;
      source: string;
      run: number;
      seq: number;
      path: string;
      bytes: number;
      sha256: string;
      start_seconds: number;
      duration_seconds: number;
    }>;
    return rows.map((r) => ({
      recordingId: r.recording_id,
      source: r.source,
      run: r.run,
      seq: r.seq,
      path: r.path,
      bytes: r.bytes,
      sha256: r.sha256,
      startSeconds: r.start_seconds,
      durationSeconds: r.duration_seconds,
    }));
  }
}
