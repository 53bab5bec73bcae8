import { describe, expect, it } from 'vitest';
import { buildHlsVideoArgs } from '../../src/ffmpeg/hlsArgs.js';
import { buildLoudnessMeasureArgs, loudnormSecondPassFilter, parseLoudnormOutput } from '../../src/ffmpeg/loudnessArgs.js';
import { buildThumbnailsVtt, spriteCount, thumbnailSize, vttTime } from '../../src/transcode/thumbnails.js';

// loudnorm's JSON as ffmpeg 5.1 prints it at the end of stderr (captured here).
const LOUDNORM_STDERR = [
  'size=N/A time=00:00:12.05 bitrate=N/A speed= 240x',
  '[Parsed_loudnorm_0 @ 0x55f77890cb40] ',
  '{',
  '\t"input_i" : "-21.78",',
  '\t"input_tp" : "-16.31",',
  '\t"input_lra" : "0.10",',
  '\t"input_thresh" : "-31.78",',
  '\t"output_i" : "-16.01",',
  '\t"output_tp" : "-10.50",',
  '\t"output_lra" : "0.10",',
  '\t"output_thresh" : "-26.01",',
  '\t"normalization_type" : "dynamic",',
  '\t"target_offset" : "0.01"',
  '}',
];

describe('loudness', () => {
  it('reads the first pass measurement from stderr', () => {
    expect(parseLoudnormOutput(LOUDNORM_STDERR)).toEqual({
      inputIntegratedLufs: -21.78,
      inputTruePeakDbtp: -16.31,
      inputLra: 0.1,
      inputThresholdLufs: -31.78,
      targetOffsetLu: 0.01,
    });
  });

  it('treats silence (-inf) and a missing block as no measurement', () => {
    const silent = LOUDNORM_STDERR.map((l) => l.replace('"-21.78"', '"-inf"'));
    expect(parseLoudnormOutput(silent)).toBeUndefined();
    expect(parseLoudnormOutput(['no json here'])).toBeUndefined();
  });

  it('measures audio only, and applies the measurement linearly, resampled to 48 kHz', () => {
    const args = buildLoudnessMeasureArgs('/p/list.ffconcat');
    expect(args).toContain('-vn');
    expect(args[args.indexOf('-loglevel') + 1]).toBe('info');
    const m = parseLoudnormOutput(LOUDNORM_STDERR);
    expect(m && loudnormSecondPassFilter(m)).toBe(
      'loudnorm=I=-16:TP=-1.5:LRA=11:measured_I=-21.78:measured_TP=-16.31:measured_LRA=0.1:measured_thresh=-31.78:offset=0.01:linear=true,aresample=48000',
    );
  });
});

describe('thumbnails and poster', () => {
  it('keeps the source aspect ratio with even sides', () => {
    expect(thumbnailSize(1280, 720)).toEqual({ width: 160, height: 90 });
    expect(thumbnailSize(320, 240)).toEqual({ width: 160, height: 120 });
    expect(thumbnailSize(1920, 1088)).toEqual({ width: 160, height: 90 });
  });

  it('maps each interval to its tile, moving to the next sheet after columns x rows tiles', () => {
    const spec = { intervalSeconds: 10, columns: 2, rows: 2, width: 160, height: 90 };
    expect(spriteCount(45, spec)).toBe(2);
    const vtt = buildThumbnailsVtt({ durationSeconds: 45, spec, spriteName: (n) => `s${n}.jpg` });
    expect(vtt.startsWith('WEBVTT\n\n')).toBe(true);
    expect(vtt.split('\n\n').map((c) => c.trim()).filter((c) => c.includes('-->'))).toEqual([
      '00:00:00.000 --> 00:00:10.000\ns1.jpg#xywh=0,0,160,90',
      '00:00:10.000 --> 00:00:20.000\ns1.jpg#xywh=160,0,160,90',
      '00:00:20.000 --> 00:00:30.000\ns1.jpg#xywh=0,90,160,90',
      '00:00:30.000 --> 00:00:40.000\ns1.jpg#xywh=160,90,160,90',
      '00:00:40.000 --> 00:00:45.000\ns2.jpg#xywh=0,0,160,90',
    ]);
    expect(vttTime(3723.5)).toBe('01:02:03.500');
  });

  it('adds the thumbnail sheet and the poster to the one video decode', () => {
    const args = buildHlsVideoArgs({
      concatListPath: '/p/l',
      hlsDir: '/p/hls',
      renditions: [{ name: '720p', height: 720, videoBitrateKbps: 1200, crf: 26 }],
      segmentSeconds: 4,
      fps: 25,
      preset: 'veryfast',
      thumbnails: { intervalSeconds: 10, width: 160, height: 90, columns: 5, rows: 5, pattern: '/p/thumbs/sprite_%03d.jpg' },
      poster: { atSeconds: 12.5, height: 720, path: '/p/poster.jpg' },
    });
    expect(args[args.indexOf('-filter_complex') + 1]).toBe(
      '[0:v]split=3[s0][st][sp];[s0]scale=-2:720[v0];[st]fps=1/10,scale=160:90,tile=5x5[thumbs];[sp]trim=start=12.5:end=13.5,scale=-2:720[poster]',
    );
    expect(args.slice(-11)).toEqual(['-map', '[poster]', '-frames:v', '1', '-pix_fmt', 'yuvj420p', '-q:v', '5', '-f', 'image2', '-update', '1', '/p/poster.jpg'].slice(-11));
    expect(args.indexOf('/p/thumbs/sprite_%03d.jpg')).toBeGreaterThan(args.indexOf('/p/hls/%v/index.m3u8'));
  });
});
