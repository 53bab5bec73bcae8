import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { closeDatabase, openDatabase, type Db } from '../../src/db/index.js';
import { RecordingRepo } from '../../src/db/recordings.js';
import { RetentionRepo } from '../../src/db/retention.js';
import { silentLogger } from '../../src/log/logger.js';
import { JobQueue } from '../../src/queue/queue.js';
import type { StatfsFn } from '../../src/storage/diskSpace.js';
import { FileStore } from '../../src/storage/fileStore.js';
import { lecturePrefix, readyKey } from '../../src/storage/keys.js';
import { LocalLayout } from '../../src/storage/localLayout.js';
import { Retention } from '../../src/storage/retention.js';
import { MANIFEST_FILE_NAME, serializeJson } from '../../src/transcode/manifest.js';
import { publishPackage, type PackageFile } from '../../src/upload/publish.js';
import { PUBLISH_JOB } from '../../src/upload/publishHandler.js';
import { sha256Hex } from '../../src/util/hash.js';
import { waitFor } from '../../src/util/sleep.js';
import { ulid } from '../../src/util/ulid.js';
import { makeTmpDir } from '../helpers/tmp.js';

/**
 * Retention against a real SQLite state database, real files in a real data directory and a real
 * FileStore holding lectures published with the real publish protocol. Only free disk space is
 * faked, at the statfs(2) edge (this machine's disk cannot be filled on demand); the clock is
 * injected so "seven days later" takes no time.
 */

const DAY_MS = 86_400_000;
const T0 = Date.parse('2026-11-02T10:00:00.000Z');
const GiB = 1024 ** 3;

let tmp: ReturnType<typeof makeTmpDir>;
let layout: LocalLayout;
let db: Db;
let store: FileStore;
let storeRoot: string;
let recordings: RecordingRepo;
let queue: JobQueue;
let now: number;

interface Lecture {
  id: string;
  prefix: string;
  packageDir: string;
  recordingDir: string;
  importCopy?: string;
  localBytes: number;
}

beforeEach(async () => {
  tmp = makeTmpDir();
  layout = new LocalLayout(path.join(tmp.dir, 'data'));
  db = openDatabase(layout.dbPath, { logger: silentLogger });
  storeRoot = path.join(tmp.dir, 'store');
  store = new FileStore({ root: storeRoot, logger: silentLogger });
  await store.start();
  recordings = new RecordingRepo(db);
  now = T0;
  queue = new JobQueue({ db, logger: silentLogger, now: () => now });
});

afterEach(async () => {
  await store.stop();
  closeDatabase(db);
  tmp.cleanup();
});

function writeFile(file: string, bytes: number): { bytes: number; sha256: string } {
  const data = randomBytes(bytes);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, data);
  return { bytes, sha256: sha256Hex(data) };
}

/** Records (or imports), packages and publishes one lecture at `now`, through the queue as the agent does. */
async function publishedLecture(opts: { imported?: boolean; publish?: boolean } = {}): Promise<Lecture> {
  const id = ulid(now);
  const recordingDir = layout.recordingDir(id);
  let importCopy: string | undefined;
  let localBytes = 0;
  if (opts.imported) {
    const seg = writeFile(path.join(layout.dataDir, 'imports', 'placeholder'), 30_000);
    importCopy = path.join(layout.dataDir, 'imports', `${seg.sha256}.mp4`);
    fs.renameSync(path.join(layout.dataDir, 'imports', 'placeholder'), importCopy);
    recordings.createImported(
      { id, title: 'Imported', course: null, teacher: null, startedAtMs: now - 3_600_000, stoppedAtMs: now, reason: 'imported', source: 'presenter', segment: { path: path.relative(layout.dataDir, importCopy), bytes: seg.bytes, sha256: seg.sha256, durationSeconds: 60 } },
      now,
    );
    localBytes += seg.bytes;
  } else {
    recordings.create({ id, title: 'Thermodynamics', startedAtMs: now - 3_600_000 });
    recordings.startRun(id, 'presenter', 1, now - 3_600_000);
    for (let seq = 0; seq < 3; seq++) {
      const file = path.join(layout.sourceRunDir(id, 'presenter', 1), `seg_${String(seq).padStart(5, '0')}.ts`);
      const seg = writeFile(file, 20_000 + seq);
      recordings.addSegment({ recordingId: id, source: 'presenter', run: 1, seq, path: path.relative(layout.dataDir, file), ...seg, startSeconds: seq * 10, durationSeconds: 10 }, now);
      localBytes += seg.bytes;
    }
    recordings.finish(id, 'stopped', now, 'stopped by test');
  }

  const packageDir = layout.packageDir(id);
  const files: PackageFile[] = [];
  for (const [rel, bytes] of Object.entries({ 'hls/144p/init.mp4': 800, 'hls/144p/seg_00001.m4s': 40_000, 'hls/144p/index.m3u8': 300, 'hls/master.m3u8': 200 })) {
    files.push({ path: rel, ...writeFile(path.join(packageDir, ...rel.split('/')), bytes) });
    localBytes += bytes;
  }
  const startedAtMs = now - 3_600_000;
  const prefix = lecturePrefix({ prefix: 'campus', site: 'north', room: 'R101', startedAtMs, lectureId: id });
  const manifestJson = serializeJson({ schemaVersion: 1, lectureId: id, tier: 2, files });
  fs.writeFileSync(path.join(packageDir, MANIFEST_FILE_NAME), manifestJson);
  localBytes += Buffer.byteLength(manifestJson);
  const pointerKey = readyKey({ prefix: 'campus', startedAtMs, lectureId: id });

  const job = queue.enqueue(PUBLISH_JOB, { lectureId: id }, { key: id }).job;
  if (opts.publish !== false) {
    expect(queue.claim([PUBLISH_JOB], 'test')?.id).toBe(job.id);
    const result = await publishPackage({
      store,
      logger: silentLogger,
      packageDir,
      files,
      lecturePrefix: prefix,
      manifestJson,
      readyKey: pointerKey,
      readyJson: serializeJson({ lectureId: id, manifestKey: `${prefix}${MANIFEST_FILE_NAME}`, manifestSha256: sha256Hex(manifestJson) }),
    });
    expect(queue.complete(job.id, 'test', { lecturePrefix: prefix, readyKey: pointerKey, ...result })).toBe(true);
  }
  return { id, prefix, packageDir, recordingDir, ...(importCopy ? { importCopy } : {}), localBytes };
}

function retention(opts: { keepDays?: number; statfs?: StatfsFn; purgeWhenLowDisk?: boolean; intervalMs?: number } = {}): Retention {
  return new Retention({
    store,
    layout,
    catalog: new RetentionRepo(db),
    logger: silentLogger,
    keepDays: opts.keepDays ?? 7,
    intervalMs: opts.intervalMs ?? 600_000,
    purgeWhenLowDisk: opts.purgeWhenLowDisk ?? true,
    minFreeDiskBytes: GiB,
    now: () => now,
    // Plenty of space unless a test says otherwise.
    statfs: opts.statfs ?? (async () => ({ bavail: 100 * GiB, bsize: 1 })),
  });
}

function localFilesOf(lecture: Lecture): boolean[] {
  return [lecture.packageDir, lecture.recordingDir, ...(lecture.importCopy ? [lecture.importCopy] : [])].map((p) => fs.existsSync(p));
}

function storePath(key: string): string {
  return path.join(storeRoot, ...key.split('/'));
}

describe('retention', () => {
  it('keeps a published lecture within its keep time and deletes it (recording, import copy, package) after it', async () => {
    const recorded = await publishedLecture();
    now += 1000;
    const imported = await publishedLecture({ imported: true });
    const r = retention();

    now = T0 + 7 * DAY_MS - 1;
    expect((await r.runOnce()).purged).toEqual([]);
    expect(localFilesOf(recorded)).toEqual([true, true]);
    expect(localFilesOf(imported)).toEqual([true, false, true]);

    now = T0 + 7 * DAY_MS + 1000;
    const report = await r.runOnce();
    expect(report.purged).toEqual([
      { lectureId: recorded.id, reason: 'kept', freedBytes: recorded.localBytes },
      { lectureId: imported.id, reason: 'kept', freedBytes: imported.localBytes },
    ]);
    expect(localFilesOf(recorded)).toEqual([false, false]);
    expect(localFilesOf(imported)).toEqual([false, false, false]);
    // The store's copy is untouched, and the purge is on record with its time.
    expect((await store.list(recorded.prefix)).length).toBe(5);
    expect(new RetentionRepo(db).purged()).toEqual([
      { lectureId: recorded.id, reason: 'kept', publishedAtMs: T0, purgedAtMs: now, freedBytes: recorded.localBytes },
      { lectureId: imported.id, reason: 'kept', publishedAtMs: T0 + 1000, purgedAtMs: now, freedBytes: imported.localBytes },
    ]);
    // Nothing left to do on the next run.
    expect(await r.runOnce()).toEqual({ purged: [], unconfirmed: [], busy: [] });
  });

  it('never deletes a lecture whose store copy is missing or tampered with, however old', async () => {
    const tampered = await publishedLecture();
    const missing = await publishedLecture();
    const pointerless = await publishedLecture();
    // Same size, other bytes: only the sha256 tells.
    const segKey = `${tampered.prefix}hls/144p/seg_00001.m4s`;
    fs.writeFileSync(storePath(segKey), randomBytes(40_000));
    await store.delete(`${missing.prefix}hls/master.m3u8`);
    const [pointer] = (await store.list('campus/ready/')).filter((o) => o.key.endsWith(`${pointerless.id}.json`));
    await store.delete(pointer?.key ?? 'missing');

    now = T0 + 365 * DAY_MS;
    // Even with the disk full: unconfirmed lectures are not the guard's to take.
    const report = await retention({ statfs: async () => ({ bavail: 0, bsize: 4096 }) }).runOnce();
    expect(report.purged).toEqual([]);
    expect(report.unconfirmed.map((u) => u.lectureId)).toEqual([tampered.id, missing.id, pointerless.id]);
    expect(report.unconfirmed[0]?.problem).toContain(segKey);
    expect(report.unconfirmed[1]?.problem).toContain('is missing');
    expect(report.unconfirmed[2]?.problem).toContain('ready pointer');
    for (const lecture of [tampered, missing, pointerless]) expect(localFilesOf(lecture)).toEqual([true, true]);
    expect(new RetentionRepo(db).purged()).toEqual([]);
  });

  it('leaves live and queued lectures alone, and a cancelled publish never deletes local files', async () => {
    const requeued = await publishedLecture();
    const cancelled = await publishedLecture({ publish: false });
    // A re-package of the first lecture was queued after it was published.
    queue.enqueue('transcode', { recordingId: requeued.id }, { key: requeued.id });
    const publishJob = queue.findByKey(PUBLISH_JOB, cancelled.id);
    expect(queue.cancel(publishJob?.id ?? -1)).toBe(true);

    now = T0 + 30 * DAY_MS;
    const report = await retention({ statfs: async () => ({ bavail: 0, bsize: 4096 }) }).runOnce();
    expect(report).toEqual({ purged: [], unconfirmed: [], busy: [requeued.id] });
    expect(localFilesOf(requeued)).toEqual([true, true]);
    expect(localFilesOf(cancelled)).toEqual([true, true]);
  });

  it('on low disk deletes confirmed lectures early, oldest first, only until there is room again', async () => {
    const oldest = await publishedLecture();
    now += DAY_MS;
    const middle = await publishedLecture();
    now += DAY_MS;
    const newest = await publishedLecture();
    now += 60_000;
    // Free space as statfs would report it: low while the oldest lecture's package is on disk.
    let statfsCalls = 0;
    const statfs: StatfsFn = async () => {
      statfsCalls++;
      return { bavail: fs.existsSync(oldest.packageDir) ? 100 : 2 * GiB, bsize: 1 };
    };

    const off = await retention({ statfs, purgeWhenLowDisk: false }).runOnce();
    expect(off.purged).toEqual([]);
    expect(statfsCalls).toBe(0);

    const report = await retention({ statfs }).runOnce();
    expect(report.purged).toEqual([{ lectureId: oldest.id, reason: 'low_disk', freedBytes: oldest.localBytes }]);
    expect(localFilesOf(oldest)).toEqual([false, false]);
    expect(localFilesOf(middle)).toEqual([true, true]);
    expect(localFilesOf(newest)).toEqual([true, true]);
    expect(new RetentionRepo(db).purged().map((p) => [p.lectureId, p.reason])).toEqual([[oldest.id, 'low_disk']]);
  });

  it('runs by itself after start() until stop()', async () => {
    const lecture = await publishedLecture();
    now = T0 + 8 * DAY_MS;
    const r = retention({ intervalMs: 10_000 });
    await r.start();
    try {
      await waitFor(() => (new RetentionRepo(db).purged().length === 1 ? true : undefined), { timeoutMs: 10_000, what: 'the first retention run' });
    } finally {
      await r.stop();
    }
    expect(localFilesOf(lecture)).toEqual([false, false]);
  });
});
