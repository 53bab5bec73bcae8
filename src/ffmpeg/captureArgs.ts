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
    };

export interface SegmentOutput {
  /** The run directory; it must be new and empty (ffmpeg is told never to overwrite). */
  runDir: string;
  segmentSeconds: number;
  format: 'mpegts' | 'fmp4';
}

export const SEGMENT_LIST_NAME = 'segments.csv';

export function segmentExtension(format: SegmentOutput['format']): string {
  return format === 'mpegts' ? 'ts' : 'mp4';
}

/** Options every long-running ffmpeg gets: quiet stderr, machine-readable progress once a second. */
export const PROGRESS_ARGS: readonly string[] = ['-hide_banner', '-nostats', '-loglevel', 'warning', '-progress', 'pipe:1', '-stats_period', '1'];

export function buildCaptureArgs(input: CaptureInput, output: SegmentOutput): string[] {
  return [...PROGRESS_ARGS, '-n', ...inputArgs(input), ...segmentArgs(output)];
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
        '-i', input.url,
        // Video is copied (a camera already encodes); audio is optional and transcoded because
        // camera G.711 cannot be carried in MP4 and becomes an unplayable stream in MPEG-TS.
        '-map', '0:v:0', '-map', '0:a:0?',
        '-c:v', 'copy', '-c:a', 'aac', '-b:a', '96k', '-ar', '48000',
        '-max_muxing_queue_size', '1024',
      ];
  }
}

function segmentArgs(output: SegmentOutput): string[] {
  const ext = segmentExtension(output.format);
  const formatArgs =
    output.format === 'mpegts'
      ? ['-segment_format', 'mpegts']
      : // Fragmented MP4 survives SIGKILL up to the last fragment; plain MP4 would lose the moov.
        ['-segment_format', 'mp4', '-segment_format_options', 'movflags=+frag_keyframe+empty_moov+default_base_moof'];
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
