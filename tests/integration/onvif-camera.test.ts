import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { probeAddress } from '../../src/camera/discovery.js';
import { OnvifCamera, type OnvifCameraOptions } from '../../src/camera/onvifCamera.js';
import { soapCall } from '../../src/camera/soap.js';
import { probeMedia } from '../../src/ffmpeg/ffprobe.js';
import { createMemoryLogger } from '../../src/log/logger.js';
import { LecternError, type ErrorCode } from '../../src/util/errors.js';
import { makeTmpDir } from '../helpers/tmp.js';
import { makeTestJpeg, OnvifSimulator, type OnvifSimulatorOptions } from '../peers/onvifSimulator.js';

/**
 * OnvifCamera against the in-process ONVIF simulator (tests/peers/onvifSimulator.ts) on
 * 127.0.0.1: clock handling, authentication, profiles, stream and snapshot, presets, audio,
 * timeouts, and unicast WS-Discovery. Nothing here sends multicast.
 */

const USER = 'admin';
const PASSWORD = 'S3cret&<pw>"x';
const RTSP_MAIN = 'rtsp://127.0.0.1:8554/main?track=1&x=y';
const RTSP_SUB = 'rtsp://127.0.0.1:8554/sub';
const TWO_HOURS_MS = 2 * 3600_000;

const tmp = makeTmpDir('lectern-onvif-');
const { logger, lines } = createMemoryLogger('debug');
let jpeg: Buffer;
const sims: OnvifSimulator[] = [];

async function startSim(extra: Partial<OnvifSimulatorOptions> = {}): Promise<OnvifSimulator> {
  const sim = new OnvifSimulator({ username: USER, password: PASSWORD, rtspUrl: { profile_main: RTSP_MAIN, profile_sub: RTSP_SUB }, snapshotJpeg: jpeg, ...extra });
  await sim.start();
  sims.push(sim);
  return sim;
}

function camera(sim: { address: string }, extra: Partial<OnvifCameraOptions> = {}): OnvifCamera {
  return new OnvifCamera({ address: sim.address, username: USER, password: PASSWORD, timeoutMs: 2000, logger, name: 'room-cam', ...extra });
}

async function failure(code: ErrorCode, promise: Promise<unknown>): Promise<LecternError> {
  try {
    await promise;
  } catch (err) {
    expect(err, String(err)).toBeInstanceOf(LecternError);
    expect((err as LecternError).code, (err as Error).message).toBe(code);
    return err as LecternError;
  }
  throw new Error(`expected ${code}`);
}

beforeAll(async () => {
  jpeg = await makeTestJpeg(path.join(tmp.dir, 'snap.jpg'));
});

afterEach(async () => {
  await Promise.all(sims.splice(0).map((s) => s.stop()));
});

afterAll(() => {
  tmp.cleanup();
  // Every line this file logged, at debug level, with every kind of failure: never the password.
  expect(lines.length).toBeGreaterThan(10);
  expect(lines.filter((l) => l.includes(PASSWORD) || l.includes(encodeURIComponent(PASSWORD)))).toEqual([]);
});

describe('connecting', () => {
  it('reads the clock unauthenticated first, then services, device information and profiles', async () => {
    const sim = await startSim();
    const cam = camera(sim);
    await cam.connect();
    expect(cam.status).toBe('connected');
    expect(sim.calls.map((c) => `${c.operation}:${c.authenticated ? 'auth' : 'anon'}`)).toEqual([
      'GetSystemDateAndTime:anon',
      'GetCapabilities:auth',
      'GetDeviceInformation:auth',
      'GetProfiles:auth',
    ]);
    expect(cam.deviceInfo()).toMatchObject({ manufacturer: 'Lectern Test & Co', model: 'SIM-1', firmwareVersion: '1.0.0' });
    expect(cam.profiles().map((p) => [p.token, p.video?.width, p.video?.height, p.video?.encoding])).toEqual([
      ['profile_main', 1280, 720, 'H264'],
      ['profile_sub', 640, 360, 'H264'],
    ]);
    expect(Math.abs(cam.clockOffsetMs())).toBeLessThan(1500);
  });

  it('connects to a camera whose clock is 2 hours off, because the clock is read first', async () => {
    const sim = await startSim({ clockOffsetMs: TWO_HOURS_MS });
    // Signed with our own clock, the camera refuses us: this is the failure the clock read avoids.
    const naive = await failure(
      'CAMERA_AUTH_FAILED',
      soapCall({ url: sim.deviceUrl, ns: 'http://www.onvif.org/ver10/device/wsdl', operation: 'GetDeviceInformation', credentials: { username: USER, password: PASSWORD, clockOffsetMs: 0 }, timeoutMs: 2000, logger }),
    );
    expect(naive.message).toMatch(/NotAuthorized/);

    const cam = camera(sim);
    await cam.connect();
    expect(Math.abs(cam.clockOffsetMs() - TWO_HOURS_MS)).toBeLessThan(1500);
    expect(sim.calls.filter((c) => c.fault === undefined && c.authenticated).length).toBeGreaterThanOrEqual(3);
    expect(lines.some((l) => l.includes('the camera clock is ahead by 2.0 h'))).toBe(true);
  });

  it('re-reads the clock once when the camera clock jumps after connecting (a reboot)', async () => {
    const sim = await startSim();
    const cam = camera(sim);
    await cam.connect();
    sim.clockOffsetMs = -3 * 3600_000; // the camera lost power and came back at the wrong time
    sim.calls.length = 0;
    const presets = await cam.presets();
    expect(presets.length).toBe(2);
    expect(sim.calls.map((c) => `${c.operation}${c.fault ? `!${c.fault}` : ''}`)).toEqual(['GetPresets!ter:NotAuthorized', 'GetSystemDateAndTime', 'GetPresets']);
    expect(Math.abs(cam.clockOffsetMs() + 3 * 3600_000)).toBeLessThan(1500);
  });

  it('reports a wrong password as CAMERA_AUTH_FAILED, after one retry, without the password', async () => {
    const sim = await startSim();
    const wrong = 'Wrong-Passw0rd!';
    const err = await failure('CAMERA_AUTH_FAILED', camera(sim, { password: wrong }).connect());
    expect(err.message).toMatch(/refused user "admin": check the user name and password/);
    expect(err.message).not.toContain(wrong);
    expect(err.message).not.toContain(PASSWORD);
    expect(sim.calls.filter((c) => c.operation === 'GetCapabilities').length).toBe(2);
    expect(sim.calls.filter((c) => c.operation === 'GetSystemDateAndTime').length).toBe(2);
  });

  it('times out a camera that does not answer, per request', async () => {
    const sim = await startSim({ delayMs: { GetProfiles: 3000 } });
    const started = Date.now();
    const err = await failure('CAMERA_TIMEOUT', camera(sim, { timeoutMs: 300 }).connect());
    expect(err.message).toMatch(/GetProfiles: no complete answer from http:\/\/127\.0\.0\.1:\d+\/onvif\/media_service within 300 ms/);
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('reports a closed port as CAMERA_UNREACHABLE at once', async () => {
    const sim = await startSim();
    const address = sim.address;
    await sim.stop();
    const started = Date.now();
    const err = await failure('CAMERA_UNREACHABLE', camera({ address }).connect());
    expect(err.message).toMatch(/ECONNREFUSED/);
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it('reports a device that answers with something other than SOAP as CAMERA_BAD_REPLY', async () => {
    const server = http.createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end('<html><body>Please log in</body></html>'));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const err = await failure('CAMERA_BAD_REPLY', camera({ address: `127.0.0.1:${(server.address() as AddressInfo).port}` }).connect());
      expect(err.message).toMatch(/GetCapabilities: expected a SOAP Envelope, got <html>/);
    } finally {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it('uses the configured host when the camera reports another one (NAT, factory address)', async () => {
    const sim = await startSim({ reportedHost: '127.0.0.2:9' });
    const cam = camera(sim);
    await cam.connect();
    expect(cam.services.media).toBe(`http://${sim.address}/onvif/media_service`);
    expect((await cam.snapshot()).body.length).toBe(jpeg.length);
  });

  it('works with a Media2-only camera and with one that also wants HTTP Digest on SOAP', async () => {
    const m2 = await startSim({ media2Only: true });
    const cam2 = camera(m2);
    expect((await cam2.streamUri('640x360')).uri).toBe(RTSP_SUB);
    expect(m2.calls.some((c) => c.service === 'media2' && c.operation === 'GetProfiles')).toBe(true);

    const digest = await startSim({ soapHttpDigest: true });
    const camD = camera(digest);
    await camD.connect();
    expect(digest.calls.filter((c) => c.fault === 'HTTP 401').length).toBeGreaterThan(0);
    expect(camD.profiles()).toHaveLength(2);
  });
});

describe('media', () => {
  it('returns stream URIs without credentials, and builds the credentialed one for ffmpeg', async () => {
    const sim = await startSim({ credentialsInStreamUri: true });
    const cam = camera(sim);
    const main = await cam.streamUri();
    expect(main.profile.token).toBe('profile_main');
    expect(main.uri).toBe(RTSP_MAIN);
    const sub = await cam.streamUri('640x360');
    expect(sub.uri).toBe(RTSP_SUB);
    expect(cam.credentialedUri(sub.uri)).toBe(`rtsp://admin:${encodeURIComponent(PASSWORD)}@127.0.0.1:8554/sub`);
    const err = await failure('CAMERA_NO_MATCH', cam.streamUri('1920x1080'));
    expect(err.message).toMatch(/it has: mainStream \[profile_main\] 1280x720 H264 25 fps \+ G711; subStream/);
  });

  it('fetches a snapshot behind HTTP Digest (nonce with "=" padding) that ffprobe reads as a JPEG', async () => {
    const sim = await startSim();
    const snap = await camera(sim).snapshot();
    expect(snap.contentType).toBe('image/jpeg');
    const file = path.join(tmp.dir, 'got.jpg');
    writeFileSync(file, snap.body);
    const probe = await probeMedia(file, { timeoutMs: 10_000 });
    expect(probe.streams[0]).toMatchObject({ codecType: 'video', codecName: 'mjpeg', width: 320, height: 180 });
    // One challenge, one answer: credentials only ever in reply to the challenge.
    expect(sim.snapshotRequests).toBe(2);
  });
});

describe('PTZ presets', () => {
  it('lists, goes to and saves presets, with names that need escaping', async () => {
    const sim = await startSim();
    const cam = camera(sim);
    expect(await cam.presets()).toEqual([
      { token: '1', name: 'Home' },
      { token: '2', name: 'Podium & Board <1>' },
    ]);
    expect(await cam.gotoPreset('podium & board <1>')).toEqual({ token: '2', name: 'Podium & Board <1>' });
    expect(sim.currentPreset).toBe('2');
    await cam.gotoPreset('1');
    expect(sim.currentPreset).toBe('1');

    const saved = await cam.setPreset('Lectern "front" & back');
    expect(sim.presets.find((p) => p.token === saved.token)?.name).toBe('Lectern "front" & back');
    // Saving the same name again updates that preset instead of adding one.
    const again = await cam.setPreset('Lectern "front" & back');
    expect(again.token).toBe(saved.token);
    expect(sim.presets).toHaveLength(3);

    const err = await failure('CAMERA_NO_MATCH', cam.gotoPreset('Balcony'));
    expect(err.message).toMatch(/no preset "Balcony" \(it has: Home, Podium & Board <1>, Lectern "front" & back\)/);
  });
});

describe('audio configuration', () => {
  it('reads and changes the audio encoder through CameraControl', async () => {
    const sim = await startSim();
    const cam = camera(sim);
    const before = await cam.audioConfig();
    expect(before.encoder).toMatchObject({ token: 'audio_enc_1', encoding: 'G711', bitrateKbps: 64, sampleRateKhz: 8 });
    expect(before.source).toMatchObject({ token: 'audio_src_cfg', sourceToken: 'audio_in_1' });

    const after = await cam.setAudioEncoder({ encoding: 'AAC', bitrateKbps: 96, sampleRateKhz: 48 });
    expect(after).toMatchObject({ token: 'audio_enc_1', encoding: 'AAC', bitrateKbps: 96, sampleRateKhz: 48 });
    expect(sim.audioEncoders[0]).toMatchObject({ encoding: 'AAC', bitrateKbps: 96, sampleRateKhz: 48 });
    expect((await cam.audioConfig()).encoder?.encoding).toBe('AAC');
    expect(cam.profiles()[0]?.audio?.encoding).toBe('AAC');

    const err = await failure('CAMERA_FAULT', cam.setAudioEncoder({ encoding: 'AAC', sampleRateKhz: 8 }));
    expect(err.message).toMatch(/AAC supports 32\/64\/96\/128 kbit\/s at 16\/32\/48 kHz/);
  });

  it('attaches audio to a profile that has none', async () => {
    const sim = await startSim();
    const cam = camera(sim);
    expect((await cam.audioConfig('subStream')).encoder).toBeUndefined();
    await cam.setAudioEncoder({}, 'subStream');
    expect(sim.profiles[1]).toMatchObject({ audioSourceToken: 'audio_src_cfg', audioEncoderToken: 'audio_enc_1' });
    expect((await cam.audioConfig('subStream')).encoder?.token).toBe('audio_enc_1');
  });
});

describe('WS-Discovery (unicast to 127.0.0.1 only)', () => {
  it('finds the simulator with a unicast probe', async () => {
    const sim = await startSim();
    const found = await probeAddress('127.0.0.1', sim.discoveryPort, { timeoutMs: 2000, logger });
    expect(found).toEqual([
      {
        endpoint: sim.endpoint,
        xaddrs: [sim.deviceUrl],
        name: 'Lectern Simulator',
        hardware: 'SIM-1',
        scopes: expect.arrayContaining(['onvif://www.onvif.org/location/room-101']) as unknown as string[],
        from: '127.0.0.1',
      },
    ]);
    // The address it gives is one OnvifCamera can use as is.
    await camera({ address: found[0]?.xaddrs[0] as string }).connect();
  });

  it('returns nothing after the timeout when no camera answers', async () => {
    const sim = await startSim();
    const port = sim.discoveryPort;
    await sim.stop();
    const started = Date.now();
    expect(await probeAddress('127.0.0.1', port, { timeoutMs: 400, logger })).toEqual([]);
    expect(Date.now() - started).toBeGreaterThanOrEqual(390);
  });
});
