import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RecordingController, type RecordingControllerOptions } from '../../src/capture/recordingController.js';
import type { CaptureSettings, CaptureSource } from '../../src/capture/sourceRecorder.js';
import { closeDatabase, openDatabase, type Db } from '../../src/db/index.js';
import { RecordingRepo } from '../../src/db/recordings.js';
import { runFfmpeg } from '../../src/ffmpeg/run.js';
import { createMemoryLogger, silentLogger } from '../../src/log/logger.js';
import type { Job } from '../../src/queue/types.js';
import { createTranscodeHandler } from '../../src/transcode/handler.js';
import type { LectureManifest } from '../../src/transcode/manifest.js';
import { Packager } from '../../src/transcode/packager.js';
import { isLecternError } from '../../src/util/errors.js';
import { hashFile } from '../../src/util/hash.js';
import { waitFor } from '../../src/util/sleep.js';
import { testPackagerSettings } from '../helpers/media.js';
import { makeTmpDir } from '../helpers/tmp.js';

// The teacher's controls on a real controller: real ffmpeg recording a synthetic source into real
// segments and a real SQLite file, then the real packager building the lecture from that database.

const ROOT = path.resolve(import.meta.dirname, '../..');
const source: CaptureSource = {
  name: 'presenter',
  role: 'presenter',
  input: { kind: 'synthetic', width: 320, height: 240, fps: 25, toneHz: 440 },
  secrets: [],
};
const settings: CaptureSettings = {
  segmentSeconds: 2,
  format: 'mpegts',
  stallTimeoutMs: 10_000,
  stopQuitGraceMs: 5_000,
  stopInterruptGraceMs: 5_000,
  restartBackoff: { baseMs: 300, capMs: 1_000, jitter: 0 },
  stableRunMs: 60_000,
};

async function expectCode(promise: Promise<unknown>, code: string): Promise<void> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(isLecternError(err) ? err.code : err).toBe(code);
}

/** Holds for a deliberate length of wall time (the pause being tested), polling, not sleeping blind. */
function holdFor(ms: number): Promise<unknown> {
  const until = Date.now() + ms;
  return waitFor(() => (Date.now() >= until ? true : undefined), { timeoutMs: ms + 2_000, intervalMs: 50, what: `${ms} ms` });
}

/** Cue blocks of a WebVTT file, checked against the file format's rules as they are read. */
function parseVtt(text: string): Array<{ id: string | undefined; startSeconds: number; endSeconds: number; text: string }> {
  expect(text.endsWith('\n')).toBe(true);
  const blocks = text.trimEnd().split('\n\n');
  expect(blocks[0]).toBe('WEBVTT');
  const toSeconds = (t: string): number => {
    const m = /^(\d{2,}):([0-5]\d):([0-5]\d)\.(\d{3})$/.exec(t);
    if (!m) throw new Error(`bad WebVTT timestamp ${t}`);
    return Number(m[1]) * 3600 + Number(m[2]) * 60 + Number(m[3]) + Number(m[4]) / 1000;
  };
  return blocks
    .slice(1)
    .filter((b) => b.trim() !== '')
    .map((block) => {
      const lines = block.split('\n');
      const hasId = !lines[0]?.includes('-->');
      const timing = lines[hasId ? 1 : 0] ?? '';
      const m = /^(\S+) --> (\S+)$/.exec(timing);
      if (!m) throw new Error(`bad WebVTT timing line "${timing}"`);
      const payload = lines.slice(hasId ? 2 : 1);
      expect(payload.length).toBeGreaterThan(0);
      for (const l of payload) expect(l).not.toContain('-->');
      return { id: hasId ? lines[0] : undefined, startSeconds: toSeconds(m[1] ?? ''), endSeconds: toSeconds(m[2] ?? ''), text: payload.join('\n') };
    });
}

describe('pause, resume, extend and markers of a live recording', () => {
  let tmp: ReturnType<typeof makeTmpDir>;
  let db: Db;
  let repo: RecordingRepo;
  let finished: string[];
  let controllers: RecordingController[];
  const { logger } = createMemoryLogger('warn');

  const newController = (extra: Partial<RecordingControllerOptions> = {}): RecordingController => {
    const c = new RecordingController({
      sources: [source],
      settings,
      store: repo,
      dirs: {
        dataDir: tmp.dir,
        sourceRunDir: (id, name, run) => path.join(tmp.dir, 'recordings', id, name, `run-${String(run).padStart(4, '0')}`),
      },
      disk: { check: async () => undefined },
      logger,
      onFinished: (id) => finished.push(id),
      ...extra,
    });
    controllers.push(c);
    return c;
  };

  beforeEach(() => {
    tmp = makeTmpDir('lectern-controls-');
    db = openDatabase(path.join(tmp.dir, 'state.db'), { logger });
    repo = new RecordingRepo(db);
    finished = [];
    controllers = [];
  });

  afterEach(async () => {
    for (const c of controllers) await c.stop();
    closeDatabase(db);
    tmp.cleanup();
  });

  it('a pause keeps no media and is stored; markers land at their position in the packaged video, which gets chapters.vtt', async () => {
    const controller = newController();
    await controller.start();
    // Nothing to control before a recording exists.
    await expectCode(controller.pause(), 'RECORDING_NOT_ACTIVE');
    await expectCode(controller.marker('too early'), 'RECORDING_NOT_ACTIVE');

    const t0 = Date.now();
    const { recordingId: id } = await controller.startRecording({ title: 'Controls' });
    await waitFor(() => (repo.segments(id).length >= 1 ? true : undefined), { timeoutMs: 15_000, what: 'a first segment' });
    const introAtMs = Date.now();
    const intro = await controller.marker('  Introduction & <goals>  ');
    expect(intro.title).toBe('Introduction & <goals>');
    await expectCode(controller.marker('   '), 'MARKER_TITLE_INVALID');
    await expectCode(controller.marker('x'.repeat(201)), 'MARKER_TITLE_INVALID');
    await expectCode(controller.marker('two\nlines'), 'MARKER_TITLE_INVALID');
    // This recording runs until stopped: there is no end to extend.
    await expectCode(controller.extend({ minutes: 5 }), 'RECORDING_NO_PLANNED_END');
    await waitFor(() => (repo.segments(id).length >= 3 ? true : undefined), { timeoutMs: 15_000, what: '3 segments' });

    // Pause twice: one pause.
    const paused = await controller.pause();
    expect(await controller.pause()).toEqual(paused);
    expect(controller.status()).toMatchObject({ state: 'paused', recordingId: id, pausedSinceMs: paused.pausedSinceMs, sources: [] });
    expect(controller.sourcePids()).toEqual({});
    expect(repo.openPause(id)?.startedAtMs).toBe(paused.pausedSinceMs);
    const runsAtPause = repo.runs(id);
    expect(runsAtPause.map((r) => [r.run, r.endReason])).toEqual([[1, 'paused']]);
    const segmentsAtPause = repo.segments(id).length;
    const recordedBeforePause = repo.segments(id).reduce((s, x) => s + x.durationSeconds, 0);
    expect(controller.status().segments).toBe(segmentsAtPause);
    // Pressing Record while paused starts nothing new.
    expect(await controller.startRecording()).toEqual({ recordingId: id, created: false });

    await holdFor(1_500);
    const inPause = await controller.marker(null);
    expect(inPause.title).toBe('Chapter 2');
    expect(inPause.atSeconds).toBeCloseTo(recordedBeforePause, 2);
    await holdFor(1_500);
    // Nothing was recorded while paused.
    expect(repo.segments(id).length).toBe(segmentsAtPause);
    expect(repo.runs(id)).toHaveLength(1);

    const resumed = await controller.resume();
    expect(await controller.resume()).toEqual(resumed);
    expect(controller.status().state).toBe('recording');
    const pause = repo.pauses(id);
    expect(pause).toHaveLength(1);
    const pauseMs = (pause[0]?.endedAtMs ?? 0) - paused.pausedSinceMs;
    expect(pauseMs).toBeGreaterThanOrEqual(3_000);
    await waitFor(() => (repo.segments(id).filter((s) => s.run === 2).length >= 2 ? true : undefined), { timeoutMs: 15_000, what: '2 segments of run 2' });
    const partTwoAtMs = Date.now();
    await controller.marker('Part two');
    await waitFor(() => (repo.segments(id).filter((s) => s.run === 2).length >= 3 ? true : undefined), { timeoutMs: 15_000, what: '3 segments of run 2' });
    await controller.stopRecording();
    const wallMs = Date.now() - t0;

    const runs = repo.runs(id);
    expect(runs.map((r) => [r.run, r.endReason])).toEqual([
      [1, 'paused'],
      [2, 'stopped'],
    ]);
    // A pause is not a lost camera.
    expect(repo.alerts(id).filter((a) => a.kind === 'source_lost')).toEqual([]);
    const segments = repo.segments(id);
    const recordedSeconds = segments.reduce((s, x) => s + x.durationSeconds, 0);
    // The media covers the wall time minus the pause (ffmpeg starts twice: up to ~1 s each), and
    // certainly not the pause: a recording that kept media in it would exceed this bound by 3 s.
    expect(recordedSeconds).toBeLessThan((wallMs - pauseMs) / 1000 + 0.5);
    expect(recordedSeconds).toBeGreaterThan((wallMs - pauseMs) / 1000 - 2.5);
    expect(repo.pauses(id)[0]?.endedAtMs).not.toBeNull();

    // Markers, as stored when they were set: media time from each run's first frame.
    const [run1, run2] = runs;
    const run1Seconds = segments.filter((s) => s.run === 1).reduce((s, x) => s + x.durationSeconds, 0);
    const stored = repo.markers(id);
    expect(stored.map((m) => m.title)).toEqual(['Introduction & <goals>', 'Chapter 2', 'Part two']);
    expect(stored[0]?.mediaSeconds).toBeCloseTo((introAtMs - (run1?.startedAtMs ?? 0)) / 1000, 0);
    expect(stored[2]?.mediaSeconds).toBeCloseTo(run1Seconds + (partTwoAtMs - (run2?.startedAtMs ?? 0)) / 1000, 0);

    // The package: built by the transcode job from this database.
    const packageDir = path.join(tmp.dir, 'packages', id);
    const handler = createTranscodeHandler({
      recordings: repo,
      packager: new Packager({
        logger: silentLogger,
        settings: testPackagerSettings({ renditions: [{ name: '144p', height: 144, videoBitrateKbps: 120, crf: 30 }] }),
      }),
      dataDir: tmp.dir,
      packageDirs: () => ({ stagingDir: `${packageDir}.building`, finalDir: packageDir }),
      identity: { agentId: 'test', version: '0', site: 'site', room: 'room' },
      source: { name: 'presenter', role: 'presenter' },
      enqueuePublish: () => undefined,
    });
    // The worker's context, built by hand: the handler reads only its signal.
    await handler.run({ recordingId: id }, { job: {} as Job, signal: new AbortController().signal, logger: silentLogger, extendLease: () => undefined });
    const manifest = JSON.parse(readFileSync(path.join(packageDir, 'lecture.json'), 'utf8')) as LectureManifest;
    const validate = new Ajv2020({ allErrors: true });
    addFormats.default(validate);
    const valid = validate.compile(JSON.parse(readFileSync(path.join(ROOT, 'schemas/lecture.schema.json'), 'utf8')) as object);
    expect(valid(manifest), JSON.stringify(valid.errors)).toBe(true);
    // The pause is listed as a pause at the end of run 1's media, and it is not a gap.
    expect(manifest.gaps).toEqual([]);
    expect(manifest.pauses).toHaveLength(1);
    expect(manifest.pauses?.[0]?.atSeconds).toBeCloseTo(run1Seconds, 2);
    expect(manifest.pauses?.[0]?.durationSeconds).toBeGreaterThanOrEqual(3);
    // The packaged video holds the recorded media only (the packager checked it within 0.5 s).
    expect(manifest.durationSeconds).toBeLessThan((wallMs - pauseMs) / 1000 + 0.5);

    expect(manifest.markers.map((m) => m.title)).toEqual(['Introduction & <goals>', 'Chapter 2', 'Part two']);
    expect(manifest.markers[1]?.atSeconds).toBeCloseTo(run1Seconds, 2);
    for (const [i, m] of manifest.markers.entries()) expect(Math.abs(m.atSeconds - (stored[i]?.mediaSeconds ?? -1))).toBeLessThan(1);
    expect(manifest.chapters).toBe('chapters.vtt');
    const vttPath = path.join(packageDir, 'chapters.vtt');
    const listed = manifest.files.find((f) => f.path === 'chapters.vtt');
    expect(listed).toEqual({ path: 'chapters.vtt', ...(await hashFile(vttPath)) });
    const vtt = readFileSync(vttPath, 'utf8');
    const cues = parseVtt(vtt);
    expect(cues.map((c) => c.text)).toEqual(['Introduction &amp; &lt;goals&gt;', 'Chapter 2', 'Part two']);
    // Each marker to the next, the last to the end of the lecture.
    const at = manifest.markers.map((m) => m.atSeconds);
    const expected = [at[0], at[1], at[1], at[2], at[2], manifest.durationSeconds];
    const times = cues.flatMap((c) => [c.startSeconds, c.endSeconds]);
    expect(times).toHaveLength(expected.length);
    for (const [i, t] of times.entries()) expect(t).toBeCloseTo(expected[i] ?? -1, 3);
    // An independent reader: ffmpeg's WebVTT demuxer takes the file and gives the same chapters back.
    const srtPath = path.join(tmp.dir, 'chapters.srt');
    await runFfmpeg({ label: 'vtt to srt', logger: silentLogger, args: ['-hide_banner', '-loglevel', 'error', '-i', vttPath, srtPath] });
    const srt = readFileSync(srtPath, 'utf8');
    expect(srt).toContain('Part two');
    expect(srt.match(/-->/g)).toHaveLength(3);
  });

  it('a lecture paused when the agent dies stays paused after the restart, until resumed', async () => {
    const first = newController();
    await first.start();
    const { recordingId: id } = await first.startRecording();
    await waitFor(() => (repo.segments(id).length >= 1 ? true : undefined), { timeoutMs: 15_000, what: 'a first segment' });
    const { pausedSinceMs } = await first.pause();
    // The agent dies here (no stop: the first controller is simply abandoned, as by kill -9).
    controllers.splice(controllers.indexOf(first), 1);

    const second = newController();
    await second.start();
    expect(second.status()).toMatchObject({ state: 'paused', recordingId: id, pausedSinceMs, sources: [] });
    expect(repo.get(id)?.state).toBe('recording');
    // It does not start recording by itself.
    await holdFor(2_000);
    expect(second.sourcePids()).toEqual({});
    expect(repo.runs(id)).toHaveLength(1);
    expect(second.status().state).toBe('paused');

    await second.resume();
    await waitFor(() => (repo.segments(id).some((s) => s.run === 2) ? true : undefined), { timeoutMs: 15_000, what: 'a segment from run 2' });
    await second.stopRecording();
    expect(repo.runs(id).map((r) => r.endReason)).toEqual(['paused', 'stopped']);
    // The time between the runs was a pause, not a lost camera.
    expect(repo.alerts(id).filter((a) => a.kind === 'source_lost')).toEqual([]);
    expect(repo.pauses(id)).toHaveLength(1);
    expect(repo.pauses(id)[0]?.endedAtMs).toBeGreaterThanOrEqual(pausedSinceMs + 2_000);
    expect(finished).toEqual([id]);
  });

  it('a lecture stopped while paused ends its pause at the stop', async () => {
    const controller = newController();
    await controller.start();
    const { recordingId: id } = await controller.startRecording();
    await waitFor(() => (repo.segments(id).length >= 1 ? true : undefined), { timeoutMs: 15_000, what: 'a first segment' });
    await controller.pause();
    await controller.stopRecording();
    const rec = repo.get(id);
    expect(rec?.state).toBe('stopped');
    expect(repo.pauses(id)[0]?.endedAtMs).toBe(rec?.stoppedAtMs);
    expect(controller.status().state).toBe('idle');
    await expectCode(controller.resume(), 'RECORDING_NOT_ACTIVE');
  });

  it('extend moves the planned end durably and the recording stops at the new end, not the old one', async () => {
    const controller = newController();
    await controller.start();
    const t0 = Date.now();
    const { recordingId: id } = await controller.startRecording({ plannedEndMs: t0 + 4_000 });
    const byMinutes = await controller.extend({ minutes: 2 });
    expect(byMinutes.plannedEndMs).toBe(t0 + 4_000 + 120_000);
    expect(repo.get(id)?.plannedEndMs).toBe(t0 + 124_000);
    await expectCode(controller.setPlannedEnd(Date.now() - 1), 'RECORDING_END_IN_PAST');
    await expectCode(controller.extend({ untilMs: Date.now() - 60_000 }), 'RECORDING_END_IN_PAST');
    expect(repo.get(id)?.plannedEndMs).toBe(t0 + 124_000);
    const newEndMs = t0 + 7_000;
    expect(await controller.extend({ untilMs: newEndMs })).toEqual({ recordingId: id, plannedEndMs: newEndMs });
    expect(repo.get(id)?.plannedEndMs).toBe(newEndMs);
    expect(controller.status().plannedEndMs).toBe(newEndMs);

    // Past the first planned end it still records.
    await waitFor(() => (Date.now() >= t0 + 5_000 ? true : undefined), { timeoutMs: 10_000, intervalMs: 50, what: 'the old planned end' });
    expect(controller.status().state).toBe('recording');
    await waitFor(() => (controller.status().state === 'idle' ? true : undefined), { timeoutMs: 15_000, intervalMs: 50, what: 'the stop at the new end' });
    const rec = repo.get(id);
    expect(rec?.stopReason).toBe('planned end reached');
    expect(rec?.stoppedAtMs).toBeGreaterThanOrEqual(newEndMs);
    expect((rec?.stoppedAtMs ?? 0) - newEndMs).toBeLessThan(3_000);
    expect(finished).toEqual([id]);
  });
});
