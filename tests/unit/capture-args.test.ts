import { describe, expect, it } from 'vitest';
import { buildCaptureArgs, SEGMENT_LIST_NAME } from '../../src/ffmpeg/captureArgs.js';

const out = { runDir: '/data/recordings/R/presenter/run-0001', segmentSeconds: 10, format: 'mpegts' as const };

function valueAfter(args: string[], flag: string): string | undefined {
  const i = args.indexOf(flag);
  return i >= 0 ? args[i + 1] : undefined;
}

describe('buildCaptureArgs', () => {
  it('records RTSP over TCP with a socket timeout in microseconds, copying video and transcoding audio', () => {
    const args = buildCaptureArgs({ kind: 'rtsp', url: 'rtsp://cam/stream1', timeoutMs: 5000 }, out);
    expect(valueAfter(args, '-rtsp_transport')).toBe('tcp');
    expect(valueAfter(args, '-timeout')).toBe('5000000');
    expect(args).not.toContain('-stimeout'); // removed in ffmpeg 5
    expect(valueAfter(args, '-c:v')).toBe('copy');
    expect(valueAfter(args, '-c:a')).toBe('aac');
    // Audio is optional: a camera without a microphone must still record.
    expect(args).toContain('0:a:0?');
    // The input URL comes right after -i and before any output option.
    expect(args.indexOf('-i')).toBeLessThan(args.indexOf('-f', args.indexOf('-i')));
  });

  it('writes segments with a live CSV list into the run directory and never overwrites', () => {
    const args = buildCaptureArgs({ kind: 'rtsp', url: 'rtsp://cam/s', timeoutMs: 3000 }, out);
    expect(args).toContain('-n');
    expect(args).not.toContain('-y');
    expect(valueAfter(args, '-f')).toBe('segment');
    expect(valueAfter(args, '-segment_time')).toBe('10');
    expect(valueAfter(args, '-segment_list')).toBe(`${out.runDir}/${SEGMENT_LIST_NAME}`);
    expect(valueAfter(args, '-segment_list_type')).toBe('csv');
    expect(valueAfter(args, '-segment_list_flags')).toBe('live');
    expect(valueAfter(args, '-reset_timestamps')).toBe('1');
    expect(args.at(-1)).toBe(`${out.runDir}/seg_%05d.ts`);
  });

  it('uses fragmented MP4 (survives SIGKILL) for the fmp4 format', () => {
    const args = buildCaptureArgs({ kind: 'rtsp', url: 'rtsp://cam/s', timeoutMs: 3000 }, { ...out, format: 'fmp4' });
    expect(valueAfter(args, '-segment_format')).toBe('mp4');
    expect(valueAfter(args, '-segment_format_options')).toContain('frag_keyframe');
    expect(valueAfter(args, '-segment_format_options')).toContain('empty_moov');
    expect(args.at(-1)).toMatch(/seg_%05d\.mp4$/);
  });

  it('encodes the synthetic camera in real time with a 2 s GOP, like a configured camera', () => {
    const args = buildCaptureArgs({ kind: 'synthetic', width: 640, height: 360, fps: 30, toneHz: 1000 }, out);
    expect(args.filter((a) => a === '-re')).toHaveLength(2);
    expect(args).toContain('testsrc2=size=640x360:rate=30');
    expect(args).toContain('sine=frequency=1000:sample_rate=48000');
    expect(valueAfter(args, '-g')).toBe('60');
    expect(valueAfter(args, '-keyint_min')).toBe('60');
  });

  it('asks for machine-readable progress once a second and keeps stdin open for q', () => {
    const args = buildCaptureArgs({ kind: 'synthetic', width: 320, height: 240, fps: 25, toneHz: 440 }, out);
    expect(valueAfter(args, '-progress')).toBe('pipe:1');
    expect(valueAfter(args, '-stats_period')).toBe('1');
    expect(args).toContain('-nostats');
    expect(args).not.toContain('-nostdin');
  });
});
