import { existsSync } from 'node:fs';
import type { Command } from 'commander';
import type { Config } from '../../config/index.js';
import { closeDatabase, openDatabase } from '../../db/index.js';
import { silentLogger } from '../../log/logger.js';
import { JobQueue } from '../../queue/queue.js';
import { JOB_STATES, type Job, type JobState } from '../../queue/types.js';
import { LocalLayout } from '../../storage/localLayout.js';
import type { CliIo } from '../io.js';

/**
 * `lectern queue ls`: the durable jobs and their states. Reads the database read-only (WAL lets
 * it do so while the daemon writes), so it works whether or not the daemon runs.
 */
export function registerQueueCommands(program: Command, io: CliIo, loadConfig: () => Config): void {
  const queue = program.command('queue').description('inspect the durable job queue');
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
