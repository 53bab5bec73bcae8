import { sha256Hex } from '../util/hash.js';
import type { LineProblem } from './icsLex.js';
import { invalidTimetable } from './problems.js';
import { Timetable, type Series } from './timetable.js';
import { isRealWallTime, isValidTimeZone, wallToMs, weekdayOf, zonedTimeToUtc, type WallTime } from './zonedTime.js';

/**
 * A timetable written by hand: a YAML list with one entry per lecture or weekly series.
 *
 * ```yaml
 * - course: CS101                # optional
 *   title: Algorithms            # optional when course is set
 *   teacher: Dr. Ada Lovelace    # optional
 *   preset: lectern              # optional: the camera's PTZ preset for this lecture
 *   weekdays: [mon, wed]         # a weekly series (or weekday: mon)
 *   startTime: "09:15"
 *   endTime: "10:45"
 *   from: 2025-04-14             # first and last day, inclusive
 *   until: 2025-07-18
 *   every: 1                     # optional: every N weeks
 *   except: [2025-05-01]         # optional: days without this lecture
 *   timeZone: Europe/Berlin      # optional: default the configured zone
 * - course: CS101
 *   title: Exam
 *   start: 2025-07-21 10:00      # a single lecture
 *   end: 2025-07-21 12:00        # or just "12:00" for the same day
 * ```
 *
 * YAML is parsed by config/ (the one importer of the yaml library); the parser is injected and
 * tells where each value is, so every problem names its line.
 */

export interface YamlDocument {
  value: unknown;
  /** The 1-based line of the value at `path` (list index, key...), when known. */
  lineOf(path: readonly (string | number)[]): number | undefined;
  /** Syntax errors; when there are any, `value` is not used. */
  problems: LineProblem[];
}

export type YamlParser = (text: string) => YamlDocument;

export interface YamlTimetableOptions {
  timeZone: string;
  source: string;
}

const ENTRY_KEYS = new Set(['course', 'title', 'teacher', 'preset', 'location', 'timeZone', 'start', 'end', 'weekday', 'weekdays', 'startTime', 'endTime', 'from', 'until', 'every', 'except']);
const WEEKDAYS: Record<string, number> = { sun: 0, sunday: 0, mon: 1, monday: 1, tue: 2, tuesday: 2, wed: 3, wednesday: 3, thu: 4, thursday: 4, fri: 5, friday: 5, sat: 6, saturday: 6 };
const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;
const TIME = /^(\d{1,2}):(\d{2})(?::(\d{2}))?$/;
const DATE_TIME = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{1,2}):(\d{2})(?::(\d{2}))?$/;

export function parseYamlTimetable(text: string, parse: YamlParser, opts: YamlTimetableOptions): Timetable {
  const doc = parse(text);
  if (doc.problems.length > 0) throw invalidTimetable(opts.source, doc.problems);
  const problems: LineProblem[] = [];
  const list = doc.value ?? [];
  if (!Array.isArray(list)) {
    throw invalidTimetable(opts.source, [{ line: doc.lineOf([]) ?? 1, message: 'the timetable must be a list of lectures (lines starting with "- ")' }]);
  }
  const series: Series[] = [];
  const ids = new Set<string>();
  list.forEach((entry: unknown, index) => {
    const s = new EntryReader(entry, index, doc, opts, problems).read();
    if (!s) return;
    let uid = s.uid;
    for (let n = 2; ids.has(uid); n++) uid = `${s.uid}#${n}`;
    ids.add(uid);
    series.push({ ...s, uid });
  });
  if (problems.length > 0) throw invalidTimetable(opts.source, problems);
  return new Timetable(series);
}

type Built = Pick<Series, 'start' | 'durationMs' | 'rule' | 'exceptDays'>;

class EntryReader {
  readonly #entry: Record<string, unknown>;
  readonly #index: number;
  readonly #doc: YamlDocument;
  readonly #opts: YamlTimetableOptions;
  readonly #problems: LineProblem[];
  readonly #isMapping: boolean;
  #failed = false;

  constructor(entry: unknown, index: number, doc: YamlDocument, opts: YamlTimetableOptions, problems: LineProblem[]) {
    this.#isMapping = typeof entry === 'object' && entry !== null && !Array.isArray(entry);
    this.#entry = this.#isMapping ? (entry as Record<string, unknown>) : {};
    this.#index = index;
    this.#doc = doc;
    this.#opts = opts;
    this.#problems = problems;
  }

  read(): Series | undefined {
    if (!this.#isMapping) return this.#problem(undefined, 'each lecture must be a mapping (course:, title:, start:...)');
    for (const key of Object.keys(this.#entry)) if (!ENTRY_KEYS.has(key)) this.#problem(key, `unknown key; expected one of ${[...ENTRY_KEYS].join(', ')}`);
    const course = this.#text('course');
    const title = this.#text('title') ?? course;
    if (title === null) this.#problem(undefined, 'a lecture needs a title or a course');
    const zone = this.#text('timeZone') ?? this.#opts.timeZone;
    if (!isValidTimeZone(zone)) this.#problem('timeZone', `"${zone}" is not a time zone this system knows; use an IANA name such as Europe/Berlin`);
    const meta = { title: title ?? '', course, teacher: this.#text('teacher'), preset: this.#text('preset'), location: this.#text('location') };
    const weekly = this.#entry.weekday !== undefined || this.#entry.weekdays !== undefined;
    const built = weekly ? this.#weekly() : this.#single(zone);
    if (!built || this.#failed) return undefined;
    // The id follows when the lecture starts, not its name or end: correcting a title or moving
    // the end while it is recorded must not cut the recording in two.
    const uid = `yaml-${sha256Hex(JSON.stringify([zone, built.start, built.rule ? [built.rule.interval, built.rule.byDay] : null])).slice(0, 16)}`;
    return { uid, line: this.#line(undefined), zone, meta, exceptStartsMs: new Set(), overrides: new Map(), ...built };
  }

  #single(zone: string): Built | undefined {
    for (const key of ['startTime', 'endTime', 'from', 'until', 'every', 'except']) {
      if (this.#entry[key] !== undefined) this.#problem(key, `"${key}" belongs to a weekly lecture, which needs weekday or weekdays`);
    }
    const start = this.#dateTime('start');
    if (!start) return this.#entry.start !== undefined ? undefined : this.#problem('start', 'is required: the date and time the lecture starts, e.g. "2025-07-21 10:00" (or use weekday, startTime and endTime for a weekly one)');
    const endRaw = this.#entry.end;
    let end: WallTime | undefined;
    if (typeof endRaw === 'string' && TIME.test(endRaw.trim())) {
      const t = this.#time('end');
      if (t) end = { ...start, ...t };
    } else {
      end = this.#dateTime('end');
    }
    if (!end) return endRaw === undefined ? this.#problem('end', 'is required: the date and time (or just the time) the lecture ends') : undefined;
    // Both ends are wall times in the zone: a lecture across a clock change lasts what the clocks say.
    const durationMs = zonedTimeToUtc(end, zone) - zonedTimeToUtc(start, zone);
    if (durationMs <= 0) return this.#problem('end', 'must be after start');
    return { start, durationMs, exceptDays: new Set() };
  }

  #weekly(): Built | undefined {
    for (const key of ['start', 'end']) if (this.#entry[key] !== undefined) this.#problem(key, `a weekly lecture uses startTime and endTime (and from/until for the dates), not "${key}"`);
    const key = this.#entry.weekdays !== undefined ? 'weekdays' : 'weekday';
    const raw = this.#entry[key];
    const names = Array.isArray(raw) ? raw : [raw];
    const byDay: number[] = [];
    for (const n of names) {
      const day = typeof n === 'string' ? WEEKDAYS[n.trim().toLowerCase()] : undefined;
      if (day === undefined) this.#problem(key, `"${String(n)}" is not a weekday (mon, tue, wed, thu, fri, sat, sun)`);
      else byDay.push(day);
    }
    const startTime = this.#time('startTime');
    const endTime = this.#time('endTime');
    const from = this.#date('from');
    const until = this.#date('until');
    if (!startTime || !endTime || !from || !until || this.#failed) return undefined;
    const every = this.#entry.every ?? 1;
    if (typeof every !== 'number' || !Number.isInteger(every) || every < 1 || every > 52) return this.#problem('every', `must be a whole number of weeks from 1 to 52, got ${JSON.stringify(every)}`);
    if (until.day < from.day) return this.#problem('until', 'must not be before from');
    const exceptDays = new Set<string>();
    const exceptRaw = this.#entry.except ?? [];
    for (const [i, d] of (Array.isArray(exceptRaw) ? exceptRaw : [exceptRaw]).entries()) {
      if (typeof d === 'string' && DATE.test(d.trim())) exceptDays.add(d.trim());
      else this.#problem(Array.isArray(exceptRaw) ? ['except', i] : 'except', `"${String(d)}" is not a date (YYYY-MM-DD)`);
    }
    // The series is anchored on the first day in range that is one of its weekdays.
    let start: WallTime = { ...from.wall, ...startTime };
    for (let i = 0; i < 7 && !byDay.includes(weekdayOf(start)); i++) start = { ...start, day: start.day + 1 };
    start = normalise(start);
    const durationMs = wallToMs({ ...start, ...endTime }) - wallToMs(start);
    if (durationMs <= 0) return this.#problem('endTime', 'must be after startTime');
    return { start, durationMs, exceptDays, rule: { freq: 'WEEKLY', interval: every, byDay, weekStart: 1, until: { date: until.day } } };
  }

  #text(key: string): string | null {
    const v = this.#entry[key];
    if (v === undefined || v === null) return null;
    if (typeof v === 'number') return String(v);
    if (typeof v !== 'string') {
      this.#problem(key, 'must be text');
      return null;
    }
    return v.trim() === '' ? null : v.trim();
  }

  #string(key: string): string | undefined {
    const v = this.#entry[key];
    if (v instanceof Date) {
      this.#problem(key, 'write dates and times in quotes ("2025-07-21 10:00") so that YAML keeps them as written');
      return undefined;
    }
    if (typeof v === 'number') {
      this.#problem(key, `write times in quotes ("09:15"): YAML read ${v} as a number`);
      return undefined;
    }
    return typeof v === 'string' ? v.trim() : undefined;
  }

  #time(key: string): Pick<WallTime, 'hour' | 'minute' | 'second'> | undefined {
    const v = this.#string(key);
    if (v === undefined) return this.#entry[key] === undefined ? this.#problem(key, 'is required: a time such as "09:15"') : undefined;
    const m = TIME.exec(v);
    const t = m ? { hour: Number(m[1]), minute: Number(m[2]), second: Number(m[3] ?? 0) } : undefined;
    if (!t || t.hour > 23 || t.minute > 59 || t.second > 59) return this.#problem(key, `"${v}" is not a time such as "09:15"`);
    return t;
  }

  #date(key: string): { wall: WallTime; day: string } | undefined {
    const v = this.#string(key);
    if (v === undefined) return this.#entry[key] === undefined ? this.#problem(key, 'is required: a date such as 2025-04-14') : undefined;
    const m = DATE.exec(v);
    const wall = m ? { year: Number(m[1]), month: Number(m[2]), day: Number(m[3]), hour: 0, minute: 0, second: 0 } : undefined;
    if (!wall || !isRealWallTime(wall)) return this.#problem(key, `"${v}" is not a date such as 2025-04-14`);
    return { wall, day: v };
  }

  #dateTime(key: string): WallTime | undefined {
    const v = this.#string(key);
    if (v === undefined) return undefined;
    const m = DATE_TIME.exec(v);
    const wall = m ? { year: Number(m[1]), month: Number(m[2]), day: Number(m[3]), hour: Number(m[4]), minute: Number(m[5]), second: Number(m[6] ?? 0) } : undefined;
    if (!wall || !isRealWallTime(wall)) {
      this.#problem(key, `"${v}" is not a date and time such as "2025-07-21 10:00"`);
      return undefined;
    }
    return wall;
  }

  #line(key: string | (string | number)[] | undefined): number {
    const path = key === undefined ? [this.#index] : [this.#index, ...(Array.isArray(key) ? key : [key])];
    return this.#doc.lineOf(path) ?? this.#doc.lineOf([this.#index]) ?? 1;
  }

  #problem(key: string | (string | number)[] | undefined, message: string): undefined {
    this.#failed = true;
    const where = key === undefined ? '' : `${Array.isArray(key) ? key.join('.') : key}: `;
    this.#problems.push({ line: this.#line(key), message: `lecture ${this.#index + 1}: ${where}${message}` });
    return undefined;
  }
}

function normalise(w: WallTime): WallTime {
  const d = new Date(wallToMs(w));
  return { year: d.getUTCFullYear(), month: d.getUTCMonth() + 1, day: d.getUTCDate(), hour: w.hour, minute: w.minute, second: w.second };
}
