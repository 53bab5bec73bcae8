import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeDatabase, openDatabase } from '../../src/db/index.js';
import { RecordingRepo } from '../../src/db/recordings.js';
import type { JobContext } from '../../src/queue/types.js';
import { createTranscodeHandler } from '../../src/transcode/handler.js';
import { Packager } from '../../src/transcode/packager.js';
import { createPublishHandler } from '../../src/upload/publishHandler.js';
import { decodeCheck, probeMedia } from '../../src/ffmpeg/ffprobe.js';
import { silentLogger } from '../../src/log/logger.js';
import type { LectureManifest, ReadyPointer } from '../../src/transcode/manifest.js';
import { listReadyLectures, pullLecture } from '../../src/cli/commands/platform.js';
import { FileStore } from '../../src/storage/fileStore.js';
import { planTier } from '../../src/transcode/packager.js';
import { hashFile, sha256Hex } from '../../src/util/hash.js';
import { ulid } from '../../src/util/ulid.js';
import { waitFor } from '../../src/util/sleep.js';
import { killGroup, ROOT, runCli, startCli } from '../helpers/cli.js';
import { smallDemoConfig } from '../helpers/config.js';
import { recordSegments, testPackagerSettings } from '../helpers/media.js';
import { jobStates, jobStatesWhileStarting } from '../helpers/jobs.js';
import { launchChromium } from '../helpers/browser.js';
import { HLS_JS_DIR, openPlayer, PLAYER_PAGE, playedMedia, playedPast } from '../helpers/hlsPlayer.js';
import { serveStatic } from '../helpers/staticServer.js';
import { makeTmpDir } from '../helpers/tmp.js';

/**
 * Tiered publishing (DESIGN §3.1, §4) through the built CLI, on real ffmpeg, SQLite and a
 * FileStore: tier 1 (audio + the lowest rendition) is in the store and pulls verified while the
 * tier-2 job runs; the agent is killed (-9, the whole process group) right there; the restart
 * finishes tier 2 of the same lecture, re-sending only the new files, master.m3u8, lecture.json
 * and the ready pointer.
 */

const LADDER = [
  { name: '240p', height: 240, videoBitrateKbps: 300, crf: 28 },
  { name: '144p', height: 144, videoBitrateKbps: 120, crf: 30 },
];

describe('planTier', () => {
  it('tier 1 is the lowest rung with audio and poster; tier 2 adds the other rungs and the thumbnails', () => {
    const one = planTier(LADDER, 1);
    expect(one).toMatchObject({ tier: 1, audio: true, poster: true, thumbnails: false });
    expect(one.encode.map((r) => r.name)).toEqual(['144p']);
    const base = { renditions: [{ name: '144p', kind: 'video' as const, playlist: 'hls/144p/index.m3u8', bandwidth: 1, height: 144, durationSeconds: 6 }] };
    const two = planTier(LADDER, 2, base);
    expect(two).toMatchObject({ tier: 2, audio: false, poster: false, thumbnails: true });
    expect(two.encode.map((r) => r.name)).toEqual(['240p']);
    expect(two.video.map((r) => r.name)).toEqual(['240p', '144p']);
  });

  it('builds everything at once without tiers, for a one-rung ladder, and for tier 2 without a tier-1 package', () => {
    for (const plan of [planTier(LADDER, undefined), planTier(LADDER, 2), planTier(LADDER.slice(1), 1)]) {
      expect(plan).toMatchObject({ tier: 2, audio: true, poster: true, thumbnails: true });
      expect(plan.encode.length).toBe(plan.video.length);
    }
  });
});

function findFiles(dir: string, name: RegExp): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && name.test(e.name))
    .map((e) => path.join(e.parentPath, e.name))
    .sort();
}

/** The one lecture in the store, checked the way the platform would: every listed file, nothing else, the pointer. */
async function storedLecture(storeRoot: string): Promise<{ manifest: LectureManifest; dir: string; text: string; pointer: ReadyPointer }> {
  const manifests = findFiles(path.join(storeRoot, 'lectures'), /^lecture\.json$/);
  expect(manifests).toHaveLength(1);
  const text = readFileSync(manifests[0] as string, 'utf8');
  const manifest = JSON.parse(text) as LectureManifest;
  const dir = path.dirname(manifests[0] as string);
  for (const f of manifest.files) expect(await hashFile(path.join(dir, f.path))).toEqual({ sha256: f.sha256, bytes: f.bytes });
  const present = findFiles(dir, /.*/).map((f) => path.relative(dir, f)).filter((f) => f !== 'lecture.json');
  expect(present.sort()).toEqual(manifest.files.map((f) => f.path).sort());
  const pointers = findFiles(path.join(storeRoot, 'ready'), /\.json$/);
  expect(pointers).toHaveLength(1);
  const pointer = JSON.parse(readFileSync(pointers[0] as string, 'utf8')) as ReadyPointer;
  expect(pointer).toMatchObject({ lectureId: manifest.lectureId, tier: manifest.tier, manifestSha256: sha256Hex(text) });
  return { manifest, dir, text, pointer };
}

describe('tiered publishing with kill -9 between the tiers', () => {
  const tmp = makeTmpDir();
  const config = path.join(tmp.dir, 'lectern.yaml');
  const dataDir = path.join(tmp.dir, 'data');
  const storeRoot = path.join(dataDir, 'store');
  let tier1: Awaited<ReturnType<typeof storedLecture>>;
  /** inode and mtime of each stored file of tier 1: a re-upload (temp file + rename) changes both. */
  const tier1Stats = new Map<string, string>();

  beforeAll(() => writeFileSync(config, smallDemoConfig(['queue:', '  backoffBaseMs: 500'])));
  afterAll(() => tmp.cleanup());

  it('publishes tier 1 first: in the store, verified by pull, while the tier-2 job runs', async () => {
    // The pause at the start of each tier lets the kill land after tier 1, before tier 2's encode.
    const run = startCli(['--config', config, 'demo', '--seconds', '4'], { env: { LECTERN_FAILPOINTS: 'transcode.start=1200' } });
    try {
      const tier2Running = (): boolean => jobStatesWhileStarting(dataDir).some((j) => j.kind === 'transcode-tier2' && j.state === 'running');
      await waitFor(() => (tier2Running() ? true : undefined), {
        timeoutMs: 90_000,
        intervalMs: 100,
        what: 'the tier-2 job running',
      });
      // Tier 1 went first (queue priority): its publish is done before any tier-2 work ends.
      const jobs = jobStates(dataDir);
      expect(jobs.find((j) => j.kind === 'publish-tier1')?.state).toBe('done');
      expect(jobs.find((j) => j.kind === 'publish')).toBeUndefined();
      tier1 = await storedLecture(storeRoot);
    } finally {
      killGroup(run);
    }
    expect((await run.exit).signal).toBe('SIGKILL');

    const { manifest, dir, pointer } = tier1;
    expect(manifest.tier).toBe(1);
    expect(pointer.tier).toBe(1);
    expect(manifest.renditions.map((r) => r.name)).toEqual(['144p', 'audio']);
    expect(manifest.thumbnails).toBeNull();
    expect(manifest.poster).toBe('poster.jpg');
    expect(manifest.files.map((f) => f.path).filter((p) => !/^hls\/(144p|audio)\//.test(p))).toEqual(['hls/master.m3u8', 'poster.jpg']);
    // Tier 1 plays on its own: its master has the video rendition and the audio.
    const master = readFileSync(path.join(dir, 'hls/master.m3u8'), 'utf8');
    expect(master).toContain('144p/index.m3u8');
    expect(master).not.toContain('240p');
    const probe = await probeMedia(path.join(dir, 'hls/master.m3u8'), { timeoutMs: 30_000 });
    // (The audio rendition is listed twice: the video variants' audio group and the audio-only variant.)
    expect([...new Set(probe.streams.map((s) => s.codecType))].sort()).toEqual(['audio', 'video']);
    for (const f of findFiles(dir, /.*/)) {
      const st = statSync(f);
      tier1Stats.set(path.relative(dir, f), `${st.ino}:${st.mtimeMs}`);
    }

    const pull = await runCli(['--config', config, 'platform', 'pull', manifest.lectureId, path.join(tmp.dir, 'pull-1')]);
    expect(pull.code, pull.stderr).toBe(0);
    expect(pull.stdout).toMatch(new RegExp(`Pulled lecture ${manifest.lectureId}: ${manifest.files.length} files .* every sha256 verified, tier 1`));
  });

  it('resumes tier 2 of the same lecture after the restart, rewriting only master.m3u8, lecture.json and the pointer', async () => {
    const rerun = await runCli(['--config', config, 'demo', '--seconds', '5']);
    expect(rerun.code, rerun.stderr).toBe(0);
    expect(rerun.stdout).toMatch(/Resuming 1 unfinished lecture/);

    const tier2 = await storedLecture(storeRoot);
    const { manifest, dir } = tier2;
    expect(manifest.lectureId).toBe(tier1.manifest.lectureId);
    expect(manifest.tier).toBe(2);
    expect(manifest.renditions.map((r) => r.name)).toEqual(['240p', '144p', 'audio']);
    // (A 4 s lecture is shorter than one thumbnail interval: the track exists, its sprites may not.)
    expect(manifest.thumbnails?.vtt).toBe('thumbs/thumbs.vtt');
    expect(manifest.files.map((f) => f.path)).toContain('thumbs/thumbs.vtt');
    expect(readFileSync(path.join(dir, 'hls/master.m3u8'), 'utf8')).toContain('240p/index.m3u8');
    expect(await decodeCheck(path.join(dir, 'hls/240p/index.m3u8'), { timeoutMs: 60_000 })).toEqual([]);

    // Tier 1's files are tier 2's, byte for byte, and were not sent again; only the master changed.
    const byPath = new Map(manifest.files.map((f) => [f.path, f.sha256]));
    const changed: string[] = [];
    for (const f of tier1.manifest.files) {
      if (byPath.get(f.path) !== f.sha256) changed.push(f.path);
      const st = statSync(path.join(dir, f.path));
      if (tier1Stats.get(f.path) !== `${st.ino}:${st.mtimeMs}`) changed.push(`${f.path} (stored again)`);
    }
    expect(changed).toEqual(['hls/master.m3u8', 'hls/master.m3u8 (stored again)']);

    const jobs = jobStates(dataDir);
    expect(jobs.map((j) => `${j.kind}:${j.state}`).sort()).toEqual(['publish-tier1:done', 'publish:done', 'transcode-tier2:done', 'transcode:done']);
    expect(new Set(jobs.map((j) => j.key))).toEqual(new Set([manifest.lectureId]));

    // The platform's side in-process this time (the CLI ran it for tier 1): same functions, one start less.
    const store = new FileStore({ root: storeRoot, logger: silentLogger });
    await store.start();
    try {
      const pulled = await pullLecture(store, '', manifest.lectureId, path.join(tmp.dir, 'pull-2'));
      expect(pulled).toMatchObject({ tier: 2, files: manifest.files.length, problems: [] });
      const { lectures } = await listReadyLectures(store, '');
      expect(lectures.map((l) => [l.lectureId, l.tier])).toEqual([[manifest.lectureId, 2]]);
    } finally {
      await store.stop();
    }
  });
});

describe('one package per video source', () => {
  const tmp = makeTmpDir();
  afterAll(() => tmp.cleanup());

  it('packages the board beside the presenter: its own video ladder under sources/, the presenter\'s audio, listed and verified', async () => {
    const dataDir = tmp.dir;
    const t0 = Date.UTC(2026, 10, 30, 9);
    const id = ulid(t0);
    // Two cameras of one lecture, as capture leaves them: segments per source in SQLite.
    const db = openDatabase(path.join(dataDir, 'state.db'), { logger: silentLogger });
    const repo = new RecordingRepo(db);
    repo.create({ id, title: 'Two views', startedAtMs: t0 });
    for (const [source, size] of [['cam', { width: 320, height: 240 }], ['board', { width: 320, height: 180 }]] as const) {
      const segs = await recordSegments(path.join(dataDir, 'rec', source), { seconds: 4, ...size });
      repo.startRun(id, source, 1, t0);
      let offset = 0;
      segs.forEach((seg, seq) => {
        repo.addSegment({ recordingId: id, source, run: 1, seq, path: path.relative(dataDir, seg.path), bytes: seg.bytes, sha256: seg.sha256, startSeconds: offset, durationSeconds: seg.durationSeconds }, t0);
        offset += seg.durationSeconds;
      });
      repo.endRun(id, source, 1, t0 + 4_000, 'stopped');
    }
    repo.finish(id, 'stopped', t0 + 4_000, 'stopped');

    const store = new FileStore({ root: path.join(dataDir, 'store'), logger: silentLogger });
    await store.start();
    const packageDir = path.join(dataDir, 'packages', id);
    const enqueued: string[] = [];
    // One rung: tier 1 is already the whole lecture (tier 2), so this one job builds every source.
    const transcode = createTranscodeHandler({
      recordings: repo,
      packager: new Packager({ logger: silentLogger, settings: testPackagerSettings({ renditions: LADDER.slice(1) }) }),
      dataDir,
      packageDirs: () => ({ stagingDir: path.join(dataDir, 'packages', `.${id}.building`), finalDir: packageDir }),
      identity: { agentId: 'a1', version: '0', site: 'north', room: 'R1' },
      source: { name: 'cam', role: 'presenter' },
      otherSources: [{ name: 'board', role: 'presentation' }],
      enqueuePublish: (lectureId, tier) => enqueued.push(`publish ${lectureId} tier ${tier}`),
      tiers: { enqueueTier2: (lectureId) => enqueued.push(`tier2 ${lectureId}`) },
    });
    const ctx = { job: { id: 1 }, signal: new AbortController().signal, logger: silentLogger, extendLease: () => undefined } as unknown as JobContext;
    try {
      expect(await transcode.run({ recordingId: id }, ctx)).toMatchObject({ type: 'done', result: { tier: 2 } });
      expect(enqueued).toEqual([`publish ${id} tier 2`]);
      expect(await createPublishHandler({ store, storePrefix: '', packageDir: () => packageDir }).run({ lectureId: id }, ctx)).toMatchObject({ type: 'done' });

      const { manifest, dir } = await storedLecture(path.join(dataDir, 'store'));
      const ajv = new Ajv2020({ allErrors: true });
      addFormats.default(ajv);
      const validate = ajv.compile(JSON.parse(readFileSync(path.join(ROOT, 'schemas/lecture.schema.json'), 'utf8')) as object);
      expect(validate(manifest), JSON.stringify(validate.errors)).toBe(true);
      expect(manifest.source.name).toBe('cam');
      expect(manifest.master).toBe('hls/master.m3u8');
      expect(manifest.sources).toHaveLength(1);
      const board = manifest.sources?.[0];
      expect(board).toMatchObject({ name: 'board', role: 'presentation', master: 'sources/board/hls/master.m3u8', gaps: [] });
      expect(board?.renditions.map((r) => [r.playlist, r.width, r.height])).toEqual([['sources/board/hls/144p/index.m3u8', 256, 144]]);
      expect(manifest.files.filter((f) => f.path.startsWith('sources/')).map((f) => f.path)).toContain('sources/board/hls/144p/init.mp4');
      // No audio of its own: the board's master takes the presenter's, and plays with it.
      expect(manifest.files.some((f) => f.path.startsWith('sources/board/hls/audio'))).toBe(false);
      expect(readFileSync(path.join(dir, 'sources/board/hls/master.m3u8'), 'utf8')).toContain('URI="../../../hls/audio/index.m3u8"');
      const probe = await probeMedia(path.join(dir, 'sources/board/hls/master.m3u8'), { timeoutMs: 30_000 });
      expect(probe.streams.find((s) => s.codecType === 'video')).toMatchObject({ width: 256, height: 144 });
      expect(probe.streams.some((s) => s.codecType === 'audio')).toBe(true);
      expect(await decodeCheck(path.join(dir, 'sources/board/hls/144p/index.m3u8'), { timeoutMs: 30_000 })).toEqual([]);
      expect((await pullLecture(store, '', id, path.join(dataDir, 'pull'))).problems).toEqual([]);

      // The platform's player plays the board's master from the store: its picture with the presenter's sound.
      const server = await serveStatic({ '/lecture/': dir, '/hlsjs/': HLS_JS_DIR }, { '/': PLAYER_PAGE });
      const browser = await launchChromium();
      try {
        const { page, levels } = await openPlayer(browser, `${server.url}/`, `${server.url}/lecture/sources/board/hls/master.m3u8`);
        expect(levels.map((l) => [l.width, l.height])).toEqual([[256, 144]]);
        await playedPast(page, 1);
        const played = await playedMedia(page);
        expect(played).toMatchObject({ width: 256, height: 144, audioTracks: 1 });
        expect(played.audioBytes).toBeGreaterThan(0);
      } finally {
        await browser.close();
        await server.close();
      }
    } finally {
      await store.stop();
      closeDatabase(db);
    }
  });
});
