import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import type { Config } from '../../config/index.js';
import { closeDatabase, openDatabase, UploadsRepo, type Db } from '../../db/index.js';
import { PublishProgressRepo } from '../../db/publishProgress.js';
import { RecordingRepo } from '../../db/recordings.js';
import { silentLogger } from '../../log/logger.js';
import { lectureJobs, lectureProgress, packagesInTiers, type LectureProgress } from '../../agent/lectureProgress.js';
import { JobQueue } from '../../queue/queue.js';
import { LocalLayout } from '../../storage/localLayout.js';
import { formatBytes } from '../../util/units.js';
import type { CliIo } from '../io.js';

/**
 * `lectern uploads`: the lectures on this PC not yet in the store — being packaged, waiting to
 * publish, publishing, or failed and waiting for a person — with how many of their bytes the
 * store has confirmed. Reads the state database read-only, like `lectern queue ls`, so it works
 * whether or not the daemon runs.
 */

/**
 * - packaging: a transcode job (tier 1, the full ladder, or the whole package) is queued or running (bytes unknown until the package exists)
 * - waiting: a publish job is queued (new, or waiting out a failure, a closed window or an outage)
 * - publishing: a publish job is running
 * - failed: one of its jobs is dead (see `lectern queue retry`)
 * A tiered lecture is listed until its final publish, with tier 1 already in the store.
 */
export type UploadState = 'packaging' | 'waiting' | 'publishing' | 'failed';

export interface UploadRow {
  lectureId: string;
  title: string | null;
  state: UploadState;
  /** Where it is, in words: "packaging tier 1", "publishing tier 1", "tier 1 published, packaging the full ladder", "publishing the full ladder"... */
  step: string;
  /** The highest tier the store holds (1: audio and the lowest rendition, 2: the full ladder); null before the first publish. */
  tier: 1 | 2 | null;
  /** The job `step` is about (for `lectern queue retry`). */
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
      const config = loadConfig();
      const layout = new LocalLayout(config.agent.dataDir);
      if (!existsSync(layout.dbPath)) {
        io.out(opts.json ? '[]' : `Nothing to upload: there is no state database at ${layout.dbPath}.`);
        return;
      }
      const db = openDatabase(layout.dbPath, { logger: silentLogger, readonly: true });
      try {
        const rows = await pendingUploads(db, layout, { tiered: packagesInTiers(config.transcode) });
        io.out(opts.json ? JSON.stringify(rows, null, 2) : formatUploads(rows, { bars: isTty(), nowMs: Date.now() }));
      } finally {
        closeDatabase(db);
      }
    });
}

/**
 * Each lecture once, oldest first: the order in which they publish. `tiered`: whether a lecture
 * whose first job has not run yet is packaged in tiers (agent/lectureProgress.ts).
 */
export async function pendingUploads(db: Db, layout: LocalLayout, opts: { tiered: boolean; nowMs?: number }): Promise<UploadRow[]> {
  const nowMs = opts.nowMs ?? Date.now();
  const queue = new JobQueue({ db, logger: silentLogger });
  const recordings = new RecordingRepo(db);
  // A database the daemon has not migrated yet has no progress table; totals then come from the package.
  const progress = hasTable(db, 'publish_progress') ? new PublishProgressRepo(db) : undefined;
  const uploads = new UploadsRepo(db);
  const open = uploads.list();

  const lectures: Array<{ lectureId: string; firstJob: { createdAtMs: number; id: number }; p: LectureProgress }> = [];
  for (const [lectureId, jobs] of lectureJobs(queue)) {
    const p = lectureProgress(jobs, opts);
    const first = jobs[0];
    // Published, or withdrawn by a person (`lectern queue cancel`): neither waits for anything.
    if (!p || !first || p.state === 'done' || p.job.state === 'cancelled') continue;
    lectures.push({ lectureId, firstJob: first, p });
  }
  lectures.sort((a, b) => a.firstJob.createdAtMs - b.firstJob.createdAtMs || a.firstJob.id - b.firstJob.id);

  const rows: UploadRow[] = [];
  for (const { lectureId, p } of lectures) {
    const job = p.job;
    const state: UploadState = p.state === 'failed' ? 'failed' : p.work === 'package' ? 'packaging' : p.state === 'running' ? 'publishing' : 'waiting';
    let bytesTotal: number | null = null;
    let bytesConfirmed: number | null = null;
    if (p.work === 'publish') {
      const saved = progress?.get(lectureId);
      // The package on disk first: after tier 1 the saved progress is tier 1's, and the full ladder is more.
      // Its confirmed bytes stay true: the final publish counts the tier-1 files the store holds as done.
      bytesTotal = packageBytes(layout, lectureId) ?? saved?.bytesTotal ?? null;
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
      step: p.text,
      tier: p.tier,
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
    r.nextAttemptAt ? `${r.step} (next try in ${waitText(Date.parse(r.nextAttemptAt) - opts.nowMs)})` : r.step,
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
