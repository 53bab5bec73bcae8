import { existsSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RecordingController } from '../../src/capture/recordingController.js';
import type { CaptureSettings, CaptureSource } from '../../src/capture/sourceRecorder.js';
import { openDatabase, closeDatabase, type Db } from '../../src/db/index.js';
import { RecordingRepo } from '../../src/db/recordings.js';
import { probeMedia } from '../../src/ffmpeg/ffprobe.js';
import { createMemoryLogger } from '../../src/log/logger.js';
import { hashFile } from '../../src/util/hash.js';
import { waitFor } from '../../src/util/sleep.js';
import { makeTmpDir } from '../helpers/tmp.js';

// Real ffmpeg recording a real (synthetic) source into real segment files and a real SQLite file.

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

describe('capture of a synthetic source', () => {
  let tmp: ReturnType<typeof makeTmpDir>;
  let db: Db;
  let repo: RecordingRepo;
  let finished: string[];
  let controller: RecordingController;
  const { logger } = createMemoryLogger('warn');

  beforeEach(async () => {
    tmp = makeTmpDir();
    db = openDatabase(path.join(tmp.dir, 'state.db'), { logger });
    repo = new RecordingRepo(db);
    finished = [];
    controller = new RecordingController({
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
    });
    await controller.start();
  });

  afterEach(async () => {
    await controller.stop();
    closeDatabase(db);
    tmp.cleanup();
  });

  it('records segments whose total duration matches the wall time, each intact and registered', async () => {
    const t0 = Date.now();
    const { recordingId, created } = await controller.startRecording({ title: 'Test' });
    expect(created).toBe(true);
    // Pressing Record again while recording starts nothing new.
    expect(await controller.startRecording()).toEqual({ recordingId, created: false });
    await waitFor(() => (repo.segments(recordingId).length >= 3 ? true : undefined), { timeoutMs: 20_000, what: '3 segments' });
    await controller.stopRecording();
    const wallSeconds = (Date.now() - t0) / 1000;

    const segments = repo.segments(recordingId);
    const total = segments.reduce((s, x) => s + x.durationSeconds, 0);
    // ffmpeg needs a moment to start; the recorded media must cover the wall time within 1.5 s.
    expect(Math.abs(total - wallSeconds)).toBeLessThan(1.5);
    for (const seg of segments) {
      const file = path.join(tmp.dir, seg.path);
      expect(await hashFile(file)).toEqual({ sha256: seg.sha256, bytes: seg.bytes });
      const probe = await probeMedia(file, { timeoutMs: 10_000 });
      expect(probe.streams.map((s) => s.codecType).sort()).toEqual(['audio', 'video']);
      expect(Math.abs((probe.durationSeconds ?? 0) - seg.durationSeconds)).toBeLessThan(0.2);
    }
    expect(repo.get(recordingId)?.state).toBe('stopped');
    expect(finished).toEqual([recordingId]);
  });

  it('restarts a killed ffmpeg as a new run of the same recording and records the gap', async () => {
    const { recordingId } = await controller.startRecording();
    await waitFor(() => (repo.segments(recordingId).length >= 1 ? true : undefined), { timeoutMs: 15_000, what: 'a first segment' });
    const status = controller.status();
    expect(status.state).toBe('recording');
    const pid = await waitFor(() => controller.sourcePids().presenter, { timeoutMs: 5_000, what: 'ffmpeg pid' });
    process.kill(pid, 'SIGKILL');
    await waitFor(() => (repo.segments(recordingId).some((s) => s.run === 2) ? true : undefined), { timeoutMs: 20_000, what: 'a segment from run 2' });
    await controller.stopRecording();

    const runs = repo.runs(recordingId);
    expect(runs.map((r) => r.run)).toEqual([1, 2]);
    expect(runs[0]?.endReason).toBe('ffmpeg killed by SIGKILL');
    expect(runs[1]?.endReason).toBe('stopped');
    // One lecture: every segment belongs to the same recording, and run 1's segments are intact.
    const run1 = repo.segments(recordingId).filter((s) => s.run === 1);
    expect(run1.length).toBeGreaterThanOrEqual(1);
    for (const seg of run1) {
      const probe = await probeMedia(path.join(tmp.dir, seg.path), { timeoutMs: 10_000 });
      expect(probe.durationSeconds).toBeGreaterThan(0);
    }
    expect(finished).toEqual([recordingId]);
    expect(controller.status().restarts).toBe(0); // recorders are gone after stop
  });

  it('closes a recording left live by a crash whose planned end has passed, so its segments are packaged', async () => {
    const id = '01JAAAAAAAAAAAAAAAAAAAAAAA';
    repo.create({ id, title: 'orphan', startedAtMs: Date.now() - 60_000, plannedEndMs: Date.now() - 1_000 });
    repo.startRun(id, 'presenter', 1, Date.now() - 60_000);
    repo.addSegment({ recordingId: id, source: 'presenter', run: 1, seq: 0, path: 'x.ts', bytes: 1, sha256: 'a'.repeat(64), startSeconds: 0, durationSeconds: 2 }, Date.now());
    await controller.start();
    expect(repo.get(id)?.state).toBe('stopped');
    expect(controller.status().state).toBe('idle');
    expect(finished).toEqual([id]);
    expect(existsSync(tmp.dir)).toBe(true);
  });

  it('continues a recording left live by a crash as the same lecture, with a gap and an alert', async () => {
    const id = '01JBBBBBBBBBBBBBBBBBBBBBBB';
    const crashedAtMs = Date.now() - 30_000;
    repo.create({ id, title: 'orphan', startedAtMs: crashedAtMs - 2_000 });
    repo.startRun(id, 'presenter', 1, crashedAtMs - 2_000);
    repo.addSegment({ recordingId: id, source: 'presenter', run: 1, seq: 0, path: 'x.ts', bytes: 1, sha256: 'a'.repeat(64), startSeconds: 0, durationSeconds: 2 }, crashedAtMs);
    await controller.start();
    expect(controller.status()).toMatchObject({ state: 'recording', recordingId: id });
    await waitFor(() => (repo.segments(id).some((s) => s.run === 2) ? true : undefined), { timeoutMs: 20_000, what: 'a segment from run 2' });
    expect(await controller.startRecording()).toEqual({ recordingId: id, created: false });
    await controller.stopRecording();

    const runs = repo.runs(id);
    expect(runs.map((r) => r.run)).toEqual([1, 2]);
    // Run 1 ended when its 2 s of media ended, not when the agent came back.
    expect(runs[0]?.endedAtMs).toBe(crashedAtMs);
    expect(runs[0]?.endReason).toBe('interrupted by a restart');
    const lost = repo.alerts(id).filter((a) => a.kind === 'source_lost');
    expect(lost).toHaveLength(1);
    expect(lost[0]?.startedAtMs).toBe(crashedAtMs);
    expect(lost[0]?.endedAtMs).toBe(runs[1]?.startedAtMs);
    expect(repo.get(id)?.state).toBe('stopped');
    expect(finished).toEqual([id]);
  });
});
