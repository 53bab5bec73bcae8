import { describe, expect, it } from 'vitest';
import { buildHlsVideoArgs } from '../../src/ffmpeg/hlsArgs.js';
import { buildLoudnessMeasureArgs, loudnessGain, loudnessSecondPassFilter, parseEbur128Summary } from '../../src/ffmpeg/loudnessArgs.js';
import { buildThumbnailsVtt, spriteCount, thumbnailSize, vttTime } from '../../src/transcode/thumbnails.js';

// The end of ffmpeg 5.1's stderr after `-af ebur128=peak=true:framelog=verbose` (captured here).
const EBUR128_STDERR = [
  'size=N/A time=00:00:05.00 bitrate=N/A speed=64.4x    ',
  'video:0kB audio:469kB subtitle:0kB other streams:0kB global headers:0kB muxing overhead: unknown',
  '[Parsed_ebur128_0 @ 0x555d1ff37d00] Summary:',
  '',
  '  Integrated loudness:',
  '    I:         -21.8 LUFS',
  '    Threshold: -31.8 LUFS',
  '',
  '  Loudness range:',
  '    LRA:         0.1 LU',
  '    Threshold: -41.9 LUFS',
  '    LRA low:   -21.9 LUFS',
  '    LRA high:  -21.7 LUFS',
  '',
  '  True peak:',
  '    Peak:      -16.3 dBFS',
];

describe('loudness', () => {
  it('reads the first pass measurement from the meter\'s summary', () => {
    expect(parseEbur128Summary(EBUR128_STDERR)).toEqual({ inputIntegratedLufs: -21.8, inputThresholdLufs: -31.8, inputLra: 0.1, inputTruePeakDbtp: -16.3 });
  });

  it('treats silence (-inf) and a missing or cut summary as no measurement', () => {
    expect(parseEbur128Summary(EBUR128_STDERR.map((l) => l.replace('-16.3 dBFS', '-inf dBFS')))).toBeUndefined();
    expect(parseEbur128Summary(['no summary here'])).toBeUndefined();
    expect(parseEbur128Summary(EBUR128_STDERR.slice(0, 8))).toBeUndefined();
  });

  it('measures audio only, then applies one gain when the true peak allows it', () => {
    const args = buildLoudnessMeasureArgs('/p/list.ffconcat');
    expect(args).toContain('-vn');
    expect(args[args.indexOf('-loglevel') + 1]).toBe('info');
    expect(args[args.indexOf('-af') + 1]).toBe('ebur128=peak=true:framelog=verbose');
    const m = parseEbur128Summary(EBUR128_STDERR);
    if (!m) throw new Error('no measurement');
    // -21.8 -> -16 LUFS is +5.8 dB; the peak goes from -16.3 to -10.5 dBTP, under -1.5.
    expect(loudnessGain(m)).toEqual({ gainDb: 5.8, linear: true });
    expect(loudnessSecondPassFilter(m)).toBe('volume=5.8dB');
  });

  it('compresses with loudnorm when one gain would push the true peak over the limit', () => {
    // A quiet room with one loud knock: +20 dB would put the knock at +2 dBTP.
    const m = { inputIntegratedLufs: -36, inputThresholdLufs: -46, inputLra: 8, inputTruePeakDbtp: -18 };
    expect(loudnessGain(m)).toEqual({ gainDb: 20, linear: false });
    expect(loudnessSecondPassFilter(m)).toBe(
      'loudnorm=I=-16:TP=-1.5:LRA=11:measured_I=-36:measured_TP=-18:measured_LRA=8:measured_thresh=-46:linear=false,aresample=48000',
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
