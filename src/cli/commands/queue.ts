import { existsSync } from 'node:fs';
import type { Command } from 'commander';
import type { Config } from '../../config/index.js';
import { closeDatabase, openDatabase, type Db } from '../../db/index.js';
import { silentLogger } from '../../log/logger.js';
import { JobQueue } from '../../queue/queue.js';
import { JOB_STATES, type Job, type JobState } from '../../queue/types.js';
import { LocalLayout } from '../../storage/localLayout.js';
import { abortLectureUploads, parsePublishPayload, PUBLISH_JOB } from '../../upload/publishHandler.js';
import { describeError } from '../../util/errors.js';
import type { CliIo } from '../io.js';

/**
 * `lectern queue ls`: the durable jobs and their states. Reads the database read-only (WAL lets
 * it do so while the daemon writes), so it works whether or not the daemon runs.
 * `lectern queue retry|cancel <jobId>`: an operator's two actions on one job.
 */
export function registerQueueCommands(program: Command, io: CliIo, loadConfig: () => Config): void {
  const queue = program.command('queue').description('inspect the durable job queue, retry or cancel a job');
  queue
    .command('ls')
    .description('list jobs (newest first) with their state, attempts and last error')
    .option('--state <state>', `only jobs in this state (${JOB_STATES.join(', ')})`)
    .option('--limit <n>', 'at most this many jobs', '50')
    .option('--json', 'print JSON instead of a table')
    .action((opts: { state?: string; limit: string; json?: boolean }) => {
      if (opts.state !== undefined && !JOB_STATES.includes(opts.state as JobState)) {
        io.err(`unknown state "${opts.state}"; expected one of ${JOB_STATES.join(', ')}`);
        process.exitCode = 1;
        return;
      }
      const limit = Number(opts.limit);
      if (!Number.isInteger(limit) || limit < 1) {
        io.err(`--limit must be a positive integer, got "${opts.limit}"`);
        process.exitCode = 1;
        return;
      }
      const config = loadConfig();
      const dbPath = new LocalLayout(config.agent.dataDir).dbPath;
      if (!existsSync(dbPath)) {
        if (opts.json) io.out('[]');
        else io.out(`No jobs yet: there is no state database at ${dbPath}.`);
        return;
      }
      const db = openDatabase(dbPath, { logger: silentLogger, readonly: true });
      try {
        const jobs = new JobQueue({ db, logger: silentLogger }).list({ ...(opts.state ? { state: opts.state as JobState } : {}), limit });
        io.out(opts.json ? JSON.stringify(jobs, null, 2) : formatJobs(jobs));
      } finally {
        closeDatabase(db);
      }
    });

  queue
    .command('retry <jobId>')
    .description('put a dead or cancelled job back in the queue with a fresh set of attempts')
    .action(async (id: string) => operate(io, loadConfig, id, 'retry'));
  queue
    .command('cancel <jobId>')
    .description('withdraw a queued or dead job (a running one must finish or fail first); a cancelled publish keeps its local files')
    .action(async (id: string) => operate(io, loadConfig, id, 'cancel'));
}

/**
 * `queue retry|cancel`: one guarded UPDATE on the state database, safe while the daemon runs (its
 * claim re-checks the state, so a job is either cancelled here or claimed there, never both).
 */
async function operate(io: CliIo, loadConfig: () => Config, idText: string, op: 'retry' | 'cancel'): Promise<void> {
  const id = Number(idText);
  if (!/^\d+$/.test(idText) || !Number.isSafeInteger(id) || id < 1) {
    io.err(`the job id must be a positive integer (see lectern queue ls), got "${idText}"`);
    process.exitCode = 1;
    return;
  }
  const config = loadConfig();
  const layout = new LocalLayout(config.agent.dataDir);
  const dbPath = layout.dbPath;
  if (!existsSync(dbPath)) {
    io.err(`no job ${id}: there is no state database at ${dbPath}`);
    process.exitCode = 1;
    return;
  }
  const db = openDatabase(dbPath, { logger: silentLogger });
  try {
    const jobs = new JobQueue({ db, logger: silentLogger });
    const before = jobs.get(id);
    if (!before) {
      io.err(`no job ${id} (see lectern queue ls)`);
      process.exitCode = 1;
      return;
    }
    const done = op === 'retry' ? jobs.retry(id) : jobs.cancel(id);
    // Read again: the daemon may have moved the job between the two statements.
    const after = jobs.get(id) ?? before;
    const what = `job ${id} (${after.kind} ${after.key})`;
    if (done) {
      io.out(
        op === 'retry'
          ? `${what} is queued again with ${after.maxAttempts} attempts; a running daemon picks it up within seconds.`
          : `${what} is cancelled.${after.kind === 'publish' ? ' The lecture stays on this PC: local files of an unpublished lecture are never deleted.' : ''} Undo with: lectern queue retry ${id}`,
      );
      if (op === 'cancel' && after.kind === PUBLISH_JOB) await abortCancelledPublish(io, config, layout, db, after);
      return;
    }
    io.err(refusal(what, after, op));
    process.exitCode = 1;
  } finally {
    closeDatabase(db);
  }
}

/**
 * A cancelled publish is given up: its unfinished multipart uploads are aborted, so no orphan
 * parts stay on the storage (the uploaded files of the lecture stay; `queue retry` sends the rest).
 */
async function abortCancelledPublish(io: CliIo, config: Config, layout: LocalLayout, db: Db, job: Job): Promise<void> {
  let lectureId: string;
  try {
    lectureId = parsePublishPayload(job.payload).lectureId;
  } catch {
    return;
  }
  const { createStore } = await import('../../agent/store.js');
  let store;
  try {
    store = await createStore(config, { logger: silentLogger, env: process.env, defaultRoot: layout.storeDefaultRoot, db });
    const aborted = await abortLectureUploads({ store, storePrefix: config.storage.prefix, packageDir: layout.packageDir(lectureId), lectureId, logger: silentLogger });
    if (aborted > 0) io.out(`Aborted ${aborted} unfinished upload${aborted === 1 ? '' : 's'} of the lecture in ${store.description}.`);
  } catch (err) {
    io.err(`warning: the unfinished uploads of lecture ${lectureId} could not be aborted now (${describeError(err)}); their parts stay on the storage until the lecture is published again or a lifecycle rule removes them`);
  } finally {
    await store?.stop();
  }
}

function refusal(what: string, job: Job, op: 'retry' | 'cancel'): string {
  if (op === 'retry') {
    if (job.state === 'queued') return `${what} is already queued (attempt ${job.attempts} of ${job.maxAttempts} used); nothing to retry`;
    if (job.state === 'running') return `${what} is running now; nothing to retry`;
    return `${what} is done; nothing to retry`;
  }
  if (job.state === 'running') {
    return `${what} is running and cannot be cancelled: wait until it finishes or fails, or stop the daemon (systemctl stop lectern) and cancel it then`;
  }
  if (job.state === 'cancelled') return `${what} is already cancelled`;
  return `${what} is done; there is nothing to cancel`;
}

export function formatJobs(jobs: readonly Job[]): string {
  if (jobs.length === 0) return 'No jobs.';
  const rows = jobs.map((j) => [
    String(j.id),
    j.kind,
    j.key,
    j.state,
    `${j.attempts}/${j.maxAttempts}`,
    new Date(j.updatedAtMs).toISOString().replace('T', ' ').slice(0, 19),
    j.lastError ? j.lastError.slice(0, 60) : '',
  ]);
  const header = ['ID', 'KIND', 'KEY', 'STATE', 'TRIES', 'UPDATED (UTC)', 'LAST ERROR'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}
