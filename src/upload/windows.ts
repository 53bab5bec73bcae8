import { LecternError } from '../util/errors.js';
import { UNCAPPED } from './tokenBucket.js';

/**
 * Upload windows: times of the week with their own rate cap, in the configured time zone
 * (DESIGN §4), written one per line as IT staff would say them:
 *
 *   "18:00-07:00 unlimited"            every night (a window may run past midnight)
 *   "Mon-Fri 07:00-18:00 1 Mbit/s"     class hours on weekdays
 *   "Sat,Sun 00:00-24:00 8mbit/s"      weekends
 *   "Mon-Fri 08:00-08:15 paused"       no uploads at all
 *
 * The first window that contains the moment wins; outside every window the default cap holds.
 * Days name the day a window starts on (a Friday 18:00-07:00 window covers early Saturday).
 * Times are wall-clock times in the zone, so a window keeps its local hours across daylight
 * saving time; a start inside the spring-forward gap begins when the clock jumps.
 *
 * upload/ may not import schedule/ (tests/unit/architecture.test.ts), so the zone arithmetic is
 * a small Intl helper of its own here.
 */

export type WindowCap = { kind: 'rate'; bytesPerSecond: number } | { kind: 'unlimited' } | { kind: 'paused' };

export interface UploadWindow {
  /** The line as configured, trimmed: its name in status and logs. */
  name: string;
  /** 0 = Sunday ... 6 = Saturday; all seven when no days were given. */
  days: ReadonlySet<number>;
  startMinute: number;
  /** Exclusive; 1440 = midnight at the end of the day. Less than or equal to start: past midnight. */
  endMinute: number;
  cap: WindowCap;
}

export interface ActiveWindow {
  /** The window in force, or null for the default cap. */
  window: UploadWindow | null;
  /** Bytes per second; Infinity = uncapped; 0 = paused. */
  capBytesPerSecond: number;
  paused: boolean;
  /** Epoch ms of the next change of window (null: never, e.g. no windows). */
  nextChangeMs: number | null;
}

const DAY_NAMES = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] as const;
const DAY = '(?:sun|mon|tue|wed|thu|fri|sat)[a-z]*';
const DAYS = `${DAY}(?:-${DAY})?(?:,${DAY}(?:-${DAY})?)*`;
const TIME = '(?:[01]?\\d|2[0-4]):[0-5]\\d';
const RATE = '(?:unlimited|paused|\\d+(?:\\.\\d+)?\\s*(?:kbit/s|mbit/s|kbps|mbps))';
/** The syntax of one window line; config/schema.ts checks lines with the same expression. */
export const WINDOW_PATTERN = new RegExp(`^\\s*(?:(${DAYS})\\s+)?(${TIME})\\s*-\\s*(${TIME})\\s+(${RATE})\\s*$`, 'i');

export function parseWindow(line: string): UploadWindow {
  const m = WINDOW_PATTERN.exec(line);
  if (!m) throw invalid(line, 'expected "[days] HH:MM-HH:MM cap", e.g. "Mon-Fri 07:00-18:00 1 Mbit/s" or "18:00-07:00 unlimited"');
  const [, daysText, startText = '', endText = '', capText = ''] = m;
  const startMinute = minuteOf(startText, line);
  const endMinute = minuteOf(endText, line);
  if (startMinute >= 1440) throw invalid(line, 'a window cannot start at 24:00');
  if (startMinute === endMinute) throw invalid(line, 'start and end are the same time (use 00:00-24:00 for a whole day)');
  return { name: line.trim(), days: daysText ? parseDays(daysText, line) : new Set([0, 1, 2, 3, 4, 5, 6]), startMinute, endMinute, cap: parseCap(capText) };
}

function invalid(line: string, why: string): LecternError {
  return new LecternError('CONFIG_INVALID', `upload window "${line.trim()}": ${why}`, { details: { window: line } });
}

function minuteOf(text: string, line: string): number {
  const [h = 0, m = 0] = text.split(':').map(Number);
  const minute = h * 60 + m;
  if (minute > 1440) throw invalid(line, `${text} is not a time of day`);
  return minute;
}

function dayIndex(text: string, line: string): number {
  const i = DAY_NAMES.indexOf(text.slice(0, 3).toLowerCase() as (typeof DAY_NAMES)[number]);
  if (i < 0) throw invalid(line, `unknown day "${text}"`);
  return i;
}

function parseDays(text: string, line: string): Set<number> {
  const days = new Set<number>();
  for (const part of text.split(',')) {
    const [from = '', to] = part.split('-');
    const a = dayIndex(from, line);
    const b = to === undefined ? a : dayIndex(to, line);
    // Fri-Mon wraps over the weekend.
    for (let d = a; ; d = (d + 1) % 7) {
      days.add(d);
      if (d === b) break;
    }
  }
  return days;
}

function parseCap(text: string): WindowCap {
  const t = text.toLowerCase().replace(/\s+/g, '');
  if (t === 'unlimited') return { kind: 'unlimited' };
  if (t === 'paused') return { kind: 'paused' };
  const value = Number.parseFloat(t);
  const kbit = t.startsWith(`${value}`) && (t.endsWith('mbit/s') || t.endsWith('mbps')) ? value * 1000 : value;
  return { kind: 'rate', bytesPerSecond: (kbit * 1000) / 8 };
}

export function capBytesPerSecond(cap: WindowCap): number {
  return cap.kind === 'rate' ? cap.bytesPerSecond : cap.kind === 'unlimited' ? UNCAPPED : 0;
}

// ---- wall clock in a zone, with Intl --------------------------------------------------------

interface LocalTime {
  year: number;
  month: number;
  day: number;
  /** 0 = Sunday. */
  weekday: number;
  minuteOfDay: number;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', { timeZone, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric' });
    formatters.set(timeZone, f);
  }
  return f;
}

/** The wall-clock time in `timeZone` at `ms`. */
export function localTime(ms: number, timeZone: string): LocalTime & { second: number } {
  const parts: Record<string, number> = {};
  for (const p of formatter(timeZone).formatToParts(new Date(ms))) if (p.type !== 'literal') parts[p.type] = Number(p.value);
  const year = parts.year ?? 1970;
  const month = parts.month ?? 1;
  const day = parts.day ?? 1;
  return { year, month, day, weekday: new Date(Date.UTC(year, month - 1, day)).getUTCDay(), minuteOfDay: (parts.hour ?? 0) * 60 + (parts.minute ?? 0), second: parts.second ?? 0 };
}

/** How far the zone's wall clock is ahead of UTC at `ms`. */
function offsetMs(ms: number, timeZone: string): number {
  const t = localTime(ms, timeZone);
  const wall = Date.UTC(t.year, t.month - 1, t.day, 0, t.minuteOfDay, t.second);
  return wall - Math.floor(ms / 1000) * 1000;
}

/**
 * The instant the zone's clock shows this date and minute. A time that does not exist (the
 * spring-forward gap) maps to the moment the clock jumps past it; a time that happens twice
 * (fall back) to its first occurrence.
 */
export function zonedToUtc(year: number, month: number, day: number, minuteOfDay: number, timeZone: string): number {
  const wall = Date.UTC(year, month - 1, day, 0, minuteOfDay);
  // Zones change their offset at most once in two days: the offsets a day either side are the
  // only ones this wall time can have.
  const offsetBefore = offsetMs(wall - 86_400_000, timeZone);
  const offsetAfter = offsetMs(wall + 86_400_000, timeZone);
  const valid = [wall - offsetBefore, wall - offsetAfter].filter((c) => c + offsetMs(c, timeZone) === wall);
  if (valid.length > 0) return Math.min(...valid);
  // In the gap: find the instant of the jump (between the two readings), to the second.
  let lo = wall - Math.max(offsetBefore, offsetAfter);
  let hi = wall - Math.min(offsetBefore, offsetAfter);
  while (hi - lo > 1000) {
    const mid = Math.floor((lo + hi) / 2000) * 1000;
    if (offsetMs(mid, timeZone) === offsetBefore) lo = mid;
    else hi = mid;
  }
  return hi;
}

// ---- which window is in force ---------------------------------------------------------------

function contains(w: UploadWindow, t: LocalTime): boolean {
  const wraps = w.endMinute <= w.startMinute;
  if (!wraps) return w.days.has(t.weekday) && t.minuteOfDay >= w.startMinute && t.minuteOfDay < w.endMinute;
  if (t.minuteOfDay >= w.startMinute) return w.days.has(t.weekday);
  return t.minuteOfDay < w.endMinute && w.days.has((t.weekday + 6) % 7);
}

export class UploadWindows {
  readonly #windows: readonly UploadWindow[];
  readonly #timeZone: string;
  readonly #defaultCap: number;

  /** `defaultCapBytesPerSecond`: outside every window (Infinity = uncapped). */
  constructor(lines: readonly string[], opts: { timeZone?: string; defaultCapBytesPerSecond: number }) {
    this.#windows = lines.map(parseWindow);
    this.#timeZone = opts.timeZone ?? Intl.DateTimeFormat().resolvedOptions().timeZone;
    this.#defaultCap = opts.defaultCapBytesPerSecond;
  }

  get timeZone(): string {
    return this.#timeZone;
  }

  /** The window in force at `ms` (first match wins) and when that changes. */
  at(ms: number): ActiveWindow {
    const window = this.#windowAt(ms);
    const cap = window ? capBytesPerSecond(window.cap) : this.#defaultCap;
    return { window, capBytesPerSecond: cap, paused: cap === 0, nextChangeMs: this.#nextChange(ms, window) };
  }

  #windowAt(ms: number): UploadWindow | null {
    if (this.#windows.length === 0) return null;
    const t = localTime(ms, this.#timeZone);
    return this.#windows.find((w) => contains(w, t)) ?? null;
  }

  /** The first window boundary after `ms` at which another window (or none) takes over. */
  #nextChange(ms: number, current: UploadWindow | null): number | null {
    if (this.#windows.length === 0) return null;
    const minutes = [...new Set(this.#windows.flatMap((w) => [w.startMinute, w.endMinute]))];
    const today = localTime(ms, this.#timeZone);
    const candidates: number[] = [];
    // Eight days ahead covers every weekly window; each boundary is converted on its own date,
    // so daylight saving time moves the instant, not the wall-clock time.
    for (let d = 0; d <= 8; d++) {
      const date = new Date(Date.UTC(today.year, today.month - 1, today.day + d));
      for (const minute of minutes) {
        const at = zonedToUtc(date.getUTCFullYear(), date.getUTCMonth() + 1, date.getUTCDate(), minute, this.#timeZone);
        if (at > ms) candidates.push(at);
      }
    }
    candidates.sort((a, b) => a - b);
    for (const at of candidates) if (this.#windowAt(at) !== current) return at;
    return null;
  }
}
