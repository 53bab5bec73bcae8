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
  /**
   * Progressive packaging: encode only this part of the input. Its timestamps restart at 0 on an
   * exact frame grid, so a chunk that starts on a segment boundary has the same keyframes as one
   * encode of the whole lecture. Without `durationSeconds` the chunk runs to the input's end.
   */
  window?: { startSeconds: number; durationSeconds?: number };
  /** Number of the first media segment (default 1): chunks continue the rendition's numbering. */
  startNumber?: number;
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
  /** Number of the first image (default 1), for chunks writing single tiles (1x1) that continue a lecture. */
  startNumber?: number;
  /** At most this many images (a chunk's share, so a boundary frame is not drawn twice). */
  maxCount?: number;
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

/**
 * Audio is placed by its timestamps, not butted sample to sample: a camera back from a reboot
 * often sends its audio a moment after its first frame, and the concat demuxer keeps that hole
 * in the timestamps. Without filling it with silence every later word would come early against
 * the picture (0.5 s late audio -> 460 ms early speech after the gap, measured). first_pts=0
 * also fills a late start of the whole recording.
 */
const AUDIO_ON_TIMESTAMPS = 'aresample=async=1:first_pts=0';

/**
 * x264 tuning for lecture pictures: a static slide or board that every frame of a GOP copies, and
 * a teacher who moves in part of it. Bytes of the 720p rendition at equal SSIM on the package
 * bench's input (BENCHMARKS.md, 2026-11-30, where the other options are weighed too):
 * - `ipratio=2.0` (x264: 1.4), -5%: keyframes about 3 QP finer. With fixed GOPs and no scene
 *   cuts the keyframe's slide is what every later frame of the segment shows.
 * - `qcomp=0.5` (x264: 0.6), -4%: a steadier QP over moving and still frames and a stronger
 *   macroblock tree, which gives the still parts the bits the moving ones would take.
 * - `psy=0`, -9%: no psycho-visual RD. It keeps grain and texture energy (film, faces in close-up)
 *   at the cost of fidelity and rings around sharp edges; slide text, lines and flat colour gain
 *   from fidelity instead. SSIM rewards it most of all, so SSIM overstates what a viewer sees.
 * These three are rate-control choices and cost no encoding time. The two below cost about 7%
 * more CPU than the medium preset alone and are added only to presets not chosen for speed:
 * - `subme=9` (RD refinement in every mode) and `me=umh` (a wider motion search), -20%.
 * Reference frames stay the preset's, so a 1080p rung keeps H.264 level 4.0 (5 refs would not).
 */
const LECTURE_X264_PARAMS = 'psy=0:ipratio=2.0:qcomp=0.5';
const LECTURE_X264_ANALYSIS = 'subme=9:me=umh';
const PRESETS_WITH_ANALYSIS = new Set(['medium', 'slow']);

/** The `-x264-params` value for a preset: the lecture tuning, with the analysis extras from medium on. */
export function lectureX264Params(preset: string): string {
  return PRESETS_WITH_ANALYSIS.has(preset) ? `${LECTURE_X264_PARAMS}:${LECTURE_X264_ANALYSIS}` : LECTURE_X264_PARAMS;
}

const QUIET_WITH_PROGRESS = ['-hide_banner', '-nostats', '-loglevel', 'warning', '-progress', 'pipe:1', '-stats_period', '1'];

/** fMP4 VOD playlists with segments numbered from 1; the init segment named as the storage contract says. */
function hlsVodOutput(segmentSeconds: number, startNumber = 1): string[] {
  return [
    '-f', 'hls',
    '-hls_time', String(segmentSeconds),
    '-hls_playlist_type', 'vod',
    '-hls_segment_type', 'fmp4',
    '-hls_flags', 'independent_segments',
    '-hls_fmp4_init_filename', 'init.mp4',
    '-start_number', String(startNumber),
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
  // A window is cut from the decoded input, restarted at 0 and put on the output frame grid
  // before anything else: each chunk then has exactly duration x fps frames.
  const win = spec.window;
  const windowFilters = win
    ? [
        `trim=start=${round6(win.startSeconds)}${win.durationSeconds !== undefined ? `:end=${round6(win.startSeconds + win.durationSeconds)}` : ''}`,
        `setpts=PTS-${round6(win.startSeconds)}/TB`,
        `fps=${spec.fps}:start_time=0`,
        ...(win.durationSeconds !== undefined ? [`trim=duration=${win.durationSeconds}`] : []),
      ].join(',') + ','
    : '';
  const graph = [
    `[0:v]${windowFilters}split=${branches.length}${branches.join('')}`,
    ...spec.renditions.map((r, i) => `[s${i}]${scale(r.height)}[v${i}]`),
  ];
  if (spec.thumbnails) {
    const t = spec.thumbnails;
    const tile = t.columns * t.rows > 1 ? `,tile=${t.columns}x${t.rows}` : '';
    graph.push(`[st]fps=1/${t.intervalSeconds},scale=${t.width}:${t.height}${tile}[thumbs]`);
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
      ? ['-c:v', 'libx264', '-preset', spec.preset, '-x264-params', lectureX264Params(spec.preset), '-profile:v', 'main', '-pix_fmt', 'yuv420p', '-sc_threshold', '0', '-keyint_min', gop]
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
    ...hlsVodOutput(spec.segmentSeconds, spec.startNumber),
    '-hls_segment_filename', `${spec.hlsDir}/%v/seg_%05d.m4s`,
    '-var_stream_map', spec.renditions.map((r, i) => `v:${i},name:${r.name}`).join(' '),
    `${spec.hlsDir}/%v/index.m3u8`,
    ...(spec.thumbnails ? ['-map', '[thumbs]', ...thumbnailOutput(spec.thumbnails, jpeg)] : []),
    ...(spec.poster ? ['-map', '[poster]', '-frames:v', '1', ...jpeg, '-update', '1', spec.poster.path] : []),
  ];
}

function thumbnailOutput(t: ThumbnailSpec, jpeg: readonly string[]): string[] {
  return [
    ...(t.maxCount !== undefined ? ['-frames:v', String(t.maxCount)] : []),
    ...jpeg,
    ...(t.startNumber !== undefined ? ['-start_number', String(t.startNumber)] : []),
    t.pattern,
  ];
}

/**
 * Progressive packaging, after the last chunk: the seek-bar sprites drawn from the single tiles
 * the chunks wrote (a few dozen small JPEGs: well under a second).
 */
export function buildSpriteArgs(spec: { tilePattern: string; columns: number; rows: number; spritePattern: string }): string[] {
  return [
    ...QUIET_WITH_PROGRESS,
    '-n',
    '-framerate', '1', '-start_number', '1', '-i', spec.tilePattern,
    '-vf', `tile=${spec.columns}x${spec.rows}`,
    '-pix_fmt', 'yuvj420p', '-q:v', '5', '-f', 'image2', spec.spritePattern,
  ];
}

/** Progressive packaging: the poster, one frame at `atSeconds` into one recorded segment. */
export function buildPosterArgs(spec: { inputPath: string; atSeconds: number; height: number; path: string }): string[] {
  return [
    ...QUIET_WITH_PROGRESS,
    '-n',
    '-ss', String(spec.atSeconds), '-i', spec.inputPath,
    '-map', '0:v:0', '-vf', `scale=-2:${spec.height}`, '-frames:v', '1',
    '-pix_fmt', 'yuvj420p', '-q:v', '5', '-f', 'image2', '-update', '1', spec.path,
  ];
}

function round6(n: number): number {
  return Math.round(n * 1e6) / 1e6;
}

export function buildHlsAudioArgs(spec: HlsAudioSpec): string[] {
  return [
    ...QUIET_WITH_PROGRESS,
    '-n',
    '-f', 'concat', '-safe', '0', '-i', spec.concatListPath,
    '-vn', '-map', '0:a:0',
    '-af', [AUDIO_ON_TIMESTAMPS, ...(spec.audioFilter ? [spec.audioFilter] : [])].join(','),
    '-c:a', 'aac', '-b:a', `${spec.audioBitrateKbps}k`, '-ac', '2', '-ar', '48000',
    ...hlsVodOutput(spec.segmentSeconds),
    '-hls_segment_filename', `${spec.outDir}/seg_%05d.m4s`,
    `${spec.outDir}/index.m3u8`,
  ];
}
