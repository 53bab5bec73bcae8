/**
 * Pure argv builder for the HLS VOD package: one ffmpeg decodes the recording once, scales it to
 * every rung of the ladder and writes fMP4 segments with aligned, fixed GOPs plus an audio-only
 * rendition that learners on 2G/3G links can use.
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
  /** Whether the recording has an audio stream (cameras without a mic send none). */
  hasAudio: boolean;
  audioBitrateKbps: number;
  segmentSeconds: number;
  /** Output frame rate; fixed so every rendition has the same GOP boundaries. */
  fps: number;
  preset: string;
  /** Audio filter chain (the loudness second pass); audio is copied through the graph unchanged without it. */
  audioFilter?: string;
  /** A sprite sheet of small frames for the player's seek bar, from the same decode. */
  thumbnails?: ThumbnailSpec;
  /** One still for the player before playback starts, from the same decode. */
  poster?: PosterSpec;
}

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

export const AUDIO_RENDITION_NAME = 'audio';
export const AUDIO_GROUP_ID = 'aud';

export function buildHlsArgs(spec: HlsPackageSpec): string[] {
  // One keyframe exactly every segment: renditions switch cleanly at segment boundaries.
  const gop = String(Math.round(spec.fps * spec.segmentSeconds));
  const branches = [...spec.renditions.map((_, i) => `[s${i}]`), ...(spec.thumbnails ? ['[st]'] : []), ...(spec.poster ? ['[sp]'] : [])];
  const graph = [
    `[0:v]split=${branches.length}${branches.join('')}`,
    ...spec.renditions.map((r, i) => `[s${i}]scale=-2:${r.height}[v${i}]`),
  ];
  if (spec.thumbnails) {
    const t = spec.thumbnails;
    graph.push(`[st]fps=1/${t.intervalSeconds},scale=${t.width}:${t.height},tile=${t.columns}x${t.rows}[thumbs]`);
  }
  // The poster is the first frame at or after atSeconds; later frames are dropped by -frames:v 1.
  if (spec.poster) graph.push(`[sp]select='gte(t\\,${spec.poster.atSeconds})',scale=-2:${spec.poster.height}[poster]`);
  if (spec.hasAudio && spec.audioFilter) graph.push(`[0:a:0]${spec.audioFilter}[aout]`);

  const videoMaps = spec.renditions.flatMap((_, i) => ['-map', `[v${i}]`]);
  const perRendition = spec.renditions.flatMap((r, i) => [
    `-crf:v:${i}`, String(r.crf),
    `-maxrate:v:${i}`, `${r.videoBitrateKbps}k`,
    `-bufsize:v:${i}`, `${r.videoBitrateKbps * 2}k`,
    // Sets BANDWIDTH in the master playlist; with CRF alone ffmpeg would leave it out.
    `-b:v:${i}`, `${r.videoBitrateKbps}k`,
  ]);
  const audioArgs = spec.hasAudio
    ? ['-map', spec.audioFilter ? '[aout]' : '0:a:0', '-c:a', 'aac', '-b:a', `${spec.audioBitrateKbps}k`, '-ac', '2', '-ar', '48000']
    : [];
  const group = spec.hasAudio ? `,agroup:${AUDIO_GROUP_ID}` : '';
  const streamMap = [
    ...spec.renditions.map((r, i) => `v:${i}${group},name:${r.name}`),
    ...(spec.hasAudio ? [`a:0${group},name:${AUDIO_RENDITION_NAME},default:yes`] : []),
  ].join(' ');
  // JPEG outputs take full-range YUV; saying so keeps swscale from warning on every frame.
  const jpeg = ['-pix_fmt', 'yuvj420p', '-q:v', '5', '-f', 'image2'];
  const extraOutputs = [
    ...(spec.thumbnails ? ['-map', '[thumbs]', ...jpeg, spec.thumbnails.pattern] : []),
    ...(spec.poster ? ['-map', '[poster]', '-frames:v', '1', ...jpeg, '-update', '1', spec.poster.path] : []),
  ];

  return [
    '-hide_banner', '-nostats', '-loglevel', 'warning', '-progress', 'pipe:1', '-stats_period', '1',
    '-n',
    '-f', 'concat', '-safe', '0', '-i', spec.concatListPath,
    '-filter_complex', graph.join(';'),
    ...videoMaps,
    ...audioArgs,
    '-c:v', 'libx264', '-preset', spec.preset, '-profile:v', 'main', '-pix_fmt', 'yuv420p',
    '-r', String(spec.fps), '-g', gop, '-keyint_min', gop, '-sc_threshold', '0',
    ...perRendition,
    '-f', 'hls',
    '-hls_time', String(spec.segmentSeconds),
    '-hls_playlist_type', 'vod',
    '-hls_segment_type', 'fmp4',
    '-hls_flags', 'independent_segments',
    '-hls_fmp4_init_filename', 'init.mp4',
    '-start_number', '1',
    '-hls_segment_filename', `${spec.hlsDir}/%v/seg_%05d.m4s`,
    '-master_pl_name', 'master.m3u8',
    '-var_stream_map', streamMap,
    `${spec.hlsDir}/%v/index.m3u8`,
    ...extraOutputs,
  ];
}
