import type { Logger } from '../log/logger.js';
import { describeError, LecternError } from '../util/errors.js';
import type { JobQueue } from './queue.js';
import type { Job, JobContext, JobHandler, JobOutcome } from './types.js';

export interface WorkerOptions {
  queue: JobQueue;
  logger: Logger;
  /** Written into each claimed row's lease_owner; unique per process (e.g. "lectern:<pid>"). */
  owner: string;
  /** Longest sleep between looks at the queue when nothing is due sooner. */
  pollIntervalMs?: number;
  /** Jobs run at the same time. */
  concurrency?: number;
  /**
   * Requeue every running job at start, not only those with an expired lease. Right when this
   * worker is the only one on the database (the daemon): any running row is then a crash orphan.
   */
  reclaimAllOnStart?: boolean;
}

interface ActiveJob {
  controller: AbortController;
  settled: Promise<void>;
}

const DEFAULT_POLL_INTERVAL_MS = 1_000;

/**
 * Runs registered handlers against the queue: claim → validate payload → run with a heartbeat
 * that keeps the lease → complete, retry later, or fail with backoff. A failing job is logged
 * with what happens next and never stops the loop.
 */
export class Worker {
  private readonly queue: JobQueue;
  private readonly logger: Logger;
  private readonly owner: string;
  private readonly pollIntervalMs: number;
  private readonly concurrency: number;
  private readonly reclaimAllOnStart: boolean;
  private readonly handlers = new Map<string, JobHandler<unknown>>();
  private readonly active = new Map<number, ActiveJob>();
  /** Dead-letter hooks still running (stop() and runUntilIdle() wait for them). */
  private readonly cleanups = new Set<Promise<void>>();
  private loopDone: Promise<void> | undefined;
  private stopping = false;
  private stopDone: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  private kicked = false;
  private lastReclaimMs = 0;

  constructor(opts: WorkerOptions) {
    this.queue = opts.queue;
    this.logger = opts.logger;
    this.owner = opts.owner;
    this.pollIntervalMs = opts.pollIntervalMs ?? DEFAULT_POLL_INTERVAL_MS;
    this.concurrency = opts.concurrency ?? 1;
    this.reclaimAllOnStart = opts.reclaimAllOnStart ?? false;
    if (!Number.isInteger(this.concurrency) || this.concurrency < 1) {
      throw new LecternError('INTERNAL', `worker concurrency must be a positive integer, got ${this.concurrency}`);
    }
  }

  register<P>(handler: JobHandler<P>): this {
    if (this.handlers.has(handler.kind)) throw new LecternError('INTERNAL', `a handler for job kind "${handler.kind}" is already registered`);
    this.handlers.set(handler.kind, handler);
    return this;
  }

  /** Requeues abandoned jobs, then starts the loop in the background. Resolves once started. */
  async start(): Promise<void> {
    if (this.stopping) throw new LecternError('INTERNAL', 'a stopped worker cannot be started again');
    if (this.loopDone) return;
    this.queue.reclaimExpired({ all: this.reclaimAllOnStart, onDead: (job) => this.deadLettered(job) });
    this.lastReclaimMs = this.queue.now();
    this.logger.info('worker started', { owner: this.owner, kinds: this.kinds(), concurrency: this.concurrency });
    this.loopDone = this.loop();
  }

  /** Aborts running handlers through their signal, waits for them to settle and stops polling. */
  stop(): Promise<void> {
    this.stopping = true;
    this.stopDone ??= this.shutdown();
    return this.stopDone;
  }

  /** Wakes the loop now (after an enqueue) instead of at the next poll. */
  kick(): void {
    this.kicked = true;
    this.wake?.();
  }

  /**
   * Resolves when no job of the registered kinds is queued (due or delayed) or running. Rejects
   * after `timeoutMs`, or when the worker stops first.
   */
  async runUntilIdle(opts: { timeoutMs?: number } = {}): Promise<void> {
    const deadline = opts.timeoutMs === undefined ? Infinity : Date.now() + opts.timeoutMs;
    const kinds = this.kinds();
    for (;;) {
      if (this.active.size === 0 && this.cleanups.size === 0 && this.queue.activeCount(kinds) === 0) return;
      if (this.stopping) throw new LecternError('INTERNAL', 'the worker stopped before the queue became idle');
      if (Date.now() >= deadline) {
        throw new LecternError('INTERNAL', `the queue did not become idle within ${opts.timeoutMs} ms`, { details: { counts: this.queue.counts() } });
      }
      await new Promise<void>((resolve) => setTimeout(resolve, 20));
    }
  }

  private kinds(): string[] {
    return [...this.handlers.keys()];
  }

  private async shutdown(): Promise<void> {
    const reason = new LecternError('INTERNAL', 'the worker is stopping');
    for (const run of this.active.values()) run.controller.abort(reason);
    this.wake?.();
    await this.loopDone;
    await Promise.all([...this.active.values()].map((run) => run.settled));
    await Promise.all([...this.cleanups]);
    this.logger.info('worker stopped', { owner: this.owner });
  }

  private async loop(): Promise<void> {
    while (!this.stopping) {
      let sleepMs = this.pollIntervalMs;
      try {
        sleepMs = this.poll();
      } catch (err) {
        // A busy or briefly unavailable database must not end the loop; try again next poll.
        this.logger.error(`job queue poll failed: ${describeError(err)}; trying again in ${formatDelay(sleepMs)}`, { err });
      }
      if (this.stopping) break;
      await this.sleep(sleepMs);
    }
  }

  /** Fills free slots with due jobs; returns how long to sleep before looking again. */
  private poll(): number {
    const now = this.queue.now();
    // Our own running jobs keep their leases fresh, so only another (dead) worker's can expire.
    if (now - this.lastReclaimMs >= this.queue.leaseMs / 2) {
      this.lastReclaimMs = now;
      this.queue.reclaimExpired({ onDead: (job) => this.deadLettered(job) });
    }
    const kinds = this.kinds();
    while (this.active.size < this.concurrency && !this.stopping) {
      const job = this.queue.claim(kinds, this.owner);
      if (!job) break;
      this.launch(job);
    }
    if (this.active.size >= this.concurrency) return this.pollIntervalMs; // a settling job wakes us
    const next = this.queue.nextRunAfterMs(kinds);
    if (next === undefined) return this.pollIntervalMs;
    return Math.min(this.pollIntervalMs, Math.max(0, next - this.queue.now()));
  }

  private sleep(ms: number): Promise<void> {
    if (this.kicked) {
      this.kicked = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.wake = undefined;
        this.kicked = false;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wake = done;
    });
  }

  private launch(job: Job): void {
    const controller = new AbortController();
    const settled = this.execute(job, controller).finally(() => {
      this.active.delete(job.id);
      this.kick();
    });
    this.active.set(job.id, { controller, settled });
  }

  /** Runs one claimed job to a recorded outcome. Never rejects. */
  private async execute(job: Job, controller: AbortController): Promise<void> {
    const log = this.logger.child({ jobId: job.id, kind: job.kind });
    const handler = this.handlers.get(job.kind);
    let payload: unknown;
    try {
      if (!handler) throw new LecternError('QUEUE_UNKNOWN_KIND', `no handler for job kind "${job.kind}"`);
      payload = handler.parse(job.payload);
    } catch (err) {
      log.error(`job ${job.id} (${job.kind}) has an invalid payload: ${describeError(err)}; moved to dead letter`);
      this.record(log, () => this.queue.fail(job.id, this.owner, err, { permanent: true }));
      return;
    }

    const loseLease = (): void => {
      if (!controller.signal.aborted) {
        log.warn(`job ${job.id} (${job.kind}) lost its lease; aborting it`);
        controller.abort(new LecternError('QUEUE_LEASE_LOST'));
      }
    };
    const extendLease = (ms?: number): void => {
      let kept = false;
      try {
        kept = this.queue.extendLease(job.id, this.owner, ms);
      } catch (err) {
        // The lease is still ours until it ends; the next heartbeat tries again.
        log.warn(`job ${job.id}: lease heartbeat failed: ${describeError(err)}`);
        return;
      }
      if (!kept) loseLease();
    };
    const heartbeat = setInterval(() => extendLease(), Math.max(1, Math.floor(this.queue.leaseMs / 3)));
    const ctx: JobContext = { job, signal: controller.signal, logger: log, extendLease };
    const startedMs = Date.now();
    log.debug(`job ${job.id} (${job.kind}) started (attempt ${job.attempts} of ${job.maxAttempts})`);

    let outcome: JobOutcome | void;
    try {
      outcome = await handler.run(payload, ctx);
    } catch (err) {
      clearInterval(heartbeat);
      this.afterThrow(job, err, controller.signal, log);
      return;
    }
    clearInterval(heartbeat);
    if (outcome && outcome.type === 'retryAfter') {
      const { delayMs, reason } = outcome;
      log.info(`job ${job.id} (${job.kind}) will run again in ${formatDelay(delayMs)}: ${reason}`);
      this.record(log, () => this.queue.retryAfter(job.id, this.owner, delayMs, reason));
      return;
    }
    const result = outcome?.result;
    if (this.record(log, () => this.queue.complete(job.id, this.owner, result))) {
      log.info(`job ${job.id} (${job.kind}) done`, { durationMs: Date.now() - startedMs });
    }
  }

  private afterThrow(job: Job, err: unknown, signal: AbortSignal, log: Logger): void {
    if (signal.aborted && this.stopping) {
      // Interrupted by our own shutdown, not a failure of the job: give the attempt back.
      log.info(`job ${job.id} (${job.kind}) interrupted by shutdown; it will run again`);
      this.record(log, () => this.queue.retryAfter(job.id, this.owner, 0, 'interrupted by shutdown'));
      return;
    }
    const after = this.record(log, () => this.queue.fail(job.id, this.owner, err));
    if (!after) return;
    const what = `job ${job.id} (${job.kind}) failed: ${describeError(err)}`;
    if (after.state === 'dead') {
      log.error(`${what}; moved to dead letter after ${after.attempts} attempt${after.attempts === 1 ? '' : 's'}`);
      this.deadLettered(after);
    } else {
      const delayMs = Math.max(0, after.runAfterMs - this.queue.now());
      log.warn(`${what}; retrying in ${formatDelay(delayMs)} (attempt ${after.attempts + 1} of ${after.maxAttempts})`);
    }
  }

  /**
   * Runs the handler's dead-letter hook in the background (it may talk to a slow store); a job
   * whose payload does not parse has nothing to clean up.
   */
  private deadLettered(job: Job): void {
    const handler = this.handlers.get(job.kind);
    if (!handler?.onDeadLetter) return;
    const log = this.logger.child({ jobId: job.id, kind: job.kind });
    let payload: unknown;
    try {
      payload = handler.parse(job.payload);
    } catch {
      return;
    }
    const run: Promise<void> = handler
      .onDeadLetter(payload, { job, logger: log })
      .catch((err: unknown) => log.warn(`job ${job.id} (${job.kind}): clean-up after the dead letter failed: ${describeError(err)}`))
      .finally(() => this.cleanups.delete(run));
    this.cleanups.add(run);
  }

  /**
   * Writes an outcome, logging instead of throwing: if the write itself fails the job stays
   * 'running' until its lease ends and is then reclaimed, so the work is redone, not lost.
   */
  private record<T>(log: Logger, write: () => T): T | false {
    try {
      return write();
    } catch (err) {
      log.error(`could not record the outcome of a job: ${describeError(err)}; it will be retried after its lease ends`);
      return false;
    }
  }
}

/** "850 ms", "4 s", "3 min", "2 h": the unit a person reading a log line wants. */
function formatDelay(ms: number): string {
  if (ms < 1_000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${Math.round(ms / 1_000)} s`;
  if (ms < 3_600_000) return `${Math.round(ms / 60_000)} min`;
  return `${Math.round(ms / 3_600_000)} h`;
}
