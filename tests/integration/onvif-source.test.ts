import { createServer } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildCaptureSources, checkCameras, OnvifCaptureSource } from '../../src/agent/sources.js';
import { RecordingController } from '../../src/capture/recordingController.js';
import { configSchema, type Config } from '../../src/config/index.js';
import { closeDatabase, openDatabase, type Db } from '../../src/db/index.js';
import { RecordingRepo } from '../../src/db/recordings.js';
import { createMemoryLogger } from '../../src/log/logger.js';
import { LecternError } from '../../src/util/errors.js';
import { waitFor } from '../../src/util/sleep.js';
import { makeTmpDir } from '../helpers/tmp.js';
import { makeTestJpeg, OnvifSimulator } from '../peers/onvifSimulator.js';

/**
 * An `onvif` source in the agent: its RTSP URL is asked from the camera (the simulator) at agent
 * start without moving it, and before every capture run with the move to the configured preset;
 * the password reaches ffmpeg's URL but no log line. No RTSP server runs here (the RTSP test
 * camera is another peer), so the stream URI points at a closed local port: each ffmpeg run
 * fails at once and is restarted, which is exactly what shows the URL is asked again per run.
 */

const PASSWORD = 'Src-S3cret&pw';
const tmp = makeTmpDir('lectern-onvif-source-');
const { logger, lines } = createMemoryLogger('debug');
let sim: OnvifSimulator;
let closedPort: number;

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as { port: number }).port;
      server.close(() => resolve(port));
    });
  });
}

function config(address: string, extra: Record<string, unknown> = {}): Config {
  return configSchema.parse({
    agent: { dataDir: tmp.dir },
    sources: [{ kind: 'onvif', name: 'front', address, username: 'admin', passwordEnv: 'CAM_PW', profile: 'subStream', preset: 'Podium & Board <1>', timeoutMs: 1000, ...extra }],
  });
}

function onvifSource(cfg: Config): OnvifCaptureSource {
  const [source] = buildCaptureSources(cfg, { CAM_PW: PASSWORD }, logger);
  expect(source).toBeInstanceOf(OnvifCaptureSource);
  return source as OnvifCaptureSource;
}

beforeAll(async () => {
  closedPort = await freePort();
  sim = new OnvifSimulator({
    username: 'admin',
    password: PASSWORD,
    rtspUrl: { profile_main: `rtsp://127.0.0.1:${closedPort}/main`, profile_sub: `rtsp://127.0.0.1:${closedPort}/sub` },
    snapshotJpeg: await makeTestJpeg(path.join(tmp.dir, 'snap.jpg')),
    clockOffsetMs: -5 * 3600_000,
  });
  await sim.start();
});

afterAll(async () => {
  await sim.stop();
  tmp.cleanup();
  expect(lines.length).toBeGreaterThan(5);
  expect(lines.filter((l) => l.includes(PASSWORD) || l.includes(encodeURIComponent(PASSWORD)))).toEqual([]);
});

/** The agent's capture of this camera: its sources, a real SQLite file, quick restarts. */
function controllerFor(cfg: Config, dbName: string): { db: Db; controller: RecordingController } {
  const db = openDatabase(path.join(tmp.dir, dbName), { logger });
  const controller = new RecordingController({
    sources: buildCaptureSources(cfg, { CAM_PW: PASSWORD }, logger),
    settings: {
      segmentSeconds: 2,
      format: 'mpegts',
      stallTimeoutMs: 10_000,
      stopQuitGraceMs: 2_000,
      stopInterruptGraceMs: 2_000,
      restartBackoff: { baseMs: 100, capMs: 200, jitter: 0 },
      stableRunMs: 60_000,
    },
    store: new RecordingRepo(db),
    dirs: { dataDir: tmp.dir, sourceRunDir: (id, name, run) => path.join(tmp.dir, 'recordings', id, name, `run-${run}`) },
    disk: { check: async () => undefined },
    logger,
    onFinished: () => undefined,
  });
  return { db, controller };
}

describe('an onvif source', () => {
  it('is checked at agent start without moving the camera', async () => {
    const source = onvifSource(config(sim.address));
    sim.currentPreset = undefined;
    await checkCameras([source], AbortSignal.timeout(5000));
    expect(sim.currentPreset).toBeUndefined();
    expect(source.input).toEqual({ kind: 'rtsp', url: `rtsp://admin:${encodeURIComponent(PASSWORD)}@127.0.0.1:${closedPort}/sub`, timeoutMs: 5000 });
    // A camera that does not answer is a warning at start, not a failed agent.
    const dead = onvifSource(config(`127.0.0.1:${closedPort}`));
    await checkCameras([dead], AbortSignal.timeout(5000));
    expect(lines.some((l) => l.includes('camera not ready at start') && l.includes('CAMERA_UNREACHABLE'))).toBe(true);
  });

  it('resolves the stream and moves to the preset before a run; falls back to the last stream when ONVIF fails', async () => {
    const source = onvifSource(config(sim.address));
    const resolved = await source.resolve(AbortSignal.timeout(5000));
    expect(resolved.input).toMatchObject({ kind: 'rtsp', url: `rtsp://admin:${encodeURIComponent(PASSWORD)}@127.0.0.1:${closedPort}/sub` });
    expect(resolved.secrets).toContain(PASSWORD);
    expect(sim.currentPreset).toBe('2');

    // The camera's ONVIF service now fails (timeouts), its RTSP may still work: keep recording.
    const slow = new OnvifSimulator({ username: 'admin', password: PASSWORD, rtspUrl: 'rtsp://127.0.0.1:1/x', snapshotJpeg: Buffer.alloc(0), delayMs: { GetStreamUri: 3000 } });
    await slow.start();
    try {
      const flaky = onvifSource(config(slow.address));
      await expect(flaky.resolve(AbortSignal.timeout(5000))).rejects.toMatchObject({ code: 'CAMERA_TIMEOUT' });
      const again = onvifSource(config(sim.address));
      const first = await again.resolve(AbortSignal.timeout(5000));
      await sim.stop();
      const fallback = await again.resolve(AbortSignal.timeout(5000));
      expect(fallback).toEqual(first);
      expect(lines.some((l) => l.includes('recording from the stream it gave before'))).toBe(true);
    } finally {
      await slow.stop();
      await sim.start();
    }
  });

  it('asks the camera again before every capture run', async () => {
    const cfg = config(sim.address);
    const { db, controller } = controllerFor(cfg, 'state.db');
    try {
      await controller.start();
      sim.calls.length = 0;
      await controller.startRecording({ title: 'onvif' });
      // Each run: ffmpeg cannot connect to the (closed) RTSP port and exits; the next run asks again.
      await waitFor(() => (sim.calls.filter((c) => c.operation === 'GotoPreset').length >= 3 ? true : undefined), { timeoutMs: 20_000, what: '3 runs asking the camera' });
      await controller.stopRecording();
    } finally {
      await controller.stop();
      closeDatabase(db);
    }
    expect(sim.calls.filter((c) => c.operation === 'GetStreamUri').length).toBeGreaterThanOrEqual(3);
    expect(lines.filter((l) => l.includes('capture front: starting ffmpeg')).length).toBeGreaterThanOrEqual(3);
    // ffmpeg was given the camera's stream with the credentials; the log shows it redacted.
    expect(lines.some((l) => l.includes(`rtsp://admin:***@127.0.0.1:${closedPort}/sub`))).toBe(true);
  });

  it("moves to a lecture's own preset instead of the configured one, and to the privacy preset after the recording", async () => {
    const cfg = config(sim.address, { privacyPreset: 'Home' });
    const { db, controller } = controllerFor(cfg, 'preset.db');
    try {
      await controller.start();
      sim.currentPreset = undefined;
      // The timetable's event names preset "Home" (token 1); the source's own is token 2.
      await controller.startRecording({ title: 'preset', preset: 'Home' });
      await waitFor(() => (sim.currentPreset === '1' ? true : undefined), { timeoutMs: 10_000, what: "the lecture's preset" });
      expect(sim.calls.filter((c) => c.operation === 'GotoPreset').length).toBeGreaterThanOrEqual(1);
      sim.currentPreset = '2';
      await controller.stopRecording();
      await waitFor(() => (sim.currentPreset === '1' ? true : undefined), { timeoutMs: 10_000, what: 'the privacy preset after the stop' });
      expect(lines.some((l) => l.includes('turned to the privacy preset "Home"'))).toBe(true);
    } finally {
      await controller.stop();
      closeDatabase(db);
    }
  });

  it('is a configuration error when its password cannot be read', () => {
    expect(() => buildCaptureSources(config(sim.address), {}, logger)).toThrow(LecternError);
    expect(() => configSchema.parse({ sources: [{ kind: 'onvif', name: 'x', address: 'http://admin:pw@192.0.2.1/' }] })).toThrow(/without a user name or password/);
    expect(configSchema.parse({ sources: [{ kind: 'onvif', name: 'x', address: '192.0.2.1:8080' }] }).sources[0]).toMatchObject({ timeoutMs: 5000, role: 'presenter' });
  });
});
