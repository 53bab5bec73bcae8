import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lectureJobs, lectureProgress, pendingLectureCount } from '../../src/agent/lectureProgress.js';
import { closeDatabase, openDatabase, type Db } from '../../src/db/index.js';
import { silentLogger } from '../../src/log/logger.js';
import { JobQueue } from '../../src/queue/queue.js';
import type { Job } from '../../src/queue/types.js';
import { TRANSCODE_JOB, TRANSCODE_TIER2_JOB } from '../../src/transcode/handler.js';
import { PUBLISH_JOB, PUBLISH_TIER1_JOB } from '../../src/upload/publishHandler.js';
import { makeTmpDir } from '../helpers/tmp.js';

/**
 * Where a lecture is between Stop and the store, from its jobs (what `lectern uploads`, the API's
 * lecture list and the pending count say), on a real SQLite queue driven through its own
 * transitions: a tiered lecture passes through four jobs, an untiered one through two.
 */

const tmp = makeTmpDir();
let db: Db;
let queue: JobQueue;
let made = 0;

beforeAll(() => {
  db = openDatabase(path.join(tmp.dir, 'state.db'), { logger: silentLogger });
  queue = new JobQueue({ db, logger: silentLogger, maxAttempts: 1 });
});

afterAll(() => {
  closeDatabase(db);
  tmp.cleanup();
});

/** A lecture's next job, as its handler hands it on (enqueue), driven to `state`. */
function step(kind: string, lectureId: string, state: 'queued' | 'running' | 'done' | 'dead' | 'cancelled', result?: unknown): Job {
  const payload = kind === TRANSCODE_JOB || kind === TRANSCODE_TIER2_JOB ? { recordingId: lectureId } : { lectureId };
  // Each new job outranks the earlier queued ones, so the claim below takes this one.
  const { job } = queue.enqueue(kind, payload, { key: lectureId, priority: -++made });
  if (state === 'cancelled') queue.cancel(job.id);
  if (state === 'queued' || state === 'cancelled') return queue.get(job.id) as Job;
  expect(queue.claim([kind], 'w')?.id).toBe(job.id);
  if (state === 'done') queue.complete(job.id, 'w', result);
  if (state === 'dead') queue.fail(job.id, 'w', new Error('AccessDenied: the key has no write right'));
  return queue.get(job.id) as Job;
}

function progressOf(lectureId: string, tiered = true) {
  const p = lectureProgress(lectureJobs(queue).get(lectureId) ?? [], { tiered });
  return p && { text: p.text, state: p.state, work: p.work, part: p.part, tier: p.tier, kind: p.job.kind };
}

describe('lecture progress', () => {
  it('follows a tiered lecture through its four jobs, once, and counts it pending until the final publish', () => {
    const id = 'L-tiered';
    const pendingBefore = pendingLectureCount(queue);
    const seen: Array<[string, 1 | 2 | null, number]> = [];
    const look = (): void => {
      const p = progressOf(id);
      seen.push([p?.text ?? '-', p?.tier ?? null, pendingLectureCount(queue) - pendingBefore]);
    };
    const transcode = step(TRANSCODE_JOB, id, 'queued');
    look();
    expect(queue.claim([TRANSCODE_JOB], 'w')?.id).toBe(transcode.id);
    look();
    // The tier-1 build hands on to both the tier-1 publish and the tier-2 build before it completes.
    const publish1 = step(PUBLISH_TIER1_JOB, id, 'queued');
    const tier2 = step(TRANSCODE_TIER2_JOB, id, 'queued');
    queue.complete(transcode.id, 'w', { tier: 1 });
    look();
    expect(queue.claim([PUBLISH_TIER1_JOB], 'w')?.id).toBe(publish1.id);
    look();
    queue.complete(publish1.id, 'w', { tier: 1 });
    look();
    expect(queue.claim([TRANSCODE_TIER2_JOB], 'w')?.id).toBe(tier2.id);
    look();
    const publish = step(PUBLISH_JOB, id, 'queued');
    queue.complete(tier2.id, 'w', { tier: 2 });
    look();
    expect(queue.claim([PUBLISH_JOB], 'w')?.id).toBe(publish.id);
    look();
    queue.complete(publish.id, 'w', { tier: 2 });
    look();
    expect(seen).toEqual([
      ['waiting to package tier 1', null, 1],
      ['packaging tier 1', null, 1],
      ['waiting to publish tier 1', null, 1],
      ['publishing tier 1', null, 1],
      // Between the tiers: watchable, not finished, still one lecture waiting to publish.
      ['tier 1 published, waiting to package the full ladder', 1, 1],
      ['tier 1 published, packaging the full ladder', 1, 1],
      ['waiting to publish the full ladder', 1, 1],
      ['publishing the full ladder', 1, 1],
      ['published', 2, 0],
    ]);
    expect(progressOf(id)).toMatchObject({ state: 'done', kind: PUBLISH_JOB });
  });

  it('says the whole package without tiers, and for a one-rung ladder (tier 1 built whole)', () => {
    step(TRANSCODE_JOB, 'L-plain', 'queued');
    expect(progressOf('L-plain', false)).toMatchObject({ text: 'waiting to package', part: null, state: 'waiting', tier: null });
    step(TRANSCODE_JOB, 'L-one-rung', 'done', { tier: 2 });
    step(PUBLISH_JOB, 'L-one-rung', 'running');
    // Tiers are on, but the transcode job's result says the package was whole.
    expect(progressOf('L-one-rung', true)).toMatchObject({ text: 'publishing', part: null, state: 'running', work: 'publish', tier: null });
  });

  it('stops at a failed step, names it, and keeps the tier the store holds', () => {
    step(TRANSCODE_JOB, 'L-dead2', 'done', { tier: 1 });
    step(PUBLISH_TIER1_JOB, 'L-dead2', 'done', { tier: 1 });
    step(TRANSCODE_TIER2_JOB, 'L-dead2', 'dead');
    expect(progressOf('L-dead2')).toMatchObject({ text: 'tier 1 published, packaging the full ladder failed', state: 'failed', tier: 1, kind: TRANSCODE_TIER2_JOB });

    // A failed tier-1 publish is shown even while the tier-2 build runs on.
    step(TRANSCODE_JOB, 'L-dead1', 'done', { tier: 1 });
    step(PUBLISH_TIER1_JOB, 'L-dead1', 'dead');
    step(TRANSCODE_TIER2_JOB, 'L-dead1', 'running');
    expect(progressOf('L-dead1')).toMatchObject({ text: 'publishing tier 1 failed', state: 'failed', tier: null, kind: PUBLISH_TIER1_JOB });

    step(TRANSCODE_JOB, 'L-cancel', 'done', { tier: 2 });
    step(PUBLISH_JOB, 'L-cancel', 'cancelled');
    expect(progressOf('L-cancel')).toMatchObject({ text: 'publishing cancelled', state: 'failed' });
    expect(lectureProgress([], { tiered: true })).toBeUndefined();
  });

  it('counts each lecture with any unfinished job once, whatever its jobs', () => {
    db.exec('DELETE FROM jobs');
    // Right after tier 1 is built: two queued jobs, one lecture.
    step(TRANSCODE_JOB, 'A', 'done', { tier: 1 });
    step(PUBLISH_TIER1_JOB, 'A', 'queued');
    step(TRANSCODE_TIER2_JOB, 'A', 'queued');
    // Tier 1 published, the full ladder's publish running.
    step(TRANSCODE_JOB, 'B', 'done', { tier: 1 });
    step(PUBLISH_TIER1_JOB, 'B', 'done', { tier: 1 });
    step(TRANSCODE_TIER2_JOB, 'B', 'done', { tier: 2 });
    step(PUBLISH_JOB, 'B', 'running');
    // Being packaged, untiered.
    step(TRANSCODE_JOB, 'C', 'running');
    // Published, failed, and another kind of job: not pending.
    step(TRANSCODE_JOB, 'D', 'done', { tier: 2 });
    step(PUBLISH_JOB, 'D', 'done', { tier: 2 });
    step(TRANSCODE_JOB, 'E', 'done', { tier: 2 });
    step(PUBLISH_JOB, 'E', 'dead');
    step('retention', 'F', 'queued');
    expect(pendingLectureCount(queue)).toBe(3);
    // Counting jobs says 4 (A twice); counting the two kinds from before tiers says 2 (A not at all).
    expect(queue.activeCount([TRANSCODE_JOB, PUBLISH_TIER1_JOB, TRANSCODE_TIER2_JOB, PUBLISH_JOB])).toBe(4);
    expect(queue.activeCount([TRANSCODE_JOB, PUBLISH_JOB])).toBe(2);
    expect([...lectureJobs(queue).keys()].sort()).toEqual(['A', 'B', 'C', 'D', 'E']);
  });
});
