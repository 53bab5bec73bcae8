import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { checkVideoDevice, Microphone } from '../../src/capture/localDevices.js';
import { validateConfig } from '../../src/config/load.js';
import { buildCaptureArgs } from '../../src/ffmpeg/captureArgs.js';
import { buildLevelTestArgs } from '../../src/ffmpeg/levelArgs.js';
import { alsaCardId, buildGainArgs, setCaptureGain, type GainSetting } from '../../src/ffmpeg/mixer.js';
import { createMemoryLogger } from '../../src/log/logger.js';
import { isLecternError } from '../../src/util/errors.js';
import { makeTmpDir } from '../helpers/tmp.js';

// Local capture devices: V4L2 cameras and ALSA microphones. This machine has neither a video
// device nor a sound card, so the argv is tested as data here and the microphone path for real in
// tests/integration/capture-mic.test.ts (through ALSA's file plugin).

const out = { runDir: '/data/run-0001', segmentSeconds: 10, format: 'mpegts' as const };
const mic = { device: 'plughw:CARD=USB,DEV=0', channels: 1, sampleRate: 48000 };
const v4l2 = { kind: 'v4l2' as const, device: '/dev/v4l/by-id/usb-Cam-video-index0', width: 1280, height: 720, fps: 30, crf: 23, maxBitrateKbps: 4000 };

function valueAfter(args: string[], flag: string, from = 0): string | undefined {
  const i = args.indexOf(flag, from);
  return i >= 0 ? args[i + 1] : undefined;
}

/** The options given to the input at position `n` (0-based): everything between the previous -i and its own. */
function inputOptions(args: string[], n: number): { options: string[]; url: string } {
  const at: number[] = [];
  args.forEach((a, i) => a === '-i' && at.push(i));
  const start = n === 0 ? 0 : (at[n - 1] as number) + 2;
  return { options: args.slice(start, at[n]), url: args[(at[n] as number) + 1] as string };
}

describe('V4L2 capture argv', () => {
  it('asks the device for format, size and rate, and encodes non-H.264 video with one GOP per segment', () => {
    const args = buildCaptureArgs({ ...v4l2, inputFormat: 'mjpeg' }, out);
    const input = inputOptions(args, 0);
    expect(input.url).toBe(v4l2.device);
    expect(valueAfter(input.options, '-f')).toBe('v4l2');
    expect(valueAfter(input.options, '-input_format')).toBe('mjpeg');
    expect(valueAfter(input.options, '-video_size')).toBe('1280x720');
    expect(valueAfter(input.options, '-framerate')).toBe('30');
    expect(valueAfter(args, '-c:v')).toBe('libx264');
    expect(valueAfter(args, '-preset')).toBe('veryfast');
    expect(valueAfter(args, '-tune')).toBe('zerolatency');
    // 30 fps x 10 s segments: a key frame exactly where each segment starts.
    expect(valueAfter(args, '-g')).toBe('300');
    expect(valueAfter(args, '-keyint_min')).toBe('300');
    expect(valueAfter(args, '-sc_threshold')).toBe('0');
    expect(valueAfter(args, '-crf')).toBe('23');
    expect(valueAfter(args, '-maxrate')).toBe('4000k');
    expect(args).not.toContain('-use_wallclock_as_timestamps');
    // No sound of its own: nothing audio is mapped.
    expect(args.filter((a) => a === '-map')).toHaveLength(1);
  });

  it('copies H.264 from the device, and leaves the format to the device when none is set', () => {
    const h264 = buildCaptureArgs({ ...v4l2, inputFormat: 'h264' }, out);
    expect(valueAfter(h264, '-c:v')).toBe('copy');
    expect(h264).not.toContain('libx264');
    const any = buildCaptureArgs(v4l2, out);
    expect(any).not.toContain('-input_format');
    expect(valueAfter(any, '-c:v')).toBe('libx264');
  });
});

describe('a microphone muxed with a video source', () => {
  it('opens the ALSA device as the second input and maps video from the first, audio from the mic as AAC 48 kHz', () => {
    const args = buildCaptureArgs({ kind: 'rtsp', url: 'rtsp://cam/s', timeoutMs: 5000, copyAudio: true, mic }, out);
    const second = inputOptions(args, 1);
    expect(second.url).toBe(mic.device);
    expect(valueAfter(second.options, '-f')).toBe('alsa');
    expect(valueAfter(second.options, '-channels')).toBe('1');
    expect(valueAfter(second.options, '-sample_rate')).toBe('48000');
    expect(Number(valueAfter(second.options, '-thread_queue_size'))).toBeGreaterThanOrEqual(1024);
    const maps = args.flatMap((a, i) => (a === '-map' ? [args[i + 1]] : []));
    expect(maps).toEqual(['0:v:0', '1:a:0']);
    // The camera's AAC is not what is recorded, so "copy the audio" no longer applies.
    expect(valueAfter(args, '-c:a')).toBe('aac');
    expect(valueAfter(args, '-ar')).toBe('48000');
    // Both inputs on the wall clock: the camera's, given to it; ALSA's, its own.
    expect(valueAfter(inputOptions(args, 0).options, '-use_wallclock_as_timestamps')).toBe('1');
    expect(second.options).not.toContain('-use_wallclock_as_timestamps');
  });

  it('puts a V4L2 device on the wall clock too when paired with a mic', () => {
    const args = buildCaptureArgs({ ...v4l2, mic }, out);
    expect(valueAfter(inputOptions(args, 0).options, '-use_wallclock_as_timestamps')).toBe('1');
    expect(inputOptions(args, 1).url).toBe(mic.device);
    expect(args.flatMap((a, i) => (a === '-map' ? [args[i + 1]] : []))).toEqual(['0:v:0', '1:a:0']);
  });

  it('measures the microphone, not the camera, in the monitor output', () => {
    const monitor = { fd: 3, audioLevels: true, freezeSeconds: 0, freezeNoiseDb: -40, black: false };
    const withMic = buildCaptureArgs({ kind: 'rtsp', url: 'rtsp://cam/s', timeoutMs: 5000, mic }, out, monitor);
    const second = withMic.slice(withMic.indexOf(`${out.runDir}/seg_%05d.ts`) + 1);
    expect(valueAfter(second, '-map')).toBe('1:a:0');
    const without = buildCaptureArgs({ kind: 'rtsp', url: 'rtsp://cam/s', timeoutMs: 5000 }, out, monitor);
    expect(valueAfter(without.slice(without.indexOf(`${out.runDir}/seg_%05d.ts`) + 1), '-map')).toBe('0:a:0?');
  });

  it('level-tests a source with a mic through the mic', () => {
    const args = buildLevelTestArgs({ kind: 'rtsp', url: 'rtsp://cam/s', timeoutMs: 5000, mic }, 5);
    expect(inputOptions(args, 0).url).toBe(mic.device);
    expect(valueAfter(args, '-f')).toBe('alsa');
    expect(args).not.toContain('rtsp://cam/s');
  });
});

describe('the microphone configuration', () => {
  const withSources = (sources: unknown[]) => validateConfig({ sources });
  const problems = (sources: unknown[]): string[] => {
    const r = withSources(sources);
    return r.ok ? [] : r.problems;
  };
  const cam = { kind: 'rtsp', name: 'front', url: 'rtsp://192.0.2.1/s' };

  it('accepts a mic by card id, with defaults', () => {
    const r = withSources([{ ...cam, audio: { kind: 'alsa', device: 'plughw:CARD=USB,DEV=0', gainPercent: 70 } }]);
    expect(r.ok && r.config.sources[0]).toMatchObject({ audio: { kind: 'alsa', device: 'plughw:CARD=USB,DEV=0', gainPercent: 70, mixerControl: 'Capture', channels: 1, sampleRate: 48000 } });
  });

  it('rejects a card number, saying why and what to write instead', () => {
    for (const device of ['hw:1,0', 'plughw:1,0', 'hw:1', 'hw:CARD=1,DEV=0']) {
      const [problem] = problems([{ ...cam, audio: { kind: 'alsa', device } }]);
      expect(problem).toMatch(/^sources\.0\.audio\.device: names the sound card by its number .*changes when the PC restarts.*card id instead, e\.g\. "plughw:CARD=USB,DEV=0"/);
    }
  });

  it('rejects a gain on a device whose card is not named, an unknown audio kind, and out-of-range values', () => {
    expect(problems([{ ...cam, audio: { kind: 'alsa', device: 'default', gainPercent: 50 } }])).toEqual([
      expect.stringMatching(/^sources\.0\.audio\.gainPercent: needs a device named with its card id/),
    ]);
    expect(problems([{ ...cam, audio: { kind: 'pulse', device: 'x' } }])).toEqual([expect.stringMatching(/^sources\.0\.audio\.kind: unknown audio kind "pulse"; expected one of alsa/)]);
    expect(problems([{ ...cam, audio: { kind: 'alsa', device: 'plughw:CARD=USB,DEV=0', gainPercent: 150 } }])).toEqual([
      'sources.0.audio.gainPercent: must be an integer between 0 and 100, got 150',
    ]);
  });

  it('allows one microphone, on the source whose sound is packaged', () => {
    const micCfg = { kind: 'alsa', device: 'plughw:CARD=USB,DEV=0' };
    expect(problems([{ ...cam, audio: micCfg }, { kind: 'v4l2', name: 'desk', device: '/dev/video0', role: 'presentation', audio: { ...micCfg, device: 'plughw:CARD=Mic2,DEV=0' } }])).toEqual([
      expect.stringMatching(/^sources\.1\.audio: only one source may record a microphone/),
    ]);
    expect(problems([cam, { kind: 'v4l2', name: 'desk', device: '/dev/video0', audio: micCfg }])).toEqual([
      expect.stringMatching(/^sources\.1\.audio: the lecture's sound is taken from source "front"/),
    ]);
  });

  it('checks the V4L2 source fields', () => {
    expect(problems([{ kind: 'v4l2', name: 'desk', device: 'video0' }])).toEqual([expect.stringMatching(/^sources\.0\.device: must be a device path/)]);
    expect(problems([{ kind: 'v4l2', name: 'desk', device: '/dev/video0', inputFormat: 'rgb24' }])).toEqual([expect.stringMatching(/^sources\.0\.inputFormat: must be one of "mjpeg", "h264", "yuyv422"/)]);
  });
});

describe('the capture gain through the ALSA mixer', () => {
  it('builds amixer argv for the card by id, turning capture on', () => {
    expect(alsaCardId('plughw:CARD=USB,DEV=0')).toBe('USB');
    expect(alsaCardId('dsnoop:CARD=PCH')).toBe('PCH');
    expect(alsaCardId('default')).toBeUndefined();
    expect(buildGainArgs({ cardId: 'USB', control: 'Capture', percent: 80 })).toEqual(['-q', '-D', 'hw:CARD=USB', 'sset', 'Capture', '80%', 'cap']);
  });

  it('reports a missing amixer as a reason, without throwing', async () => {
    const result = await setCaptureGain({ cardId: 'USB', control: 'Capture', percent: 80 }, { command: 'lectern-no-such-amixer' });
    expect(result).toEqual({ ok: false, reason: 'lectern-no-such-amixer is not installed (Debian package alsa-utils)' });
  });

  it('reports a failing amixer with its exit code and message (node stands in for it)', async () => {
    // A real process that fails the way amixer does without the card.
    const result = await setCaptureGain({ cardId: 'USB', control: 'Capture', percent: 80 }, { command: process.execPath });
    expect(result.ok).toBe(false);
    expect(!result.ok && result.reason).toMatch(/exited with code \d+/);
  });
});

describe('Microphone before each run', () => {
  const tmp = makeTmpDir('lectern-local-capture-');
  afterAll(() => tmp.cleanup());

  function asound(cards: string[]): string {
    const dir = path.join(tmp.dir, `asound-${cards.join('-') || 'none'}`);
    mkdirSync(dir, { recursive: true });
    writeFileSync(path.join(dir, 'cards'), cards.map((c, i) => ` ${i} [${c}]: USB-Audio - ${c}\n`).join(''));
    for (const c of cards) mkdirSync(path.join(dir, c), { recursive: true });
    return dir;
  }

  it('fails the run with CAPTURE_DEVICE_MISSING naming the device when its card is gone', async () => {
    const { logger } = createMemoryLogger('debug');
    const m = new Microphone({ ...mic, gainPercent: 80, mixerControl: 'Capture' }, { source: 'front', logger, asoundDir: asound(['PCH']) });
    const err: unknown = await m.prepare().catch((e: unknown) => e);
    expect(isLecternError(err, 'CAPTURE_DEVICE_MISSING')).toBe(true);
    expect(String((err as Error).message)).toContain('plughw:CARD=USB,DEV=0');
    expect((err as { details: unknown }).details).toMatchObject({ device: 'plughw:CARD=USB,DEV=0', cardId: 'USB' });
  });

  it('sets the gain at every run, and a mixer that keeps failing warns once', async () => {
    const { logger, lines } = createMemoryLogger('debug');
    const calls: GainSetting[] = [];
    let fail = true;
    const m = new Microphone(
      { ...mic, gainPercent: 65, mixerControl: 'Mic' },
      { source: 'front', logger, asoundDir: asound(['USB']), setGain: async (s) => (calls.push(s), fail ? { ok: false, reason: 'amixer is not installed' } : { ok: true }) },
    );
    await m.prepare();
    await m.prepare();
    await m.prepare();
    expect(calls).toEqual(Array(3).fill({ cardId: 'USB', control: 'Mic', percent: 65 }));
    const warnings = () => lines.filter((l) => l.includes('cannot set the capture gain'));
    expect(warnings()).toHaveLength(1);
    expect(warnings()[0]).toContain("cannot set the capture gain to 65% (amixer is not installed); recording at the mixer's current level");
    fail = false;
    await m.prepare();
    fail = true;
    await m.prepare();
    // After it worked again, a new failure is news.
    expect(warnings()).toHaveLength(2);
  });

  it('throws CAPTURE_DEVICE_MISSING for a missing video device', async () => {
    const err: unknown = await checkVideoDevice('desk', '/dev/lectern-no-such-video9').catch((e: unknown) => e);
    expect(isLecternError(err, 'CAPTURE_DEVICE_MISSING')).toBe(true);
    expect((err as Error).message).toContain('/dev/lectern-no-such-video9');
  });
});
