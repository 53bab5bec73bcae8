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
}

export const AUDIO_RENDITION_NAME = 'audio';
export const AUDIO_GROUP_ID = 'aud';

export function buildHlsArgs(spec: HlsPackageSpec): string[] {
  const n = spec.renditions.length;
  // One keyframe exactly every segment: renditions switch cleanly at segment boundaries.
  const gop = String(Math.round(spec.fps * spec.segmentSeconds));
  const splitLabels = spec.renditions.map((_, i) => `[s${i}]`).join('');
  const scales = spec.renditions.map((r, i) => `[s${i}]scale=-2:${r.height}[v${i}]`).join(';');
  const filter = `[0:v]split=${n}${splitLabels};${scales}`;

  const videoMaps = spec.renditions.flatMap((_, i) => ['-map', `[v${i}]`]);
  const perRendition = spec.renditions.flatMap((r, i) => [
    `-crf:v:${i}`, String(r.crf),
    `-maxrate:v:${i}`, `${r.videoBitrateKbps}k`,
    `-bufsize:v:${i}`, `${r.videoBitrateKbps * 2}k`,
    // Sets BANDWIDTH in the master playlist; with CRF alone ffmpeg would leave it out.
    `-b:v:${i}`, `${r.videoBitrateKbps}k`,
  ]);
  const audioArgs = spec.hasAudio
    ? ['-map', '0:a:0', '-c:a', 'aac', '-b:a', `${spec.audioBitrateKbps}k`, '-ac', '2', '-ar', '48000']
    : [];
  const group = spec.hasAudio ? `,agroup:${AUDIO_GROUP_ID}` : '';
  const streamMap = [
    ...spec.renditions.map((r, i) => `v:${i}${group},name:${r.name}`),
    ...(spec.hasAudio ? [`a:0${group},name:${AUDIO_RENDITION_NAME},default:yes`] : []),
  ].join(' ');

  return [
    '-hide_banner', '-nostats', '-loglevel', 'warning', '-progress', 'pipe:1', '-stats_period', '1',
    '-n',
    '-f', 'concat', '-safe', '0', '-i', spec.concatListPath,
    '-filter_complex', filter,
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
  ];
}
