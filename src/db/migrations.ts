import { ALERTS_MIGRATION, CONTROLS_MIGRATION, RECORDINGS_MIGRATION } from './recordings.js';
import { UPLOADS_MIGRATION } from './uploads.js';
import { RETENTION_MIGRATION } from './retention.js';

/**
 * Schema migrations, applied in order by `PRAGMA user_version`: entry N (0-based) moves a database
 * from version N to N + 1, each in its own transaction. Never edit or reorder a shipped entry —
 * classroom PCs already carry that version — only append.
 */
export const MIGRATIONS: readonly string[] = [
  /* 1: jobs — the durable job queue (src/queue). One row per unit of work; `state` is the only
     truth about progress. The CHECKs make half-written states impossible to commit: a running
     job always has a lease and an owner, a finished one always has its finish time. */
  `
CREATE TABLE jobs (
  id INTEGER PRIMARY KEY,
  kind TEXT NOT NULL,
  key TEXT NOT NULL,
  payload TEXT NOT NULL CHECK (json_valid(payload)),
  state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'done', 'dead', 'cancelled')),
  priority INTEGER NOT NULL DEFAULT 0,
  attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
  max_attempts INTEGER NOT NULL CHECK (max_attempts >= 1),
  run_after_ms INTEGER NOT NULL,
  lease_until_ms INTEGER,
  lease_owner TEXT,
  last_error TEXT,
  result TEXT CHECK (result IS NULL OR json_valid(result)),
  created_at_ms INTEGER NOT NULL,
  updated_at_ms INTEGER NOT NULL,
  finished_at_ms INTEGER,
  UNIQUE (kind, key),
  CHECK ((state = 'running') = (lease_until_ms IS NOT NULL AND lease_owner IS NOT NULL)),
  CHECK ((state IN ('done', 'dead', 'cancelled')) = (finished_at_ms IS NOT NULL))
) STRICT;
-- claim: the next due job in priority order.
CREATE INDEX jobs_queued ON jobs (priority, id) WHERE state = 'queued';
-- reclaimExpired: running jobs by lease end.
CREATE INDEX jobs_running ON jobs (lease_until_ms) WHERE state = 'running';
-- list / counts / CLI inspection.
CREATE INDEX jobs_state_kind ON jobs (state, kind);
`,
  /* 2: recordings, their runs (one per ffmpeg process; the time between runs is a gap) and every
     complete segment with bytes and sha256 (src/db/recordings.ts). */
  RECORDINGS_MIGRATION,
  /* 3: alerts raised during a recording (camera lost, silent microphone, frozen or black picture,
     disk low), kept for the lecture's manifest (src/db/recordings.ts). */
  ALERTS_MIGRATION,
  /* 4: multipart uploads in progress and their confirmed parts, so an upload resumes after a
     restart instead of starting over (src/db/uploads.ts). */
  UPLOADS_MIGRATION,
  /* 5: pauses of a recording (an open one survives a restart: the lecture stays paused) and its
     chapter markers (src/db/recordings.ts). */
  CONTROLS_MIGRATION,
  /* 6: which lectures' local files retention deleted, when and why, and each lecture's publish
     progress for `lectern uploads` (src/db/retention.ts, src/db/publishProgress.ts). */
  RETENTION_MIGRATION,
];
