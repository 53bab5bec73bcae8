/**
 * Parser for ffmpeg's `-progress pipe:N` output: `key=value` lines in blocks, each block closed by
 * `progress=continue` or `progress=end`. The parser is incremental because pipe chunks split lines
 * anywhere, and pure so it can be tested as data.
 */

/** One progress block. Fields ffmpeg reported as `N/A` (or did not report) are undefined. */
export interface FfmpegProgress {
  /** Frames written so far (video outputs only). */
  frame?: number;
  /** Encoding rate in frames per second. */
  fps?: number;
  /** Output timestamp reached, in microseconds; the signal that a recording advances. */
  outTimeUs?: number;
  /** Bytes written to the output so far. */
  totalSizeBytes?: number;
  /** Processing speed relative to real time (1 = real time). */
  speed?: number;
  /** Output bitrate in kbit/s. */
  bitrateKbps?: number;
  /** Frames dropped to keep up with the input. */
  dropFrames?: number;
  /** Frames duplicated to fill gaps in the input. */
  dupFrames?: number;
  /** True for the last block (`progress=end`): ffmpeg is finishing the output. */
  end: boolean;
}

// A line longer than this is not progress output; dropping it keeps memory bounded if the pipe
// carries something unexpected.
const MAX_PENDING_CHARS = 64 * 1024;

export class ProgressParser {
  #pending = '';
  #block: Omit<FfmpegProgress, 'end'> = {};
  // Fallbacks used only when out_time_us is missing from a block (older ffmpeg builds).
  #outTimeMsFallback: number | undefined;
  #outTimeFallback: number | undefined;

  /** Feeds a chunk of stdout; returns the blocks completed by it, oldest first. */
  push(chunk: string): FfmpegProgress[] {
    const text = this.#pending + chunk;
    const lines = text.split('\n');
    this.#pending = lines.pop() ?? '';
    if (this.#pending.length > MAX_PENDING_CHARS) this.#pending = '';
    const out: FfmpegProgress[] = [];
    for (const raw of lines) {
      const done = this.#line(raw.endsWith('\r') ? raw.slice(0, -1) : raw);
      if (done) out.push(done);
    }
    return out;
  }

  #line(line: string): FfmpegProgress | undefined {
    const eq = line.indexOf('=');
    if (eq <= 0) return undefined;
    const key = line.slice(0, eq).trim();
    const value = line.slice(eq + 1).trim();
    switch (key) {
      case 'frame':
        this.#block.frame = parseCount(value);
        break;
      case 'fps':
        this.#block.fps = parseNonNegative(value);
        break;
      case 'out_time_us':
        this.#block.outTimeUs = parseNonNegative(value);
        break;
      case 'out_time_ms':
        // Despite the name, ffmpeg writes microseconds here too (a long-standing quirk).
        this.#outTimeMsFallback = parseNonNegative(value);
        break;
      case 'out_time':
        this.#outTimeFallback = parseClockUs(value);
        break;
      case 'total_size':
        this.#block.totalSizeBytes = parseCount(value);
        break;
      case 'speed':
        this.#block.speed = parseNonNegative(value.replace(/x$/, ''));
        break;
      case 'bitrate':
        this.#block.bitrateKbps = parseNonNegative(value.replace(/kbits\/s$/, ''));
        break;
      case 'drop_frames':
        this.#block.dropFrames = parseCount(value);
        break;
      case 'dup_frames':
        this.#block.dupFrames = parseCount(value);
        break;
      case 'progress':
        return this.#finish(value === 'end');
      default:
        // Per-stream keys (stream_0_0_q, …) and keys from newer ffmpeg versions are not needed.
        break;
    }
    return undefined;
  }

  #finish(end: boolean): FfmpegProgress {
    const block: FfmpegProgress = { ...this.#block, end };
    if (block.outTimeUs === undefined) {
      const fallback = this.#outTimeMsFallback ?? this.#outTimeFallback;
      if (fallback !== undefined) block.outTimeUs = fallback;
    }
    for (const key of Object.keys(block) as (keyof FfmpegProgress)[]) {
      if (block[key] === undefined) delete block[key];
    }
    this.#block = {};
    this.#outTimeMsFallback = undefined;
    this.#outTimeFallback = undefined;
    return block;
  }
}

function parseNonNegative(value: string): number | undefined {
  if (value === '' || value === 'N/A') return undefined;
  const n = Number(value);
  // Before the first packet ffmpeg may print a huge negative out_time; that means "unknown".
  return Number.isFinite(n) && n >= 0 ? n : undefined;
}

function parseCount(value: string): number | undefined {
  const n = parseNonNegative(value);
  return n !== undefined && Number.isInteger(n) ? n : undefined;
}

/** `HH:MM:SS.micro` → microseconds. */
function parseClockUs(value: string): number | undefined {
  const m = /^(\d+):(\d{2}):(\d{2}(?:\.\d+)?)$/.exec(value);
  if (!m) return undefined;
  const [, h, min, s] = m;
  return Math.round((Number(h) * 3600 + Number(min) * 60 + Number(s)) * 1_000_000);
}
