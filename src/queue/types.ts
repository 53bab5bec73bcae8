import type { Logger } from '../log/logger.js';

/** Where a job is in its life. Only the queue moves a job between states. */
export type JobState =
  /** Waiting to be claimed once `runAfterMs` has passed (new, retrying, or put back after a crash). */
  | 'queued'
  /** Claimed by a worker that holds an unexpired lease (`leaseOwner`, `leaseUntilMs`). */
  | 'running'
  /** Finished successfully; `result` holds the handler's result. Terminal. */
  | 'done'
  /** Failed `maxAttempts` times or had an invalid payload; waits for a person (`retry`). */
  | 'dead'
  /** Withdrawn by a person before it ran (or after it died); `retry` brings it back. */
  | 'cancelled';

export const JOB_STATES: readonly JobState[] = ['queued', 'running', 'done', 'dead', 'cancelled'];

/** One row of the `jobs` table, camelCased, with the payload parsed from JSON (not yet validated). */
export interface Job<P = unknown> {
  id: number;
  kind: string;
  /** Idempotency key, unique per kind: enqueueing the same (kind, key) twice yields one job. */
  key: string;
  payload: P;
  state: JobState;
  /** Lower runs first. */
  priority: number;
  /** Attempts started so far (a claim counts one; `retryAfter` gives it back). */
  attempts: number;
  maxAttempts: number;
  /** Epoch ms before which the job is not claimed (delay or backoff). */
  runAfterMs: number;
  leaseUntilMs: number | null;
  leaseOwner: string | null;
  lastError: string | null;
  /** Parsed JSON result of a done job. */
  result: unknown;
  createdAtMs: number;
  updatedAtMs: number;
  finishedAtMs: number | null;
}

/**
 * What a handler reports. Returning nothing means done. `retryAfter` puts the job back without
 * spending an attempt — for "the upload window is closed", not for errors (throw for those).
 */
export type JobOutcome = { type: 'done'; result?: unknown } | { type: 'retryAfter'; delayMs: number; reason: string };

/** What a running handler gets besides its payload. */
export interface JobContext {
  job: Job;
  /** Aborted when the worker stops or the lease was lost; long work must watch it. */
  signal: AbortSignal;
  logger: Logger;
  /** Pushes the lease end to now + ms (default: the queue's lease). The worker also does this on a timer. */
  extendLease(ms?: number): void;
}

/**
 * The code for one job kind. Handlers must be idempotent: a lease can expire mid-run (or the
 * process can die after the work but before the commit), and the job then runs again.
 */
export interface JobHandler<P> {
  kind: string;
  /** Validates the stored payload at dequeue; a throw moves the job straight to the dead letter. */
  parse(payload: unknown): P;
  run(payload: P, ctx: JobContext): Promise<JobOutcome | void>;
  /**
   * Called once when the job has been given up (moved to the dead letter after its last attempt,
   * or abandoned by crashed workers too often): releases what unfinished runs hold outside the
   * database, e.g. an open multipart upload on the storage. Errors are logged, never retried.
   */
  onDeadLetter?(payload: P, ctx: DeadLetterContext): Promise<void>;
}

/** What a dead-letter hook gets: the job as it now is (state 'dead'), and a logger. */
export interface DeadLetterContext {
  job: Job;
  logger: Logger;
}
