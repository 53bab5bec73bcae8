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
 * Migration SQL for alerts (appended to MIGRATIONS after RECORDINGS_MIGRATION): what went wrong
 * during a recording (a camera lost, a silent microphone, a frozen picture, a full disk) and for
 * how long. They go into the lecture's manifest. `kind` is free text so that new kinds need no
 * migration; `source` is NULL for alerts about the whole agent (the disk).
 */
export const ALERTS_MIGRATION = `
CREATE TABLE alerts (
  id INTEGER PRIMARY KEY,
  recording_id TEXT NOT NULL REFERENCES recordings(id),
  kind TEXT NOT NULL,
  source TEXT,
  started_at_ms INTEGER NOT NULL,
  ended_at_ms INTEGER,
  message TEXT NOT NULL,
  CHECK (ended_at_ms IS NULL OR ended_at_ms >= started_at_ms)
) STRICT;
CREATE INDEX alerts_recording ON alerts (recording_id, started_at_ms);
`;

/**
 * Migration SQL for the teacher's controls (appended to MIGRATIONS after the ones above): the
 * pauses of a recording (nothing is recorded in them; an open one, ended_at_ms NULL, means the
 * live recording is paused now and stays paused across a restart) and its chapter markers. A
 * marker keeps the wall-clock moment it was set (the truth: the packager turns it into a position
 * in the packaged video from the runs and pauses) and the media position computed when it was set.
 */
export const CONTROLS_MIGRATION = `
CREATE TABLE recording_pauses (
  recording_id TEXT NOT NULL REFERENCES recordings(id),
  started_at_ms INTEGER NOT NULL,
  ended_at_ms INTEGER,
  PRIMARY KEY (recording_id, started_at_ms),
  CHECK (ended_at_ms IS NULL OR ended_at_ms >= started_at_ms)
) STRICT;
CREATE UNIQUE INDEX recording_pauses_one_open ON recording_pauses(recording_id) WHERE ended_at_ms IS NULL;
CREATE TABLE markers (
  id INTEGER PRIMARY KEY,
  recording_id TEXT NOT NULL REFERENCES recordings(id),
  at_ms INTEGER NOT NULL,
  media_seconds REAL NOT NULL CHECK (media_seconds >= 0),
  title TEXT NOT NULL CHECK (length(title) BETWEEN 1 AND 200)
) STRICT;
CREATE INDEX markers_recording ON markers (recording_id, at_ms, id);
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

export interface PauseRow {
  recordingId: string;
  startedAtMs: number;
  /** null while the recording is paused. */
  endedAtMs: number | null;
}

export interface MarkerRow {
  id: number;
  recordingId: string;
  /** When the marker was set (wall clock). */
  atMs: number;
  /** Its position in the packaged video when it was set (pauses and gaps excluded). */
  mediaSeconds: number;
  title: string;
}

export interface AlertRow {
  id: number;
  recordingId: string;
  kind: string;
  source: string | null;
  startedAtMs: number;
  /** null while the condition lasts. */
  endedAtMs: number | null;
  message: string;
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

  /** A run that turned out to be a failed attempt (no media): its number is free again. */
  discardRun(recordingId: string, source: string, run: number): boolean {
    const info = this.#db
      .prepare(
        `DELETE FROM recording_runs WHERE recording_id = ? AND source = ? AND run = ?
         AND NOT EXISTS (SELECT 1 FROM segments s WHERE s.recording_id = recording_runs.recording_id AND s.source = recording_runs.source AND s.run = recording_runs.run)`,
      )
      .run(recordingId, source, run);
    return info.changes === 1;
  }

  /** Moves a run's start to when its media began (known only once ffmpeg reports progress). */
  setRunStart(recordingId: string, source: string, run: number, startedAtMs: number): void {
    this.#db
      .prepare('UPDATE recording_runs SET started_at_ms = ? WHERE recording_id = ? AND source = ? AND run = ?')
      .run(Math.round(startedAtMs), recordingId, source, run);
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

  addAlert(alert: { recordingId: string; kind: string; source: string | null; startedAtMs: number; message: string }): number {
    const info = this.#db
      .prepare('INSERT INTO alerts (recording_id, kind, source, started_at_ms, message) VALUES (?, ?, ?, ?, ?)')
      .run(alert.recordingId, alert.kind, alert.source, Math.round(alert.startedAtMs), alert.message);
    return Number(info.lastInsertRowid);
  }

  /** Ends an open alert; an end before its start is moved to the start. */
  endAlert(id: number, endedAtMs: number): void {
    this.#db
      .prepare('UPDATE alerts SET ended_at_ms = MAX(started_at_ms, ?) WHERE id = ? AND ended_at_ms IS NULL')
      .run(Math.round(endedAtMs), id);
  }

  alerts(recordingId: string): AlertRow[] {
    const rows = this.#db
      .prepare('SELECT * FROM alerts WHERE recording_id = ? ORDER BY started_at_ms, id')
      .all(recordingId) as Array<{
      id: number;
      recording_id: string;
      kind: string;
      source: string | null;
      started_at_ms: number;
      ended_at_ms: number | null;
      message: string;
    }>;
    return rows.map((r) => ({
      id: r.id,
      recordingId: r.recording_id,
      kind: r.kind,
      source: r.source,
      startedAtMs: r.started_at_ms,
      endedAtMs: r.ended_at_ms,
      message: r.message,
    }));
  }

  /** Moves the planned end of a live recording (null: until stopped); false if it is not live. */
  setPlannedEnd(id: string, plannedEndMs: number | null): boolean {
    const info = this.#db
      .prepare(`UPDATE recordings SET planned_end_ms = ? WHERE id = ? AND state = 'recording'`)
      .run(plannedEndMs === null ? null : Math.round(plannedEndMs), id);
    return info.changes === 1;
  }

  /** Opens a pause; false if one is open already (the partial unique index allows one). */
  startPause(recordingId: string, startedAtMs: number): boolean {
    const info = this.#db
      .prepare(
        `INSERT INTO recording_pauses (recording_id, started_at_ms)
         SELECT ?, ? WHERE NOT EXISTS (SELECT 1 FROM recording_pauses WHERE recording_id = ? AND ended_at_ms IS NULL)`,
      )
      .run(recordingId, Math.round(startedAtMs), recordingId);
    return info.changes === 1;
  }

  /** Ends the open pause, if any (an end before its start is moved to the start). */
  endPause(recordingId: string, endedAtMs: number): boolean {
    const info = this.#db
      .prepare('UPDATE recording_pauses SET ended_at_ms = MAX(started_at_ms, ?) WHERE recording_id = ? AND ended_at_ms IS NULL')
      .run(Math.round(endedAtMs), recordingId);
    return info.changes === 1;
  }

  /** The pause that lasts now, if the recording is paused. */
  openPause(recordingId: string): PauseRow | undefined {
    return this.pauses(recordingId).find((p) => p.endedAtMs === null);
  }

  pauses(recordingId: string): PauseRow[] {
    const rows = this.#db
      .prepare('SELECT * FROM recording_pauses WHERE recording_id = ? ORDER BY started_at_ms')
      .all(recordingId) as Array<{ recording_id: string; started_at_ms: number; ended_at_ms: number | null }>;
    return rows.map((r) => ({ recordingId: r.recording_id, startedAtMs: r.started_at_ms, endedAtMs: r.ended_at_ms }));
  }

  addMarker(marker: { recordingId: string; atMs: number; mediaSeconds: number; title: string }): MarkerRow {
    const info = this.#db
      .prepare('INSERT INTO markers (recording_id, at_ms, media_seconds, title) VALUES (?, ?, ?, ?)')
      .run(marker.recordingId, Math.round(marker.atMs), Math.max(0, marker.mediaSeconds), marker.title);
    return { id: Number(info.lastInsertRowid), ...marker, atMs: Math.round(marker.atMs), mediaSeconds: Math.max(0, marker.mediaSeconds) };
  }

  markers(recordingId: string): MarkerRow[] {
    const rows = this.#db
      .prepare('SELECT * FROM markers WHERE recording_id = ? ORDER BY at_ms, id')
      .all(recordingId) as Array<{ id: number; recording_id: string; at_ms: number; media_seconds: number; title: string }>;
    return rows.map((r) => ({ id: r.id, recordingId: r.recording_id, atMs: r.at_ms, mediaSeconds: r.media_seconds, title: r.title }));
  }

  /**
   * A recording made elsewhere (capture/importFolder.ts): one finished run holding one segment,
   * all in one transaction, so a crash leaves the whole recording or none of it. It is born
   * 'stopped', so it never competes with the one live recording the partial index allows.
   */
  createImported(
    rec: {
      id: string;
      title: string;
      course: string | null;
      teacher: string | null;
      startedAtMs: number;
      stoppedAtMs: number;
      reason: string;
      source: string;
      segment: { path: string; bytes: number; sha256: string; durationSeconds: number };
    },
    addedAtMs: number,
  ): RecordingRow {
    this.#db.transaction(() => {
      this.#db
        .prepare(
          `INSERT INTO recordings (id, state, title, course, teacher, started_at_ms, stopped_at_ms, stop_reason)
           VALUES (?, 'stopped', ?, ?, ?, ?, ?, ?)`,
        )
        .run(rec.id, rec.title, rec.course, rec.teacher, Math.round(rec.startedAtMs), Math.round(rec.stoppedAtMs), rec.reason);
      this.startRun(rec.id, rec.source, 1, Math.round(rec.startedAtMs));
      this.endRun(rec.id, rec.source, 1, Math.round(rec.stoppedAtMs), rec.reason);
      this.addSegment({ recordingId: rec.id, source: rec.source, run: 1, seq: 0, startSeconds: 0, ...rec.segment }, addedAtMs);
    })();
    const row = this.get(rec.id);
    if (!row) throw new Error(`recording ${rec.id} vanished after insert`);
    return row;
  }

  /** The recording holding a segment with this content, if any (an imported file dropped again). */
  findBySegmentSha256(sha256: string): string | undefined {
    const row = this.#db.prepare('SELECT recording_id FROM segments WHERE sha256 = ? ORDER BY added_at_ms LIMIT 1').get(sha256) as
      | { recording_id: string }
      | undefined;
    return row?.recording_id;
  }
}
