import { describe, expect, it } from 'vitest';
import { buildHlsAudioArgs, buildHlsVideoArgs, lectureX264Params, type HlsPackageSpec } from '../../src/ffmpeg/hlsArgs.js';

const spec: HlsPackageSpec = {
  concatListPath: '/p/source.ffconcat',
  hlsDir: '/p/hls',
  renditions: [
    { name: '720p', height: 720, videoBitrateKbps: 1200, crf: 26 },
    { name: '360p', height: 360, videoBitrateKbps: 350, crf: 28 },
  ],
  segmentSeconds: 4,
  fps: 25,
  preset: 'veryfast',
};

function valueAfter(args: string[], flag: string): string | undefined {
  const i = args.indexOf(flag);
  return i >= 0 ? args[i + 1] : undefined;
}

describe('buildHlsVideoArgs', () => {
  it('scales one decode into every rung with a fixed GOP equal to one segment', () => {
    const args = buildHlsVideoArgs(spec);
    expect(valueAfter(args, '-filter_complex')).toBe('[0:v]split=2[s0][s1];[s0]scale=-2:720[v0];[s1]scale=-2:360[v1]');
    expect(valueAfter(args, '-g')).toBe('100');
    expect(valueAfter(args, '-keyint_min')).toBe('100');
    expect(valueAfter(args, '-sc_threshold')).toBe('0');
    expect(valueAfter(args, '-r')).toBe('25');
  });

  it('caps each rung: CRF with maxrate and a buffer of two seconds', () => {
    const args = buildHlsVideoArgs(spec);
    expect(valueAfter(args, '-crf:v:1')).toBe('28');
    expect(valueAfter(args, '-maxrate:v:0')).toBe('1200k');
    expect(valueAfter(args, '-bufsize:v:1')).toBe('700k');
  });

  it('tunes x264 for lectures: finer keyframes, a steadier QP, no psy-RD; the analysis extras only where the preset is not chosen for speed', () => {
    const fast = buildHlsVideoArgs(spec);
    expect(valueAfter(fast, '-preset')).toBe('veryfast');
    expect(valueAfter(fast, '-x264-params')).toBe('psy=0:ipratio=2.0:qcomp=0.5');
    const medium = buildHlsVideoArgs({ ...spec, preset: 'medium', segmentSeconds: 5 });
    expect(valueAfter(medium, '-preset')).toBe('medium');
    expect(valueAfter(medium, '-x264-params')).toBe('psy=0:ipratio=2.0:qcomp=0.5:subme=9:me=umh');
    expect(lectureX264Params('slow')).toBe('psy=0:ipratio=2.0:qcomp=0.5:subme=9:me=umh');
    // Reference frames stay the preset's (a 1080p rung keeps level 4.0).
    expect(valueAfter(medium, '-x264-params')).not.toMatch(/ref=/);
    // 5 s segments: one keyframe every 125 frames at 25 fps, in every rung, and no scene cuts.
    expect(valueAfter(medium, '-g')).toBe('125');
    expect(valueAfter(medium, '-keyint_min')).toBe('125');
    expect(valueAfter(medium, '-hls_time')).toBe('5');
    // The tuning is libx264's: the hardware encoders get none of it.
    expect(buildHlsVideoArgs({ ...spec, encoder: { kind: 'vaapi', device: '/dev/dri/renderD128' } })).not.toContain('-x264-params');
    // The options belong to the HLS output, not to the poster and thumbnail JPEGs after it.
    const withStills = buildHlsVideoArgs({ ...spec, poster: { atSeconds: 1, height: 360, path: '/p/poster.jpg' } });
    expect(withStills.indexOf('-x264-params')).toBeLessThan(withStills.indexOf('/p/hls/%v/index.m3u8'));
  });

  it('writes fMP4 VOD playlists per rung, video only, and leaves the master to lectern', () => {
    const args = buildHlsVideoArgs(spec);
    expect(valueAfter(args, '-hls_segment_type')).toBe('fmp4');
    expect(valueAfter(args, '-hls_playlist_type')).toBe('vod');
    expect(valueAfter(args, '-var_stream_map')).toBe('v:0,name:720p v:1,name:360p');
    expect(args).not.toContain('-master_pl_name');
    expect(args).not.toContain('-c:a');
    expect(valueAfter(args, '-hls_segment_filename')).toBe('/p/hls/%v/seg_%05d.m4s');
    expect(args.at(-1)).toBe('/p/hls/%v/index.m3u8');
    expect(args).toContain('-n');
  });
});

describe('hardware encoders', () => {
  it('uploads each rung to the GPU and scales there to an exact width, with capped VBR instead of CRF', () => {
    const args = buildHlsVideoArgs({ ...spec, encoder: { kind: 'vaapi', device: '/dev/dri/renderD128' }, sourceWidth: 1920, sourceHeight: 1080 });
    expect(args.slice(args.indexOf('-init_hw_device'), args.indexOf('-init_hw_device') + 4)).toEqual(['-init_hw_device', 'vaapi=hw:/dev/dri/renderD128', '-filter_hw_device', 'hw']);
    expect(args.indexOf('-init_hw_device')).toBeLessThan(args.indexOf('-i'));
    expect(valueAfter(args, '-filter_complex')).toBe(
      '[0:v]split=2[s0][s1];[s0]format=nv12,hwupload,scale_vaapi=w=1280:h=720[v0];[s1]format=nv12,hwupload,scale_vaapi=w=640:h=360[v1]',
    );
    expect(valueAfter(args, '-c:v')).toBe('h264_vaapi');
    expect(args.some((a) => a.startsWith('-crf'))).toBe(false);
    expect(valueAfter(args, '-b:v:0')).toBe('840k');
    expect(valueAfter(args, '-maxrate:v:0')).toBe('1200k');
    expect(args).not.toContain('-preset');
  });

  it('derives Quick Sync from the VAAPI device', () => {
    const args = buildHlsVideoArgs({ ...spec, encoder: { kind: 'qsv', device: '/dev/dri/renderD129' }, sourceWidth: 1280, sourceHeight: 720 });
    expect(args.filter((a) => a.includes('vaapi=va:') || a === 'qsv=hw@va')).toEqual(['vaapi=va:/dev/dri/renderD129', 'qsv=hw@va']);
    expect(valueAfter(args, '-c:v')).toBe('h264_qsv');
    expect(valueAfter(args, '-filter_complex')).toContain('scale_qsv=w=640:h=360');
  });
});

describe('buildHlsAudioArgs', () => {
  it('encodes the audio alone into its rendition folder, with the loudness filter when given', () => {
    const args = buildHlsAudioArgs({ concatListPath: '/p/l', outDir: '/p/hls/audio', audioBitrateKbps: 64, segmentSeconds: 4, audioFilter: 'loudnorm=I=-16' });
    expect(args).toContain('-vn');
    // Holes in the audio timestamps become silence before the loudness gain.
    expect(valueAfter(args, '-af')).toBe('aresample=async=1:first_pts=0,loudnorm=I=-16');
    expect(valueAfter(args, '-b:a')).toBe('64k');
    expect(valueAfter(args, '-ar')).toBe('48000');
    expect(valueAfter(args, '-hls_fmp4_init_filename')).toBe('init.mp4');
    expect(args.at(-1)).toBe('/p/hls/audio/index.m3u8');
    expect(valueAfter(buildHlsAudioArgs({ concatListPath: '/p/l', outDir: '/p/a', audioBitrateKbps: 48, segmentSeconds: 6 }), '-af')).toBe('aresample=async=1:first_pts=0');
  });
});
