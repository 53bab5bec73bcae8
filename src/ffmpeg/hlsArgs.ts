/**
 * Pure argv builders for the HLS VOD package. One ffmpeg decodes the video once, scales it to
 * every rung of the ladder (fMP4 segments with aligned, fixed GOPs) and draws the poster and
 * seek-bar thumbnails from the same decode. The audio rendition (also the audio-only tier that
 * learners on 2G/3G links use) is a second, light ffmpeg, so it can start as soon as the
 * loudness measurement is known while the video encode is already running. lectern writes the
 * master playlist itself from what was produced (transcode/master.ts).
 */

export interface HlsRendition {
  /** Directory and playlist name, e.g. "720p". */
  name: string;
  height: number;
  videoBitrateKbps: number;
  /** Capped CRF: quality-targeted, with maxrate as the ceiling, so static slides stay small. */
  crf: number;
}

export interface HlsPackageSpec {
  /** An ffconcat file listing the recorded segments in order. */
  concatListPath: string;
  /** The `hls/` directory of the package; must exist. */
  hlsDir: string;
  renditions: readonly HlsRendition[];
  segmentSeconds: number;
  /** Output frame rate; fixed so every rendition has the same GOP boundaries. */
  fps: number;
  preset: string;
  /** A sprite sheet of small frames for the player's seek bar, from the same decode. */
  thumbnails?: ThumbnailSpec;
  /** One still for the player before playback starts, from the same decode. */
  poster?: PosterSpec;
  /** libx264 unless a hardware encoder was chosen and its device exists (the packager decides). */
  encoder?: VideoEncoder;
  /** Source picture size: hardware scalers are given exact widths, not -2. */
  sourceWidth?: number;
  sourceHeight?: number;
}

/**
 * - `libx264`: software, capped CRF; the default and the fallback.
 * - `vaapi`: Intel/AMD GPUs through a DRM render node (e.g. /dev/dri/renderD128).
 * - `qsv`: Intel Quick Sync through the same render node.
 */
export type VideoEncoder = { kind: 'libx264' } | { kind: 'vaapi'; device: string } | { kind: 'qsv'; device: string };

export interface ThumbnailSpec {
  intervalSeconds: number;
  width: number;
  height: number;
  columns: number;
  rows: number;
  /** image2 pattern, e.g. /p/thumbs/sprite_%03d.jpg */
  pattern: string;
}

export interface PosterSpec {
  atSeconds: number;
  height: number;
  path: string;
}

export interface HlsAudioSpec {
  concatListPath: string;
  /** The audio rendition's own folder (hls/audio); must exist. */
  outDir: string;
  audioBitrateKbps: number;
  segmentSeconds: number;
  /** The loudness second pass; the audio is encoded as recorded without it. */
  audioFilter?: string;
}

export const AUDIO_RENDITION_NAME = 'audio';

const QUIET_WITH_PROGRESS = ['-hide_banner', '-nostats', '-loglevel', 'warning', '-progress', 'pipe:1', '-stats_period', '1'];

/** fMP4 VOD playlists with segments numbered from 1; the init segment named as the storage contract says. */
function hlsVodOutput(segmentSeconds: number): string[] {
  return [
    '-f', 'hls',
    '-hls_time', String(segmentSeconds),
    '-hls_playlist_type', 'vod',
    '-hls_segment_type', 'fmp4',
    '-hls_flags', 'independent_segments',
    '-hls_fmp4_init_filename', 'init.mp4',
    '-start_number', '1',
  ];
}

export function buildHlsVideoArgs(spec: HlsPackageSpec): string[] {
  // One keyframe exactly every segment: renditions switch cleanly at segment boundaries.
  const gop = String(Math.round(spec.fps * spec.segmentSeconds));
  const encoder = spec.encoder ?? { kind: 'libx264' };
  const widthFor = (height: number): number =>
    spec.sourceWidth && spec.sourceHeight ? Math.round((spec.sourceWidth * height) / spec.sourceHeight / 2) * 2 : Math.round((height * 16) / 9 / 2) * 2;
  const scale = (height: number): string => {
    switch (encoder.kind) {
      case 'libx264':
        return `scale=-2:${height}`;
      case 'vaapi':
        return `format=nv12,hwupload,scale_vaapi=w=${widthFor(height)}:h=${height}`;
      case 'qsv':
        return `format=nv12,hwupload=extra_hw_frames=64,scale_qsv=w=${widthFor(height)}:h=${height}`;
    }
  };
  const branches = [...spec.renditions.map((_, i) => `[s${i}]`), ...(spec.thumbnails ? ['[st]'] : []), ...(spec.poster ? ['[sp]'] : [])];
  const graph = [
    `[0:v]split=${branches.length}${branches.join('')}`,
    ...spec.renditions.map((r, i) => `[s${i}]${scale(r.height)}[v${i}]`),
  ];
  if (spec.thumbnails) {
    const t = spec.thumbnails;
    graph.push(`[st]fps=1/${t.intervalSeconds},scale=${t.width}:${t.height},tile=${t.columns}x${t.rows}[thumbs]`);
  }
  // The poster is the first frame at atSeconds. trim ends its branch after one second; a select
  // filter would pass (and scale) every later frame only for the muxer to drop it: +35% encode time.
  if (spec.poster) {
    const { atSeconds, height } = spec.poster;
    graph.push(`[sp]trim=start=${atSeconds}:end=${atSeconds + 1},scale=-2:${height}[poster]`);
  }

  const perRendition = spec.renditions.flatMap((r, i) => [
    // Hardware encoders have no CRF: they get a capped VBR at the same ceiling.
    ...(encoder.kind === 'libx264' ? [`-crf:v:${i}`, String(r.crf)] : [`-b:v:${i}`, `${Math.round(r.videoBitrateKbps * 0.7)}k`]),
    `-maxrate:v:${i}`, `${r.videoBitrateKbps}k`,
    `-bufsize:v:${i}`, `${r.videoBitrateKbps * 2}k`,
  ]);
  const device =
    encoder.kind === 'vaapi'
      ? ['-init_hw_device', `vaapi=hw:${encoder.device}`, '-filter_hw_device', 'hw']
      : encoder.kind === 'qsv'
        ? ['-init_hw_device', `vaapi=va:${encoder.device}`, '-init_hw_device', 'qsv=hw@va', '-filter_hw_device', 'hw']
        : [];
  const codec =
    encoder.kind === 'libx264'
      ? ['-c:v', 'libx264', '-preset', spec.preset, '-profile:v', 'main', '-pix_fmt', 'yuv420p', '-sc_threshold', '0', '-keyint_min', gop]
      : ['-c:v', encoder.kind === 'vaapi' ? 'h264_vaapi' : 'h264_qsv', '-profile:v', 'main'];
  // JPEG outputs take full-range YUV; saying so keeps swscale from warning on every frame.
  const jpeg = ['-pix_fmt', 'yuvj420p', '-q:v', '5', '-f', 'image2'];
  return [
    ...QUIET_WITH_PROGRESS,
    '-n',
    ...device,
    '-f', 'concat', '-safe', '0', '-i', spec.concatListPath,
    '-filter_complex', graph.join(';'),
    ...spec.renditions.flatMap((_, i) => ['-map', `[v${i}]`]),
    ...codec,
    '-r', String(spec.fps), '-g', gop,
    ...perRendition,
    ...hlsVodOutput(spec.segmentSeconds),
    '-hls_segment_filename', `${spec.hlsDir}/%v/seg_%05d.m4s`,
    '-var_stream_map', spec.renditions.map((r, i) => `v:${i},name:${r.name}`).join(' '),
    `${spec.hlsDir}/%v/index.m3u8`,
    ...(spec.thumbnails ? ['-map', '[thumbs]', ...jpeg, spec.thumbnails.pattern] : []),
    ...(spec.poster ? ['-map', '[poster]', '-frames:v', '1', ...jpeg, '-update', '1', spec.poster.path] : []),
  ];
}

export function buildHlsAudioArgs(spec: HlsAudioSpec): string[] {
  return [
    ...QUIET_WITH_PROGRESS,
    '-n',
    '-f', 'concat', '-safe', '0', '-i', spec.concatListPath,
    '-vn', '-map', '0:a:0',
    ...(spec.audioFilter ? ['-af', spec.audioFilter] : []),
    '-c:a', 'aac', '-b:a', `${spec.audioBitrateKbps}k`, '-ac', '2', '-ar', '48000',
    ...hlsVodOutput(spec.segmentSeconds),
    '-hls_segment_filename', `${spec.outDir}/seg_%05d.m4s`,
    `${spec.outDir}/index.m3u8`,
  ];
}
