import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { probeMedia } from '../../src/ffmpeg/ffprobe.js';
import { runFfmpeg } from '../../src/ffmpeg/run.js';
import { createMemoryLogger, silentLogger } from '../../src/log/logger.js';
import { Packager, type PackageSegment } from '../../src/transcode/packager.js';
import { recordSegments as recordMedia, testPackagerSettings } from '../helpers/media.js';
import { makeTmpDir } from '../helpers/tmp.js';

// Real ffmpeg end to end: recorded-like MPEG-TS segments in, an HLS package with loudness
// normalisation, poster and thumbnails out, measured with ffmpeg's own EBU R128 meter.

const tmp = makeTmpDir();
afterAll(() => tmp.cleanup());

function recordSegments(name: string, seconds: number, volumeDb: number, extra: { segmentSeconds?: number; cameraPreset?: string } = {}): Promise<PackageSegment[]> {
  return recordMedia(path.join(tmp.dir, name), { seconds, volumeDb, ...extra });
}

async function integratedLufs(file: string): Promise<number> {
  const exit = await runFfmpeg({
    label: 'ebur128',
    logger: silentLogger,
    stderrRingLines: 400,
    args: ['-hide_banner', '-nostats', '-loglevel', 'info', '-progress', 'pipe:1', '-i', file, '-vn', '-af', 'ebur128', '-f', 'null', '-'],
  });
  // The summary at the end: "Integrated loudness:" then "I:         -16.0 LUFS".
  const summary = exit.stderrTail.slice(exit.stderrTail.findIndex((l) => l.includes('Integrated loudness')));
  const line = summary.find((l) => /^\s*I:\s+-?[\d.]+ LUFS/.test(l));
  if (!line) throw new Error(`no integrated loudness in ebur128 output:\n${exit.stderrTail.slice(-15).join('\n')}`);
  return Number(/(-?[\d.]+) LUFS/.exec(line)?.[1]);
}

function packager(hardware?: { encoder: 'vaapi' | 'qsv'; device: string }) {
  const { logger, lines } = createMemoryLogger('info');
  return {
    lines,
    packager: new Packager({
      logger,
      settings: testPackagerSettings({
        renditions: [
          { name: '240p', height: 240, videoBitrateKbps: 300, crf: 28 },
          { name: '144p', height: 144, videoBitrateKbps: 120, crf: 30 },
        ],
        thumbnailIntervalSeconds: 2,
        ...(hardware ? { hardware } : {}),
      }),
    }),
  };
}

const baseInput = {
  agent: { id: 'test', version: '0' },
  site: 'site',
  room: 'room',
  title: 'Loudness',
  course: null,
  teacher: null,
  startedAtMs: Date.UTC(2026, 10, 28, 9),
  endedAtMs: Date.UTC(2026, 10, 28, 9, 1),
  source: { name: 'presenter', role: 'presenter' as const },
  runs: [{ run: 1, startedAtMs: 0, endedAtMs: 20_000, endReason: 'stopped' }],
};

describe('Packager', () => {
  for (const [label, volumeDb, id] of [
    ['a quiet microphone', -24, '01JQUIET0000000000000000AA'],
    ['a loud microphone', 14, '01JLOUD00000000000000000AA'],
  ] as const) {
    it(`brings ${label} to -16 LUFS (±1) with one linear gain`, async () => {
      const segments = await recordSegments(id, 20, volumeDb);
      const { packager: p } = packager();
      const out = path.join(tmp.dir, `pkg-${id}`);
      const built = await p.build({ ...baseInput, lectureId: id, segments }, { stagingDir: `${out}.building`, finalDir: out });
      expect(built.manifest.loudness?.normalization).toBe('linear');
      // The inputs really are far from the target on either side, so the gain did the work.
      const input = built.manifest.loudness?.inputIntegratedLufs ?? 0;
      if (volumeDb < 0) expect(input).toBeLessThan(-30);
      else expect(input).toBeGreaterThan(-12);
      const measured = await integratedLufs(path.join(out, 'hls/audio/index.m3u8'));
      expect(Math.abs(measured - -16)).toBeLessThanOrEqual(1);
      // The 240p rendition carries the same normalised audio group, and lasts as long as the recording.
      const probe = await probeMedia(path.join(out, 'hls/240p/index.m3u8'), { timeoutMs: 30_000 });
      expect(Math.abs((probe.durationSeconds ?? 0) - 20)).toBeLessThanOrEqual(0.5);
    });
  }

  it('writes a poster and seek-bar thumbnails that the manifest lists and a VTT track maps', async () => {
    const id = '01JTHUMBS000000000000000AA';
    const segments = await recordSegments(id, 12, 0);
    const out = path.join(tmp.dir, `pkg-${id}`);
    const { manifest } = await packager().packager.build({ ...baseInput, lectureId: id, segments }, { stagingDir: `${out}.building`, finalDir: out });
    expect(manifest.poster).toBe('poster.jpg');
    const poster = await probeMedia(path.join(out, 'poster.jpg'), { timeoutMs: 10_000 });
    expect(poster.streams[0]?.codecName).toBe('mjpeg');
    expect(poster.streams[0]?.height).toBe(240);

    // 12 s at one thumbnail per 2 s = 6 tiles on one 5x5 sheet of 160x120 tiles.
    expect(manifest.thumbnails).toEqual({ vtt: 'thumbs/thumbs.vtt', intervalSeconds: 2, width: 160, height: 120, sprites: ['thumbs/sprite_001.jpg'] });
    const sheet = await probeMedia(path.join(out, 'thumbs/sprite_001.jpg'), { timeoutMs: 10_000 });
    expect([sheet.streams[0]?.width, sheet.streams[0]?.height]).toEqual([800, 600]);
    const vtt = readFileSync(path.join(out, 'thumbs/thumbs.vtt'), 'utf8');
    expect(vtt.startsWith('WEBVTT\n')).toBe(true);
    expect(vtt).toContain('00:00:00.000 --> 00:00:02.000\nsprite_001.jpg#xywh=0,0,160,120');
    expect(vtt).toContain('00:00:10.000 --> 00:00:12.000\nsprite_001.jpg#xywh=0,120,160,120');
    for (const f of ['poster.jpg', 'thumbs/thumbs.vtt', 'thumbs/sprite_001.jpg']) expect(manifest.files.map((x) => x.path)).toContain(f);
  });

  it('packages a silent recording without amplifying it, and says so', async () => {
    const id = '01JSILENT000000000000000AA';
    const segments = await recordSegments(id, 8, -200);
    const out = path.join(tmp.dir, `pkg-${id}`);
    const { packager: p, lines } = packager();
    const { manifest } = await p.build({ ...baseInput, lectureId: id, segments, runs: [] }, { stagingDir: `${out}.building`, finalDir: out });
    expect(manifest.loudness?.normalization).toBe('none');
    expect(lines.some((l) => l.includes('silent or could not be measured'))).toBe(true);
  });

  // No GPU here: both fallback paths of the hardware encoder run for real.
  it('falls back to libx264 when the hardware device is absent, and when the hardware encode fails', async () => {
    const id = '01JHWFALLBACK0000000000000';
    const segments = await recordSegments(id, 6, 0);
    for (const [device, expected] of [
      ['/dev/dri/absent-render-node', 'does not exist; packaging'],
      // /dev/null exists but is no DRM device: ffmpeg's VAAPI init fails, as with a broken driver.
      ['/dev/null', 'hardware encoder vaapi failed'],
    ] as const) {
      const out = path.join(tmp.dir, `pkg-${id}-${path.basename(device)}`);
      const { packager: p, lines } = packager({ encoder: 'vaapi', device });
      const { manifest } = await p.build({ ...baseInput, lectureId: id, segments, runs: [] }, { stagingDir: `${out}.building`, finalDir: out });
      expect(lines.filter((l) => l.includes(expected))).toHaveLength(1);
      expect(manifest.renditions.filter((r) => r.kind === 'video').map((r) => r.height)).toEqual([240, 144]);
      expect(manifest.renditions[0]?.codecs).toMatch(/^avc1\.4d/);
    }
  });

  it('joins many segments without padding: every rendition lasts what was recorded, audio as long as video', async () => {
    const id = '01JMANYJOINS00000000000000';
    // 2 s segments with B-frames (video starts a few frames after audio in each file): 15 joins.
    // Joining by file length used to add that delay at every join (about a second here).
    const segments = await recordSegments(id, 30, 0, { segmentSeconds: 2, cameraPreset: 'veryfast' });
    expect(segments.length).toBeGreaterThanOrEqual(14);
    const recorded = segments.reduce((sum, s) => sum + s.durationSeconds, 0);
    const out = path.join(tmp.dir, `pkg-${id}`);
    const { manifest } = await packager().packager.build({ ...baseInput, lectureId: id, segments, runs: [] }, { stagingDir: `${out}.building`, finalDir: out });
    for (const r of manifest.renditions) expect(Math.abs(r.durationSeconds - recorded), r.name).toBeLessThan(0.15);
  });
});
