/**
 * Pure planning for progressive packaging: which part of the recorded segments the next chunk of
 * the video ladder covers, and the media playlist the chunks add up to.
 *
 * A chunk starts and (except the last) ends on a multiple of the quantum: a whole number of HLS
 * segments (the fixed GOP) and of seek-bar thumbnail intervals. Positions are the ffconcat
 * positions the one-encode path uses (the sum of the recorded segments' durations), so the
 * chunks' timeline is that encode's timeline, gaps and pauses included.
 */

export interface ChunkSource {
  path: string;
  sha256: string;
  durationSeconds: number;
}

export interface ChunkPlan {
  /** Position of the chunk in the lecture. */
  startSeconds: number;
  /** Absent for the last chunk: it runs to the end of the recording. */
  durationSeconds?: number;
  /** The recorded segments it reads, from the one holding its start. */
  files: ChunkSource[];
  /** Index in the recording's segment list of the first of `files`. */
  firstFileIndex: number;
  /** Where the chunk starts inside the first file. */
  localStartSeconds: number;
}

// Durations are microsecond values written with 6 decimals (the concat list's precision).
const EPSILON_SECONDS = 1e-6;

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}

/** The smallest chunk step: a multiple of both the HLS segment and the thumbnail interval (whole seconds). */
export function chunkQuantumSeconds(hlsSegmentSeconds: number, thumbnailIntervalSeconds: number): number {
  const a = Math.max(1, Math.round(hlsSegmentSeconds));
  const b = Math.max(1, Math.round(thumbnailIntervalSeconds));
  return (a * b) / gcd(a, b);
}

export function recordedSeconds(segments: readonly ChunkSource[]): number {
  return segments.reduce((sum, s) => sum + s.durationSeconds, 0);
}

/**
 * The next chunk after `doneSeconds`, or undefined when there is nothing (yet) to encode.
 * While live (`final` false) only whole quanta of at least `minSeconds` are taken, all that is
 * available at once so an encoder that fell behind catches up in fewer, longer runs; at the end
 * the remainder goes, whatever its length (a remainder shorter than half a frame is no frame).
 */
export function planChunk(
  segments: readonly ChunkSource[],
  doneSeconds: number,
  opts: { quantumSeconds: number; minSeconds: number; final: boolean; fps: number },
): ChunkPlan | undefined {
  const total = recordedSeconds(segments);
  const left = total - doneSeconds;
  let durationSeconds: number | undefined;
  if (opts.final) {
    if (left < 0.5 / opts.fps) return undefined;
  } else {
    const whole = Math.floor((left + EPSILON_SECONDS) / opts.quantumSeconds) * opts.quantumSeconds;
    if (whole < Math.max(opts.minSeconds, opts.quantumSeconds)) return undefined;
    durationSeconds = whole;
  }
  const end = durationSeconds === undefined ? Number.POSITIVE_INFINITY : doneSeconds + durationSeconds;
  const files: ChunkSource[] = [];
  let firstFileIndex = -1;
  let localStartSeconds = 0;
  let offset = 0;
  segments.forEach((s, i) => {
    const segEnd = offset + s.durationSeconds;
    if (segEnd > doneSeconds + EPSILON_SECONDS && offset < end - EPSILON_SECONDS) {
      if (firstFileIndex < 0) {
        firstFileIndex = i;
        localStartSeconds = Math.max(0, doneSeconds - offset);
      }
      files.push(s);
    }
    offset = segEnd;
  });
  if (files.length === 0) return undefined;
  return {
    startSeconds: doneSeconds,
    ...(durationSeconds !== undefined ? { durationSeconds } : {}),
    files,
    firstFileIndex,
    localStartSeconds: Math.round(localStartSeconds * 1e6) / 1e6,
  };
}

export interface PlaylistEntry {
  uri: string;
  seconds: number;
}

/** The media segments of an ffmpeg-written media playlist, in order. */
export function parseMediaEntries(playlist: string): PlaylistEntry[] {
  const lines = playlist.split(/\r?\n/);
  const out: PlaylistEntry[] = [];
  for (let i = 0; i < lines.length; i++) {
    const m = /^#EXTINF:([\d.]+)/.exec(lines[i] ?? '');
    if (!m) continue;
    const uri = (lines[i + 1] ?? '').trim();
    if (uri && !uri.startsWith('#')) out.push({ uri, seconds: Number(m[1]) });
  }
  return out;
}

/** A VOD media playlist in the form ffmpeg writes for the one-encode path, for all chunks' segments. */
export function buildMediaPlaylist(entries: readonly PlaylistEntry[], initUri: string): string {
  // RFC 8216: every EXTINF rounded to the nearest integer must not exceed the target duration.
  const target = Math.max(1, ...entries.map((e) => Math.round(e.seconds)));
  const lines = [
    '#EXTM3U',
    '#EXT-X-VERSION:7',
    `#EXT-X-TARGETDURATION:${target}`,
    '#EXT-X-MEDIA-SEQUENCE:1',
    '#EXT-X-PLAYLIST-TYPE:VOD',
    '#EXT-X-INDEPENDENT-SEGMENTS',
    `#EXT-X-MAP:URI="${initUri}"`,
    ...entries.flatMap((e) => [`#EXTINF:${e.seconds.toFixed(6)},`, e.uri]),
    '#EXT-X-ENDLIST',
  ];
  return `${lines.join('\n')}\n`;
}

/** True when `prefix` is, entry by entry, the start of `segments` (same file, same bytes, same duration). */
export function isPrefixOf(prefix: readonly ChunkSource[], segments: readonly ChunkSource[]): boolean {
  if (prefix.length > segments.length) return false;
  return prefix.every((p, i) => {
    const s = segments[i];
    return s !== undefined && s.path === p.path && s.sha256 === p.sha256 && Math.abs(s.durationSeconds - p.durationSeconds) < EPSILON_SECONDS;
  });
}
