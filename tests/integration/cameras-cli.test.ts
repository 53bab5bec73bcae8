import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { probeMedia } from '../../src/ffmpeg/ffprobe.js';
import { LECTERN_BIN, runCli } from '../helpers/cli.js';
import { makeTmpDir } from '../helpers/tmp.js';
import { makeTestJpeg, OnvifSimulator } from '../peers/onvifSimulator.js';

/**
 * `lectern cameras ...` run as a separate process (the built CLI, as a person would run it)
 * against the ONVIF simulator on 127.0.0.1, whose clock is 2 hours ahead. Discovery is unicast
 * to the simulator only. The password must never appear in anything the CLI prints.
 */

const PASSWORD = 'Cl!-S3cret&<pw>"x';
const RTSP_MAIN = 'rtsp://127.0.0.1:8554/main';
const RTSP_SUB = 'rtsp://127.0.0.1:8554/sub';

const tmp = makeTmpDir('lectern-cameras-cli-');
let sim: OnvifSimulator;
let configFile: string;
let passwordFile: string;
const outputs: string[] = [];

async function lectern(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const result = await runCli(['--config', configFile, ...args], { env: { LECTERN_CONFIG: undefined } });
  outputs.push(result.stdout, result.stderr);
  return result;
}

beforeAll(async () => {
  if (!existsSync(path.join(path.dirname(LECTERN_BIN), '../dist/cli/main.js'))) throw new Error('run `npm run build` first: these tests run the built CLI');
  const jpeg = await makeTestJpeg(path.join(tmp.dir, 'source.jpg'));
  sim = new OnvifSimulator({ username: 'admin', password: PASSWORD, rtspUrl: { profile_main: RTSP_MAIN, profile_sub: RTSP_SUB }, snapshotJpeg: jpeg, clockOffsetMs: 2 * 3600_000 });
  await sim.start();
  passwordFile = path.join(tmp.dir, 'front.password');
  writeFileSync(passwordFile, `${PASSWORD}\n`, { mode: 0o600 });
  configFile = path.join(tmp.dir, 'lectern.yaml');
  writeFileSync(
    configFile,
    [
      'agent:',
      `  dataDir: ${path.join(tmp.dir, 'data')}`,
      'sources:',
      '  - kind: onvif',
      '    name: front',
      `    address: ${sim.address}`,
      '    username: admin',
      `    passwordFile: ${passwordFile}`,
      '    profile: 640x360',
      '    timeoutMs: 3000',
      '  - kind: rtsp',
      '    name: board',
      '    role: presentation',
      '    url: rtsp://127.0.0.1:8554/board',
      '',
    ].join('\n'),
  );
});

afterAll(async () => {
  await sim?.stop();
  tmp.cleanup();
  expect(outputs.length).toBeGreaterThan(10);
  expect(outputs.filter((o) => o.includes(PASSWORD) || o.includes(encodeURIComponent(PASSWORD)))).toEqual([]);
});

describe('lectern cameras', () => {
  it('config check accepts the onvif source', async () => {
    const r = await lectern('config', 'check');
    expect(r.code, r.stderr).toBe(0);
  });

  it('discover --address finds the simulator by unicast', async () => {
    const json = await lectern('cameras', 'discover', '--address', `127.0.0.1:${sim.discoveryPort}`, '--json');
    expect(json.code, json.stderr).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual([expect.objectContaining({ endpoint: sim.endpoint, xaddrs: [sim.deviceUrl], name: 'Lectern Simulator', hardware: 'SIM-1' })]);
    const text = await lectern('cameras', 'discover', '--address', `127.0.0.1:${sim.discoveryPort}`);
    expect(text.stdout).toMatch(/Found 1 camera:\nNAME +HARDWARE +ADDRESS +ENDPOINT\nLectern Simulator +SIM-1 +http:\/\/127\.0\.0\.1:\d+\/onvif\/device_service +urn:uuid:/);
  });

  it('probe shows device, clock, profiles, the stream with the password redacted, and presets', async () => {
    const r = await lectern('cameras', 'probe', 'front');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`Camera front (${sim.deviceUrl})`);
    expect(r.stdout).toContain('device:   Lectern Test & Co SIM-1, firmware 1.0.0, serial 0001');
    expect(r.stdout).toMatch(/clock: +camera is 2\.0 h ahead of this PC/);
    expect(r.stdout).toContain('    mainStream [profile_main]: 1280x720 H264 25 fps 2048 kbit/s, audio G711 64 kbit/s 8 kHz, PTZ');
    expect(r.stdout).toContain('  * subStream [profile_sub]: 640x360 H264 15 fps 512 kbit/s, no audio, PTZ');
    expect(r.stdout).toContain('stream:   rtsp://admin:***@127.0.0.1:8554/sub  (profile subStream)');
    expect(r.stdout).toContain('presets:  1 "Home", 2 "Podium & Board <1>"');
  });

  it('probe works by address with --user and --password-file, as JSON', async () => {
    const r = await lectern('cameras', 'probe', sim.address, '--user', 'admin', '--password-file', passwordFile, '--profile', 'mainStream', '--json');
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { streamUri: string; selectedProfile: string; profiles: unknown[]; clockOffsetMs: number; presets: unknown[] };
    expect(out).toMatchObject({ streamUri: 'rtsp://admin:***@127.0.0.1:8554/main', selectedProfile: 'profile_main' });
    expect(out.profiles).toHaveLength(2);
    expect(out.presets).toHaveLength(2);
    expect(Math.abs(out.clockOffsetMs - 2 * 3600_000)).toBeLessThan(2000);
  });

  it('a wrong password is an authentication error (exit 3) that shows no password', async () => {
    const wrongFile = path.join(tmp.dir, 'wrong.password');
    writeFileSync(wrongFile, 'Wrong-Passw0rd-123', { mode: 0o600 });
    const r = await lectern('cameras', 'probe', sim.address, '--user', 'admin', '--password-file', wrongFile);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/CAMERA_AUTH_FAILED: the camera at http:\/\/127\.0\.0\.1:\d+\/onvif\/device_service refused user "admin"/);
    expect(`${r.stdout}${r.stderr}`).not.toContain('Wrong-Passw0rd-123');
  });

  it('refuses a password file others can read (exit 2), and unknown or non-ONVIF sources (exit 1)', async () => {
    const open = path.join(tmp.dir, 'open.password');
    writeFileSync(open, PASSWORD);
    chmodSync(open, 0o644);
    const insecure = await lectern('cameras', 'probe', sim.address, '--user', 'admin', '--password-file', open);
    expect(insecure.code).toBe(2);
    expect(insecure.stderr).toMatch(/SECRET_INSECURE: .*chmod 600/);
    const rtsp = await lectern('cameras', 'probe', 'board');
    expect(rtsp.code).toBe(1);
    expect(rtsp.stderr).toContain('source "board" is of kind rtsp, not an ONVIF camera');
    const unknown = await lectern('cameras', 'probe', 'nosuch');
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('"nosuch" is neither a configured onvif source nor host[:port]');
  });

  it('snapshot writes a JPEG that ffprobe reads', async () => {
    const file = path.join(tmp.dir, 'snap.jpg');
    const r = await lectern('cameras', 'snapshot', 'front', '-o', file);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/wrote .*snap\.jpg \(\d+ bytes, image\/jpeg\)/);
    const probe = await probeMedia(file, { timeoutMs: 10_000 });
    expect(probe.streams[0]).toMatchObject({ codecName: 'mjpeg', width: 320, height: 180 });
    expect(readFileSync(file).subarray(0, 2)).toEqual(Buffer.from([0xff, 0xd8]));
  });

  it('preset moves to a preset by name, saves one, and names the presets when one is missing', async () => {
    const goto = await lectern('cameras', 'preset', 'front', 'Podium & Board <1>');
    expect(goto.code, goto.stderr).toBe(0);
    expect(goto.stdout).toContain('moving to preset "Podium & Board <1>" (token 2)');
    expect(sim.currentPreset).toBe('2');
    const save = await lectern('cameras', 'preset', 'front', 'lectern', '--save');
    expect(save.code, save.stderr).toBe(0);
    expect(sim.presets.find((p) => p.name === 'lectern')).toBeDefined();
    const missing = await lectern('cameras', 'preset', 'front', 'Balcony');
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('CAMERA_NO_MATCH: the camera has no preset "Balcony" (it has: Home, Podium & Board <1>, lectern)');
  });

  it('audio shows and changes the audio encoder, attaching audio to a profile without any', async () => {
    const before = await lectern('cameras', 'audio', 'front');
    expect(before.stdout).toContain('profile profile_sub: no audio');
    const changed = await lectern('cameras', 'audio', 'front', '--encoding', 'AAC', '--bitrate-kbps', '64', '--sample-rate-khz', '16');
    expect(changed.code, changed.stderr).toBe(0);
    expect(changed.stdout).toContain('profile profile_sub: AAC 64 kbit/s 16 kHz (encoder audio_enc_1), source audio_in_1');
    expect(sim.audioEncoders[0]).toMatchObject({ encoding: 'AAC', bitrateKbps: 64, sampleRateKhz: 16 });
    expect(sim.profiles[1]?.audioEncoderToken).toBe('audio_enc_1');
  });
});
