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
      /** A local microphone recorded instead of the camera's audio. */
      mic?: AlsaMic;
    }
  | {
      /**
       * A camera or HDMI capture device on this PC (Video4Linux). H.264 from the device is copied;
       * any other format (MJPEG, raw YUYV) is encoded to H.264 with a fixed GOP of one segment.
       */
      kind: 'v4l2';
      /** e.g. /dev/v4l/by-id/usb-...-video-index0 (stable) or /dev/video0. */
      device: string;
      /** The pixel format asked of the device; absent = the device's own choice (then encoded). */
      inputFormat?: 'mjpeg' | 'h264' | 'yuyv422';
      width: number;
      height: number;
      fps: number;
      /** x264 quality target when the picture is encoded. */
      crf: number;
      /** Bitrate ceiling of the encoded picture, in kbit/s. */
      maxBitrateKbps: number;
      mic?: AlsaMic;
    };

/** An ALSA capture device, recorded as the audio of a video source (second ffmpeg input). */
export interface AlsaMic {
  /** A stable ALSA name such as plughw:CARD=USB,DEV=0 (or a PCM defined in asound.conf). */
  device: string;
  channels: number;
  sampleRate: number;
}

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
  return [...PROGRESS_ARGS, '-n', ...inputArgs(input, output.segmentSeconds), ...segmentArgs(output), ...(monitored ? monitorArgs(monitor, input) : [])];
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
function monitorArgs(monitor: MonitorOutput, input: CaptureInput): string[] {
  const video = '0:v:0';
  // A microphone is the second input and must be there; a camera's audio is optional, so the
  // measured audio is optional too.
  const audio = micOf(input) ? '1:a:0' : '0:a:0?';
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
        // Frames of 0.1 s, the statistics reset every ten of them, and only each tenth frame
        // printed: one level a second, over that second. Frames of a whole second held the
        // filter back by up to a second per frame; with a microphone as a second input ffmpeg
        // then read the camera up to 2 s behind, and Stop dropped that video (measured).
        `asetnsamples=n=${MONITOR_AUDIO_RATE / 10}:p=0`,
        'astats=metadata=1:reset=10:measure_perchannel=none:measure_overall=RMS_level',
        "aselect='eq(mod(n,10),9)'",
        `ametadata=mode=print:key=lavfi.astats.Overall.RMS_level:${print}`,
      ].join(','),
    );
  }
  return args.length === 0 ? [] : [...args, '-f', 'null', '-'];
}


function micOf(input: CaptureInput): AlsaMic | undefined {
  return input.kind === 'synthetic' ? undefined : input.mic;
}

// Encoded audio, the same for a camera's G.711 and a microphone.
const AAC_ARGS: readonly string[] = ['-c:a', 'aac', '-b:a', '96k', '-ar', '48000'];

/**
 * The live video input's timestamps when a microphone is muxed with it. ffmpeg's ALSA input
 * stamps each packet with the wall clock, a camera with its own clock (RTP), and without
 * -copyts ffmpeg shifts each input to start at 0 on its own; the video input is therefore
 * stamped with the wall clock too, on arrival. Measured here with the RTSP test camera and a
 * tone fed through ALSA's file plugin, the camera turning black and the tone stopping at the same
 * instant: without this flag the sound led the picture by 0.55-0.78 s (the time ffmpeg spent
 * probing the camera before it opened the microphone); with it the sound trailed by about
 * 0.16 s, part of which is the test rig's pipe. -copyts instead kept absolute wall-clock times
 * and broke the segmenter (a first "segment" of 1.8e9 s). A clap test on the room's PC is
 * still the real check (research/libraries.md §2.8). Copied video keeps its frames; a camera
 * that sends B-frames would need its own timestamps (few do, and none in zero-latency modes).
 */
const WALLCLOCK_ARGS: readonly string[] = ['-use_wallclock_as_timestamps', '1'];

/** The microphone as the second input; its packets carry wall-clock times already. */
function micInputArgs(mic: AlsaMic): string[] {
  // A larger queue than a camera's: an ALSA input delivers many small packets (one per period),
  // and a full queue blocks the capture thread while the device overruns.
  return ['-thread_queue_size', '4096', '-f', 'alsa', '-channels', String(mic.channels), '-sample_rate', String(mic.sampleRate), '-i', mic.device];
}

function inputArgs(input: CaptureInput, segmentSeconds: number): string[] {
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
        ...(input.mic ? WALLCLOCK_ARGS : []),
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
        ...(input.mic ? micInputArgs(input.mic) : []),
        // Video is copied (a camera already encodes); audio is optional and transcoded because
        // camera G.711 cannot be carried in MP4 and becomes an unplayable stream in MPEG-TS.
        '-map', '0:v:0', ...(input.mic ? ['-map', '1:a:0'] : ['-map', '0:a:0?']),
        '-c:v', 'copy', ...(input.copyAudio && !input.mic ? ['-c:a', 'copy'] : AAC_ARGS),
        '-max_muxing_queue_size', '1024',
      ];
    case 'v4l2': {
      // One GOP per segment, so each segment starts on a key frame and cuts land on time.
      const gop = String(input.fps * segmentSeconds);
      const encode =
        input.inputFormat === 'h264'
          ? ['-c:v', 'copy']
          : [
              '-c:v', 'libx264', '-preset', 'veryfast', '-tune', 'zerolatency', '-pix_fmt', 'yuv420p',
              '-crf', String(input.crf), '-maxrate', `${input.maxBitrateKbps}k`, '-bufsize', `${input.maxBitrateKbps * 2}k`,
              '-g', gop, '-keyint_min', gop, '-sc_threshold', '0',
            ];
      return [
        ...(input.mic ? WALLCLOCK_ARGS : []),
        '-f', 'v4l2',
        ...(input.inputFormat !== undefined ? ['-input_format', input.inputFormat] : []),
        '-video_size', `${input.width}x${input.height}`,
        '-framerate', String(input.fps),
        // Raw frames are large (a 1080p YUYV frame is 4 MB): a short queue, and when the encoder
        // falls behind the driver drops frames instead of this process growing.
        '-thread_queue_size', '64',
        '-i', input.device,
        ...(input.mic ? micInputArgs(input.mic) : []),
        '-map', '0:v:0', ...(input.mic ? ['-map', '1:a:0', ...AAC_ARGS] : []),
        ...encode,
        '-max_muxing_queue_size', '1024',
      ];
    }
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
