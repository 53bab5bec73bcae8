/**
 * Pure argv builders for capture: one ffmpeg per source, writing crash-tolerant segments into
 * the run's own directory, with the segment list CSV as the "segment complete" signal.
 * Tested as data (tests/unit/capture-args.test.ts); only ffmpeg/process.ts runs them.
 */

/** Where a source's media comes from. The URL of an RTSP input may carry credentials. */
export type CaptureInput =
  | {
      /** A lavfi test pattern and tone, encoded to H.264 + AAC the way a camera would send it. */
      kind: 'synthetic';
      width: number;
      height: number;
      fps: number;
      toneHz: number;
    }
  | {
      /** A network camera or encoder; video is stream-copied, audio transcoded to AAC. */
      kind: 'rtsp';
      url: string;
      /** Socket I/O timeout: ffmpeg gives up about twice this long after the camera goes silent. */
      timeoutMs: number;
      /**
       * The camera's audio is AAC: keep it as it is instead of re-encoding (measured: re-encoding
       * was most of the capture's CPU beside the stream copy). Only when known — G.711 copied into
       * MPEG-TS is an unplayable stream.
       */
      copyAudio?: boolean;
    };

export interface SegmentOutput {
  /** The run directory; it must be new and empty (ffmpeg is told never to overwrite). */
  runDir: string;
  segmentSeconds: number;
  format: 'mpegts' | 'fmp4';
}

export const SEGMENT_LIST_NAME = 'segments.csv';

/**
 * Confidence monitoring: a second output of the same capture ffmpeg that measures instead of
 * recording, so a silent microphone or a frozen or black picture shows within seconds without a
 * second session to the camera (cameras allow few). The video is stream-copied into the
 * segments, so this branch must decode it; everything after the decoder is kept small (2 frames
 * a second at 64 px wide), and the audio is measured once a second at 16 kHz. The filters print
 * frame metadata, one `key=value` line at a time, to the extra pipe (see parseMonitorLine).
 */
export interface MonitorOutput {
  /** The file descriptor the filters print to (ffmpeg/process.ts EXTRA_PIPE_FD). */
  fd: number;
  /** Print the audio's RMS level once a second. */
  audioLevels: boolean;
  /** freezedetect reports a picture that changed less than `freezeNoiseDb` for this long; 0 = off. */
  freezeSeconds: number;
  freezeNoiseDb: number;
  /** blackdetect reports the start and end of black pictures. */
  black: boolean;
}

// The analysed copy of the picture: enough to see a frozen or black image, cheap to compare.
// Small on purpose: shrinking averages away sensor and compression noise (an I-frame every GOP
// re-encodes a still scene slightly differently) while a moving person still changes the mean.
// Measured on the test camera (H.264 at 400 kbit/s, 320x240): between frames of a still picture
// the mean difference at 64 px wide was about -51 dB with peaks at -44 dB (a moving one: -16 dB);
// at 160 px wide the noise alone crossed -45 dB.
const MONITOR_WIDTH = 64;
const MONITOR_FPS = 2;
const MONITOR_AUDIO_RATE = 16_000;

export function segmentExtension(format: SegmentOutput['format']): string {
  return format === 'mpegts' ? 'ts' : 'mp4';
}

/** Options every long-running ffmpeg gets: quiet stderr, machine-readable progress once a second. */
export const PROGRESS_ARGS: readonly string[] = ['-hide_banner', '-nostats', '-loglevel', 'warning', '-progress', 'pipe:1', '-stats_period', '1'];

export function buildCaptureArgs(input: CaptureInput, output: SegmentOutput, monitor?: MonitorOutput): string[] {
  const monitored = monitor !== undefined && isMonitored(input);
  return [...PROGRESS_ARGS, '-n', ...inputArgs(input), ...segmentArgs(output), ...(monitored ? monitorArgs(monitor) : [])];
}

/**
 * Whether an input gets the monitor output. The synthetic source does not: its pattern and tone
 * are generated, so there is nothing to watch, and measured with ffmpeg 5.1 the extra branch
 * cost its encoded video about a second at the start (audio 4.76 s, video 3.80 s in a 5 s run).
 */
export function isMonitored(input: CaptureInput): boolean {
  return input.kind !== 'synthetic';
}

/** The second output (for a camera input): decoded, reduced copies of its streams into filters that print to a pipe; nothing is written. */
function monitorArgs(monitor: MonitorOutput): string[] {
  const video = '0:v:0';
  // Audio is optional on a camera, so the measured audio is optional too.
  const audio = '0:a:0?';
  const print = `file='pipe\\:${monitor.fd}':direct=1`; // direct: a line per write, not a 32 KiB buffer
  const args: string[] = [];
  const videoFilters = [
    ...(monitor.freezeSeconds > 0 ? [`freezedetect=n=${monitor.freezeNoiseDb}dB:d=${monitor.freezeSeconds}`] : []),
    // d=0: the start of black is reported at once; how long it must last is the caller's rule.
    ...(monitor.black ? ['blackdetect=d=0:pic_th=0.98'] : []),
  ];
  if (videoFilters.length > 0) {
    args.push('-map', video, '-vf', [`fps=${MONITOR_FPS}`, `scale=${MONITOR_WIDTH}:-2`, ...videoFilters, `metadata=mode=print:${print}`].join(','));
  }
  if (monitor.audioLevels) {
    args.push(
      '-map',
      audio,
      '-af',
      [
        `aresample=${MONITOR_AUDIO_RATE}`,
        // One frame a second, so each printed level covers one second.
        `asetnsamples=n=${MONITOR_AUDIO_RATE}:p=0`,
        'astats=metadata=1:reset=1:measure_perchannel=none:measure_overall=RMS_level',
        `ametadata=mode=print:key=lavfi.astats.Overall.RMS_level:${print}`,
      ].join(','),
    );
  }
  return args.length === 0 ? [] : [...args, '-f', 'null', '-'];
}


function inputArgs(input: CaptureInput): string[] {
  switch (input.kind) {
    case 'synthetic': {
      // A fixed GOP of 2 s, like a well-configured camera, so segments cut close to segmentSeconds.
      const gop = String(input.fps * 2);
      return [
        '-re',
        '-f', 'lavfi', '-i', `testsrc2=size=${input.width}x${input.height}:rate=${input.fps}`,
        '-re',
        '-f', 'lavfi', '-i', `sine=frequency=${input.toneHz}:sample_rate=48000`,
        '-map', '0:v:0', '-map', '1:a:0',
        '-c:v', 'libx264', '-preset', 'ultrafast', '-tune', 'zerolatency', '-pix_fmt', 'yuv420p',
        '-g', gop, '-keyint_min', gop, '-sc_threshold', '0', '-b:v', '2M',
        '-c:a', 'aac', '-b:a', '96k', '-ar', '48000',
      ];
    }
    case 'rtsp':
      return [
        '-rtsp_transport', 'tcp',
        '-timeout', String(Math.round(input.timeoutMs * 1000)),
        // Cameras send broken or missing timestamps after a reboot; regenerate what is missing.
        '-fflags', '+genpts+discardcorrupt',
        '-thread_queue_size', '1024',
        // The monitor decodes every frame. Decoding key frames only (-skip_frame nokey) cost a
        // third of the capture's CPU less, but ffmpeg then probes the stream with that decoder
        // too: the first segment began 5.5 s after connecting instead of 1.4 s, and with a
        // shorter probe (-analyzeduration 1 s) the first segment of each run held a repeated
        // timestamp (measured; see BENCHMARKS.md). A lecture's first seconds matter more.
        '-i', input.url,
        // Video is copied (a camera already encodes); audio is optional and transcoded because
        // camera G.711 cannot be carried in MP4 and becomes an unplayable stream in MPEG-TS.
        '-map', '0:v:0', '-map', '0:a:0?',
        '-c:v', 'copy', ...(input.copyAudio ? ['-c:a', 'copy'] : ['-c:a', 'aac', '-b:a', '96k', '-ar', '48000']),
        '-max_muxing_queue_size', '1024',
      ];
  }
}

function segmentArgs(output: SegmentOutput): string[] {
  const ext = segmentExtension(output.format);
  // flush_packets: each packet reaches the file when it is muxed, so a segment open when ffmpeg is
  // killed holds its media up to that moment (without it, measured: 0 bytes one second into a
  // 2 s segment) and capture/ingest.ts can keep it.
  const formatArgs =
    output.format === 'mpegts'
      ? ['-segment_format', 'mpegts', '-segment_format_options', 'flush_packets=1']
      : // Fragmented MP4 survives SIGKILL up to the last fragment; plain MP4 would lose the moov.
        ['-segment_format', 'mp4', '-segment_format_options', 'movflags=+frag_keyframe+empty_moov+default_base_moof:flush_packets=1'];
  return [
    '-f', 'segment',
    '-segment_time', String(output.segmentSeconds),
    '-reset_timestamps', '1',
    ...formatArgs,
    '-segment_list', `${output.runDir}/${SEGMENT_LIST_NAME}`,
    '-segment_list_type', 'csv',
    '-segment_list_flags', 'live',
    `${output.runDir}/seg_%05d.${ext}`,
  ];
}

/** One measurement from the monitor output (see MonitorOutput). */
export type MonitorEvent =
  /** The audio's RMS level over the last second, in dBFS (-Infinity for digital silence). */
  | { kind: 'audioLevel'; db: number }
  /** The picture has not changed for the configured time (reported once that time has passed). */
  | { kind: 'freezeStart' }
  | { kind: 'freezeEnd' }
  /** The picture turned black (reported at once). */
  | { kind: 'blackStart' }
  | { kind: 'blackEnd' };

/**
 * Reads one line the monitor filters printed. Each key line stands alone (the `frame:` header
 * lines are ignored), so lines from the audio and the video filters may interleave freely.
 */
export function parseMonitorLine(line: string): MonitorEvent | undefined {
  const eq = line.indexOf('=');
  if (eq <= 0) return undefined;
  const key = line.slice(0, eq).trim();
  const value = line.slice(eq + 1).trim();
  switch (key) {
    case 'lavfi.astats.Overall.RMS_level': {
      const db = value === '-inf' ? -Infinity : Number(value);
      return Number.isNaN(db) ? undefined : { kind: 'audioLevel', db };
    }
    case 'lavfi.freezedetect.freeze_start':
      return { kind: 'freezeStart' };
    case 'lavfi.freezedetect.freeze_end':
      return { kind: 'freezeEnd' };
    case 'lavfi.black_start':
      return { kind: 'blackStart' };
    case 'lavfi.black_end':
      return { kind: 'blackEnd' };
    default:
      return undefined;
  }
}
