import path from 'node:path';
import { closeDatabase, openDatabase } from '../../src/db/index.js';
import { silentLogger } from '../../src/log/logger.js';
import { JobQueue } from '../../src/queue/queue.js';
import type { Job } from '../../src/queue/types.js';

export type JobState = Pick<Job, 'id' | 'kind' | 'key' | 'state' | 'finishedAtMs'>;

/** The jobs in a data directory's queue, read from a read-only connection beside the running daemon. */
export function jobStates(dataDir: string): JobState[] {
  const db = openDatabase(path.join(dataDir, 'state.db'), { logger: silentLogger, readonly: true });
  try {
    return new JobQueue({ db, logger: silentLogger })
      .list({})
      .map((j) => ({ id: j.id, kind: j.kind, key: j.key, state: j.state, finishedAtMs: j.finishedAtMs }));
  } finally {
    closeDatabase(db);
  }
}

/**
 * For polling a daemon that is still starting: the database file appears before its tables do
 * (the daemon creates the file, then migrates), so until then there are no jobs to see.
 */
export function jobStatesWhileStarting(dataDir: string): JobState[] {
  try {
    return jobStates(dataDir);
  } catch {
    return [];
  }
}
