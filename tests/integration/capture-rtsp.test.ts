import { chmodSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import type { Alert } from '../../src/capture/alerts.js';
import { RecordingController, type DiskWatch } from '../../src/capture/recordingController.js';
import type { CaptureSettings, CaptureSource } from '../../src/capture/sourceRecorder.js';
import { buildCaptureSources, OnvifCaptureSource } from '../../src/agent/sources.js';
import { configSchema } from '../../src/config/index.js';
import { closeDatabase, openDatabase, type Db } from '../../src/db/index.js';
import { RecordingRepo } from '../../src/db/recordings.js';
import { decodeCheck, probeMedia } from '../../src/ffmpeg/ffprobe.js';
import { findFfmpegProcesses } from '../../src/ffmpeg/orphans.js';
import { createMemoryLogger, type Logger } from '../../src/log/logger.js';
import { DiskGuard } from '../../src/storage/diskSpace.js';
import { computeGaps } from '../../src/transcode/packager.js';
import { isLecternError } from '../../src/util/errors.js';
import { sleep, waitFor } from '../../src/util/sleep.js';
import { runCli } from '../helpers/cli.js';
import { makeTmpDir } from '../helpers/tmp.js';
import { makeTestJpeg, OnvifSimulator } from '../peers/onvifSimulator.js';
import { startRtspCamera, type RtspCamera } from '../peers/rtspCamera.js';

/**
 * Capture from a real RTSP camera (GStreamer's RTSP server, tests/peers/rtspCamera.ts) with real
 * ffmpeg into real segment files and a real SQLite file, through the RecordingController as the
 * agent wires it. The camera's faults are real: it reboots (connections refused), freezes (session
 * open, no media), goes silent, shows a still or black picture. Only free disk space is simulated,
 * at the statfs(2) edge, because filling this machine's disk is not an option.
 *
 * Measured numbers are printed (console.info) so a run shows them: duration error, resume latency
 * after a reboot, alert latencies.
 */

const SETTINGS: CaptureSettings = {
  segmentSeconds: 2,
  format: 'mpegts',
  stallTimeoutMs: 6_000,
  stopQuitGraceMs: 10_000,
  stopInterruptGraceMs: 5_000,
  // The agent's policy (src/agent/agent.ts): while a lecture is live, retry at least every 2 s.
  restartBackoff: { baseMs: 1_000, capMs: 2_000, jitter: 0.3 },
  stableRunMs: 60_000,
  monitor: { silenceDb: -50, silenceSeconds: 6, freezeSeconds: 6, freezeNoiseDb: -40, blackSeconds: 4 },
};
// The default: with 3 s, ffmpeg gives up on a frozen camera by itself (~7 s); with 5 s it waits forever, as TESTING.md found.
const RTSP_TIMEOUT_MS = 5_000;
// The bound for each alert.
const ALERT_WITHIN_MS = 15_000;

function rtspSource(url: string): CaptureSource {
  return { name: 'presenter', role: 'presenter', input: { kind: 'rtsp', url, timeoutMs: RTSP_TIMEOUT_MS }, secrets: [] };
}

interface Rig {
  controller: RecordingController;
  repo: RecordingRepo;
  dir: string;
  finished: string[];
  lines: string[];
  close(): Promise<void>;
}

const rigs: Rig[] = [];

async function makeRig(opts: { url: string; source?: (logger: Logger) => CaptureSource; disk?: DiskGuard; diskWatch?: DiskWatch }): Promise<Rig> {
  const tmp = makeTmpDir();
  const { logger, lines } = createMemoryLogger('info');
  const db: Db = openDatabase(path.join(tmp.dir, 'state.db'), { logger });
  const repo = new RecordingRepo(db);
  const finished: string[] = [];
  const controller = new RecordingController({
    sources: [opts.source ? opts.source(logger) : rtspSource(opts.url)],
    settings: SETTINGS,
    store: repo,
    dirs: { dataDir: tmp.dir, sourceRunDir: (id, name, run) => path.join(tmp.dir, 'recordings', id, name, `run-${String(run).padStart(4, '0')}`) },
    disk: opts.disk ?? { check: async () => undefined },
    ...(opts.diskWatch ? { diskWatch: opts.diskWatch } : {}),
    logger,
    onFinished: (id) => finished.push(id),
  });
  await controller.start();
  let closed = false;
  const rig: Rig = {
    controller,
    repo,
    dir: tmp.dir,
    finished,
    lines,
    close: async () => {
      if (closed) return;
      closed = true;
      await controller.stop();
      closeDatabase(db);
      // Nothing may be left recording into this folder.
      expect(await findFfmpegProcesses(tmp.dir)).toEqual([]);
      tmp.cleanup();
    },
  };
  rigs.push(rig);
  return rig;
}

afterEach(async () => {
  for (const rig of rigs.splice(0)) await rig.close();
});

function source0(rig: Rig): ReturnType<RecordingController['status']>['sources'][number] {
  const s = rig.controller.status().sources[0];
  if (!s) throw new Error('no source in the status');
  return s;
}

/** Waits for media of a run newer than `afterRun`, and returns when its first frame was captured. */
async function mediaOfRunAfter(rig: Rig, afterRun: number, timeoutMs: number): Promise<{ run: number; mediaStartedAtMs: number }> {
  return waitFor(
    () => {
      const s = source0(rig);
      return s.run > afterRun && s.mediaStartedAtMs !== undefined ? { run: s.run, mediaStartedAtMs: s.mediaStartedAtMs } : undefined;
    },
    { timeoutMs, intervalMs: 50, what: `media from a run after run ${afterRun}` },
  );
}

async function activeAlert(rig: Rig, kind: Alert['kind'], timeoutMs: number): Promise<number> {
  await waitFor(() => (rig.controller.status().alerts.some((a) => a.kind === kind) ? true : undefined), { timeoutMs, intervalMs: 50, what: `a ${kind} alert` });
  return Date.now();
}

async function noActiveAlert(rig: Rig, kind: Alert['kind'], timeoutMs: number): Promise<number> {
  await waitFor(() => (rig.controller.status().alerts.some((a) => a.kind === kind) ? undefined : true), { timeoutMs, intervalMs: 50, what: `the ${kind} alert to end` });
  return Date.now();
}

async function segmentsDecode(rig: Rig, recordingId: string, run?: number): Promise<number> {
  const segments = rig.repo.segments(recordingId).filter((s) => run === undefined || s.run === run);
  for (const seg of segments) expect(await decodeCheck(path.join(rig.dir, seg.path), { timeoutMs: 30_000 }), seg.path).toEqual([]);
  return segments.length;
}

describe('capture from an RTSP camera', () => {
  let camera: RtspCamera;
  let alawCamera: RtspCamera;

  beforeAll(async () => {
    [camera, alawCamera] = await Promise.all([startRtspCamera({ audio: 'aac' }), startRtspCamera({ audio: 'alaw' })]);
  });
  afterAll(async () => {
    await Promise.all([camera?.stop(), alawCamera?.stop()]);
  });

  it('records 30 s through the ONVIF camera whose segments add up to the wall time within 1 s (G.711 camera audio becomes AAC)', async () => {
    // The agent's onvif source asks the simulator for the stream (WS-Security with the camera's
    // own clock, here 3 h off) and records what it names: the RTSP test camera.
    const password = 'Onvif&Cam-pw 30s';
    const tmp = makeTmpDir();
    const sim = new OnvifSimulator({
      username: 'admin',
      password,
      rtspUrl: alawCamera.url,
      snapshotJpeg: await makeTestJpeg(path.join(tmp.dir, 'snap.jpg')),
      clockOffsetMs: 3 * 3600_000,
    });
    await sim.start();
    onTestFinished(async () => {
      await sim.stop();
      tmp.cleanup();
    });
    const config = configSchema.parse({
      sources: [{ kind: 'onvif', name: 'presenter', address: sim.address, username: 'admin', passwordEnv: 'CAM_PW' }],
      capture: { rtspTimeoutMs: RTSP_TIMEOUT_MS },
    });
    const rig = await makeRig({
      url: alawCamera.url,
      source: (logger) => {
        const [source] = buildCaptureSources(config, { CAM_PW: password }, logger);
        expect(source).toBeInstanceOf(OnvifCaptureSource);
        return source as OnvifCaptureSource;
      },
    });
    const { recordingId } = await rig.controller.startRecording();
    // Wall time is measured from the first frame, not from startRecording(): connecting and
    // waiting for the first keyframe take a moment that holds no media. Each ffmpeg progress
    // report says how much media had been written (out_time) when it was printed, so the first
    // frame was captured that long before; SourceState.mediaStartedAtMs is the earliest such
    // estimate over the first 3 s of media (the very first report comes after ffmpeg's probing
    // backlog and would place the start ~1 s late). The end is when `q` was sent: ffmpeg writes
    // what it received until then. The anchor is taken in the first seconds, so time lost or
    // duplicated anywhere in the 30 s still shows in the comparison.
    const firstFrameAtMs = (await mediaOfRunAfter(rig, 0, 15_000)).mediaStartedAtMs;
    // The recording's length is the scenario itself, not a wait for a condition.
    await sleep(firstFrameAtMs + 30_000 - Date.now());
    const stopAtMs = Date.now();
    await rig.controller.stopRecording();

    const segments = rig.repo.segments(recordingId);
    const recordedSeconds = segments.reduce((s, x) => s + x.durationSeconds, 0);
    const wallSeconds = (stopAtMs - firstFrameAtMs) / 1000;
    console.info(`RTSP 30 s: recorded ${recordedSeconds.toFixed(3)} s over ${wallSeconds.toFixed(3)} s of wall time (error ${(recordedSeconds - wallSeconds).toFixed(3)} s)`);
    expect(Math.abs(recordedSeconds - wallSeconds)).toBeLessThan(1);
    expect(rig.repo.runs(recordingId).map((r) => r.run)).toEqual([1]);
    // Contiguous: each segment starts where the previous one ended.
    for (let i = 1; i < segments.length; i++) {
      expect(segments[i]?.startSeconds).toBeCloseTo((segments[i - 1]?.startSeconds ?? 0) + (segments[i - 1]?.durationSeconds ?? 0), 3);
    }
    expect(await segmentsDecode(rig, recordingId)).toBeGreaterThanOrEqual(14);
    const probe = await probeMedia(path.join(rig.dir, segments[0]?.path ?? ''), { timeoutMs: 10_000 });
    expect(probe.streams.map((s) => `${s.codecType}:${s.codecName}`).sort()).toEqual(['audio:aac', 'video:h264']);
    // A steady tone at a good level: no confidence alert.
    expect(rig.repo.alerts(recordingId)).toEqual([]);
    expect(sim.calls.some((c) => c.operation === 'GetStreamUri' && c.authenticated)).toBe(true);
    expect(rig.lines.filter((l) => l.includes(password) || l.includes(encodeURIComponent(password)))).toEqual([]);
  });

  it('resumes within 5 s when a rebooted camera returns after 10 s: one lecture, one gap, one alert', async () => {
    const rig = await makeRig({ url: camera.url });
    const { recordingId } = await rig.controller.startRecording();
    await waitFor(() => (rig.repo.segments(recordingId).length >= 1 ? true : undefined), { timeoutMs: 15_000, what: 'a first segment' });

    const downAtMs = Date.now();
    await camera.reboot();
    await activeAlert(rig, 'source_lost', 5_000);
    // The outage itself: the camera stays away for 10 s while the recorder keeps retrying.
    await sleep(downAtMs + 10_000 - Date.now());
    const upAtMs = Date.now();
    await camera.up();
    const resumed = await mediaOfRunAfter(rig, 1, 10_000);
    const resumeMs = resumed.mediaStartedAtMs - upAtMs;
    console.info(`RTSP reboot: first frame of the new run ${resumeMs} ms after the camera was back`);
    expect(resumeMs).toBeLessThan(5_000);
    await noActiveAlert(rig, 'source_lost', 5_000);
    await waitFor(() => (rig.repo.segments(recordingId).some((s) => s.run === resumed.run) ? true : undefined), { timeoutMs: 15_000, what: 'a segment after the reboot' });
    expect(await rig.controller.startRecording()).toEqual({ recordingId, created: false });
    await rig.controller.stopRecording();

    // Failed attempts during the outage leave no run behind: one outage is one gap.
    const runs = rig.repo.runs(recordingId);
    expect(runs).toHaveLength(2);
    expect(runs[0]?.endReason).toBe('the stream ended (ffmpeg exited with code 0)');
    expect(runs[1]?.endReason).toBe('stopped');
    const segments = rig.repo.segments(recordingId).map((s) => ({ ...s, path: path.join(rig.dir, s.path) }));
    const gaps = computeGaps(runs, segments);
    expect(gaps).toHaveLength(1);
    expect(gaps[0]?.durationSeconds).toBeGreaterThan(9.5);
    expect(gaps[0]?.durationSeconds).toBeLessThan(10 + 5);
    expect(gaps[0]?.atSeconds).toBeCloseTo(segments.filter((s) => s.run === 1).reduce((n, s) => n + s.durationSeconds, 0), 3);

    const alerts = rig.repo.alerts(recordingId);
    expect(alerts.map((a) => a.kind)).toEqual(['source_lost']);
    expect(alerts[0]?.startedAtMs).toBe(runs[0]?.endedAtMs);
    expect(alerts[0]?.endedAtMs).toBe(runs[1]?.startedAtMs);
    expect(alerts[0]?.message).toBe('presenter lost: the stream ended (ffmpeg exited with code 0); reconnecting');
    expect(rig.repo.get(recordingId)?.state).toBe('stopped');
    expect(rig.finished).toEqual([recordingId]);
    await segmentsDecode(rig, recordingId);
  });

  it('starts a new run after kill -9 of ffmpeg; every segment written before the kill decodes', async () => {
    const rig = await makeRig({ url: camera.url });
    const { recordingId } = await rig.controller.startRecording();
    await waitFor(() => (rig.repo.segments(recordingId).length >= 2 ? true : undefined), { timeoutMs: 15_000, what: 'two segments' });
    // Kill in the middle of a segment (they are 2 s long): one second after one closed.
    await waitFor(() => (rig.repo.segments(recordingId).length >= 3 ? true : undefined), { timeoutMs: 10_000, intervalMs: 20, what: 'a third segment' });
    await sleep(1_000);
    const pid = await waitFor(() => rig.controller.sourcePids().presenter, { timeoutMs: 5_000, what: 'the ffmpeg pid' });
    const killedAtMs = Date.now();
    process.kill(pid, 'SIGKILL');
    const resumed = await mediaOfRunAfter(rig, 1, 10_000);
    console.info(`RTSP kill -9: first frame of the new run ${resumed.mediaStartedAtMs - killedAtMs} ms after the kill`);
    await waitFor(() => (rig.repo.segments(recordingId).some((s) => s.run === resumed.run) ? true : undefined), { timeoutMs: 15_000, what: 'a segment of the new run' });
    await rig.controller.stopRecording();

    const runs = rig.repo.runs(recordingId);
    expect(runs.map((r) => r.endReason)).toEqual(['ffmpeg killed by SIGKILL', 'stopped']);
    // The segment open at the kill has no line in ffmpeg's list; its media up to the kill was kept.
    expect(rig.lines.some((l) => /segment seg_00003\.ts of run 1 was left unfinished \(ffmpeg killed by SIGKILL\); kept its/.test(l)), rig.lines.join('\n')).toBe(true);
    const run1 = rig.repo.segments(recordingId).filter((s) => s.run === 1);
    expect(run1.map((s) => s.seq)).toEqual([0, 1, 2, 3]);
    expect(run1[3]?.durationSeconds).toBeGreaterThan(0.3);
    // Every segment written before the kill decodes without an error, the unfinished one too.
    expect(await segmentsDecode(rig, recordingId, 1)).toBe(4);
    expect(rig.repo.alerts(recordingId).map((a) => [a.kind, a.endedAtMs !== null])).toEqual([['source_lost', true]]);
  });

  it('restarts a frozen camera (session open, no media) on the stall timer and resumes when it thaws', async () => {
    const rig = await makeRig({ url: camera.url });
    const { recordingId } = await rig.controller.startRecording();
    await waitFor(() => (rig.repo.segments(recordingId).length >= 1 ? true : undefined), { timeoutMs: 15_000, what: 'a first segment' });
    const frozenAtMs = Date.now();
    await camera.freeze();
    try {
      // ffmpeg's -timeout never fires here: only the stall timer (6 s without progress) can notice.
      const lostAtMs = await activeAlert(rig, 'source_lost', 20_000);
      console.info(`RTSP freeze: source_lost after ${lostAtMs - frozenAtMs} ms`);
      expect(lostAtMs - frozenAtMs).toBeLessThan(SETTINGS.stallTimeoutMs + 2_000);
      // q and SIGINT wait for a read the frozen camera never ends: the ladder ends with SIGKILL.
      const run1 = await waitFor(() => rig.repo.runs(recordingId).find((r) => r.run === 1 && r.endedAtMs !== null), {
        timeoutMs: SETTINGS.stopQuitGraceMs + SETTINGS.stopInterruptGraceMs + 5_000,
        what: 'the frozen run to end',
      });
      console.info(`RTSP freeze: the frozen ffmpeg ended ${(run1.endedAtMs ?? 0) - frozenAtMs} ms after the freeze`);
      expect(run1.endReason).toBe('no media progress (stall)');
    } finally {
      await camera.thaw();
    }
    const thawedAtMs = Date.now();
    const resumed = await mediaOfRunAfter(rig, 1, 30_000);
    console.info(`RTSP freeze: media again ${resumed.mediaStartedAtMs - thawedAtMs} ms after the thaw`);
    await waitFor(() => (rig.repo.segments(recordingId).some((s) => s.run === resumed.run) ? true : undefined), { timeoutMs: 15_000, what: 'a segment after the thaw' });
    await rig.controller.stopRecording();

    expect(await segmentsDecode(rig, recordingId, 1)).toBeGreaterThanOrEqual(1);
    const kinds = rig.repo.alerts(recordingId).map((a) => a.kind);
    // A camera that sends nothing is a lost source, not a silent microphone.
    expect(kinds, JSON.stringify(rig.repo.alerts(recordingId)) + JSON.stringify(rig.repo.runs(recordingId))).toEqual(['source_lost']);
  });

  it('raises no_audio, frozen_picture and black_picture within 15 s and ends them when the camera recovers', async () => {
    const rig = await makeRig({ url: camera.url });
    const { recordingId } = await rig.controller.startRecording();
    await waitFor(() => (rig.repo.segments(recordingId).length >= 1 ? true : undefined), { timeoutMs: 15_000, what: 'a first segment' });
    expect(source0(rig).audioLevelDb).toBeGreaterThan(-30);

    const faultAtMs = Date.now();
    await camera.mute();
    await camera.still();
    const [silentAtMs, frozenAtMs] = await Promise.all([activeAlert(rig, 'no_audio', ALERT_WITHIN_MS), activeAlert(rig, 'frozen_picture', ALERT_WITHIN_MS)]);
    const recoverAtMs = Date.now();
    await camera.unmute();
    await camera.move();
    const [soundAtMs, movingAtMs] = await Promise.all([noActiveAlert(rig, 'no_audio', 10_000), noActiveAlert(rig, 'frozen_picture', 10_000)]);

    const blackAtMs = Date.now();
    await camera.black();
    const blackAlertAtMs = await activeAlert(rig, 'black_picture', ALERT_WITHIN_MS);
    // A black picture is also a still one: only black_picture is raised for it.
    expect(rig.controller.status().alerts.map((a) => a.kind)).toEqual(['black_picture']);
    await camera.move();
    await noActiveAlert(rig, 'black_picture', 10_000);
    console.info(
      `RTSP alerts: no_audio after ${silentAtMs - faultAtMs} ms, frozen_picture after ${frozenAtMs - faultAtMs} ms, black_picture after ${blackAlertAtMs - blackAtMs} ms; ` +
        `ended ${soundAtMs - recoverAtMs} ms / ${movingAtMs - recoverAtMs} ms after recovery`,
    );
    await rig.controller.stopRecording();

    const alerts = rig.repo.alerts(recordingId);
    expect(alerts.map((a) => a.kind).sort()).toEqual(['black_picture', 'frozen_picture', 'no_audio']);
    for (const a of alerts) {
      expect(a.endedAtMs, a.kind).not.toBeNull();
      // Each alert starts when its condition began, not when it was noticed.
      expect(a.startedAtMs, a.kind).toBeGreaterThanOrEqual(faultAtMs - 1_000);
    }
    expect(alerts.find((a) => a.kind === 'no_audio')?.message).toMatch(/no sound above -50 dBFS from presenter/);
    expect(rig.repo.runs(recordingId)).toHaveLength(1);
  });

  it('refuses to start on a nearly full disk and stops cleanly, with reason "disk full", before the disk is full', async () => {
    // statfs(2) is simulated: the rest (the guard, the watch, the stop) is the real code.
    let freeBytes = 50 * 2 ** 20;
    const { logger } = createMemoryLogger('warn');
    const disk = new DiskGuard({ path: '/', minFreeBytes: 2 ** 30, logger, statfs: async () => ({ bavail: Math.floor(freeBytes / 4096), bsize: 4096 }) });
    const rig = await makeRig({ url: camera.url, disk, diskWatch: { intervalMs: 300, alertBelowBytes: 2 ** 30, stopBelowBytes: 256 * 2 ** 20 } });

    const refused = await rig.controller.startRecording().catch((err: unknown) => err);
    expect(isLecternError(refused, 'DISK_LOW')).toBe(true);
    expect(rig.controller.status().state).toBe('idle');

    freeBytes = 10 * 2 ** 30;
    const { recordingId } = await rig.controller.startRecording();
    await waitFor(() => (rig.repo.segments(recordingId).length >= 1 ? true : undefined), { timeoutMs: 15_000, what: 'a first segment' });
    freeBytes = 600 * 2 ** 20; // below the start threshold: warn, keep recording
    await activeAlert(rig, 'disk_low', 5_000);
    expect(rig.controller.status().state).toBe('recording');
    freeBytes = 100 * 2 ** 20; // below the stop threshold
    await waitFor(() => (rig.controller.status().state === 'idle' ? true : undefined), { timeoutMs: 20_000, what: 'the recording to stop' });

    const rec = rig.repo.get(recordingId);
    expect(rec?.state).toBe('stopped');
    expect(rec?.stopReason).toBe('disk full');
    expect(rig.finished).toEqual([recordingId]);
    expect(rig.repo.alerts(recordingId).map((a) => a.kind)).toEqual(['disk_low']);
    // Stopped with the ladder, not killed: the last segment was closed and registered.
    expect(rig.repo.runs(recordingId)[0]?.endReason).toBe('stopped');
    await segmentsDecode(rig, recordingId);
  });
});

describe('an RTSP camera with digest authentication', () => {
  // Characters that must be percent-encoded in a URL, so both spellings are looked for.
  const PASSWORD = 'Pa:ss@w0rd/#1%x';
  const WRONG = 'Wr0ng:p@ss/word%';
  let camera: RtspCamera;
  let tmp: ReturnType<typeof makeTmpDir>;

  beforeAll(async () => {
    camera = await startRtspCamera({ auth: { user: 'lectern', password: PASSWORD } });
    tmp = makeTmpDir();
  });
  afterAll(async () => {
    await camera?.stop();
    tmp?.cleanup();
  });

  function writeConfig(name: string, password: string): string {
    const dir = path.join(tmp.dir, name);
    const passwordFile = path.join(tmp.dir, `${name}.password`);
    writeFileSync(passwordFile, password);
    chmodSync(passwordFile, 0o600);
    const config = path.join(tmp.dir, `${name}.yaml`);
    writeFileSync(
      config,
      [
        'agent:',
        `  dataDir: ${dir}`,
        'sources:',
        `  - { name: presenter, kind: rtsp, url: "${camera.url}", username: lectern, passwordFile: "${passwordFile}" }`,
        'capture:',
        '  segmentSeconds: 2',
        `  rtspTimeoutMs: ${RTSP_TIMEOUT_MS}`,
        '  minFreeDiskBytes: 0',
        'transcode:',
        '  renditions:',
        '    - { name: 240p, height: 240, videoBitrateKbps: 300 }',
        '    - { name: 144p, height: 144, videoBitrateKbps: 120 }',
        '',
      ].join('\n'),
    );
    return config;
  }

  function expectNoPassword(text: string, password: string): void {
    for (const form of [password, encodeURIComponent(password)]) expect(text.includes(form), `the password (${form === password ? 'raw' : 'URL-encoded'}) leaked`).toBe(false);
  }

  it('records and publishes with the password from a 0600 file, which never appears in logs or output', async () => {
    const run = await runCli(['--log-level', 'debug', '--config', writeConfig('good', PASSWORD), 'demo', '--seconds', '8']);
    const output = `${run.stdout}\n${run.stderr}`;
    expect(run.code, output.slice(-3000)).toBe(0);
    expect(run.stdout).toMatch(/Lecture [0-9A-Z]{26} published/);
    // The debug log did print ffmpeg's argv with the camera URL, credentials masked.
    expect(run.stderr).toMatch(/rtsp:\/\/lectern:\*\*\*@127\.0\.0\.1/);
    expectNoPassword(output, PASSWORD);
  });

  it('reports a wrong password clearly, without the password, and keeps retrying', async () => {
    const run = await runCli(['--log-level', 'debug', '--config', writeConfig('wrong', WRONG), 'demo', '--seconds', '4']);
    const output = `${run.stdout}\n${run.stderr}`;
    expect(run.code, output.slice(-3000)).toBe(1);
    // ffmpeg's own error names the URL; it reaches the log redacted.
    expect(run.stderr).toMatch(/401 Unauthorized/);
    expect(run.stderr).toMatch(/source_lost: presenter lost: ffmpeg exited with code 1: .*401 Unauthorized/);
    expect(run.stdout).toMatch(/was not published/);
    expectNoPassword(output, WRONG);
    expectNoPassword(output, PASSWORD);
  });
});
