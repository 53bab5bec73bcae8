import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { closeDatabase, openDatabase, type Db } from '../../src/db/index.js';
import { createMemoryLogger, silentLogger } from '../../src/log/logger.js';
import { JobQueue, type JobQueueOptions } from '../../src/queue/queue.js';
import type { JobContext, JobHandler } from '../../src/queue/types.js';
import { Worker } from '../../src/queue/worker.js';
import { backoffDelayMs, type BackoffPolicy } from '../../src/util/backoff.js';
import { isLecternError } from '../../src/util/errors.js';
import { sleep, waitFor } from '../../src/util/sleep.js';

const LEASE_MS = 10_000;
const T0 = 1_700_000_000_000;

let dir: string;
let file: string;
const dbs: Db[] = [];
const workers: Worker[] = [];

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lectern-'));
  file = path.join(dir, 'lectern.db');
});

afterEach(async () => {
  for (const worker of workers.splice(0)) await worker.stop();
  vi.useRealTimers();
  for (const db of dbs.splice(0)) closeDatabase(db);
  fs.rmSync(dir, { recursive: true, force: true });
});

/** A manual clock: tests move time explicitly. */
function manualClock(start = T0) {
  const clock = { ms: start, now: () => clock.ms, advance: (ms: number) => void (clock.ms += ms) };
  return clock;
}

function newQueue(opts: Partial<JobQueueOptions> = {}): JobQueue {
  const db = opts.db ?? openDatabase(file, { logger: silentLogger });
  if (!opts.db) dbs.push(db);
  return new JobQueue({ logger: silentLogger, leaseMs: LEASE_MS, ...opts, db });
}

function newWorker(queue: JobQueue, opts: { pollIntervalMs?: number; concurrency?: number; logger?: ReturnType<typeof createMemoryLogger>['logger'] } = {}): Worker {
  const worker = new Worker({ queue, logger: opts.logger ?? silentLogger, owner: 'test-worker', pollIntervalMs: opts.pollIntervalMs ?? 20, concurrency: opts.concurrency });
  workers.push(worker);
  return worker;
}

function handler<P>(kind: string, run: (payload: P, ctx: JobContext) => ReturnType<JobHandler<P>['run']>, parse: (p: unknown) => P = (p) => p as P): JobHandler<P> {
  return { kind, parse, run };
}

describe('JobQueue.enqueue', () => {
  it('is idempotent per (kind, key): the second enqueue returns the first job untouched', () => {
    const clock = manualClock();
    const queue = newQueue({ now: clock.now });
    const first = queue.enqueue('transcode', { lecture: 'A' }, { key: 'rec-1', priority: 3, maxAttempts: 4 });
    clock.advance(500);
    const second = queue.enqueue('transcode', { lecture: 'B' }, { key: 'rec-1', priority: 9 });
    expect(first.created).toBe(true);
    expect(second.created).toBe(false);
    expect(second.job).toEqual(first.job);
    expect(second.job).toMatchObject({ payload: { lecture: 'A' }, priority: 3, maxAttempts: 4, state: 'queued', attempts: 0, runAfterMs: T0, createdAtMs: T0 });

    const otherKind = queue.enqueue('upload', { lecture: 'A' }, { key: 'rec-1' });
    expect(otherKind.created).toBe(true);
    expect(otherKind.job.id).not.toBe(first.job.id);
    expect(queue.counts()).toEqual({ queued: 2, running: 0, done: 0, dead: 0, cancelled: 0 });
  });

  it('returns the existing job even after it finished, instead of doing the work again', () => {
    const queue = newQueue();
    const { job } = queue.enqueue('k', {}, { key: 'x' });
    queue.claim(['k'], 'w');
    expect(queue.complete(job.id, 'w', { ok: true })).toBe(true);
    const again = queue.enqueue('k', {}, { key: 'x' });
    expect(again).toMatchObject({ created: false, job: { id: job.id, state: 'done', result: { ok: true } } });
  });

  it('joins the caller’s transaction: rolled back with it, committed with it', () => {
    const queue = newQueue();
    const db = dbs[0]!;
    const recordAndEnqueue = db.transaction((key: string, fail: boolean) => {
      db.prepare(`INSERT INTO jobs (kind, key, payload, state, max_attempts, run_after_ms, created_at_ms, updated_at_ms)
                  VALUES ('marker', ?, '{}', 'queued', 1, 0, 0, 0)`).run(key);
      const { created } = queue.enqueue('upload', { key }, { key });
      if (fail) throw new Error('caller failed after enqueue');
      return created;
    });
    expect(() => recordAndEnqueue.immediate('a', true)).toThrow('caller failed after enqueue');
    expect(queue.findByKey('upload', 'a')).toBeUndefined();
    expect(queue.findByKey('marker', 'a')).toBeUndefined();
    expect(recordAndEnqueue.immediate('b', false)).toBe(true);
    expect(queue.findByKey('upload', 'b')?.state).toBe('queued');
    expect(queue.findByKey('marker', 'b')?.state).toBe('queued');
  });

  it('rejects a non-integer priority and a max attempts below 1', () => {
    const queue = newQueue();
    expect(() => queue.enqueue('k', {}, { key: 'a', priority: 1.5 })).toThrow(/integer/);
    expect(() => queue.enqueue('k', {}, { key: 'b', maxAttempts: 0 })).toThrow(/positive integer/);
    expect(queue.list()).toEqual([]);
  });
});

describe('JobQueue.claim', () => {
  it('takes due jobs by priority then age, only of the asked kinds, and starts a lease', () => {
    const clock = manualClock();
    const queue = newQueue({ now: clock.now });
    const low = queue.enqueue('k', 'low', { key: 'low', priority: 5 }).job;
    const high1 = queue.enqueue('k', 'high1', { key: 'high1', priority: 1 }).job;
    const high2 = queue.enqueue('k', 'high2', { key: 'high2', priority: 1 }).job;
    const later = queue.enqueue('k', 'later', { key: 'later', priority: 0, runAfterMs: T0 + 1_000 }).job;
    queue.enqueue('other', 'other', { key: 'o', priority: -10 });

    const claimed = queue.claim(['k'], 'w1');
    expect(claimed).toMatchObject({ id: high1.id, state: 'running', attempts: 1, leaseOwner: 'w1', leaseUntilMs: T0 + LEASE_MS });
    expect(queue.claim(['k'], 'w1')?.id).toBe(high2.id);
    expect(queue.claim(['k'], 'w1')?.id).toBe(low.id);
    expect(queue.claim(['k'], 'w1')).toBeUndefined(); // 'later' is not due, 'other' not asked for
    expect(queue.nextRunAfterMs(['k'])).toBe(T0 + 1_000);
    clock.advance(999);
    expect(queue.claim(['k'], 'w1')).toBeUndefined();
    clock.advance(1);
    expect(queue.claim(['k'], 'w1')?.id).toBe(later.id);
    expect(queue.claim([], 'w1')).toBeUndefined();
    expect(queue.claim(['other', 'k'], 'w1')?.payload).toBe('other');
  });

  it('hands each job to exactly one of two queues on two connections to the same file', () => {
    const a = newQueue();
    const b = newQueue();
    const total = 300;
    for (let i = 0; i < total; i++) (i % 2 ? a : b).enqueue('k', { i }, { key: `k${i}` });
    const claimedBy = new Map<number, string>();
    let seed = 7;
    for (;;) {
      seed = (seed * 48_271) % 2_147_483_647;
      const [queue, owner] = seed % 2 ? [a, 'A'] : [b, 'B'];
      const job = queue.claim(['k'], owner);
      if (!job) {
        // Either side running dry means all are taken; the other must agree.
        expect((queue === a ? b : a).claim(['k'], 'X')).toBeUndefined();
        break;
      }
      expect(claimedBy.has(job.id)).toBe(false);
      claimedBy.set(job.id, owner);
    }
    expect(claimedBy.size).toBe(total);
    const owners = [...claimedBy.values()];
    expect(owners.filter((o) => o === 'A').length).toBeGreaterThan(50);
    expect(owners.filter((o) => o === 'B').length).toBeGreaterThan(50);
    expect(a.counts().running).toBe(total);
    for (const [id, owner] of claimedBy) expect(b.get(id)).toMatchObject({ state: 'running', leaseOwner: owner, attempts: 1 });
  });
});

describe('leases', () => {
  it('requeues a job whose lease ended, keeps the attempt spent, and ignores the old owner afterwards', () => {
    const clock = manualClock();
    const queue = newQueue({ now: clock.now });
    const { job } = queue.enqueue('k', {}, { key: 'a' });
    queue.claim(['k'], 'old');
    clock.advance(LEASE_MS);
    expect(queue.reclaimExpired()).toBe(0); // lease_until == now: still valid
    clock.advance(1);
    expect(queue.reclaimExpired()).toBe(1);
    expect(queue.get(job.id)).toMatchObject({ state: 'queued', attempts: 1, leaseOwner: null, leaseUntilMs: null, lastError: expect.stringContaining('old') });

    expect(queue.complete(job.id, 'old')).toBe(false);
    expect(queue.get(job.id)?.state).toBe('queued');
    expect(queue.claim(['k'], 'new')).toMatchObject({ id: job.id, attempts: 2, leaseOwner: 'new' });
    expect(queue.complete(job.id, 'old', 'stale result')).toBe(false);
    expect(queue.fail(job.id, 'old', new Error('x'))).toBe(false);
    expect(queue.retryAfter(job.id, 'old', 10, 'x')).toBe(false);
    expect(queue.extendLease(job.id, 'old')).toBe(false);
    expect(queue.get(job.id)).toMatchObject({ state: 'running', leaseOwner: 'new', attempts: 2 });
    expect(queue.complete(job.id, 'new', 'fresh')).toBe(true);
    expect(queue.complete(job.id, 'new', 'twice')).toBe(false);
    expect(queue.get(job.id)).toMatchObject({ state: 'done', result: 'fresh', finishedAtMs: clock.ms });
  });

  it('extendLease keeps a job from being reclaimed', () => {
    const clock = manualClock();
    const queue = newQueue({ now: clock.now });
    const { job } = queue.enqueue('k', {}, { key: 'a' });
    const claimed = queue.claim(['k'], 'w')!;
    clock.advance(LEASE_MS - 1);
    expect(queue.extendLease(claimed, 'w')).toBe(true);
    expect(queue.get(job.id)?.leaseUntilMs).toBe(clock.ms + LEASE_MS);
    clock.advance(LEASE_MS);
    expect(queue.reclaimExpired()).toBe(0);
    expect(queue.extendLease(job.id, 'w', 5)).toBe(true);
    clock.advance(6);
    expect(queue.reclaimExpired()).toBe(1);
    expect(queue.extendLease(job.id, 'w')).toBe(false);
  });

  it('reclaimExpired({ all: true }) takes running jobs whose lease has not ended yet', () => {
    const queue = newQueue();
    queue.enqueue('k', {}, { key: 'a' });
    queue.enqueue('k', {}, { key: 'b' });
    queue.claim(['k'], 'crashed-process');
    expect(queue.reclaimExpired()).toBe(0);
    expect(queue.reclaimExpired({ all: true })).toBe(1);
    expect(queue.counts()).toMatchObject({ queued: 2, running: 0 });
  });

  it('moves a reclaimed job that has used all its attempts to the dead letter (a job that kills the process)', () => {
    const queue = newQueue();
    const { job } = queue.enqueue('k', {}, { key: 'a', maxAttempts: 2 });
    queue.claim(['k'], 'p1');
    queue.reclaimExpired({ all: true });
    expect(queue.get(job.id)?.state).toBe('queued');
    queue.claim(['k'], 'p2');
    queue.reclaimExpired({ all: true });
    expect(queue.get(job.id)).toMatchObject({ state: 'dead', attempts: 2, finishedAtMs: expect.any(Number) });
    expect(queue.claim(['k'], 'p3')).toBeUndefined();
  });
});

describe('failures, backoff and the dead letter', () => {
  const policy: BackoffPolicy = { baseMs: 1_000, capMs: 60_000, jitter: 0.5 };

  it('schedules the retry exactly backoffDelayMs(attempts) later, with the injected random', () => {
    const clock = manualClock();
    const random = () => 0.25;
    const queue = newQueue({ now: clock.now, random, backoff: policy });
    const { job } = queue.enqueue('k', {}, { key: 'a' });

    queue.claim(['k'], 'w');
    const afterFirst = queue.fail(job.id, 'w', new Error('camera offline'));
    // attempt 1: nominal 1000, half jitter, draw 0.25 → 500 + 125
    expect(backoffDelayMs(1, policy, random)).toBe(625);
    expect(afterFirst).toMatchObject({ state: 'queued', attempts: 1, runAfterMs: T0 + 625, lastError: 'camera offline', leaseOwner: null });

    clock.advance(624);
    expect(queue.claim(['k'], 'w')).toBeUndefined();
    clock.advance(1);
    expect(queue.claim(['k'], 'w')?.attempts).toBe(2);
    const afterSecond = queue.fail(job.id, 'w', 'string errors work too');
    expect(afterSecond).toMatchObject({ state: 'queued', attempts: 2, runAfterMs: clock.ms + 1_250, lastError: 'string errors work too' });
  });

  it('dead-letters a job after max attempts and keeps the last error', () => {
    const clock = manualClock();
    const queue = newQueue({ now: clock.now, random: () => 0, backoff: policy, maxAttempts: 3 });
    const { job } = queue.enqueue('k', {}, { key: 'a' });
    const states: string[] = [];
    for (let i = 1; i <= 3; i++) {
      clock.advance(120_000);
      expect(queue.claim(['k'], 'w')?.attempts).toBe(i);
      const after = queue.fail(job.id, 'w', new Error(`failure ${i}`));
      states.push(after ? after.state : 'lost');
    }
    expect(states).toEqual(['queued', 'queued', 'dead']);
    expect(queue.get(job.id)).toMatchObject({ state: 'dead', attempts: 3, lastError: 'failure 3', finishedAtMs: clock.ms });
    clock.advance(10 * 120_000);
    expect(queue.claim(['k'], 'w')).toBeUndefined();
  });

  it('dead-letters at once when the failure is permanent', () => {
    const queue = newQueue();
    const { job } = queue.enqueue('k', {}, { key: 'a' });
    queue.claim(['k'], 'w');
    expect(queue.fail(job.id, 'w', new Error('bad payload'), { permanent: true })).toMatchObject({ state: 'dead', attempts: 1 });
  });

  it('redacts credentials in the stored error', () => {
    const queue = newQueue();
    const { job } = queue.enqueue('k', {}, { key: 'a' });
    queue.claim(['k'], 'w');
    queue.fail(job.id, 'w', new Error('rtsp://admin:hunter22@10.0.0.5/stream timed out'));
    const lastError = queue.get(job.id)?.lastError ?? '';
    expect(lastError).not.toContain('hunter22');
    expect(lastError).toContain('admin:***@10.0.0.5');
  });

  it('retryAfter puts the job back for the delay without spending an attempt', () => {
    const clock = manualClock();
    const queue = newQueue({ now: clock.now, maxAttempts: 2 });
    const { job } = queue.enqueue('upload', {}, { key: 'a' });
    for (let i = 0; i < 5; i++) {
      expect(queue.claim(['upload'], 'w')?.attempts).toBe(1);
      expect(queue.retryAfter(job.id, 'w', 30_000, 'upload window closed')).toBe(true);
      expect(queue.get(job.id)).toMatchObject({ state: 'queued', attempts: 0, runAfterMs: clock.ms + 30_000, lastError: 'upload window closed' });
      clock.advance(29_999);
      expect(queue.claim(['upload'], 'w')).toBeUndefined();
      clock.advance(1);
    }
    // Five postponements with max 2 attempts, and the job still has both attempts.
    queue.claim(['upload'], 'w');
    expect(queue.fail(job.id, 'w', new Error('first real failure'))).toMatchObject({ state: 'queued', attempts: 1 });
  });
});

describe('inspection and operator actions', () => {
  it('retry brings dead and cancelled jobs back with fresh attempts; cancel withdraws queued and dead jobs', () => {
    const queue = newQueue({ maxAttempts: 1 });
    const dead = queue.enqueue('k', {}, { key: 'dead' }).job;
    queue.claim(['k'], 'w');
    queue.fail(dead.id, 'w', new Error('boom'));
    const queued = queue.enqueue('k', {}, { key: 'queued' }).job;
    const running = queue.enqueue('r', {}, { key: 'running' }).job;
    queue.claim(['r'], 'w');

    expect(queue.retry(queued.id)).toBe(false);
    expect(queue.retry(running.id)).toBe(false);
    expect(queue.cancel(running.id)).toBe(false);
    expect(queue.get(running.id)?.state).toBe('running');

    expect(queue.cancel(queued.id)).toBe(true);
    expect(queue.get(queued.id)).toMatchObject({ state: 'cancelled', finishedAtMs: expect.any(Number) });
    expect(queue.claim(['k'], 'w')).toBeUndefined();
    expect(queue.cancel(queued.id)).toBe(false);

    expect(queue.retry(dead.id)).toBe(true);
    expect(queue.get(dead.id)).toMatchObject({ state: 'queued', attempts: 0, finishedAtMs: null });
    expect(queue.claim(['k'], 'w')?.id).toBe(dead.id);
    expect(queue.complete(dead.id, 'w')).toBe(true);
    expect(queue.cancel(dead.id)).toBe(false); // done is final

    expect(queue.retry(queued.id)).toBe(true);
    expect(queue.get(queued.id)?.state).toBe('queued');
  });

  it('lists newest first with filters, counts by state and finds by key', () => {
    const queue = newQueue();
    const ids = ['a', 'b', 'c'].map((key) => queue.enqueue(key === 'c' ? 'upload' : 'transcode', { key }, { key }).job.id);
    queue.claim(['transcode'], 'w');
    expect(queue.list().map((j) => j.id)).toEqual([...ids].reverse());
    expect(queue.list({ kind: 'transcode' }).map((j) => j.key)).toEqual(['b', 'a']);
    expect(queue.list({ state: 'running' }).map((j) => j.key)).toEqual(['a']);
    expect(queue.list({ limit: 1 }).map((j) => j.key)).toEqual(['c']);
    expect(queue.counts()).toEqual({ queued: 2, running: 1, done: 0, dead: 0, cancelled: 0 });
    expect(queue.findByKey('upload', 'c')?.payload).toEqual({ key: 'c' });
    expect(queue.findByKey('transcode', 'c')).toBeUndefined();
    expect(queue.get(9_999)).toBeUndefined();
    expect(queue.activeCount(['transcode'])).toBe(2);
    expect(queue.nextRunAfterMs(['nothing'])).toBeUndefined();
  });
});

describe('Worker', () => {
  it('runs queued jobs with their parsed payload and records results', async () => {
    const queue = newQueue();
    const seen: number[] = [];
    const worker = newWorker(queue);
    worker.register(
      handler<{ n: number }>(
        'square',
        async (payload) => {
          seen.push(payload.n);
          return { type: 'done', result: payload.n * payload.n };
        },
        (p) => {
          const n = (p as { n?: unknown }).n;
          if (typeof n !== 'number') throw new Error('n must be a number');
          return { n };
        },
      ),
    );
    const ids = [3, 1, 2].map((n) => queue.enqueue('square', { n }, { key: String(n), priority: n }).job.id);
    await worker.start();
    await worker.runUntilIdle({ timeoutMs: 10_000 });
    expect(seen).toEqual([1, 2, 3]);
    expect(ids.map((id) => queue.get(id)?.result)).toEqual([9, 1, 4]);
    expect(queue.counts()).toMatchObject({ done: 3, queued: 0, running: 0 });
  });

  it('keeps going after a throwing handler and says what happens next', async () => {
    const { logger, lines } = createMemoryLogger();
    const queue = newQueue({ random: () => 1, backoff: { baseMs: 4_000, capMs: 60_000, jitter: 0 } });
    const worker = newWorker(queue, { logger });
    const ran: string[] = [];
    worker.register(
      handler<string>('k', async (payload) => {
        ran.push(payload);
        if (payload.startsWith('bad')) throw new Error(`handler broke on ${payload}`);
      }),
    );
    const once = queue.enqueue('k', 'bad-once', { key: 'bad-once', maxAttempts: 3 }).job;
    const fatal = queue.enqueue('k', 'bad-always', { key: 'bad-always', maxAttempts: 1 }).job;
    const good = queue.enqueue('k', 'good', { key: 'good' }).job;
    await worker.start();
    await waitFor(() => (queue.get(good.id)?.state === 'done' && queue.get(fatal.id)?.state === 'dead' ? true : undefined), {
      timeoutMs: 10_000,
    });
    expect(ran).toEqual(['bad-once', 'bad-always', 'good']);
    expect(queue.get(once.id)).toMatchObject({ state: 'queued', attempts: 1, lastError: 'handler broke on bad-once' });
    expect(lines.some((l) => l.includes(`job ${once.id} (k) failed: handler broke on bad-once; retrying in 4 s (attempt 2 of 3)`))).toBe(true);
    expect(lines.some((l) => l.includes(`job ${fatal.id} (k) failed: handler broke on bad-always; moved to dead letter after 1 attempt`))).toBe(true);
  });

  it('dead-letters a job whose payload does not parse, without running it', async () => {
    const queue = newQueue();
    const worker = newWorker(queue);
    let runs = 0;
    worker.register(
      handler<number>(
        'k',
        async () => {
          runs++;
        },
        (p) => {
          if (typeof p !== 'number') throw new Error('payload must be a number');
          return p;
        },
      ),
    );
    const bad = queue.enqueue('k', { not: 'a number' }, { key: 'bad' }).job;
    const good = queue.enqueue('k', 7, { key: 'good' }).job;
    await worker.start();
    await worker.runUntilIdle({ timeoutMs: 10_000 });
    expect(runs).toBe(1);
    expect(queue.get(bad.id)).toMatchObject({ state: 'dead', attempts: 1, lastError: 'payload must be a number' });
    expect(queue.get(good.id)?.state).toBe('done');
  });

  it('passes a retryAfter outcome on without spending an attempt', async () => {
    const queue = newQueue();
    const worker = newWorker(queue);
    worker.register(handler('upload', async () => ({ type: 'retryAfter', delayMs: 3_600_000, reason: 'outside the upload window' })));
    const { job } = queue.enqueue('upload', {}, { key: 'a' });
    const before = Date.now();
    await worker.start();
    await waitFor(() => (queue.get(job.id)?.lastError ? true : undefined), { timeoutMs: 10_000 });
    const after = queue.get(job.id)!;
    expect(after).toMatchObject({ state: 'queued', attempts: 0, lastError: 'outside the upload window' });
    expect(after.runAfterMs).toBeGreaterThanOrEqual(before + 3_600_000);
  });

  it('stop() aborts a long-running handler, waits for it and gives the attempt back', async () => {
    const queue = newQueue();
    const worker = newWorker(queue);
    let sawAbort = false;
    let settled = false;
    worker.register(
      handler('long', async (_p, ctx) => {
        try {
          await sleep(600_000, ctx.signal);
        } finally {
          sawAbort = ctx.signal.aborted;
          settled = true;
        }
      }),
    );
    const { job } = queue.enqueue('long', {}, { key: 'a' });
    await worker.start();
    await waitFor(() => (queue.get(job.id)?.state === 'running' ? true : undefined), { timeoutMs: 10_000 });
    const started = Date.now();
    const stopping = worker.stop();
    expect(worker.stop()).toBe(stopping);
    await stopping;
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(settled).toBe(true);
    expect(sawAbort).toBe(true);
    expect(queue.get(job.id)).toMatchObject({ state: 'queued', attempts: 0, leaseOwner: null });
    await expect(worker.start()).rejects.toThrow(/cannot be started again/);
  });

  it('runs up to `concurrency` jobs at once', async () => {
    const queue = newQueue();
    const worker = newWorker(queue, { concurrency: 2 });
    let running = 0;
    let peak = 0;
    worker.register(
      handler('k', async () => {
        running++;
        peak = Math.max(peak, running);
        await sleep(100);
        running--;
      }),
    );
    for (let i = 0; i < 5; i++) queue.enqueue('k', i, { key: String(i) });
    await worker.start();
    await worker.runUntilIdle({ timeoutMs: 10_000 });
    expect(peak).toBe(2);
    expect(queue.counts().done).toBe(5);
  });

  it('keeps the lease alive with a heartbeat while a handler runs longer than the lease', async () => {
    const queue = newQueue({ leaseMs: 300 });
    // A second process's view of the same file: it would reclaim the job if the lease lapsed.
    const other = newQueue({ leaseMs: 300 });
    const worker = newWorker(queue);
    const reclaimedDuringRun: number[] = [];
    worker.register(
      handler('slow', async () => {
        for (let i = 0; i < 4; i++) {
          await sleep(250);
          reclaimedDuringRun.push(other.reclaimExpired());
        }
      }),
    );
    const { job } = queue.enqueue('slow', {}, { key: 'a' });
    await worker.start();
    await worker.runUntilIdle({ timeoutMs: 10_000 });
    expect(reclaimedDuringRun).toEqual([0, 0, 0, 0]);
    expect(queue.get(job.id)).toMatchObject({ state: 'done', attempts: 1 });
  });

  it('aborts the handler when its lease is taken by another worker, and records nothing over the new owner', async () => {
    const { logger: queueLogger, lines } = createMemoryLogger();
    const queue = newQueue({ leaseMs: 150, logger: queueLogger });
    const thief = newQueue({ leaseMs: 60_000 });
    const worker = newWorker(queue);
    let abortReason: unknown;
    worker.register(
      handler('k', async (_p, ctx) => {
        await sleep(10_000, ctx.signal).catch(() => undefined);
        abortReason = ctx.signal.reason;
        return { type: 'done', result: 'from the worker that lost its lease' };
      }),
    );
    const { job } = queue.enqueue('k', {}, { key: 'a' });
    await worker.start();
    await waitFor(() => (queue.get(job.id)?.state === 'running' ? true : undefined), { timeoutMs: 10_000 });
    expect(thief.reclaimExpired({ all: true })).toBe(1);
    expect(thief.claim(['k'], 'thief')?.id).toBe(job.id);
    await waitFor(() => (abortReason !== undefined ? true : undefined), { timeoutMs: 5_000 });
    expect(isLecternError(abortReason, 'QUEUE_LEASE_LOST')).toBe(true);
    await waitFor(() => (lines.some((l) => l.includes(`job ${job.id}: complete ignored, the lease of test-worker was lost`)) ? true : undefined), {
      timeoutMs: 5_000,
    });
    expect(queue.get(job.id)).toMatchObject({ state: 'running', leaseOwner: 'thief', result: null });
  });

  it('runUntilIdle rejects when jobs are still waiting at the deadline', async () => {
    const queue = newQueue();
    const worker = newWorker(queue);
    worker.register(handler('k', async () => undefined));
    queue.enqueue('k', {}, { key: 'later', runAfterMs: Date.now() + 3_600_000 });
    await worker.start();
    await expect(worker.runUntilIdle({ timeoutMs: 100 })).rejects.toThrow(/did not become idle within 100 ms/);
  });

  it('wakes on kick() instead of waiting for the next poll', async () => {
    const queue = newQueue();
    const worker = newWorker(queue, { pollIntervalMs: 60_000 });
    let ran = false;
    worker.register(
      handler('k', async () => {
        ran = true;
      }),
    );
    await worker.start(); // start() ran the first poll: the loop is now asleep for a minute
    queue.enqueue('k', {}, { key: 'a' });
    worker.kick();
    await waitFor(() => (ran ? true : undefined), { timeoutMs: 2_000 });
  });
});

describe('Worker retry timing under fake timers', () => {
  it('does not rerun a failed job before its backoff delay and reruns it right when the delay ends', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] });
    vi.setSystemTime(T0);
    // Default clock (Date.now, now fake) and no jitter: delays are exactly 1 s, then 2 s.
    const queue = newQueue({ backoff: { baseMs: 1_000, capMs: 60_000, jitter: 0 } });
    // A long poll interval, so only the worker's own "next job due" wake-up can explain a rerun.
    const worker = newWorker(queue, { pollIntervalMs: 3_600_000 });
    const runTimes: number[] = [];
    worker.register(
      handler('flaky', async () => {
        runTimes.push(Date.now() - T0);
        if (runTimes.length <= 2) throw new Error(`failure ${runTimes.length}`);
        return { type: 'done', result: 'third time lucky' };
      }),
    );
    const { job } = queue.enqueue('flaky', {}, { key: 'a' });
    await worker.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(runTimes).toEqual([0]);

    await vi.advanceTimersByTimeAsync(999);
    expect(runTimes).toEqual([0]);
    await vi.advanceTimersByTimeAsync(1);
    expect(runTimes).toEqual([0, 1_000]);

    await vi.advanceTimersByTimeAsync(1_999);
    expect(runTimes).toEqual([0, 1_000]);
    await vi.advanceTimersByTimeAsync(1);
    expect(runTimes).toEqual([0, 1_000, 3_000]);

    expect(queue.get(job.id)).toMatchObject({ state: 'done', attempts: 3, result: 'third time lucky' });
    await vi.advanceTimersByTimeAsync(60_000);
    expect(runTimes).toHaveLength(3);
    await worker.stop();
  });
});
