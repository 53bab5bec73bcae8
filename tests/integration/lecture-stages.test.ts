import fs from 'node:fs';
import path from 'node:path';
import { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { queueView } from '../../src/agent/apiBackend.js';
import { pendingLectureCount } from '../../src/agent/lectureProgress.js';
import { registerUploadsCommands, type UploadRow } from '../../src/cli/commands/uploads.js';
import { configSchema, type Config } from '../../src/config/index.js';
import { closeDatabase, openDatabase, type Db } from '../../src/db/index.js';
import { PublishProgressRepo } from '../../src/db/publishProgress.js';
import { RecordingRepo } from '../../src/db/recordings.js';
import { silentLogger } from '../../src/log/logger.js';
import { JobQueue } from '../../src/queue/queue.js';
import type { JobState } from '../../src/queue/types.js';
import { LocalLayout } from '../../src/storage/localLayout.js';
import { TRANSCODE_JOB, TRANSCODE_TIER2_JOB } from '../../src/transcode/handler.js';
import { PUBLISH_JOB, PUBLISH_TIER1_JOB } from '../../src/upload/publishHandler.js';
import { ulid } from '../../src/util/ulid.js';
import { makeTmpDir } from '../helpers/tmp.js';

/**
 * Lectures between the tiers as `lectern uploads` (through its commander registration) and the
 * API's lecture list show them, from one real state database whose jobs were driven through the
 * queue's own transitions, the way the handlers hand a lecture on (DESIGN §3.1).
 */

const tmp = makeTmpDir();
const layout = new LocalLayout(path.join(tmp.dir, 'data'));
let db: Db;
let queue: JobQueue;
let recordings: RecordingRepo;
let made = 0;
const T0 = Date.parse('2026-11-30T08:00:00Z');
const id = (n: number): string => ulid(T0 + n * 60_000);
const [packagingTier2, publishingLadder, publishingTier1, published, queued, live] = [id(1), id(2), id(3), id(4), id(5), id(6)];

function job(kind: string, lectureId: string, state: Exclude<JobState, 'cancelled'>, result?: unknown): void {
  const payload = kind === TRANSCODE_JOB || kind === TRANSCODE_TIER2_JOB ? { recordingId: lectureId } : { lectureId };
  const { job: j } = queue.enqueue(kind, payload, { key: lectureId, priority: -++made });
  if (state === 'queued') return;
  expect(queue.claim([kind], 'test-worker')?.id).toBe(j.id);
  if (state === 'done') queue.complete(j.id, 'test-worker', result);
  if (state === 'dead') queue.fail(j.id, 'test-worker', new Error('boom'));
}

function writePackage(lectureId: string, bytes: number[]): void {
  fs.mkdirSync(layout.packageDir(lectureId), { recursive: true });
  fs.writeFileSync(path.join(layout.packageDir(lectureId), 'lecture.json'), JSON.stringify({ files: bytes.map((b, i) => ({ path: `f${i}`, bytes: b })) }));
}

async function uploads(config: Config, args: string[]): Promise<string> {
  const out: string[] = [];
  const err: string[] = [];
  const program = new Command('lectern').exitOverride();
  registerUploadsCommands(program, { out: (t) => out.push(t), err: (t) => err.push(t) }, () => config, () => false);
  await program.parseAsync(['node', 'lectern', 'uploads', ...args]);
  expect(err).toEqual([]);
  return out.join('\n');
}

beforeAll(() => {
  db = openDatabase(layout.dbPath, { logger: silentLogger });
  queue = new JobQueue({ db, logger: silentLogger, maxAttempts: 1 });
  recordings = new RecordingRepo(db);
  const titles: Array<[string, string]> = [
    [packagingTier2, 'Optics 1'],
    [publishingLadder, 'Optics 2'],
    [publishingTier1, 'Optics 3'],
    [published, 'Optics 4'],
    [queued, 'Optics 5'],
    [live, 'Optics 6'],
  ];
  for (const [lecture, title] of titles) {
    recordings.create({ id: lecture, title, startedAtMs: Date.now() - 3_600_000 });
    if (lecture !== live) recordings.finish(lecture, 'stopped', Date.now(), 'stopped');
  }
  // Tier 1 in the store, the full ladder being packaged.
  job(TRANSCODE_JOB, packagingTier2, 'done', { tier: 1 });
  job(PUBLISH_TIER1_JOB, packagingTier2, 'done', { tier: 1 });
  job(TRANSCODE_TIER2_JOB, packagingTier2, 'running');
  // The full ladder built (its package on disk: 1000 + 2000 + 7000 bytes), its publish waiting;
  // the 3000 bytes of tier 1 are confirmed in the store from the tier-1 publish.
  job(TRANSCODE_JOB, publishingLadder, 'done', { tier: 1 });
  job(PUBLISH_TIER1_JOB, publishingLadder, 'done', { tier: 1 });
  job(TRANSCODE_TIER2_JOB, publishingLadder, 'done', { tier: 2 });
  job(PUBLISH_JOB, publishingLadder, 'queued');
  new PublishProgressRepo(db).set(publishingLadder, { filesDone: 2, filesTotal: 2, bytesDone: 3000, bytesTotal: 3000 });
  writePackage(publishingLadder, [1000, 2000, 7000]);
  // Right after tier 1 was built: its publish running, the tier-2 job queued beside it.
  job(TRANSCODE_JOB, publishingTier1, 'done', { tier: 1 });
  job(PUBLISH_TIER1_JOB, publishingTier1, 'running');
  job(TRANSCODE_TIER2_JOB, publishingTier1, 'queued');
  for (const kind of [TRANSCODE_JOB, PUBLISH_TIER1_JOB, TRANSCODE_TIER2_JOB, PUBLISH_JOB]) job(kind, published, 'done', { tier: kind === TRANSCODE_JOB || kind === PUBLISH_TIER1_JOB ? 1 : 2 });
  job(TRANSCODE_JOB, queued, 'queued');
});

afterAll(() => {
  closeDatabase(db);
  tmp.cleanup();
});

describe('lectures between the tiers', () => {
  const tiered = configSchema.parse({ agent: { dataDir: layout.dataDir } });

  it('`lectern uploads` lists each unpublished lecture once with its step and the tier in the store', async () => {
    const rows = JSON.parse(await uploads(tiered, ['--json'])) as UploadRow[];
    expect(rows.map((r) => [r.title, r.state, r.step, r.tier, r.bytesConfirmed, r.bytesTotal])).toEqual([
      ['Optics 1', 'packaging', 'tier 1 published, packaging the full ladder', 1, null, null],
      // Tier 1's confirmed bytes count: the final publish sends only the rest.
      ['Optics 2', 'waiting', 'waiting to publish the full ladder', 1, 3000, 10000],
      ['Optics 3', 'publishing', 'publishing tier 1', null, null, null],
      ['Optics 5', 'packaging', 'waiting to package tier 1', null, null, null],
    ]);
    expect(rows[0]?.jobId).toBe(queue.findByKey(TRANSCODE_TIER2_JOB, packagingTier2)?.id);

    const table = (await uploads(tiered, [])).split('\n');
    expect(table).toHaveLength(5);
    expect(table[1]).toMatch(new RegExp(`^${packagingTier2}\\s+Optics 1\\s+tier 1 published, packaging the full ladder\\s+-$`));
    expect(table[2]).toMatch(/Optics 2\s+waiting to publish the full ladder\s+2\.9 KiB \/ 9\.8 KiB$/);

    // Without tiers a lecture not yet packaged is packaged whole.
    const plain = configSchema.parse({ agent: { dataDir: layout.dataDir }, transcode: { tiers: false } });
    const rowsPlain = JSON.parse(await uploads(plain, ['--json'])) as UploadRow[];
    expect(rowsPlain.find((r) => r.lectureId === queued)?.step).toBe('waiting to package');
  });

  it('the API says each recent lecture once: publishing from tier 1 to the final publish, then published at tier 2', () => {
    const view = queueView({ config: tiered, recordings, queue });
    const byId = new Map(view.lectures.map((l) => [l.id, l]));
    expect(view.lectures).toHaveLength(6);
    expect([live, queued, published, publishingTier1, publishingLadder, packagingTier2].map((lecture) => {
      const l = byId.get(lecture);
      return [l?.title, l?.stage, l?.step, l?.tier];
    })).toEqual([
      ['Optics 6', 'recording', 'recording', null],
      ['Optics 5', 'waiting', 'waiting to package tier 1', null],
      ['Optics 4', 'published', 'published', 2],
      ['Optics 3', 'publishing', 'publishing tier 1', null],
      ['Optics 2', 'publishing', 'waiting to publish the full ladder', 1],
      ['Optics 1', 'publishing', 'tier 1 published, packaging the full ladder', 1],
    ]);
    // And the status counts those four lectures once each (seven unfinished jobs would say more).
    expect(pendingLectureCount(queue)).toBe(4);
  });
});
