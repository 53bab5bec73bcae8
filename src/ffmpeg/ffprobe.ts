import { spawn } from 'node:child_process';
import { resolve as resolvePath } from 'node:path';
import { LecternError, describeError } from '../util/errors.js';
import { StderrRing } from './stderrRing.js';

/**
 * ffprobe and decode checks: short processes whose whole output we read. Both have a timeout,
 * because a probe of a dead network source (or a wedged disk) otherwise never returns
 * (fluent-ffmpeg's ffprobe has none, research/libraries.md §2.2).
 */

/** What a media file holds, as far as lectern cares. */
export interface ProbeResult {
  /** Container duration; undefined for live or unseekable inputs that do not report one. */
  durationSeconds: number | undefined;
  /** ffprobe's format_name, e.g. 'mpegts' or 'mov,mp4,m4a,3gp,3g2,mj2'. */
  formatName: string;
  /** Overall bitrate in bit/s. */
  bitRate?: number;
  streams: ProbeStream[];
}

/** The kind of a stream, from ffprobe's codec_type. */
export type ProbeCodecType = 'video' | 'audio' | 'data' | 'subtitle' | 'attachment' | 'unknown';

export interface ProbeStream {
  index: number;
  codecType: ProbeCodecType;
  /** e.g. 'h264', 'aac'; '' when ffprobe could not identify the codec. */
  codecName: string;
  width?: number;
  height?: number;
  sampleRate?: number;
  channels?: number;
  durationSeconds?: number;
  /** Frames per second from r_frame_rate (falling back to avg_frame_rate). */
  frameRate?: number;
}

export interface ProbeOptions {
  timeoutMs: number;
  /** Default 'ffprobe'. */
  command?: string;
  /** Values to blank out of error messages, besides URL credentials. */
  secrets?: readonly string[];
}

export interface DecodeCheckOptions {
  timeoutMs: number;
  /** Default 'ffmpeg'. */
  command?: string;
  secrets?: readonly string[];
}

// ffprobe's JSON for a file with a handful of streams is a few KiB; a cap keeps a misbehaving
// binary from filling memory.
const MAX_STDOUT_BYTES = 8 * 1024 * 1024;
const ERROR_TAIL_LINES = 5;

export async function probeMedia(path: string, opts: ProbeOptions): Promise<ProbeResult> {
  const command = opts.command ?? 'ffprobe';
  const input = mediaInput(path);
  const result = await collect(command, ['-v', 'error', '-print_format', 'json', '-show_format', '-show_streams', input], {
    timeoutMs: opts.timeoutMs,
    secrets: opts.secrets ?? [],
    what: `ffprobe of ${path}`,
  });
  const shown = result.stderr.slice(-ERROR_TAIL_LINES).join(' | ');
  if (result.code !== 0) {
    throw new LecternError('FFPROBE_FAILED', `ffprobe could not read ${path} (${exitText(result)})${shown ? `: ${shown}` : ''}`, {
      details: { path, code: result.code, signal: result.signal },
    });
  }
  try {
    return parseProbeJson(result.stdout);
  } catch (err) {
    throw new LecternError('FFPROBE_FAILED', `ffprobe printed output for ${path} that is not the expected JSON (${describeError(err)})`, {
      cause: err,
      details: { path },
    });
  }
}

/**
 * Decodes every stream of a file and returns ffmpeg's error lines (redacted); an empty array means
 * the file decodes cleanly. A file ffmpeg cannot open at all also yields its error lines.
 */
export async function decodeCheck(path: string, opts: DecodeCheckOptions): Promise<string[]> {
  const command = opts.command ?? 'ffmpeg';
  const args = ['-nostdin', '-hide_banner', '-v', 'error', '-i', mediaInput(path), '-f', 'null', '-'];
  const result = await collect(command, args, { timeoutMs: opts.timeoutMs, secrets: opts.secrets ?? [], what: `decode check of ${path}` });
  if (result.code !== 0 && result.stderr.length === 0) return [`ffmpeg ${exitText(result)} without an error message`];
  return result.stderr;
}

/** Parses `ffprobe -print_format json -show_format -show_streams` output. Throws on bad shapes. */
export function parseProbeJson(json: string): ProbeResult {
  const root: unknown = JSON.parse(json);
  if (!isRecord(root) || !isRecord(root.format)) throw new Error('no "format" object');
  const format = root.format;
  const formatName = typeof format.format_name === 'string' ? format.format_name : '';
  const rawStreams = Array.isArray(root.streams) ? root.streams : [];
  const streams = rawStreams.filter(isRecord).map((s, i): ProbeStream => {
    const stream: ProbeStream = {
      index: toNumber(s.index) ?? i,
      codecType: toCodecType(s.codec_type),
      codecName: typeof s.codec_name === 'string' ? s.codec_name : '',
    };
    assignDefined(stream, 'width', toPositive(s.width));
    assignDefined(stream, 'height', toPositive(s.height));
    assignDefined(stream, 'sampleRate', toPositive(s.sample_rate));
    assignDefined(stream, 'channels', toPositive(s.channels));
    assignDefined(stream, 'durationSeconds', toNumber(s.duration));
    assignDefined(stream, 'frameRate', toRate(s.r_frame_rate) ?? toRate(s.avg_frame_rate));
    return stream;
  });
  const result: ProbeResult = { durationSeconds: toNumber(format.duration), formatName, streams };
  assignDefined(result, 'bitRate', toPositive(format.bit_rate));
  return result;
}

interface Collected {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string[];
}

function collect(
  command: string,
  args: string[],
  opts: { timeoutMs: number; secrets: readonly string[]; what: string },
): Promise<Collected> {
  return new Promise<Collected>((resolve, reject) => {
    const ring = new StderrRing({ maxLines: 100, secrets: opts.secrets });
    const stdout: Buffer[] = [];
    let stdoutBytes = 0;
    let failure: LecternError | undefined;

    const child = spawn(command, args, { shell: false, stdio: ['ignore', 'pipe', 'pipe'] });
    const timer = setTimeout(() => {
      failure = new LecternError('FFPROBE_TIMEOUT', `${opts.what} did not finish within ${opts.timeoutMs} ms`, {
        details: { timeoutMs: opts.timeoutMs },
      });
      child.kill('SIGKILL');
    }, opts.timeoutMs);
    timer.unref();

    child.stdout.on('data', (chunk: Buffer) => {
      stdoutBytes += chunk.length;
      if (stdoutBytes <= MAX_STDOUT_BYTES) {
        stdout.push(chunk);
      } else if (!failure) {
        failure = new LecternError('FFPROBE_FAILED', `${opts.what} printed more than ${MAX_STDOUT_BYTES} bytes`);
        child.kill('SIGKILL');
      }
    });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => ring.push(chunk));

    child.on('error', (err: NodeJS.ErrnoException) => {
      if (child.pid !== undefined) return; // a failed kill(); 'close' still follows
      clearTimeout(timer);
      failure = err.code === 'ENOENT'
        ? new LecternError('FFMPEG_NOT_FOUND', `${command} is not installed or not on PATH`, { cause: err, details: { command } })
        : new LecternError('FFPROBE_FAILED', `${opts.what}: ${command} could not be started (${describeError(err)})`, { cause: err });
      reject(failure);
    });
    child.on('close', (code: number | null, signal: NodeJS.Signals | null) => {
      clearTimeout(timer);
      if (child.pid === undefined) return; // the 'error' handler rejected already
      ring.flush();
      if (failure) reject(failure);
      else resolve({ code, signal, stdout: Buffer.concat(stdout).toString('utf8'), stderr: ring.lines() });
    });
  });
}

/**
 * Local paths become absolute so a name starting with '-' is not read as an option and one with a
 * colon is not read as a protocol; URLs pass unchanged.
 */
function mediaInput(path: string): string {
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(path) ? path : resolvePath(path);
}

function exitText(result: { code: number | null; signal: NodeJS.Signals | null }): string {
  return result.signal !== null ? `killed by ${result.signal}` : `exit code ${result.code}`;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** ffprobe prints most numbers as strings ("2.000000", "48000") and unknowns as "N/A". */
function toNumber(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) ? value : undefined;
  if (typeof value !== 'string' || value.trim() === '' || value === 'N/A') return undefined;
  const n = Number(value);
  return Number.isFinite(n) ? n : undefined;
}

function toPositive(value: unknown): number | undefined {
  const n = toNumber(value);
  return n !== undefined && n > 0 ? n : undefined;
}

/** "25/1" → 25; "0/0" (unknown) → undefined. */
function toRate(value: unknown): number | undefined {
  if (typeof value !== 'string') return undefined;
  const m = /^(\d+)\/(\d+)$/.exec(value);
  if (!m) return toPositive(value);
  const num = Number(m[1]);
  const den = Number(m[2]);
  return num > 0 && den > 0 ? num / den : undefined;
}

function toCodecType(value: unknown): ProbeCodecType {
  switch (value) {
    case 'video':
    case 'audio':
    case 'data':
    case 'subtitle':
    case 'attachment':
      return value;
    default:
      return 'unknown';
  }
}

function assignDefined<T extends object, K extends keyof T>(target: T, key: K, value: T[K] | undefined): void {
  if (value !== undefined) target[key] = value;
}
