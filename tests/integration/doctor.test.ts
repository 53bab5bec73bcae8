import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DoctorCheck } from '../../src/cli/commands/doctor.js';
import { LECTERN_BIN, runCli } from '../helpers/cli.js';
import { makeTmpDir } from '../helpers/tmp.js';
import { makeTestJpeg, OnvifSimulator } from '../peers/onvifSimulator.js';
import { startRtspCamera, type RtspCamera } from '../peers/rtspCamera.js';

/**
 * `lectern doctor` as a person runs it (the built CLI in its own process) against real parts:
 * ffmpeg from Debian, a FileStore folder, the ONVIF simulator with its clock 2 hours ahead, a
 * GStreamer RTSP camera, and a closed port. The S3 path against a real RADOS Gateway is in
 * doctor-s3.test.ts; here a plain HTTP server on 127.0.0.1 stands in for an S3 server whose clock
 * is 20 minutes off, which a real gateway on this machine's clock cannot be.
 */

const PASSWORD = 'D0ctor-S3cret&<pw>';
const tmp = makeTmpDir('lectern-doctor-');
let sim: OnvifSimulator;
let rtsp: RtspCamera;
let passwordFile: string;
const outputs: string[] = [];

interface DoctorJson {
  ok: boolean;
  configuration: string | null;
  checks: DoctorCheck[];
}

/** Runs `lectern doctor --json`, and with `text` also the plain output (each run is a CLI start). */
async function doctor(args: string[], opts: { cwd?: string; text?: boolean } = {}): Promise<{ code: number | null; json: DoctorJson; text: string }> {
  const env = { LECTERN_CONFIG: undefined, STATE_DIRECTORY: undefined, NOTIFY_SOCKET: undefined };
  const cwd = opts.cwd ?? tmp.dir;
  const asJson = await runCli([...args, 'doctor', '--json', '--timeout-ms', '8000'], { cwd, env });
  outputs.push(asJson.stdout, asJson.stderr);
  let text = '';
  if (opts.text) {
    const asText = await runCli([...args, 'doctor', '--timeout-ms', '8000'], { cwd, env });
    outputs.push(asText.stdout, asText.stderr);
    expect(asText.code).toBe(asJson.code);
    text = asText.stdout;
  }
  return { code: asJson.code, json: JSON.parse(asJson.stdout) as DoctorJson, text };
}

const check = (json: DoctorJson, name: string): DoctorCheck => {
  const found = json.checks.find((c) => c.name === name);
  if (!found) throw new Error(`no check named "${name}" in ${json.checks.map((c) => c.name).join(', ')}`);
  return found;
};

function writeConfig(name: string, lines: string[]): string {
  const file = path.join(tmp.dir, name);
  writeFileSync(file, [...lines, ''].join('\n'));
  return file;
}

beforeAll(async () => {
  if (!existsSync(path.join(path.dirname(LECTERN_BIN), '../dist/cli/main.js'))) throw new Error('run `npm run build` first: these tests run the built CLI');
  const jpeg = await makeTestJpeg(path.join(tmp.dir, 'source.jpg'));
  sim = new OnvifSimulator({ username: 'admin', password: PASSWORD, rtspUrl: 'rtsp://127.0.0.1:8554/main', snapshotJpeg: jpeg, clockOffsetMs: 2 * 3600_000 });
  await sim.start();
  rtsp = await startRtspCamera({ width: 160, height: 120, fps: 5, audio: 'none' });
  passwordFile = path.join(tmp.dir, 'front.password');
  writeFileSync(passwordFile, `${PASSWORD}\n`, { mode: 0o600 });
});

afterAll(async () => {
  await sim?.stop();
  await rtsp?.stop();
  tmp.cleanup();
  // Whatever the doctor printed, the camera password never appears in it.
  for (const out of outputs) expect(out).not.toContain(PASSWORD);
});

describe('lectern doctor', () => {
  it('passes on the built-in defaults: synthetic camera and a folder store', async () => {
    const cwd = path.join(tmp.dir, 'defaults');
    mkdirSync(cwd);
    const { code, json, text } = await doctor([], { cwd, text: true });
    expect(code).toBe(0);
    expect(json.ok).toBe(true);
    expect(json.configuration).toBe('(built-in defaults)');
    expect(json.checks.map((c) => c.name)).toEqual(['ffmpeg', 'ffprobe', 'source presenter', 'storage', 'disk', 'time sync']);
    // The version is the one Debian's ffmpeg reports, not a made-up string.
    const banner = execFileSync('ffmpeg', ['-version'], { encoding: 'utf8' }).split('\n')[0] ?? '';
    expect(banner).toContain(`version ${String(check(json, 'ffmpeg').details?.version)} `);
    expect(check(json, 'storage')).toMatchObject({ level: 'ok' });
    expect(check(json, 'storage').message).toContain(path.join(cwd, 'lectern-data/store'));
    const disk = check(json, 'disk');
    expect(disk.level).toBe('ok');
    expect(disk.details?.freeBytes).toBeGreaterThan(Number(disk.details?.minFreeBytes));
    // No systemd as PID 1 in this container: timedated cannot answer, and the doctor says so.
    expect(check(json, 'time sync').message).toMatch(/^(unknown|the clock is)/);
    expect(text).toMatch(/^OK\s+ffmpeg\s+ffmpeg \d/m);
    expect(text).toMatch(/^(0 failed, \d warnings?\.|All checks passed\.)$/m);
    // Checking the store did not create it (the agent does, as its own user) nor leave anything.
    expect(existsSync(path.join(cwd, 'lectern-data'))).toBe(false);
  });

  it('writes into an existing store folder only a probe it deletes again', async () => {
    const root = path.join(tmp.dir, 'store-existing');
    mkdirSync(root);
    const config = writeConfig('existing.yaml', ['agent:', '  dataDir: data-existing', 'storage:', `  root: ${root}`]);
    const { code, json } = await doctor(['--config', config]);
    expect(code).toBe(0);
    expect(check(json, 'storage')).toMatchObject({ level: 'ok', message: expect.stringContaining('is writable') as unknown });
    expect(readdirSync(root)).toEqual([]);
  });

  it('fails, with exit 3, on a store folder that cannot exist', async () => {
    const blocker = path.join(tmp.dir, 'a-file');
    writeFileSync(blocker, 'not a folder');
    const root = path.join(blocker, 'store');
    const config = writeConfig('bad-store.yaml', ['agent:', '  dataDir: data-bad', 'storage:', `  root: ${root}`]);
    const { code, json, text } = await doctor(['--config', config], { text: true });
    expect(code).toBe(3);
    expect(json.ok).toBe(false);
    const storage = check(json, 'storage');
    expect(storage.level).toBe('fail');
    expect(storage.message).toContain(root);
    expect(storage.message).toContain(`${blocker} is not a folder`);
    // The other checks still ran and passed.
    expect(check(json, 'ffmpeg').level).toBe('ok');
    expect(check(json, 'disk').level).toBe('ok');
    expect(text).toMatch(/^FAIL\s+storage\s+folder /m);
    expect(text).toMatch(/^1 failed, /m);
  });

  it('reports the free disk below the recording floor as a failure', async () => {
    const config = writeConfig('disk.yaml', ['agent:', '  dataDir: data-disk', 'capture:', `  minFreeDiskBytes: ${Number.MAX_SAFE_INTEGER}`]);
    const { code, json } = await doctor(['--config', config]);
    expect(code).toBe(3);
    expect(check(json, 'disk')).toMatchObject({ level: 'fail', message: expect.stringContaining('recordings are refused') as unknown });
  });

  it('checks each camera: the ONVIF clock offset, a wrong password, an RTSP camera and a dead one', async () => {
    const closed = net.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const closedPort = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const wrongFile = path.join(tmp.dir, 'wrong.password');
    writeFileSync(wrongFile, 'not-the-password\n', { mode: 0o600 });
    const config = writeConfig('cameras.yaml', [
      'agent:',
      '  dataDir: data-cameras',
      'sources:',
      `  - { kind: onvif, name: front, address: "${sim.address}", username: admin, passwordFile: ${passwordFile}, timeoutMs: 3000 }`,
      `  - { kind: onvif, name: wrongpw, address: "${sim.address}", username: admin, passwordFile: ${wrongFile}, timeoutMs: 3000 }`,
      `  - { kind: rtsp, name: board, role: presentation, url: "${rtsp.url}" }`,
      `  - { kind: rtsp, name: dead, role: presentation, url: "rtsp://127.0.0.1:${closedPort}/stream1" }`,
    ]);
    const { code, json } = await doctor(['--config', config]);
    expect(code).toBe(3);
    const front = check(json, 'source front');
    expect(front.level).toBe('warn');
    expect(front.message).toContain('2.0 h ahead of this PC');
    expect(Math.abs(Number(front.details?.clockOffsetMs) - 2 * 3600_000)).toBeLessThan(5_000);
    expect(check(json, 'source wrongpw')).toMatchObject({ level: 'fail', message: expect.stringContaining('CAMERA_AUTH_FAILED') as unknown });
    const board = check(json, 'source board');
    expect(board.level).toBe('ok');
    expect(board.message).toContain('answers RTSP (200)');
    expect(check(json, 'source dead')).toMatchObject({ level: 'fail', message: expect.stringContaining('ECONNREFUSED') as unknown });
  });

  it('reports a storage server whose clock is 20 minutes off', async () => {
    // Stand-in for an S3 server with a wrong clock (see the file comment): it answers every
    // request the way S3 does when the signature's time is too far from its own.
    const skewMs = -20 * 60_000;
    const server = http.createServer((req, res) => {
      req.resume();
      res.sendDate = false;
      res.writeHead(403, { Date: new Date(Date.now() + skewMs).toUTCString(), 'Content-Type': 'application/xml' });
      res.end(req.method === 'HEAD' ? undefined : '<?xml version="1.0" encoding="UTF-8"?><Error><Code>RequestTimeTooSkewed</Code><Message>The difference between the request time and the current time is too large.</Message></Error>');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const config = writeConfig('skew.yaml', ['agent:', '  dataDir: data-skew', 'storage:', '  kind: s3', `  endpoint: ${endpoint}`, '  bucket: lectures', '  accessKeyIdEnv: DOCTOR_KEY_ID', '  secretAccessKeyEnv: DOCTOR_SECRET']);
      const env = { LECTERN_CONFIG: undefined, DOCTOR_KEY_ID: 'AKIDDOCTORTEST', DOCTOR_SECRET: 'doctor-secret-value-1234' };
      const res = await runCli(['--config', config, 'doctor', '--json', '--timeout-ms', '8000'], { cwd: tmp.dir, env });
      outputs.push(res.stdout, res.stderr);
      expect(res.code).toBe(3);
      const json = JSON.parse(res.stdout) as DoctorJson;
      expect(check(json, 'storage')).toMatchObject({ level: 'fail', message: expect.stringContaining('RequestTimeTooSkewed') as unknown });
      const clock = check(json, 'storage clock');
      expect(clock.level).toBe('fail');
      expect(clock.message).toContain('20 min ahead of the storage');
      expect(Math.abs(Number(clock.details?.clockSkewMs) - skewMs)).toBeLessThan(2_000);
      expect(res.stdout + res.stderr).not.toContain('doctor-secret-value-1234');
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it('lists the configuration problems as a failure with exit 2, and still checks ffmpeg', async () => {
    const config = writeConfig('broken.yaml', ['agent:', '  dataDirr: typo']);
    const { code, json } = await doctor(['--config', config]);
    expect(code).toBe(2);
    expect(json.configuration).toBeNull();
    expect(check(json, 'configuration')).toMatchObject({ level: 'fail', message: expect.stringContaining('dataDirr') as unknown });
    expect(check(json, 'ffmpeg').level).toBe('ok');
  });
});
