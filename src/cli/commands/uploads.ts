import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import type { Config } from '../../config/index.js';
import { closeDatabase, openDatabase, UploadsRepo, type Db } from '../../db/index.js';
import { PublishProgressRepo } from '../../db/publishProgress.js';
import { RecordingRepo } from '../../db/recordings.js';
import { silentLogger } from '../../log/logger.js';
import { JobQueue } from '../../queue/queue.js';
import type { Job } from '../../queue/types.js';
import { LocalLayout } from '../../storage/localLayout.js';
import { TRANSCODE_JOB } from '../../transcode/handler.js';
import { PUBLISH_JOB } from '../../upload/publishHandler.js';
import { formatBytes } from '../../util/units.js';
import type { CliIo } from '../io.js';

/**
 * `lectern uploads`: the lectures on this PC not yet in the store — being packaged, waiting to
 * publish, publishing, or failed and waiting for a person — with how many of their bytes the
 * store has confirmed. Reads the state database read-only, like `lectern queue ls`, so it works
 * whether or not the daemon runs.
 */

/**
 * - packaging: its transcode job is queued or running (bytes unknown until the package exists)
 * - waiting: its publish job is queued (new, or waiting out a failure, a closed window or an outage)
 * - publishing: its publish job is running
 * - failed: its transcode or publish job is dead (see `lectern queue retry`)
 */
export type UploadState = 'packaging' | 'waiting' | 'publishing' | 'failed';

export interface UploadRow {
  lectureId: string;
  title: string | null;
  state: UploadState;
  jobId: number;
  attempts: number;
  maxAttempts: number;
  /** When a waiting job is next tried (ISO 8601), if in the future. */
  nextAttemptAt: string | null;
  /** null until the package exists. */
  bytesTotal: number | null;
  /** Bytes the store confirmed (whole files, plus confirmed parts of a large file in flight); null when unknown. */
  bytesConfirmed: number | null;
  lastError: string | null;
}

const BAR_CELLS = 20;

export function registerUploadsCommands(program: Command, io: CliIo, loadConfig: () => Config, isTty: () => boolean = () => process.stdout.isTTY === true): void {
  program
    .command('uploads')
    .description('lectures waiting to publish or publishing, with bytes confirmed by the storage and the last error')
    .option('--json', 'print JSON instead of a table')
    .action(async (opts: { json?: boolean }) => {
      const layout = new LocalLayout(loadConfig().agent.dataDir);
      if (!existsSync(layout.dbPath)) {
        io.out(opts.json ? '[]' : `Nothing to upload: there is no state database at ${layout.dbPath}.`);
        return;
      }
      const db = openDatabase(layout.dbPath, { logger: silentLogger, readonly: true });
      try {
        const rows = await pendingUploads(db, layout);
        io.out(opts.json ? JSON.stringify(rows, null, 2) : formatUploads(rows, { bars: isTty(), nowMs: Date.now() }));
      } finally {
        closeDatabase(db);
      }
    });
}

/** Oldest lecture first: the order in which they publish. */
export async function pendingUploads(db: Db, layout: LocalLayout, nowMs: number = Date.now()): Promise<UploadRow[]> {
  const queue = new JobQueue({ db, logger: silentLogger });
  const recordings = new RecordingRepo(db);
  // A database the daemon has not migrated yet has no progress table; totals then come from the package.
  const progress = hasTable(db, 'publish_progress') ? new PublishProgressRepo(db) : undefined;
  const uploads = new UploadsRepo(db);
  const open = uploads.list();

  const publishes = new Map<string, Job>();
  for (const job of queue.list({ kind: PUBLISH_JOB })) publishes.set(job.key, job);
  const jobs: Job[] = [];
  for (const job of publishes.values()) if (job.state === 'queued' || job.state === 'running' || job.state === 'dead') jobs.push(job);
  for (const job of queue.list({ kind: TRANSCODE_JOB })) {
    if (!publishes.has(job.key) && (job.state === 'queued' || job.state === 'running' || job.state === 'dead')) jobs.push(job);
  }
  jobs.sort((a, b) => a.createdAtMs - b.createdAtMs || a.id - b.id);

  const rows: UploadRow[] = [];
  for (const job of jobs) {
    const lectureId = job.key;
    const isPublish = job.kind === PUBLISH_JOB;
    const state: UploadState = job.state === 'dead' ? 'failed' : !isPublish ? 'packaging' : job.state === 'running' ? 'publishing' : 'waiting';
    let bytesTotal: number | null = null;
    let bytesConfirmed: number | null = null;
    if (isPublish) {
      const saved = progress?.get(lectureId);
      bytesTotal = saved?.bytesTotal ?? packageBytes(layout, lectureId);
      bytesConfirmed = saved?.bytesDone ?? null;
      // A large file in flight: its parts confirmed so far (its upload row goes when the file completes).
      let inFlight = 0;
      for (const upload of open.filter((u) => u.key.includes(`/${lectureId}/`))) {
        for (const part of await uploads.parts(upload.uploadId)) inFlight += part.sizeBytes;
      }
      if (inFlight > 0) bytesConfirmed = (bytesConfirmed ?? 0) + inFlight;
      if (bytesTotal !== null && bytesConfirmed !== null) bytesConfirmed = Math.min(bytesConfirmed, bytesTotal);
    }
    rows.push({
      lectureId,
      title: recordings.get(lectureId)?.title ?? null,
      state,
      jobId: job.id,
      attempts: job.attempts,
      maxAttempts: job.maxAttempts,
      nextAttemptAt: job.state === 'queued' && job.runAfterMs > nowMs ? new Date(job.runAfterMs).toISOString() : null,
      bytesTotal,
      bytesConfirmed,
      lastError: job.lastError,
    });
  }
  return rows;
}

export function formatUploads(rows: readonly UploadRow[], opts: { bars: boolean; nowMs: number }): string {
  if (rows.length === 0) return 'Nothing waiting to publish.';
  const table = rows.map((r) => [
    r.lectureId,
    truncate(r.title ?? '', 30),
    r.nextAttemptAt ? `${r.state} (next try in ${waitText(Date.parse(r.nextAttemptAt) - opts.nowMs)})` : r.state,
    progressText(r, opts.bars),
    truncate(r.lastError ?? '', 60),
  ]);
  const header = ['LECTURE', 'TITLE', 'STATE', 'CONFIRMED', 'LAST ERROR'];
  const widths = header.map((h, i) => Math.max(h.length, ...table.map((row) => (row[i] ?? '').length)));
  const line = (cells: string[]): string => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd();
  return [line(header), ...table.map(line)].join('\n');
}

function progressText(r: UploadRow, bars: boolean): string {
  if (r.bytesTotal === null) return r.bytesConfirmed === null ? '-' : `${formatBytes(r.bytesConfirmed)} / ?`;
  if (r.bytesConfirmed === null) return `? / ${formatBytes(r.bytesTotal)}`;
  const done = r.bytesConfirmed;
  const text = `${formatBytes(done)} / ${formatBytes(r.bytesTotal)}`;
  if (!bars) return text;
  const fraction = r.bytesTotal === 0 ? 1 : done / r.bytesTotal;
  const filled = Math.round(fraction * BAR_CELLS);
  return `[${'#'.repeat(filled)}${'.'.repeat(BAR_CELLS - filled)}] ${String(Math.floor(fraction * 100)).padStart(3)}% ${text}`;
}

/** Sum of the files lecture.json lists (what the publish job counts); null when the package cannot be read. */
function packageBytes(layout: LocalLayout, lectureId: string): number | null {
  try {
    const json = readFileSync(path.join(layout.packageDir(lectureId), 'lecture.json'), 'utf8');
    const files = (JSON.parse(json) as { files?: Array<{ bytes?: unknown }> }).files ?? [];
    return files.reduce((sum, f) => sum + (typeof f.bytes === 'number' ? f.bytes : 0), 0);
  } catch {
    return null;
  }
}

function hasTable(db: Db, name: string): boolean {
  return db.prepare(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?`).get(name) !== undefined;
}

function waitText(ms: number): string {
  const s = Math.max(1, Math.round(ms / 1000));
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  return `${Math.round(s / 3600)} h`;
}

function truncate(text: string, chars: number): string {
  const flat = text.replace(/\s+/g, ' ');
  return flat.length > chars ? `${flat.slice(0, chars - 1)}…` : flat;
}
