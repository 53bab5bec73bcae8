import type { Db } from '../db/index.js';
import type { Logger } from '../log/logger.js';
import { backoffDelayMs, DEFAULT_BACKOFF, type BackoffPolicy } from '../util/backoff.js';
import { describeError, LecternError } from '../util/errors.js';
import { redactUrl } from '../util/redact.js';
import { JOB_STATES, type Job, type JobState } from './types.js';

export interface JobQueueOptions {
  /** A database opened with the jobs migration applied. */
  db: Db;
  logger: Logger;
  /** Epoch milliseconds; injectable so tests control leases and backoff. */
  now?: () => number;
  /** Jitter source for backoff; injectable so tests assert exact delays. */
  random?: () => number;
  /** How long a claim stays valid without a heartbeat. */
  leaseMs?: number;
  /** Default for jobs enqueued without their own limit. */
  maxAttempts?: number;
  backoff?: BackoffPolicy;
}

export interface EnqueueOptions {
  /** Idempotency key: a second enqueue of the same (kind, key) returns the first job. */
  key: string;
  /** Lower runs first (default 0). */
  priority?: number;
  /** Epoch ms before which the job is not claimed (default: now). */
  runAfterMs?: number;
  maxAttempts?: number;
}

export interface JobFilter {
  state?: JobState;
  kind?: string;
  /** Newest first; all rows when omitted. */
  limit?: number;
}

interface JobRow {
  id: number;
  kind: string;
  key: string;
  payload: string;
  state: JobState;
  priority: number;
  attempts: number;
  max_attempts: number;
  run_after_ms: number;
  lease_until_ms: number | null;
  lease_owner: string | null;
  last_error: string | null;
  result: string | null;
  created_at_ms: number;
  updated_at_ms: number;
  finished_at_ms: number | null;
}

const DEFAULT_LEASE_MS = 60_000;
const DEFAULT_MAX_ATTEMPTS = 10;
// Enough for an ffmpeg error line and its context; a full stderr dump belongs in the log.
const MAX_ERROR_CHARS = 2_000;

// Every transition out of 'running' is guarded by (state, lease_owner): a worker whose lease
// expired and was reclaimed (and perhaps claimed by someone else) must not overwrite the new state.
const OWNED = `id = @id AND state = 'running' AND lease_owner = @owner`;
// Kinds are bound as one JSON array so a single prepared statement serves any list of kinds.
const KIND_IN = `kind IN (SELECT value FROM json_each(@kinds))`;

/**
 * Durable jobs in SQLite (liteque / graphile-worker style): idempotent enqueue, an atomic
 * compare-and-swap claim with a lease, retries with capped exponential backoff, a dead letter,
 * and a retry-later outcome that spends no attempt. All methods are synchronous and may be called
 * inside a caller's `db.transaction` (they then run as savepoints of it).
 */
export class JobQueue {
  readonly leaseMs: number;
  readonly now: () => number;
  private readonly db: Db;
  private readonly logger: Logger;
  private readonly random: () => number;
  private readonly maxAttempts: number;
  private readonly backoff: BackoffPolicy;
  private readonly stmt: Statements;

  constructor(opts: JobQueueOptions) {
    this.db = opts.db;
    this.logger = opts.logger;
    // Looked up on each call, so a test's fake clock installed after construction still applies.
    this.now = opts.now ?? (() => Date.now());
    this.random = opts.random ?? (() => Math.random());
    this.leaseMs = opts.leaseMs ?? DEFAULT_LEASE_MS;
    this.maxAttempts = opts.maxAttempts ?? DEFAULT_MAX_ATTEMPTS;
    this.backoff = opts.backoff ?? DEFAULT_BACKOFF;
    assertPositiveInteger(this.leaseMs, 'leaseMs');
    assertPositiveInteger(this.maxAttempts, 'maxAttempts');
    this.stmt = prepareStatements(this.db);
  }

  /**
   * Adds a job unless one with the same (kind, key) exists; then returns that one untouched
   * (whatever its state), with `created: false`.
   */
  enqueue(kind: string, payload: unknown, opts: EnqueueOptions): { job: Job; created: boolean } {
    if (kind === '' || opts.key === '') throw new LecternError('INTERNAL', 'a job needs a non-empty kind and key');
    const maxAttempts = opts.maxAttempts ?? this.maxAttempts;
    assertPositiveInteger(maxAttempts, 'maxAttempts');
    const priority = opts.priority ?? 0;
    if (!Number.isInteger(priority)) throw new LecternError('INTERNAL', `job priority must be an integer, got ${priority}`);
    const now = this.now();
    const params = {
      kind,
      key: opts.key,
      payload: JSON.stringify(payload ?? null),
      priority,
      maxAttempts,
      runAfter: Math.ceil(opts.runAfterMs ?? now),
      now,
    };
    return this.db
      .transaction(() => {
        const inserted = this.stmt.insert.get(params);
        if (inserted) {
          this.logger.debug('job enqueued', { jobId: inserted.id, kind, key: opts.key });
          return { job: toJob(inserted), created: true };
        }
        const existing = this.stmt.byKey.get({ kind, key: opts.key });
        if (!existing) throw new LecternError('INTERNAL', `job ${kind}/${opts.key} conflicted on insert but cannot be found`);
        return { job: toJob(existing), created: false };
      })
      .immediate();
  }

  /**
   * Atomically takes the next due job of one of `kinds` (lowest priority, then oldest): one
   * UPDATE whose WHERE re-checks `state = 'queued'`, so two workers can never take the same job.
   * Counts an attempt and starts a lease of `leaseMs`.
   */
  claim(kinds: readonly string[], owner: string): Job | undefined {
    if (kinds.length === 0) return undefined;
    const now = this.now();
    const row = this.stmt.claim.get({ kinds: JSON.stringify(kinds), owner, now, leaseUntil: now + this.leaseMs });
    return row ? toJob(row) : undefined;
  }

  /** Pushes the lease end to now + ms. False when the lease was lost (reclaimed, finished, or another owner). */
  extendLease(job: Job | number, owner: string, ms: number = this.leaseMs): boolean {
    const id = typeof job === 'number' ? job : job.id;
    const now = this.now();
    return this.stmt.extend.run({ id, owner, now, leaseUntil: now + Math.ceil(ms) }).changes === 1;
  }

  /** Marks a running job done. False (and nothing changes) when `owner` no longer holds its lease. */
  complete(jobId: number, owner: string, result?: unknown): boolean {
    const res = this.stmt.complete.run({ id: jobId, owner, now: this.now(), result: result === undefined ? null : JSON.stringify(result) });
    return this.applied(res.changes, jobId, owner, 'complete');
  }

  /**
   * Records a failed attempt: back to 'queued' after a backoff delay, or 'dead' once the job has
   * used all its attempts (or at once when `permanent`, e.g. an invalid payload). Returns the
   * updated job, or false when `owner` no longer holds the lease.
   */
  fail(jobId: number, owner: string, error: unknown, opts: { permanent?: boolean } = {}): Job | false {
    const lastError = redactUrl(describeError(error)).slice(0, MAX_ERROR_CHARS);
    const row = this.db
      .transaction(() => {
        const current = this.stmt.owned.get({ id: jobId, owner });
        if (!current) return undefined;
        const now = this.now();
        if (opts.permanent || current.attempts >= current.max_attempts) {
          return this.stmt.bury.get({ id: jobId, owner, now, lastError });
        }
        const delayMs = backoffDelayMs(current.attempts, this.backoff, this.random);
        return this.stmt.requeue.get({ id: jobId, owner, now, lastError, runAfter: now + delayMs, refund: 0 });
      })
      .immediate();
    if (!row) {
      this.applied(0, jobId, owner, 'fail');
      return false;
    }
    return toJob(row);
  }

  /** Puts a running job back for `delayMs` without spending its attempt ("upload window closed"). */
  retryAfter(jobId: number, owner: string, delayMs: number, reason: string): boolean {
    const now = this.now();
    const row = this.stmt.requeue.get({
      id: jobId,
      owner,
      now,
      lastError: redactUrl(reason).slice(0, MAX_ERROR_CHARS),
      runAfter: now + Math.max(0, Math.ceil(delayMs)),
      refund: 1,
    });
    return this.applied(row ? 1 : 0, jobId, owner, 'retryAfter');
  }

  /**
   * Requeues running jobs whose lease has ended; their attempt stays spent, and a job that has
   * used all its attempts this way goes to the dead letter (a job that crashes the process must
   * not crash it forever). `all: true` takes every running job: at daemon start this process is
   * the only worker, so every running row is an orphan of a crash. Returns how many were taken;
   * `onDead` hears of each job this sent to the dead letter (for its handler's clean-up).
   */
  reclaimExpired(opts: { all?: boolean; onDead?: (job: Job) => void } = {}): number {
    const rows = this.stmt.reclaim.all({ now: this.now(), all: opts.all ? 1 : 0 });
    for (const row of rows) {
      const next = row.state === 'dead' ? 'moved to dead letter (no attempts left)' : 'queued again';
      this.logger.warn(`job ${row.id} (${row.kind}) was ${row.last_error ?? 'abandoned'}; ${next}`, { jobId: row.id, kind: row.kind });
      if (row.state === 'dead') opts.onDead?.(toJob(row));
    }
    return rows.length;
  }

  get(id: number): Job | undefined {
    const row = this.stmt.byId.get({ id });
    return row ? toJob(row) : undefined;
  }

  findByKey(kind: string, key: string): Job | undefined {
    const row = this.stmt.byKey.get({ kind, key });
    return row ? toJob(row) : undefined;
  }

  list(filter: JobFilter = {}): Job[] {
    return this.stmt.list
      .all({ state: filter.state ?? null, kind: filter.kind ?? null, limit: filter.limit ?? -1 })
      .map(toJob);
  }

  counts(): Record<JobState, number> {
    const counts = Object.fromEntries(JOB_STATES.map((s) => [s, 0])) as Record<JobState, number>;
    for (const row of this.stmt.counts.all()) counts[row.state] = row.n;
    return counts;
  }

  /** Jobs of `kinds` that are queued (due or not) or running: the worker is idle when this is 0. */
  activeCount(kinds: readonly string[]): number {
    return this.stmt.active.get({ kinds: JSON.stringify(kinds) })?.n ?? 0;
  }

  /** Brings a dead or cancelled job back with a fresh set of attempts. False for any other state. */
  retry(id: number): boolean {
    return this.stmt.retry.run({ id, now: this.now() }).changes === 1;
  }

  /** Withdraws a queued or dead job. A running job cannot be cancelled here (false). */
  cancel(id: number): boolean {
    return this.stmt.cancel.run({ id, now: this.now() }).changes === 1;
  }

  /** The earliest `runAfterMs` among queued jobs of `kinds`, so a worker knows how long to sleep. */
  nextRunAfterMs(kinds: readonly string[]): number | undefined {
    if (kinds.length === 0) return undefined;
    return this.stmt.nextRunAfter.get({ kinds: JSON.stringify(kinds) })?.next ?? undefined;
  }

  private applied(changes: number, jobId: number, owner: string, op: string): boolean {
    if (changes === 1) return true;
    const current = this.stmt.byId.get({ id: jobId });
    this.logger.warn(`job ${jobId}: ${op} ignored, the lease of ${owner} was lost`, {
      jobId,
      state: current?.state,
      leaseOwner: current?.lease_owner ?? undefined,
    });
    return false;
  }
}

type Statements = ReturnType<typeof prepareStatements>;

function prepareStatements(db: Db) {
  const clearLease = `lease_until_ms = NULL, lease_owner = NULL`;
  return {
    insert: db.prepare<{ kind: string; key: string; payload: string; priority: number; maxAttempts: number; runAfter: number; now: number }, JobRow>(
      `INSERT INTO jobs (kind, key, payload, state, priority, attempts, max_attempts, run_after_ms, created_at_ms, updated_at_ms)
       VALUES (@kind, @key, @payload, 'queued', @priority, 0, @maxAttempts, @runAfter, @now, @now)
       ON CONFLICT (kind, key) DO NOTHING
       RETURNING *`,
    ),
    claim: db.prepare<{ kinds: string; owner: string; now: number; leaseUntil: number }, JobRow>(
      `UPDATE jobs
       SET state = 'running', attempts = attempts + 1, lease_until_ms = @leaseUntil, lease_owner = @owner, updated_at_ms = @now
       WHERE id = (
         SELECT id FROM jobs
         WHERE state = 'queued' AND run_after_ms <= @now AND ${KIND_IN}
         ORDER BY priority, id
         LIMIT 1
       ) AND state = 'queued'
       RETURNING *`,
    ),
    extend: db.prepare<{ id: number; owner: string; now: number; leaseUntil: number }>(
      `UPDATE jobs SET lease_until_ms = @leaseUntil, updated_at_ms = @now WHERE ${OWNED}`,
    ),
    owned: db.prepare<{ id: number; owner: string }, JobRow>(`SELECT * FROM jobs WHERE ${OWNED}`),
    complete: db.prepare<{ id: number; owner: string; now: number; result: string | null }>(
      `UPDATE jobs SET state = 'done', result = @result, ${clearLease}, finished_at_ms = @now, updated_at_ms = @now WHERE ${OWNED}`,
    ),
    bury: db.prepare<{ id: number; owner: string; now: number; lastError: string }, JobRow>(
      `UPDATE jobs SET state = 'dead', last_error = @lastError, ${clearLease}, finished_at_ms = @now, updated_at_ms = @now
       WHERE ${OWNED} RETURNING *`,
    ),
    // refund = 1 gives the claimed attempt back (retryAfter); 0 keeps it spent (fail).
    requeue: db.prepare<{ id: number; owner: string; now: number; lastError: string; runAfter: number; refund: 0 | 1 }, JobRow>(
      `UPDATE jobs SET state = 'queued', attempts = max(attempts - @refund, 0), run_after_ms = @runAfter, last_error = @lastError,
         ${clearLease}, updated_at_ms = @now
       WHERE ${OWNED} RETURNING *`,
    ),
    reclaim: db.prepare<{ now: number; all: 0 | 1 }, JobRow>(
      `UPDATE jobs SET
         state = CASE WHEN attempts >= max_attempts THEN 'dead' ELSE 'queued' END,
         finished_at_ms = CASE WHEN attempts >= max_attempts THEN @now ELSE NULL END,
         last_error = 'abandoned by worker ' || lease_owner || ' (lease expired or process ended)',
         ${clearLease}, updated_at_ms = @now
       WHERE state = 'running' AND (@all = 1 OR lease_until_ms < @now)
       RETURNING *`,
    ),
    byId: db.prepare<{ id: number }, JobRow>(`SELECT * FROM jobs WHERE id = @id`),
    byKey: db.prepare<{ kind: string; key: string }, JobRow>(`SELECT * FROM jobs WHERE kind = @kind AND key = @key`),
    list: db.prepare<{ state: string | null; kind: string | null; limit: number }, JobRow>(
      `SELECT * FROM jobs WHERE (@state IS NULL OR state = @state) AND (@kind IS NULL OR kind = @kind) ORDER BY id DESC LIMIT @limit`,
    ),
    counts: db.prepare<[], { state: JobState; n: number }>(`SELECT state, count(*) AS n FROM jobs GROUP BY state`),
    active: db.prepare<{ kinds: string }, { n: number }>(
      `SELECT count(*) AS n FROM jobs WHERE state IN ('queued', 'running') AND ${KIND_IN}`,
    ),
    nextRunAfter: db.prepare<{ kinds: string }, { next: number | null }>(
      `SELECT min(run_after_ms) AS next FROM jobs WHERE state = 'queued' AND ${KIND_IN}`,
    ),
    retry: db.prepare<{ id: number; now: number }>(
      `UPDATE jobs SET state = 'queued', attempts = 0, run_after_ms = @now, result = NULL, finished_at_ms = NULL, updated_at_ms = @now
       WHERE id = @id AND state IN ('dead', 'cancelled')`,
    ),
    cancel: db.prepare<{ id: number; now: number }>(
      `UPDATE jobs SET state = 'cancelled', finished_at_ms = @now, updated_at_ms = @now WHERE id = @id AND state IN ('queued', 'dead')`,
    ),
  };
}

function toJob(row: JobRow): Job {
  return {
    id: row.id,
    kind: row.kind,
    key: row.key,
    payload: JSON.parse(row.payload) as unknown,
    state: row.state,
    priority: row.priority,
    attempts: row.attempts,
    maxAttempts: row.max_attempts,
    runAfterMs: row.run_after_ms,
    leaseUntilMs: row.lease_until_ms,
    leaseOwner: row.lease_owner,
    lastError: row.last_error,
    result: row.result === null ? null : (JSON.parse(row.result) as unknown),
    createdAtMs: row.created_at_ms,
    updatedAtMs: row.updated_at_ms,
    finishedAtMs: row.finished_at_ms,
  };
}

function assertPositiveInteger(value: number, name: string): void {
  if (!Number.isInteger(value) || value < 1) throw new LecternError('INTERNAL', `${name} must be a positive integer, got ${value}`);
}
