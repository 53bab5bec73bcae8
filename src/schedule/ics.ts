import { sha256Hex } from '../util/hash.js';
import { parseComponents, unescapeText, type IcsComponent, type IcsProperty, type LineProblem } from './icsLex.js';
import { resolveTzid } from './timeZones.js';
import { Timetable, type LectureMeta, type LectureSlot, type RecurrenceRule, type Series } from './timetable.js';
import { isRealWallTime, wallToMs, zonedTimeToUtc, type WallTime } from './zonedTime.js';
import { invalidTimetable } from './problems.js';

/**
 * The subset of iCalendar (RFC 5545) that university timetables use: VEVENTs with DTSTART and
 * DTEND or DURATION, TZID parameters, UTC and floating times, RRULE with FREQ=WEEKLY or DAILY
 * (INTERVAL, BYDAY, UNTIL, COUNT, WKST), EXDATE, RECURRENCE-ID overrides and STATUS:CANCELLED.
 *
 * - Floating times (no TZID, no Z) are read in the configured zone.
 * - All-day events (DTSTART;VALUE=DATE) are skipped: a holiday or an exam week is not a lecture.
 * - VTIMEZONE blocks are ignored; TZID must name an IANA zone or a common Windows zone.
 * - A malformed file is an error listing every problem with its line; it is not used at all.
 *   A valid event this parser cannot honour (FREQ=MONTHLY, BYMONTHDAY...) is skipped with a
 *   warning naming its line, so one odd meeting does not cost the room its whole timetable.
 *
 * Lecture metadata (first match wins):
 * - course: X-LECTERN-COURSE; a `course: CS101` line in DESCRIPTION; a code in front of the
 *   SUMMARY (`CS101: Algorithms`, `MATH 201 - Analysis`), which is then left out of the title.
 * - title: the SUMMARY (without that code).
 * - teacher: X-LECTERN-TEACHER; a `teacher: ...` line in DESCRIPTION; ORGANIZER's CN.
 * - camera preset: X-LECTERN-PRESET; a `preset: ...` line in DESCRIPTION.
 * Other X- properties are ignored.
 */

export interface IcsOptions {
  /** The zone for floating times. */
  timeZone: string;
  /** Names the file in messages. */
  source: string;
}

const WEEKDAYS: Record<string, number> = { SU: 0, MO: 1, TU: 2, WE: 3, TH: 4, FR: 5, SA: 6 };
const COURSE_IN_SUMMARY = /^([A-Za-z]{2,8}[ -]?\d{2,5}[A-Za-z]?)\s*[:\u2013\u2014-]\s+(\S.*)$/;

/** Parses a calendar; throws SCHEDULE_INVALID listing every problem with its line. */
export function parseIcs(text: string, opts: IcsOptions): Timetable {
  const problems: LineProblem[] = [];
  const warnings: string[] = [];
  const roots = parseComponents(text, problems);
  const events = roots.flatMap((r) => r.children.filter((c) => c.name === 'VEVENT'));

  const masters = new Map<string, Series>();
  const overrides: { uid: string; line: number; recurrenceMs: number; slot: LectureSlot | null }[] = [];
  for (const event of events) {
    const ctx = new EventReader(event, opts, problems, warnings);
    const built = ctx.build();
    if (!built) continue;
    if (built.kind === 'override') {
      overrides.push(built);
      continue;
    }
    let uid = built.series.uid;
    // Two masters with one UID break RFC 5545, but exports do it; both lectures are kept.
    for (let n = 2; masters.has(uid); n++) uid = `${built.series.uid}#${n}`;
    masters.set(uid, { ...built.series, uid });
  }
  for (const o of overrides) {
    const master = masters.get(o.uid);
    if (master) {
      master.overrides.set(o.recurrenceMs, o.slot ? { ...o.slot, id: `${o.uid}@${new Date(o.recurrenceMs).toISOString()}` } : null);
    } else if (o.slot) {
      // An instance shared without its series: a lecture of its own.
      masters.set(`${o.uid}@${o.recurrenceMs}`, {
        uid: `${o.uid}@${new Date(o.recurrenceMs).toISOString()}`,
        line: o.line,
        zone: 'UTC',
        start: msToWallUtc(o.slot.startMs),
        durationMs: o.slot.endMs - o.slot.startMs,
        exceptStartsMs: new Set(),
        exceptDays: new Set(),
        overrides: new Map(),
        meta: metaOf(o.slot),
      });
    }
  }
  if (problems.length > 0) throw invalidTimetable(opts.source, problems);
  return new Timetable([...masters.values()], warnings);
}

function msToWallUtc(ms: number): WallTime {
  const d = new Date(ms);
  return { year: d.getUTCFullYear(), month: d.getUTCMonth() + 1, day: d.getUTCDate(), hour: d.getUTCHours(), minute: d.getUTCMinutes(), second: d.getUTCSeconds() };
}

function metaOf(slot: LectureSlot): LectureMeta {
  return { title: slot.title, course: slot.course, teacher: slot.teacher, preset: slot.preset, location: slot.location };
}

type Built = { kind: 'series'; series: Series } | { kind: 'override'; uid: string; line: number; recurrenceMs: number; slot: LectureSlot | null };

/** A date or date-time value with the zone it is read in. */
type TimeValue = { kind: 'date'; wall: WallTime } | { kind: 'datetime'; wall: WallTime; zone: string };

class EventReader {
  readonly #event: IcsComponent;
  readonly #opts: IcsOptions;
  readonly #problems: LineProblem[];
  readonly #warnings: string[];
  #failed = false;

  constructor(event: IcsComponent, opts: IcsOptions, problems: LineProblem[], warnings: string[]) {
    this.#event = event;
    this.#opts = opts;
    this.#problems = problems;
    this.#warnings = warnings;
  }

  build(): Built | undefined {
    const e = this.#event;
    const dtstartProp = this.#one('DTSTART');
    if (!dtstartProp) {
      this.#problem(e.line, 'VEVENT without DTSTART');
      return undefined;
    }
    const start = this.#time(dtstartProp);
    if (!start) return undefined;
    const summary = unescapeText(this.#one('SUMMARY')?.value ?? '').trim();
    const recurrenceProp = this.#one('RECURRENCE-ID');
    const cancelled = (this.#one('STATUS')?.value ?? '').trim().toUpperCase() === 'CANCELLED';
    const uid = this.#one('UID')?.value.trim() || `nouid-${sha256Hex(`${dtstartProp.value}\n${summary}`).slice(0, 16)}`;
    // All-day (a holiday, an exam week): not a lecture.
    if (start.kind === 'date') return undefined;
    const startMs = zonedTimeToUtc(start.wall, start.zone);
    const durationMs = this.#duration(start, startMs);
    if (durationMs === undefined || this.#failed) return undefined;

    if (recurrenceProp) {
      const rid = this.#time(recurrenceProp, start.zone);
      if (!rid || this.#failed) return undefined;
      if (recurrenceProp.params.has('RANGE')) this.#warn(recurrenceProp.line, 'RECURRENCE-ID;RANGE=THISANDFUTURE is not supported; only this one repeat is changed');
      const recurrenceMs = rid.kind === 'date' ? zonedTimeToUtc({ ...rid.wall, hour: start.wall.hour, minute: start.wall.minute, second: start.wall.second }, start.zone) : zonedTimeToUtc(rid.wall, rid.zone);
      if (cancelled) return { kind: 'override', uid, line: e.line, recurrenceMs, slot: null };
      return { kind: 'override', uid, line: e.line, recurrenceMs, slot: { id: uid, startMs, endMs: startMs + durationMs, ...this.#meta(summary) } };
    }
    if (cancelled) return undefined;
    if (durationMs <= 0) {
      this.#warn(e.line, `event "${summary}" has no duration (DTEND not after DTSTART); skipped`);
      return undefined;
    }

    const rrules = this.#all('RRULE');
    let rule: RecurrenceRule | undefined;
    if (rrules.length > 1) {
      this.#warn(e.line, `event "${summary}" has more than one RRULE; skipped`);
      return undefined;
    }
    if (rrules[0]) {
      const parsed = this.#rule(rrules[0], start);
      if (parsed === 'skip' || this.#failed) return undefined;
      rule = parsed;
    }
    for (const p of this.#all('RDATE')) this.#warn(p.line, 'RDATE is not supported; its extra dates are ignored');

    const exceptStartsMs = new Set<number>();
    const exceptDays = new Set<string>();
    for (const p of this.#all('EXDATE')) {
      for (const value of p.value.split(',')) {
        const t = this.#time({ ...p, value: value.trim() }, start.zone);
        if (!t) continue;
        if (t.kind === 'date') exceptDays.add(dateKeyOf(t.wall));
        else exceptStartsMs.add(zonedTimeToUtc(t.wall, t.zone));
      }
    }
    if (this.#failed) return undefined;
    return {
      kind: 'series',
      series: { uid, line: e.line, zone: start.zone, start: start.wall, durationMs, rule, exceptStartsMs, exceptDays, overrides: new Map(), meta: this.#meta(summary) },
    };
  }

  #duration(start: Extract<TimeValue, { kind: 'datetime' }>, startMs: number): number | undefined {
    const dtend = this.#one('DTEND');
    const duration = this.#one('DURATION');
    if (dtend) {
      const end = this.#time(dtend, start.zone);
      if (!end) return undefined;
      if (end.kind === 'date') {
        this.#problem(dtend.line, 'DTEND is a date but DTSTART is a date-time');
        return undefined;
      }
      return zonedTimeToUtc(end.wall, end.zone) - startMs;
    }
    if (duration) {
      const m = /^([+-])?P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$/.exec(duration.value.trim());
      if (!m || duration.value.trim() === 'P' || duration.value.trim().endsWith('T')) {
        this.#problem(duration.line, `DURATION "${duration.value}" is not a duration such as PT1H30M`);
        return undefined;
      }
      const n = (i: number): number => Number(m[i] ?? 0);
      // Days are nominal (RFC 5545 §3.3.6): the same wall time that many days later.
      const days = n(2) * 7 + n(3);
      const endWall = { ...start.wall, day: start.wall.day + days };
      const nominalEnd = zonedTimeToUtc(msToWallUtc(wallToMs(endWall)), start.zone);
      const ms = nominalEnd - startMs + (n(4) * 3600 + n(5) * 60 + n(6)) * 1000;
      return m[1] === '-' ? -ms : ms;
    }
    // RFC 5545: a date-time DTSTART without an end is an instant, which cannot be recorded.
    return 0;
  }

  #rule(p: IcsProperty, start: Extract<TimeValue, { kind: 'datetime' }>): RecurrenceRule | 'skip' {
    const parts = new Map<string, string>();
    for (const part of p.value.split(';')) {
      if (part.trim() === '') continue;
      const eq = part.indexOf('=');
      if (eq <= 0) {
        this.#problem(p.line, `RRULE part "${part}" is not NAME=VALUE`);
        return 'skip';
      }
      parts.set(part.slice(0, eq).trim().toUpperCase(), part.slice(eq + 1).trim());
    }
    const freq = parts.get('FREQ')?.toUpperCase();
    if (!freq) {
      this.#problem(p.line, 'RRULE without FREQ');
      return 'skip';
    }
    if (freq !== 'WEEKLY' && freq !== 'DAILY') {
      if (['SECONDLY', 'MINUTELY', 'HOURLY', 'MONTHLY', 'YEARLY'].includes(freq)) {
        this.#warn(p.line, `RRULE FREQ=${freq} is not supported (only WEEKLY and DAILY); the event is skipped`);
      } else {
        this.#problem(p.line, `RRULE FREQ=${freq} is not a frequency`);
      }
      return 'skip';
    }
    const unsupported = [...parts.keys()].filter((k) => !['FREQ', 'INTERVAL', 'BYDAY', 'UNTIL', 'COUNT', 'WKST'].includes(k) && !k.startsWith('X-'));
    if (unsupported.length > 0) {
      this.#warn(p.line, `RRULE ${unsupported.join(', ')} is not supported; the event is skipped`);
      return 'skip';
    }
    const rule: RecurrenceRule = { freq, interval: 1, byDay: [], weekStart: 1 };
    const interval = parts.get('INTERVAL');
    if (interval !== undefined) {
      if (!/^\d{1,4}$/.test(interval) || Number(interval) < 1) {
        this.#problem(p.line, `RRULE INTERVAL=${interval} must be a whole number of 1 or more`);
        return 'skip';
      }
      rule.interval = Number(interval);
    }
    const count = parts.get('COUNT');
    if (count !== undefined) {
      if (!/^\d{1,6}$/.test(count) || Number(count) < 1) {
        this.#problem(p.line, `RRULE COUNT=${count} must be a whole number of 1 or more`);
        return 'skip';
      }
      rule.count = Number(count);
    }
    for (const [key, target] of [
      ['BYDAY', 'byDay'],
      ['WKST', 'weekStart'],
    ] as const) {
      const raw = parts.get(key);
      if (raw === undefined) continue;
      const days: number[] = [];
      for (const d of raw.split(',')) {
        const day = WEEKDAYS[d.trim().toUpperCase()];
        if (day === undefined) {
          if (/^[+-]?\d+[A-Za-z]{2}$/.test(d.trim())) {
            this.#warn(p.line, `RRULE ${key}=${raw}: numbered weekdays (as in 1MO) are not supported with FREQ=${freq}; the event is skipped`);
          } else {
            this.#problem(p.line, `RRULE ${key}: "${d}" is not a weekday (MO, TU, WE, TH, FR, SA, SU)`);
          }
          return 'skip';
        }
        days.push(day);
      }
      if (target === 'byDay') rule.byDay = days;
      else rule.weekStart = days[0] ?? 1;
    }
    const until = parts.get('UNTIL');
    if (until !== undefined) {
      if (rule.count !== undefined) this.#problem(p.line, 'RRULE has both UNTIL and COUNT');
      const t = this.#time({ ...p, name: 'UNTIL', params: new Map(), value: until }, start.zone);
      if (!t) return 'skip';
      rule.until = t.kind === 'date' ? { date: dateKeyOf(t.wall) } : { utcMs: zonedTimeToUtc(t.wall, t.zone) };
    }
    return rule;
  }

  /** A DATE or DATE-TIME property value; `floatingZone` for values without TZID or Z. */
  #time(p: IcsProperty, floatingZone: string = this.#opts.timeZone): TimeValue | undefined {
    const value = p.value.trim();
    const valueType = p.params.get('VALUE')?.[0]?.toUpperCase();
    const dt = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})(Z?)$/.exec(value);
    const d = /^(\d{4})(\d{2})(\d{2})$/.exec(value);
    if (d && valueType !== 'DATE-TIME') {
      const wall = { year: Number(d[1]), month: Number(d[2]), day: Number(d[3]), hour: 0, minute: 0, second: 0 };
      if (!isRealWallTime(wall)) return this.#problem(p.line, `${p.name} "${value}" is not a real date`);
      return { kind: 'date', wall };
    }
    if (!dt || valueType === 'DATE') {
      return this.#problem(p.line, `${p.name} "${value}" is not a date-time (YYYYMMDDTHHMMSS, optionally ending in Z) or a date (YYYYMMDD)`);
    }
    const wall = { year: Number(dt[1]), month: Number(dt[2]), day: Number(dt[3]), hour: Number(dt[4]), minute: Number(dt[5]), second: Number(dt[6]) };
    if (!isRealWallTime(wall)) return this.#problem(p.line, `${p.name} "${value}" is not a real date and time`);
    if (dt[7] === 'Z') return { kind: 'datetime', wall, zone: 'UTC' };
    const tzid = p.params.get('TZID')?.[0];
    if (tzid === undefined) return { kind: 'datetime', wall, zone: floatingZone };
    const zone = resolveTzid(tzid);
    if (!zone) {
      return this.#problem(p.line, `${p.name}: TZID "${tzid}" is not a time zone this system knows; use an IANA name such as Europe/Berlin (VTIMEZONE definitions are not read)`);
    }
    return { kind: 'datetime', wall, zone };
  }

  #meta(summary: string): LectureMeta {
    const x = (name: string): string | null => {
      const v = this.#one(name)?.value;
      return v === undefined || unescapeText(v).trim() === '' ? null : unescapeText(v).trim();
    };
    const description = unescapeText(this.#one('DESCRIPTION')?.value ?? '');
    const fromDescription = (key: string): string | null => {
      const m = new RegExp(`^\\s*${key}\\s*:\\s*(\\S.*?)\\s*$`, 'im').exec(description);
      return m?.[1] ?? null;
    };
    const coded = COURSE_IN_SUMMARY.exec(summary);
    const course = x('X-LECTERN-COURSE') ?? fromDescription('course') ?? coded?.[1] ?? null;
    const title = (coded ? coded[2] : summary)?.trim() || course || 'Lecture';
    const organizer = this.#one('ORGANIZER')?.params.get('CN')?.[0]?.trim();
    const location = this.#one('LOCATION');
    return {
      title,
      course,
      teacher: x('X-LECTERN-TEACHER') ?? fromDescription('teacher') ?? (organizer || null),
      preset: x('X-LECTERN-PRESET') ?? fromDescription('preset'),
      location: location ? unescapeText(location.value).trim() || null : null,
    };
  }

  #one(name: string): IcsProperty | undefined {
    return this.#event.properties.find((p) => p.name === name);
  }

  #all(name: string): IcsProperty[] {
    return this.#event.properties.filter((p) => p.name === name);
  }

  #problem(line: number, message: string): undefined {
    this.#failed = true;
    this.#problems.push({ line, message });
    return undefined;
  }

  #warn(line: number, message: string): void {
    this.#warnings.push(`${this.#opts.source}:${line}: ${message}`);
  }
}

function dateKeyOf(w: WallTime): string {
  return `${String(w.year).padStart(4, '0')}-${String(w.month).padStart(2, '0')}-${String(w.day).padStart(2, '0')}`;
}
