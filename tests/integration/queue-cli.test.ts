import fs from 'node:fs';
import path from 'node:path';
import { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatUploads, registerUploadsCommands, type UploadRow } from '../../src/cli/commands/uploads.js';
import { configSchema } from '../../src/config/index.js';
import { closeDatabase, openDatabase, UploadsRepo, type Db } from '../../src/db/index.js';
import { PublishProgressRepo } from '../../src/db/publishProgress.js';
import { RecordingRepo } from '../../src/db/recordings.js';
import { silentLogger } from '../../src/log/logger.js';
import { JobQueue } from '../../src/queue/queue.js';
import { LocalLayout } from '../../src/storage/localLayout.js';
import { TRANSCODE_JOB } from '../../src/transcode/handler.js';
import { PUBLISH_JOB } from '../../src/upload/publishHandler.js';
import { ulid } from '../../src/util/ulid.js';
import { runCli } from '../helpers/cli.js';
import { makeTmpDir } from '../helpers/tmp.js';

/**
 * `lectern queue retry|cancel` through the real CLI (dist/) and `lectern uploads` through its
 * real commander registration, both against a real state database made by the repo classes and
 * held open meanwhile, as a running daemon holds it.
 */

const tmp = makeTmpDir();
const layout = new LocalLayout(path.join(tmp.dir, 'data'));
const configFile = path.join(tmp.dir, 'lectern.yaml');
const env = { LECTERN_CONFIG: '' };
let db: Db;
let queue: JobQueue;

beforeAll(() => {
  fs.writeFileSync(configFile, ['agent:', `  dataDir: ${layout.dataDir}`, ''].join('\n'));
  db = openDatabase(layout.dbPath, { logger: silentLogger });
  queue = new JobQueue({ db, logger: silentLogger, maxAttempts: 3 });
});

afterAll(() => {
  closeDatabase(db);
  tmp.cleanup();
});

function cli(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return runCli(['--config', configFile, ...args], { env });
}

let jobsMade = 0;

/** A job driven to `state` through the queue's own transitions (each new job outranks earlier queued ones, so the claim takes it). */
function jobIn(state: 'queued' | 'running' | 'dead' | 'done', kind = PUBLISH_JOB, key = ulid()): number {
  const job = queue.enqueue(kind, { lectureId: key }, { key, maxAttempts: state === 'dead' ? 1 : 3, priority: -++jobsMade }).job;
  if (state === 'queued') return job.id;
  const claimed = queue.claim([kind], 'test-worker');
  expect(claimed?.id).toBe(job.id);
  if (state === 'dead') queue.fail(job.id, 'test-worker', new Error('AccessDenied: the key has no write right'));
  if (state === 'done') queue.complete(job.id, 'test-worker');
  return job.id;
}

describe('lectern queue retry|cancel', () => {
  it('retry brings a dead job back with its attempts reset; refuses a queued one and an unknown id', async () => {
    const dead = jobIn('dead');
    expect(queue.get(dead)).toMatchObject({ state: 'dead', attempts: 1 });
    const ok = await cli('queue', 'retry', String(dead));
    expect(ok.stderr).toBe('');
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain(`job ${dead} (publish `);
    expect(queue.get(dead)).toMatchObject({ state: 'queued', attempts: 0, finishedAtMs: null });

    const again = await cli('queue', 'retry', String(dead));
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('is already queued');

    const unknown = await cli('queue', 'retry', '99999');
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('no job 99999');
    const bad = await cli('queue', 'cancel', '12abc');
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('positive integer');
  });

  it('cancel withdraws queued and dead jobs, says a cancelled publish keeps its files, and refuses a running job', async () => {
    const queued = jobIn('queued');
    const cancelled = await cli('queue', 'cancel', String(queued));
    expect(cancelled.code).toBe(0);
    expect(cancelled.stdout).toContain('local files of an unpublished lecture are never deleted');
    expect(queue.get(queued)?.state).toBe('cancelled');

    const dead = jobIn('dead');
    expect((await cli('queue', 'cancel', String(dead))).code).toBe(0);
    expect(queue.get(dead)?.state).toBe('cancelled');

    const running = jobIn('running');
    const refused = await cli('queue', 'cancel', String(running));
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(`job ${running} (publish `);
    expect(refused.stderr).toContain('is running and cannot be cancelled');
    expect(queue.get(running)).toMatchObject({ state: 'running', leaseOwner: 'test-worker' });

    const done = jobIn('done');
    const final = await cli('queue', 'cancel', String(done));
    expect(final.code).toBe(1);
    expect(final.stderr).toContain('is done');
    expect(queue.get(done)?.state).toBe('done');

    // A cancelled job comes back with retry.
    expect((await cli('queue', 'retry', String(queued))).code).toBe(0);
    expect(queue.get(queued)?.state).toBe('queued');
  });
});

describe('lectern uploads', () => {
  async function uploads(args: string[], tty = false): Promise<string> {
    const out: string[] = [];
    const err: string[] = [];
    const program = new Command('lectern').exitOverride();
    const config = configSchema.parse({ agent: { dataDir: layout.dataDir } });
    registerUploadsCommands(program, { out: (t) => out.push(t), err: (t) => err.push(t) }, () => config, () => tty);
    await program.parseAsync(['node', 'lectern', 'uploads', ...args]);
    expect(err).toEqual([]);
    return out.join('\n');
  }

  it('lists lectures being packaged, waiting, publishing and failed, with confirmed bytes, as JSON and as a table', async () => {
    // Only this describe's lectures: start from an empty queue.
    db.exec('DELETE FROM jobs');
    const recordings = new RecordingRepo(db);
    const id = (n: number): string => ulid(Date.parse('2026-11-30T08:00:00Z') + n * 1000);
    const [publishing, waiting, failed, packaging, published] = [id(1), id(2), id(3), id(4), id(5)];
    for (const [lecture, title] of [[publishing, 'Thermodynamics 1'], [waiting, 'Thermodynamics 2'], [failed, 'Optics'], [packaging, 'Acoustics']] as const) {
      recordings.create({ id: lecture, title, startedAtMs: Date.now() - 3_600_000 });
      recordings.finish(lecture, 'stopped', Date.now(), 'stopped');
    }
    // The running publish: 3 of its 4 files confirmed, plus two 8 MiB parts of the fourth (a large file).
    const MiB = 1024 * 1024;
    jobIn('running', PUBLISH_JOB, publishing);
    new PublishProgressRepo(db).set(publishing, { filesDone: 3, filesTotal: 4, bytesDone: 2 * MiB, bytesTotal: 42 * MiB });
    const parts = new UploadsRepo(db);
    const uploadId = 'upload-1';
    await parts.begin({ key: `campus/lectures/north/R101/2026/11/30/${publishing}/hls/720p/big.m4s`, uploadId, sizeBytes: 40 * MiB, sha256: 'a'.repeat(64), partSizeBytes: 8 * MiB, startedMs: Date.now() });
    await parts.partDone(uploadId, { partNumber: 1, etag: '"e1"', sizeBytes: 8 * MiB });
    await parts.partDone(uploadId, { partNumber: 2, etag: '"e2"', sizeBytes: 8 * MiB });
    // The waiting one has no progress yet: its total comes from its package's lecture.json.
    jobIn('queued', PUBLISH_JOB, waiting);
    fs.mkdirSync(layout.packageDir(waiting), { recursive: true });
    fs.writeFileSync(path.join(layout.packageDir(waiting), 'lecture.json'), JSON.stringify({ files: [{ path: 'a', bytes: 1000 }, { path: 'b', bytes: 2000 }] }));
    jobIn('dead', PUBLISH_JOB, failed);
    jobIn('queued', TRANSCODE_JOB, packaging);
    jobIn('done', PUBLISH_JOB, published);

    const rows = JSON.parse(await uploads(['--json'])) as UploadRow[];
    expect(rows.map((r) => [r.lectureId, r.title, r.state, r.bytesConfirmed, r.bytesTotal])).toEqual([
      [publishing, 'Thermodynamics 1', 'publishing', 18 * MiB, 42 * MiB],
      [waiting, 'Thermodynamics 2', 'waiting', null, 3000],
      [failed, 'Optics', 'failed', null, null],
      [packaging, 'Acoustics', 'packaging', null, null],
    ]);
    expect(rows[2]?.lastError).toContain('AccessDenied');

    const plain = (await uploads([])).split('\n');
    expect(plain[0]).toMatch(/^LECTURE\s+TITLE\s+STATE\s+CONFIRMED\s+LAST ERROR$/);
    expect(plain[1]).toContain('18.0 MiB / 42.0 MiB');
    expect(plain[1]).not.toContain('[');
    expect(plain[3]).toContain('AccessDenied');
    const bars = (await uploads([], true)).split('\n');
    expect(bars[1]).toContain(`[${'#'.repeat(9)}${'.'.repeat(11)}]  42% 18.0 MiB / 42.0 MiB`);
    expect(bars[2]).toContain('? / 2.9 KiB');
  });

  it('says so when there is nothing to publish', () => {
    expect(formatUploads([], { bars: true, nowMs: 0 })).toBe('Nothing waiting to publish.');
  });
});
