import { describe, expect, it } from 'vitest';
import { buildCaptureArgs, isMonitored, parseMonitorLine, SEGMENT_LIST_NAME } from '../../src/ffmpeg/captureArgs.js';

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

  it('copies audio the camera is known to send as AAC, and nothing else changes', () => {
    const transcoded = buildCaptureArgs({ kind: 'rtsp', url: 'rtsp://cam/stream1', timeoutMs: 5000 }, out);
    const copied = buildCaptureArgs({ kind: 'rtsp', url: 'rtsp://cam/stream1', timeoutMs: 5000, copyAudio: true }, out);
    expect(valueAfter(copied, '-c:a')).toBe('copy');
    expect(copied).not.toContain('-b:a');
    expect(transcoded.filter((a) => !['-b:a', '96k', '-ar', '48000'].includes(a)).map((a) => (a === 'aac' ? 'copy' : a))).toEqual(copied);
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

describe('buildCaptureArgs with confidence monitoring', () => {
  const monitor = { fd: 3, audioLevels: true, freezeSeconds: 30, freezeNoiseDb: -40, black: true };

  it('adds a second output that decodes, shrinks and measures, printing to the extra pipe, after the segments', () => {
    const args = buildCaptureArgs({ kind: 'rtsp', url: 'rtsp://cam/s', timeoutMs: 5000 }, out, monitor);
    const segmentsAt = args.indexOf(`${out.runDir}/seg_%05d.ts`);
    expect(segmentsAt).toBeGreaterThan(0);
    const second = args.slice(segmentsAt + 1);
    expect(second.slice(-3)).toEqual(['-f', 'null', '-']);
    expect(valueAfter(second, '-map')).toBe('0:v:0');
    const vf = valueAfter(second, '-vf') ?? '';
    // Few, small frames: the video is stream-copied into the segments, so this branch decodes.
    expect(vf).toMatch(/^fps=2,scale=64:-2,/);
    // Every frame is decoded: a decoder option would also slow the stream's probing (the start).
    expect(args).not.toContain('-skip_frame');
    expect(vf).toContain('freezedetect=n=-40dB:d=30');
    expect(vf).toContain('blackdetect=d=0');
    // The option separator in the path is escaped, and each line is written at once.
    expect(vf).toMatch(/metadata=mode=print:file='pipe\\:3':direct=1$/);
    // Audio is optional on a camera, so the measured audio is optional too.
    expect(second[second.lastIndexOf('-map') + 1]).toBe('0:a:0?');
    const af = valueAfter(second, '-af') ?? '';
    // Frames of 0.1 s; statistics over ten of them, and only every tenth printed: one level a second.
    expect(af).toContain('asetnsamples=n=1600');
    expect(af).toContain('astats=metadata=1:reset=10:');
    expect(af).toContain("aselect='eq(mod(n,10),9)'");
    expect(af).toMatch(/ametadata=mode=print:key=lavfi\.astats\.Overall\.RMS_level:file='pipe\\:3':direct=1$/);
    // Nothing of the recording changes: its codec options come before the segment output.
    expect(args.slice(0, segmentsAt + 1)).toEqual(buildCaptureArgs({ kind: 'rtsp', url: 'rtsp://cam/s', timeoutMs: 5000 }, out));
  });

  it('leaves out what is switched off, and does not measure the synthetic source', () => {
    const rtsp = { kind: 'rtsp' as const, url: 'rtsp://cam/s', timeoutMs: 5000 };
    const audioOnly = buildCaptureArgs(rtsp, out, { ...monitor, freezeSeconds: 0, black: false });
    const second = audioOnly.slice(audioOnly.indexOf(`${out.runDir}/seg_%05d.ts`) + 1);
    expect(second).not.toContain('-vf');
    expect(valueAfter(second, '-map')).toBe('0:a:0?');
    expect(buildCaptureArgs(rtsp, out, { ...monitor, audioLevels: false, freezeSeconds: 0, black: false }).at(-1)).toBe(`${out.runDir}/seg_%05d.ts`);
    // A generated pattern and tone: nothing to watch.
    const synthetic = { kind: 'synthetic' as const, width: 320, height: 240, fps: 25, toneHz: 440 };
    expect(isMonitored(synthetic)).toBe(false);
    expect(buildCaptureArgs(synthetic, out, monitor)).toEqual(buildCaptureArgs(synthetic, out));
  });

  it('flushes each packet to the segment file, so a killed ffmpeg leaves its media on disk', () => {
    expect(valueAfter(buildCaptureArgs({ kind: 'rtsp', url: 'rtsp://cam/s', timeoutMs: 3000 }, out), '-segment_format_options')).toBe('flush_packets=1');
    expect(valueAfter(buildCaptureArgs({ kind: 'rtsp', url: 'rtsp://cam/s', timeoutMs: 3000 }, { ...out, format: 'fmp4' }), '-segment_format_options')).toMatch(/:flush_packets=1$/);
  });
});

describe('parseMonitorLine', () => {
  it('reads levels (silence is -inf), freezes and black pictures, and ignores everything else', () => {
    expect(parseMonitorLine('lavfi.astats.Overall.RMS_level=-21.06')).toEqual({ kind: 'audioLevel', db: -21.06 });
    expect(parseMonitorLine('lavfi.astats.Overall.RMS_level=-inf')).toEqual({ kind: 'audioLevel', db: -Infinity });
    expect(parseMonitorLine('lavfi.astats.Overall.RMS_level=nan')).toBeUndefined();
    expect(parseMonitorLine('lavfi.freezedetect.freeze_start=16.0049')).toEqual({ kind: 'freezeStart' });
    expect(parseMonitorLine('lavfi.freezedetect.freeze_duration=8')).toBeUndefined();
    expect(parseMonitorLine('lavfi.freezedetect.freeze_end=24')).toEqual({ kind: 'freezeEnd' });
    expect(parseMonitorLine('lavfi.black_start=16')).toEqual({ kind: 'blackStart' });
    expect(parseMonitorLine('lavfi.black_end=24')).toEqual({ kind: 'blackEnd' });
    expect(parseMonitorLine('frame:12   pts:192000  pts_time:12')).toBeUndefined();
    expect(parseMonitorLine('')).toBeUndefined();
  });
});
