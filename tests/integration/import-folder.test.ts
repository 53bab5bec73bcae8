import { once } from 'node:events';
import { copyFileSync, createReadStream, createWriteStream, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Agent } from '../../src/agent/agent.js';
import { ImportFolder, IMPORTED_DIR, REJECTED_DIR } from '../../src/capture/importFolder.js';
import { loadConfig, type Config } from '../../src/config/index.js';
import { probeMedia } from '../../src/ffmpeg/ffprobe.js';
import { runFfmpeg } from '../../src/ffmpeg/run.js';
import { createMemoryLogger, silentLogger } from '../../src/log/logger.js';
import { TRANSCODE_JOB } from '../../src/transcode/handler.js';
import type { LectureManifest, ReadyPointer } from '../../src/transcode/manifest.js';
import { hashFile } from '../../src/util/hash.js';
import { sleep, waitFor } from '../../src/util/sleep.js';
import { smallDemoConfig } from '../helpers/config.js';
import { makeTmpDir } from '../helpers/tmp.js';

/**
 * The import folder end to end on the real pipeline: a real Agent (SQLite queue, transcode and
 * publish handlers, FileStore) and an ImportFolder wired to it exactly as the agent's
 * composition root wires it (startImporter below). Files are made with real ffmpeg and copied in
 * the way an FTP upload or a USB copy arrives: slowly, in chunks, with stalls.
 */

const SETTLE_MS = 2_000;
const SCAN_INTERVAL_MS = 500;

// ~200 MB: 720p noise is incompressible, so x264 lossless writes ~2 MB a frame of it; at 5 fps
// that is 20 s of video, about 100 frames, quick to make and to package on 2 cores.
const BIG_SECONDS = 20;
const BIG_MIN_BYTES = 200 * 1024 * 1024;

async function makeMedia(out: string, input: string[], codec: string[], seconds: number): Promise<void> {
  await runFfmpeg({
    label: `make ${path.basename(out)}`,
    logger: silentLogger,
    args: ['-hide_banner', '-loglevel', 'error', '-progress', 'pipe:1', '-n', ...input, '-t', String(seconds), ...codec, out],
  });
}

const TONE = ['-f', 'lavfi', '-i', 'sine=frequency=300:sample_rate=48000'];
const SMALL_PICTURE = ['-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=25'];
const H264_AAC = ['-map', '0:v', '-map', '1:a', '-c:v', 'libx264', '-preset', 'ultrafast', '-g', '50', '-c:a', 'aac', '-b:a', '96k'];

interface Pipeline {
  agent: Agent;
  config: Config;
  importer: ImportFolder;
  stop(): Promise<void>;
}

/**
 * The wiring the agent's composition root gets (see the report to the lead): the recording repo,
 * the transcode hand-off with its idempotency key, ffprobe with a timeout.
 */
function startImporter(agent: Agent, config: Config, logger = silentLogger): ImportFolder {
  const { recordings, queue, worker, layout } = agent.parts;
  const folder = config.import.folder;
  if (folder === undefined) throw new Error('the import folder is not configured');
  const presenter = config.sources.find((s) => s.role === 'presenter') ?? config.sources[0];
  return new ImportFolder({
    folder,
    dataDir: layout.dataDir,
    copiesDir: path.join(layout.dataDir, 'imports'),
    sourceName: presenter?.name ?? 'presenter',
    settleMs: config.import.settleMs,
    scanIntervalMs: config.import.scanIntervalMs,
    repo: recordings,
    enqueue: (recordingId) => {
      queue.enqueue(TRANSCODE_JOB, { recordingId }, { key: recordingId });
      worker.kick();
    },
    probe: (file) => probeMedia(file, { timeoutMs: 30_000 }),
    logger,
  });
}

async function startPipeline(dir: string, logger = silentLogger): Promise<Pipeline> {
  const file = path.join(dir, 'lectern.yaml');
  if (!existsSync(file)) {
    writeFileSync(
      file,
      smallDemoConfig(['queue:', '  backoffBaseMs: 500', 'import:', '  folder: inbox', `  settleMs: ${SETTLE_MS}`, `  scanIntervalMs: ${SCAN_INTERVAL_MS}`]),
    );
  }
  const loaded = loadConfig({ path: file });
  // config/load.ts does not resolve import.folder yet (reported to the lead); the test does it.
  const config: Config = { ...loaded.config, import: { ...loaded.config.import, folder: path.resolve(dir, loaded.config.import.folder ?? 'inbox') } };
  mkdirSync(config.import.folder as string, { recursive: true });
  const agent = new Agent({ config, logger, version: '0.0.0-test' });
  await agent.start();
  const importer = startImporter(agent, config, logger);
  await importer.start();
  return {
    agent,
    config,
    importer,
    stop: async () => {
      await importer.stop();
      await agent.stop();
    },
  };
}

/** Writes `src` to `dst` in chunks with a pause after each, like an FTP upload; `during` runs in every pause. */
async function copySlowly(src: string, dst: string, opts: { chunkBytes: number; pauseMs: number; stallAtChunk: number; stallMs: number; during: () => void }): Promise<number> {
  const out = createWriteStream(dst);
  let chunks = 0;
  for await (const chunk of createReadStream(src, { highWaterMark: opts.chunkBytes })) {
    if (!out.write(chunk)) await once(out, 'drain');
    chunks++;
    // Pacing of the copy, as a slow link would pace it; the assertions are in `during`.
    await sleep(chunks === opts.stallAtChunk ? opts.stallMs : opts.pauseMs);
    opts.during();
  }
  out.end();
  await once(out, 'finish');
  return chunks;
}

function list(dir: string): string[] {
  return existsSync(dir) ? readdirSync(dir).sort() : [];
}

function readyPointers(storeRoot: string): ReadyPointer[] {
  const dir = path.join(storeRoot, 'ready');
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && e.name.endsWith('.json'))
    .map((e) => JSON.parse(readFileSync(path.join(e.parentPath, e.name), 'utf8')) as ReadyPointer);
}

/** The published lecture as the platform sees it: every listed file present with its sha256. */
async function publishedManifest(storeRoot: string, lectureId: string): Promise<LectureManifest> {
  const pointer = readyPointers(storeRoot).find((p) => p.lectureId === lectureId);
  if (!pointer) throw new Error(`lecture ${lectureId} is not published`);
  const manifestPath = path.join(storeRoot, pointer.manifestKey);
  const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as LectureManifest;
  for (const f of manifest.files) expect(await hashFile(path.join(path.dirname(manifestPath), f.path))).toEqual({ sha256: f.sha256, bytes: f.bytes });
  return manifest;
}

describe('import folder', () => {
  const media = makeTmpDir('lectern-import-media-');
  let big: string;

  beforeAll(async () => {
    big = path.join(media.dir, 'big.mp4');
    // The MP4 muxer writes its index (moov) last, as cameras do: a partial copy is unreadable.
    await makeMedia(
      big,
      ['-f', 'rawvideo', '-pix_fmt', 'yuv420p', '-s', '1280x720', '-r', '5', '-i', '/dev/urandom', ...TONE],
      ['-map', '0:v', '-map', '1:a', '-c:v', 'libx264', '-preset', 'ultrafast', '-qp', '0', '-c:a', 'aac', '-b:a', '96k'],
      BIG_SECONDS,
    );
    await makeMedia(path.join(media.dir, 'lecture.mkv'), [...SMALL_PICTURE, ...TONE], H264_AAC, 6);
    await makeMedia(path.join(media.dir, 'clip.mov'), [...SMALL_PICTURE, ...TONE], H264_AAC, 5);
    await makeMedia(path.join(media.dir, 'other.mkv'), ['-f', 'lavfi', '-i', 'testsrc=size=320x240:rate=25', ...TONE], H264_AAC, 3);
    await makeMedia(path.join(media.dir, 'voice.m4a'), TONE, ['-c:a', 'aac'], 4);
    await makeMedia(path.join(media.dir, 'photo.jpg'), SMALL_PICTURE, ['-frames:v', '1'], 1);
  }, 120_000);
  afterAll(() => media.cleanup());

  let tmp: ReturnType<typeof makeTmpDir>;
  let pipeline: Pipeline | undefined;
  afterEach(async () => {
    await pipeline?.stop();
    pipeline = undefined;
    tmp.cleanup();
  });

  it('takes a 200 MB file copied in slowly once, only after it is complete, and publishes it', async () => {
    tmp = makeTmpDir();
    const log = createMemoryLogger('info');
    pipeline = await startPipeline(tmp.dir, log.logger);
    const { recordings, queue, layout } = pipeline.agent.parts;
    const inbox = pipeline.config.import.folder as string;
    const original = await hashFile(big);
    expect(original.bytes).toBeGreaterThanOrEqual(BIG_MIN_BYTES);

    const name = 'CS101_2026-11-30_0900.mp4';
    const copyStartedMs = Date.now();
    let checks = 0;
    const chunks = await copySlowly(big, path.join(inbox, name), {
      chunkBytes: 4 * 1024 * 1024,
      pauseMs: 100,
      // One stall a little shorter than the settle interval, like a link that hiccups.
      stallAtChunk: 20,
      stallMs: SETTLE_MS - 600,
      during: () => {
        checks++;
        expect(recordings.list()).toEqual([]);
        expect(queue.list({ kind: TRANSCODE_JOB })).toEqual([]);
        expect(list(path.join(inbox, REJECTED_DIR))).toEqual([]);
        expect(list(path.join(inbox, IMPORTED_DIR))).toEqual([]);
      },
    });
    const copyDoneMs = Date.now();
    expect(checks).toBe(chunks);
    expect(chunks).toBeGreaterThanOrEqual(50);

    const [rec] = await waitFor(() => (recordings.list().length > 0 ? recordings.list() : undefined), { timeoutMs: 60_000, what: 'the import' });
    const registeredMs = Date.now();
    // Taken no sooner than a settle interval after the last byte arrived.
    expect(registeredMs - copyDoneMs).toBeGreaterThanOrEqual(SETTLE_MS);
    expect(rec).toMatchObject({ state: 'stopped', course: 'CS101', title: 'CS101 2026-11-30 09:00', startedAtMs: new Date(2026, 10, 30, 9, 0).getTime() });
    const id = rec?.id as string;
    const segments = recordings.segments(id);
    expect(segments).toHaveLength(1);
    expect(segments[0]).toMatchObject({ source: 'presenter', run: 1, sha256: original.sha256, bytes: original.bytes });
    expect(Math.abs((segments[0]?.durationSeconds ?? 0) - BIG_SECONDS)).toBeLessThan(0.2);
    // The data directory holds its own verified copy; the original moved to imported/ unchanged.
    expect(await hashFile(path.join(layout.dataDir, segments[0]?.path ?? ''))).toEqual(original);
    await waitFor(() => (list(inbox).includes(name) ? undefined : true), { timeoutMs: 10_000, what: 'the original to move' });
    expect(list(inbox)).toEqual([IMPORTED_DIR]);
    expect(await hashFile(path.join(inbox, IMPORTED_DIR, name))).toEqual(original);

    // Published in tiers: the sound and the smallest picture first, then the whole ladder.
    await waitFor(() => (readyPointers(layout.storeDefaultRoot).length > 0 ? true : undefined), { timeoutMs: 150_000, intervalMs: 250, what: 'publication' });
    const publishedMs = Date.now();
    const manifest = await waitFor(
      async () => {
        const m = await publishedManifest(layout.storeDefaultRoot, id);
        return m.tier === 2 ? m : undefined;
      },
      { timeoutMs: 150_000, intervalMs: 500, what: 'the full ladder published (tier 2)' },
    );
    expect(manifest).toMatchObject({ lectureId: id, course: 'CS101', title: 'CS101 2026-11-30 09:00', startedAt: new Date(2026, 10, 30, 9, 0).toISOString() });
    expect(Math.abs(manifest.durationSeconds - BIG_SECONDS)).toBeLessThanOrEqual(0.5);
    expect(manifest.renditions.map((r) => r.name)).toEqual(['240p', '144p', 'audio']);
    expect(recordings.list()).toHaveLength(1);
    expect(queue.list({ kind: TRANSCODE_JOB }).map((j) => j.state)).toEqual(['done']);
    expect(log.lines.filter((l) => /ERROR|rejected/.test(l))).toEqual([]);
    const took = /\[import\] imported .* tookSeconds=([\d.]+)/.exec(log.lines.join('\n'))?.[1];

    console.log(
      `import of ${(original.bytes / 1024 / 1024).toFixed(0)} MB: copy in ${chunks} chunks took ${((copyDoneMs - copyStartedMs) / 1000).toFixed(1)} s; ` +
        `registered ${((registeredMs - copyDoneMs) / 1000).toFixed(1)} s after the last byte (settle ${SETTLE_MS / 1000} s; probe, hash and copy ${took ?? '?'} s); ` +
        `published ${((publishedMs - registeredMs) / 1000).toFixed(1)} s later`,
    );
  });

  it('rejects what is not a lecture, ignores temporary files, reads sidecars, and imports a file once across re-drops and a restart', async () => {
    tmp = makeTmpDir();
    const log = createMemoryLogger('info');
    pipeline = await startPipeline(tmp.dir, log.logger);
    let inbox = pipeline.config.import.folder as string;
    const drop = (from: string, as: string): void => copyFileSync(path.join(media.dir, from), path.join(inbox, as));

    // Still arriving (a browser's .part) and hidden: left alone until renamed.
    drop('clip.mov', 'clip.mov.part');
    drop('clip.mov', '.hidden.mov');
    writeFileSync(path.join(inbox, 'notes.txt'), 'Room 101: bring the projector remote.\n');
    drop('voice.m4a', 'voice.m4a');
    drop('photo.jpg', 'photo.jpg');
    // A sidecar that is not JSON: the media file and the sidecar go to rejected/ together.
    drop('other.mkv', 'broken.mkv');
    writeFileSync(path.join(inbox, 'broken.json'), '{"title": "Optics", ');
    // The sidecar first, then its media file (as a careful tool does).
    writeFileSync(path.join(inbox, 'lecture.json'), JSON.stringify({ course: 'PHY200', title: 'Waves', teacher: 'Dr. Ada Byron', recordedAt: '2026-12-01T14:15:00+01:00', device: 'recorder-7' }));
    drop('lecture.mkv', 'lecture.mkv');

    const { recordings } = pipeline.agent.parts;
    const rejected = path.join(inbox, REJECTED_DIR);
    const imported = path.join(inbox, IMPORTED_DIR);
    const expectedRejected = [
      'broken.json',
      'broken.mkv',
      'broken.mkv.reason.txt',
      'notes.txt',
      'notes.txt.reason.txt',
      'photo.jpg',
      'photo.jpg.reason.txt',
      'voice.m4a',
      'voice.m4a.reason.txt',
    ];
    const allRejected = (): boolean => list(rejected).join('/') === expectedRejected.join('/');
    await waitFor(() => (allRejected() && recordings.list().length === 1 ? true : undefined), { timeoutMs: 30_000, what: 'rejections and the import' }).catch((err: unknown) => {
      throw new Error(`${String(err)}\nrejected: ${list(rejected).join(', ')}\ninbox: ${list(inbox).join(', ')}\n${log.lines.join('\n')}`);
    });
    const reason = (name: string): string => readFileSync(path.join(rejected, `${name}.reason.txt`), 'utf8');
    expect(reason('notes.txt')).toMatch(/^IMPORT_NOT_MEDIA: ffprobe could not read notes\.txt .*Invalid data/);
    expect(reason('photo.jpg')).toMatch(/^IMPORT_NOT_MEDIA: ffprobe reads photo\.jpg as a picture/);
    expect(reason('voice.m4a')).toMatch(/^IMPORT_UNSUPPORTED: voice\.m4a is audio only/);
    expect(reason('broken.mkv')).toMatch(/^IMPORT_SIDECAR_INVALID: sidecar broken\.json: not valid JSON/);
    expect(reason('notes.txt')).toContain('Nothing was deleted');
    expect(readFileSync(path.join(rejected, 'notes.txt'), 'utf8')).toBe('Room 101: bring the projector remote.\n');

    // Metadata from the sidecar, which moved along with its media file.
    const [lecture] = recordings.list();
    expect(lecture).toMatchObject({ course: 'PHY200', title: 'Waves', teacher: 'Dr. Ada Byron', startedAtMs: Date.parse('2026-12-01T14:15:00+01:00') });
    await waitFor(() => (list(imported).length === 2 ? true : undefined), { timeoutMs: 10_000, what: 'the move to imported/' });
    expect(list(imported)).toEqual(['lecture.json', 'lecture.mkv']);
    // The .part and hidden files were dropped before everything above was settled and handled.
    expect(list(inbox)).toEqual(['.hidden.mov', 'clip.mov.part', IMPORTED_DIR, REJECTED_DIR]);

    // Renamed when "complete": now it is a lecture (a QuickTime file), metadata from the file itself.
    renameSync(path.join(inbox, 'clip.mov.part'), path.join(inbox, 'clip.mov'));
    // The same lecture dropped again under the same name: moved aside, not imported twice.
    drop('lecture.mkv', 'lecture.mkv');
    await waitFor(() => (list(imported).length === 4 ? true : undefined), { timeoutMs: 30_000, what: 'clip.mov and the re-drop' });
    expect(list(imported)).toEqual(['clip.mov', 'lecture-2.mkv', 'lecture.json', 'lecture.mkv']);
    expect(recordings.list().map((r) => r.title).sort()).toEqual(['Waves', 'clip']);

    const store = pipeline.agent.parts.layout.storeDefaultRoot;
    await waitFor(() => (readyPointers(store).length === 2 ? true : undefined), { timeoutMs: 90_000, intervalMs: 250, what: 'both lectures published' });
    const waves = await publishedManifest(store, lecture?.id as string);
    expect(waves).toMatchObject({ title: 'Waves', course: 'PHY200', teacher: 'Dr. Ada Byron', startedAt: '2026-12-01T13:15:00.000Z' });
    expect(Math.abs(waves.durationSeconds - 6)).toBeLessThanOrEqual(0.5);
    const clip = recordings.list().find((r) => r.title === 'clip');
    expect(Math.abs((await publishedManifest(store, clip?.id as string)).durationSeconds - 5)).toBeLessThanOrEqual(0.5);

    // A daemon restart: a new agent and importer on the same database. The same two lectures
    // dropped again (one under another name) are recognised by content and only moved aside.
    await pipeline.stop();
    pipeline = await startPipeline(tmp.dir);
    inbox = pipeline.config.import.folder as string;
    drop('lecture.mkv', 'lecture.mkv');
    drop('clip.mov', 'copy of clip.mov');
    await waitFor(() => (list(imported).length === 6 ? true : undefined), { timeoutMs: 30_000, what: 're-drops after the restart' });
    expect(list(imported)).toEqual(['clip.mov', 'copy of clip.mov', 'lecture-2.mkv', 'lecture-3.mkv', 'lecture.json', 'lecture.mkv']);
    const after = pipeline.agent.parts;
    expect(after.recordings.list()).toHaveLength(2);
    expect(after.queue.list({ kind: TRANSCODE_JOB })).toHaveLength(2);
    expect(readyPointers(store)).toHaveLength(2);
    // Nothing was deleted: every dropped file is in imported/ or rejected/ (or still waiting).
    expect(list(inbox)).toEqual(['.hidden.mov', IMPORTED_DIR, REJECTED_DIR]);
    for (const f of ['lecture.mkv', 'lecture-2.mkv', 'lecture-3.mkv']) expect(statSync(path.join(imported, f)).size).toBe(statSync(path.join(media.dir, 'lecture.mkv')).size);
  });
});
