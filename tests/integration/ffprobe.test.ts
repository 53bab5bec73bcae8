import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { decodeCheck, parseProbeJson, probeMedia } from '../../src/ffmpeg/ffprobe.js';
import { isLecternError } from '../../src/util/errors.js';

let dir: string;
let good: string;
let truncated: string;

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lectern-'));
  good = path.join(dir, 'lecture.mp4');
  // Generated with ffmpeg directly (not through the code under test): 2.0 s of 320x240 H.264 at
  // 25 fps plus 48 kHz mono AAC, plain (non-fragmented) MP4 so the moov atom is at the end.
  execFileSync('ffmpeg', [
    '-nostdin', '-hide_banner', '-loglevel', 'error',
    '-f', 'lavfi', '-i', 'testsrc=size=320x240:rate=25',
    '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000',
    '-t', '2', '-c:v', 'libx264', '-preset', 'ultrafast', '-c:a', 'aac', '-shortest', good,
  ]);
  truncated = path.join(dir, 'truncated.mp4');
  const bytes = fs.readFileSync(good);
  fs.writeFileSync(truncated, bytes.subarray(0, Math.floor(bytes.length / 2)));
});

afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('probeMedia', () => {
  it('reads the duration, format and streams of a generated file', async () => {
    const probe = await probeMedia(good, { timeoutMs: 10_000 });
    expect(probe.durationSeconds).toBeDefined();
    expect(Math.abs((probe.durationSeconds ?? 0) - 2)).toBeLessThanOrEqual(0.1);
    expect(probe.formatName).toContain('mp4');
    expect(probe.bitRate).toBeGreaterThan(0);
    expect(probe.streams).toHaveLength(2);
    expect(probe.streams[0]).toMatchObject({ index: 0, codecType: 'video', codecName: 'h264', width: 320, height: 240, frameRate: 25 });
    expect(probe.streams[1]).toMatchObject({ index: 1, codecType: 'audio', codecName: 'aac', sampleRate: 48000, channels: 1 });
    expect(Math.abs((probe.streams[0]?.durationSeconds ?? 0) - 2)).toBeLessThanOrEqual(0.1);
  });

  it('reads a relative path and a name that starts with a dash', async () => {
    const dashed = path.join(dir, '-dashed.mp4');
    fs.copyFileSync(good, dashed);
    const probe = await probeMedia(path.relative(process.cwd(), dashed), { timeoutMs: 10_000 });
    expect(probe.streams.map((s) => s.codecType)).toEqual(['video', 'audio']);
  });

  it('fails with FFPROBE_FAILED and ffprobe\'s reason on a garbage file', async () => {
    const garbage = path.join(dir, 'garbage.ts');
    fs.writeFileSync(garbage, Buffer.from('this is not a video file, just text pretending to be one\n'.repeat(50)));
    const error: unknown = await probeMedia(garbage, { timeoutMs: 10_000 }).catch((err: unknown) => err);
    expect(isLecternError(error, 'FFPROBE_FAILED')).toBe(true);
    expect((error as Error).message).toContain('Invalid data found when processing input');
  });

  it('fails with FFPROBE_FAILED on an MP4 cut before its moov atom', async () => {
    const error: unknown = await probeMedia(truncated, { timeoutMs: 10_000 }).catch((err: unknown) => err);
    expect(isLecternError(error, 'FFPROBE_FAILED')).toBe(true);
    expect((error as Error).message).toContain('moov atom not found');
  });

  it('fails with FFPROBE_TIMEOUT when the source never answers', async () => {
    const sockets = new Set<net.Socket>();
    const server = net.createServer((s: net.Socket) => {
      sockets.add(s);
      s.on('error', () => undefined);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as net.AddressInfo;
    try {
      const startedAt = Date.now();
      const error: unknown = await probeMedia(`tcp://127.0.0.1:${port}`, { timeoutMs: 700 }).catch((err: unknown) => err);
      expect(isLecternError(error, 'FFPROBE_TIMEOUT')).toBe(true);
      expect(Date.now() - startedAt).toBeGreaterThanOrEqual(650);
      expect(Date.now() - startedAt).toBeLessThan(3000);
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it('fails with FFMPEG_NOT_FOUND when ffprobe is missing', async () => {
    const error: unknown = await probeMedia(good, { timeoutMs: 5000, command: path.join(dir, 'no-ffprobe') }).catch((err: unknown) => err);
    expect(isLecternError(error, 'FFMPEG_NOT_FOUND')).toBe(true);
  });
});

describe('decodeCheck', () => {
  it('returns no errors for a file that decodes cleanly', async () => {
    expect(await decodeCheck(good, { timeoutMs: 10_000 })).toEqual([]);
  });

  it('returns ffmpeg\'s error lines for a truncated MP4', async () => {
    const errors = await decodeCheck(truncated, { timeoutMs: 10_000 });
    // ffmpeg 5.1: the demuxer complains, then opening the input fails.
    expect(errors).toHaveLength(2);
    expect(errors[0]).toMatch(/moov atom not found$/);
    expect(errors[1]).toBe(`${truncated}: Invalid data found when processing input`);
  });
});

describe('parseProbeJson', () => {
  it('maps N/A and 0/0 to undefined and unknown codec types to unknown', () => {
    const probe = parseProbeJson(
      JSON.stringify({
        format: { format_name: 'mpegts', duration: 'N/A' },
        streams: [{ index: 0, codec_type: 'weird', r_frame_rate: '0/0', avg_frame_rate: '30000/1001', sample_rate: '0' }],
      }),
    );
    expect(probe).toStrictEqual({
      durationSeconds: undefined,
      formatName: 'mpegts',
      streams: [{ index: 0, codecType: 'unknown', codecName: '', frameRate: 30000 / 1001 }],
    });
  });

  it('throws on output without a format object', () => {
    expect(() => parseProbeJson('{"streams": []}')).toThrow('no "format" object');
    expect(() => parseProbeJson('{not json')).toThrow();
  });
});
