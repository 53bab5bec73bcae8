import { addDays, dateKey, wallToMs, weekdayOf, zonedTimeToUtc, type WallTime } from './zonedTime.js';

/**
 * The timetable as both file formats produce it: a list of series (one lecture, or a weekly or
 * daily rule), expanded on demand into slots for a window of time. Expansion works on wall times
 * in the series' zone, so a weekly 09:15 lecture stays at 09:15 local across daylight saving.
 */

/** What a recording of a slot is labelled with, and where the camera points. */
export interface LectureMeta {
  title: string;
  course: string | null;
  teacher: string | null;
  /** The camera's PTZ preset for this lecture (name or token); null = the source's configured one. */
  preset: string | null;
  location: string | null;
}

/** One lecture at one time. */
export interface LectureSlot extends LectureMeta {
  /** Stable across re-reads of the same timetable: the UID, plus the original start for a repeat. */
  id: string;
  startMs: number;
  endMs: number;
}

export interface RecurrenceRule {
  freq: 'DAILY' | 'WEEKLY';
  interval: number;
  /** Weekdays, 0 = Sunday ... 6 = Saturday; empty = the weekday of the first lecture (WEEKLY). */
  byDay: number[];
  /** The week starts on this weekday (WKST), which matters only for WEEKLY with INTERVAL > 1. */
  weekStart: number;
  /** Last possible start: an instant (UNTIL with a time) or a whole wall date, inclusive. */
  until?: { utcMs: number } | { date: string };
  count?: number;
}

/** `zone` is an IANA zone; wall times of a series are read in it. */
export interface Series {
  uid: string;
  /** Where the series is defined (line in the file), for messages. */
  line: number;
  zone: string;
  start: WallTime;
  durationMs: number;
  rule?: RecurrenceRule;
  /** Excluded original starts (EXDATE with a time, as instants) and whole days (EXDATE;VALUE=DATE). */
  exceptStartsMs: Set<number>;
  exceptDays: Set<string>;
  /** Repeats moved or cancelled by their own VEVENT (RECURRENCE-ID), keyed by original start. */
  overrides: Map<number, LectureSlot | null>;
  meta: LectureMeta;
}

const DAY_MS = 86_400_000;

// A runaway rule (DAILY for a century) must not stall the daemon: expansion stops here.
const MAX_STEPS = 200_000;

// Slots are expanded a week at a time and kept: the kiosk asks for the current lecture every
// second, and a university feed has hundreds of weekly series.
const CHUNK_MS = 7 * DAY_MS;
const MAX_CACHED_CHUNKS = 256;

export class Timetable {
  readonly series: readonly Series[];
  /** Problems that did not stop the file from loading (an event skipped, with its line). */
  readonly warnings: readonly string[];
  readonly #maxDurationMs: number;
  readonly #chunks = new Map<number, LectureSlot[]>();

  constructor(series: readonly Series[], warnings: readonly string[] = []) {
    this.series = series;
    this.warnings = warnings;
    let max = 0;
    for (const s of series) {
      max = Math.max(max, s.durationMs);
      for (const o of s.overrides.values()) if (o) max = Math.max(max, o.endMs - o.startMs);
    }
    this.#maxDurationMs = max;
  }

  /** Slots overlapping [fromMs, toMs), by start time (then end, then id, so that the order is total). */
  slotsBetween(fromMs: number, toMs: number): LectureSlot[] {
    const out: LectureSlot[] = [];
    if (toMs <= fromMs) return out;
    const last = Math.floor((toMs - 1) / CHUNK_MS);
    for (let k = Math.floor((fromMs - this.#maxDurationMs) / CHUNK_MS); k <= last; k++) {
      for (const slot of this.#chunk(k)) if (slot.endMs > fromMs && slot.startMs < toMs) out.push(slot);
    }
    return out;
  }

  /** Every slot starting in chunk k, sorted (chunks partition time, so their concatenation is sorted too). */
  #chunk(k: number): LectureSlot[] {
    const cached = this.#chunks.get(k);
    if (cached) return cached;
    const fromMs = k * CHUNK_MS;
    const toMs = fromMs + CHUNK_MS;
    const slots = this.series.flatMap((s) => expand(s, fromMs, toMs));
    slots.sort((a, b) => a.startMs - b.startMs || a.endMs - b.endMs || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    if (this.#chunks.size >= MAX_CACHED_CHUNKS) this.#chunks.clear();
    this.#chunks.set(k, slots);
    return slots;
  }
}

function slotAt(s: Series, startMs: number, id: string): LectureSlot {
  return { id, startMs, endMs: startMs + s.durationMs, ...s.meta };
}

/** The slots of one series that start in [fromMs, toMs). */
function expand(s: Series, fromMs: number, toMs: number): LectureSlot[] {
  const starting = (slot: LectureSlot): boolean => slot.startMs >= fromMs && slot.startMs < toMs;
  if (!s.rule) {
    const startMs = zonedTimeToUtc(s.start, s.zone);
    const override = s.overrides.get(startMs);
    if (override === null) return [];
    const slot = override ?? slotAt(s, startMs, s.uid);
    return starting(slot) ? [slot] : [];
  }
  const out: LectureSlot[] = [];
  for (const startMs of occurrences(s, fromMs, toMs)) {
    if (s.exceptStartsMs.has(startMs)) continue;
    if (s.overrides.has(startMs)) continue;
    out.push(slotAt(s, startMs, `${s.uid}@${new Date(startMs).toISOString()}`));
  }
  // A moved repeat can land anywhere, so overrides are placed by their new start.
  for (const slot of s.overrides.values()) if (slot && starting(slot)) out.push(slot);
  return out;
}

/**
 * Original starts (instants) of a recurring series from `fromMs` up to `toMs`, excluding whole
 * excluded days. COUNT counts every generated start from the first, as RFC 5545 says, including
 * those an EXDATE removes later.
 */
function occurrences(s: Series, fromMs: number, toMs: number): number[] {
  const rule = s.rule;
  if (!rule) return [];
  const out: number[] = [];
  let produced = 0;
  let steps = 0;
  const firstMs = wallToMs(s.start);
  const untilReached = (wall: WallTime, utcMs: number): boolean => {
    const u = rule.until;
    if (!u) return false;
    return 'utcMs' in u ? utcMs > u.utcMs : dateKey(wall) > u.date;
  };
  // Yields each candidate wall time in order; returns false to stop.
  const take = (wall: WallTime): boolean => {
    if (wallToMs(wall) < firstMs) return true;
    const utcMs = zonedTimeToUtc(wall, s.zone);
    if (untilReached(wall, utcMs)) return false;
    produced++;
    if (rule.count !== undefined && produced > rule.count) return false;
    if (utcMs >= toMs) return false;
    if (utcMs >= fromMs && !s.exceptDays.has(dateKey(wall))) out.push(utcMs);
    return true;
  };

  // Without COUNT, the repeats before the window need not be walked one by one.
  const periodsBefore = (firstOfPeriod: WallTime, periodDays: number): number =>
    rule.count === undefined ? Math.max(0, Math.floor((fromMs - 2 * DAY_MS - zonedTimeToUtc(firstOfPeriod, s.zone)) / (periodDays * DAY_MS)) - 1) : 0;

  if (rule.freq === 'DAILY') {
    const first = addDays(s.start, periodsBefore(s.start, rule.interval) * rule.interval);
    for (let wall = first; steps++ < MAX_STEPS; wall = addDays(wall, rule.interval)) {
      if (rule.byDay.length > 0 && !rule.byDay.includes(weekdayOf(wall))) {
        // A filtered-out day still has to respect UNTIL and the window, or the loop never ends.
        if (untilReached(wall, zonedTimeToUtc(wall, s.zone)) || zonedTimeToUtc(wall, s.zone) >= toMs) break;
        continue;
      }
      if (!take(wall)) break;
    }
    return out;
  }

  // WEEKLY: walk the weeks (starting on WKST) that contain repeats, every INTERVAL weeks.
  const days = rule.byDay.length > 0 ? rule.byDay : [weekdayOf(s.start)];
  const offsets = [...new Set(days.map((d) => (d - rule.weekStart + 7) % 7))].sort((a, b) => a - b);
  const firstWeek = addDays(s.start, -((weekdayOf(s.start) - rule.weekStart + 7) % 7));
  let weekStart = addDays(firstWeek, periodsBefore(firstWeek, 7 * rule.interval) * 7 * rule.interval);
  for (; steps++ < MAX_STEPS; weekStart = addDays(weekStart, 7 * rule.interval)) {
    for (const offset of offsets) if (!take(addDays(weekStart, offset))) return out;
  }
  return out;
}
