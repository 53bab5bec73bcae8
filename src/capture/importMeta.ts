import path from 'node:path';
import type { ProbeResult } from '../ffmpeg/ffprobe.js';
import { LecternError } from '../util/errors.js';

/**
 * Pure rules of the import folder (capture/importFolder.ts): which names are looked at, what a
 * lecture's metadata is (sidecar JSON, else the file name, else the file itself), and which
 * probed files are recordings lectern can package.
 *
 * File name pattern, for recorders that cannot write a sidecar:
 *
 *   COURSE_YYYY-MM-DD_HHMM[_TITLE].ext      e.g. CS101_2026-11-30_0900.mp4
 *                                                 MATH-2_2026-12-01_1415_Linear_maps.mkv
 *
 * COURSE is letters, digits and '-'; the time is the lecture's start in this PC's local time
 * zone; TITLE's '_' become spaces. Without a TITLE the title is "COURSE YYYY-MM-DD HH:MM". A name
 * that does not match gives its stem (the name without extension) as the title and no course.
 *
 * Sidecar: a file with the same stem and `.json` (`CS101_2026-11-30_0900.json`) holding any of
 * `course`, `title`, `teacher` (strings) and `recordedAt` (ISO 8601, e.g.
 * "2026-11-30T09:00:00+01:00"). Its fields win over the file name's; other keys are ignored,
 * because other tools write them.
 */

export interface ImportMeta {
  course?: string;
  title?: string;
  teacher?: string;
  /** When the lecture started (epoch ms). */
  recordedAtMs?: number;
}

// Names other tools use while a file is still arriving (browsers, FTP/SFTP clients, rsync,
// editors) and the folder litter of desktop systems. They are looked at again once renamed.
const TEMP_SUFFIXES = ['.part', '.partial', '.tmp', '.temp', '.crdownload', '.filepart', '.download', '.swp', '~'];
const SYSTEM_FILES = new Set(['thumbs.db', 'desktop.ini']);

/** Hidden, temporary or system files: never imported, never rejected, left where they are. */
export function isIgnoredName(name: string): boolean {
  const lower = name.toLowerCase();
  return name.startsWith('.') || SYSTEM_FILES.has(lower) || TEMP_SUFFIXES.some((s) => lower.endsWith(s));
}

/** A sidecar is never a recording of its own: it travels with its media file. */
export function isSidecarName(name: string): boolean {
  return name.toLowerCase().endsWith('.json');
}

export function stemOf(name: string): string {
  const ext = path.extname(name);
  return ext ? name.slice(0, -ext.length) : name;
}

export function sidecarNameFor(mediaName: string): string {
  return `${stemOf(mediaName)}.json`;
}

const NAME_PATTERN = /^([A-Za-z0-9][A-Za-z0-9-]{0,31})_(\d{4})-(\d{2})-(\d{2})_(\d{2})(\d{2})(?:_(.+))?$/;

/** Metadata read from a file name; `{ title: stem }` when the name does not follow the pattern. */
export function parseImportName(fileName: string): ImportMeta {
  const stem = stemOf(fileName);
  const m = NAME_PATTERN.exec(stem);
  if (!m) return { title: stem };
  const [, course = '', y = '', mo = '', d = '', h = '', mi = '', rawTitle] = m;
  const at = new Date(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi));
  // 2026-02-30 or 25:00 would roll over into another date: such a name is not a date at all.
  const valid = at.getFullYear() === Number(y) && at.getMonth() === Number(mo) - 1 && at.getDate() === Number(d) && at.getHours() === Number(h) && at.getMinutes() === Number(mi);
  if (!valid) return { title: stem };
  const title = rawTitle ? rawTitle.replace(/_+/g, ' ').trim() : '';
  return { course, title: title || `${course} ${y}-${mo}-${d} ${h}:${mi}`, recordedAtMs: at.getTime() };
}

const TEXT_FIELD_MAX_CHARS = 200;

/** Reads a sidecar's text; throws IMPORT_SIDECAR_INVALID naming the file and the problem. */
export function parseSidecar(text: string, sidecarName: string): ImportMeta {
  const invalid = (problem: string): LecternError =>
    new LecternError('IMPORT_SIDECAR_INVALID', `sidecar ${sidecarName}: ${problem}`, { details: { sidecar: sidecarName } });
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw invalid(`not valid JSON (${err instanceof Error ? err.message : String(err)})`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw invalid('must be a JSON object with course, title, teacher and recordedAt');
  const obj = raw as Record<string, unknown>;
  const meta: ImportMeta = {};
  for (const key of ['course', 'title', 'teacher'] as const) {
    const value = obj[key];
    if (value === undefined || value === null) continue;
    if (typeof value !== 'string') throw invalid(`${key} must be a string`);
    const trimmed = value.trim();
    if (trimmed.length > TEXT_FIELD_MAX_CHARS) throw invalid(`${key} is longer than ${TEXT_FIELD_MAX_CHARS} characters`);
    if (trimmed) meta[key] = trimmed;
  }
  const at = obj.recordedAt;
  if (at !== undefined && at !== null) {
    const ms = typeof at === 'string' && /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}/.test(at) ? Date.parse(at) : Number.NaN;
    if (!Number.isFinite(ms)) throw invalid(`recordedAt must be an ISO 8601 date and time such as "2026-11-30T09:00:00+01:00", got ${JSON.stringify(at).slice(0, 60)}`);
    meta.recordedAtMs = ms;
  }
  return meta;
}

// Formats ffprobe recognises that are not recordings: a text file reads as ANSI art ('tty'), a
// photo as one frame of an image format, a subtitle file as text streams.
const NOT_RECORDING_FORMATS = /^(tty|image2|[a-z0-9]+_pipe|gif|apng|webp|ico|srt|webvtt|ass|subviewer|microdvd|sami|lavfi)$/;
const STILL_IMAGE_CODECS = new Set(['mjpeg', 'png', 'bmp', 'gif', 'webp', 'tiff', 'jpeg2000', 'apng']);
const MIN_DURATION_SECONDS = 1;

/**
 * Whether a probed file is a recording the packager can make a lecture of; returns its duration.
 * Throws IMPORT_NOT_MEDIA (not a recording at all) or IMPORT_UNSUPPORTED (a recording without
 * video: the package is built around its video ladder).
 */
export function classifyProbe(probe: ProbeResult, fileName: string): { durationSeconds: number } {
  const formats = probe.formatName.split(',');
  if (formats.some((f) => NOT_RECORDING_FORMATS.test(f))) {
    const what = formats.includes('tty') ? 'text' : formats.some((f) => /image2|_pipe|gif|webp|ico|apng/.test(f)) ? 'a picture' : 'not audio or video';
    throw new LecternError('IMPORT_NOT_MEDIA', `ffprobe reads ${fileName} as ${what} (format ${probe.formatName}), not as a recording`);
  }
  const video = probe.streams.filter((s) => s.codecType === 'video');
  const audio = probe.streams.filter((s) => s.codecType === 'audio');
  if (video.length === 0 && audio.length === 0) {
    throw new LecternError('IMPORT_NOT_MEDIA', `${fileName} has no audio or video stream (format ${probe.formatName})`);
  }
  if (video.length === 0) {
    throw new LecternError('IMPORT_UNSUPPORTED', `${fileName} is audio only (${audio.map((s) => s.codecName).join(', ')}); lectern packages lectures with a video picture, so it cannot be imported yet`);
  }
  const duration = probe.durationSeconds ?? Math.max(0, ...probe.streams.map((s) => s.durationSeconds ?? 0));
  if (video.every((s) => STILL_IMAGE_CODECS.has(s.codecName)) && audio.length === 0 && duration < MIN_DURATION_SECONDS) {
    throw new LecternError('IMPORT_UNSUPPORTED', `${fileName} is a still picture (${video.map((s) => s.codecName).join(', ')}), not a recording`);
  }
  if (!(duration >= MIN_DURATION_SECONDS)) {
    throw new LecternError('IMPORT_NOT_MEDIA', `${fileName} lasts ${duration.toFixed(2)} s; a recording must last at least ${MIN_DURATION_SECONDS} s`);
  }
  // The video's own length, when known, is what the packager's renditions are checked against.
  const videoSeconds = video.map((s) => s.durationSeconds).find((d): d is number => d !== undefined && d > 0);
  return { durationSeconds: videoSeconds ?? duration };
}
