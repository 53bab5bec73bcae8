import { mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parseSegmentList } from '../../src/capture/segmentList.js';
import { runFfmpeg } from '../../src/ffmpeg/run.js';
import { silentLogger } from '../../src/log/logger.js';
import type { PackagerSettings, PackageSegment } from '../../src/transcode/packager.js';
import { hashFile } from '../../src/util/hash.js';

/**
 * Writes segments the way capture does (4 s MPEG-TS with a segment list) from a synthetic
 * source, with the test tone at `volumeDb`, and returns them as the packager takes them.
 */
export async function recordSegments(dir: string, opts: { seconds: number; volumeDb?: number; width?: number; height?: number; segmentSeconds?: number; cameraPreset?: string }): Promise<PackageSegment[]> {
  mkdirSync(dir, { recursive: true });
  const size = `${opts.width ?? 320}x${opts.height ?? 240}`;
  await runFfmpeg({
    label: 'make segments',
    logger: silentLogger,
    args: [
      '-hide_banner', '-loglevel', 'error', '-progress', 'pipe:1',
      '-f', 'lavfi', '-i', `testsrc2=size=${size}:rate=25:duration=${opts.seconds}`,
      '-f', 'lavfi', '-i', `sine=frequency=300:sample_rate=48000:duration=${opts.seconds}`,
      '-af', `volume=${opts.volumeDb ?? 0}dB`,
      // ultrafast has no B-frames; a camera-like preset with B-frames delays video PTS in each segment.
      '-c:v', 'libx264', '-preset', opts.cameraPreset ?? 'ultrafast', '-g', '50', '-c:a', 'aac', '-b:a', '96k',
      '-f', 'segment', '-segment_time', String(opts.segmentSeconds ?? 4), '-reset_timestamps', '1', '-segment_format', 'mpegts',
      '-segment_list', `${dir}/segments.csv`, '-segment_list_type', 'csv', `${dir}/seg_%05d.ts`,
    ],
  });
  return segmentsOfList(dir, 1);
}

/** The segments an ffmpeg segmenter listed in `dir/segments.csv`, hashed as capture registers them. */
export function segmentsOfList(dir: string, run: number): Promise<PackageSegment[]> {
  const entries = parseSegmentList(readFileSync(`${dir}/segments.csv`, 'utf8'));
  return Promise.all(
    entries.map(async (e) => {
      const file = path.join(dir, e.fileName);
      const { sha256, bytes } = await hashFile(file);
      return { path: file, sha256, bytes, durationSeconds: e.endSeconds - e.startSeconds, run };
    }),
  );
}

/**
 * Packager settings for tests: small and fast. The production defaults differ (5 s segments,
 * the medium preset: src/config/schema.ts); tests that run the daemon use those.
 */
export function testPackagerSettings(overrides: Partial<PackagerSettings> & Pick<PackagerSettings, 'renditions'>): PackagerSettings {
  return {
    hlsSegmentSeconds: 4,
    audioBitrateKbps: 64,
    preset: 'veryfast',
    niceness: 10,
    probeTimeoutMs: 30_000,
    durationToleranceSeconds: 0.5,
    thumbnailIntervalSeconds: 10,
    ...overrides,
  };
}
