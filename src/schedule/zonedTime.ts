/**
 * Wall-clock time in an IANA zone, converted with the runtime's own time-zone database
 * (Intl.DateTimeFormat), so daylight-saving changes follow the same tzdata the system uses and no
 * zone table is shipped with lectern. Calendar arithmetic (adding days, weekdays) is done on wall
 * times as if they were UTC, and only the final wall time is converted: "every Monday 09:15 in
 * Europe/Berlin" stays 09:15 across the change to summer time.
 */

/** A wall-clock time (month 1-12). */
export interface WallTime {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
}

const DAY_MS = 86_400_000;

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (!f) {
    // Building a formatter is slow (it loads the zone); one per zone is reused for every conversion.
    f = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
      era: 'short',
    });
    formatters.set(timeZone, f);
  }
  return f;
}

/** True when the runtime knows `timeZone` as an IANA zone (or UTC). */
export function isValidTimeZone(timeZone: string): boolean {
  if (timeZone === '') return false;
  try {
    formatter(timeZone);
    return true;
  } catch {
    return false;
  }
}

/** The zone this machine is set to (TZ, /etc/localtime), as Node resolves it. */
export function systemTimeZone(): string {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
}

/** The wall time in `timeZone` at the instant `utcMs`. */
export function utcToZonedTime(utcMs: number, timeZone: string): WallTime {
  const parts: Record<string, string> = {};
  for (const p of formatter(timeZone).formatToParts(new Date(utcMs))) parts[p.type] = p.value;
  const yearOfEra = Number(parts.year);
  return {
    year: parts.era === 'BC' || parts.era === 'B' ? 1 - yearOfEra : yearOfEra,
    month: Number(parts.month),
    day: Number(parts.day),
    hour: Number(parts.hour),
    minute: Number(parts.minute),
    second: Number(parts.second),
  };
}

/** The wall time read as if it were UTC: the number used for calendar arithmetic. */
export function wallToMs(w: WallTime): number {
  const ms = Date.UTC(w.year, w.month - 1, w.day, w.hour, w.minute, w.second);
  // Date.UTC maps years 0-99 to 1900-1999.
  return w.year >= 0 && w.year < 100 ? new Date(ms).setUTCFullYear(w.year) : ms;
}

export function msToWall(ms: number): WallTime {
  const d = new Date(ms);
  return { year: d.getUTCFullYear(), month: d.getUTCMonth() + 1, day: d.getUTCDate(), hour: d.getUTCHours(), minute: d.getUTCMinutes(), second: d.getUTCSeconds() };
}

// Offsets by zone and quarter hour of UTC. Every zone change since 1970 falls on a quarter hour,
// so the offset is constant within one; formatting a date through Intl costs tens of µs, and a
// timetable of a few hundred weekly lectures asks thousands of times per look at it.
const QUARTER_HOUR_MS = 900_000;
const MAX_CACHED_OFFSETS = 100_000;
const offsetCache = new Map<string, Map<number, number>>();

/** Offset of `timeZone` from UTC at the instant `utcMs`, in ms (positive east of Greenwich). */
export function zoneOffsetMs(utcMs: number, timeZone: string): number {
  const bucket = Math.floor(utcMs / QUARTER_HOUR_MS) * QUARTER_HOUR_MS;
  let zone = offsetCache.get(timeZone);
  if (!zone) {
    zone = new Map();
    offsetCache.set(timeZone, zone);
  }
  let offset = zone.get(bucket);
  if (offset === undefined) {
    offset = wallToMs(utcToZonedTime(bucket, timeZone)) - bucket;
    if (zone.size >= MAX_CACHED_OFFSETS) zone.clear();
    zone.set(bucket, offset);
  }
  return offset;
}

/**
 * The instant at which clocks in `timeZone` show `wall`. As RFC 5545 §3.3.5 says for DATE-TIME
 * with TZID: a wall time skipped by a spring-forward change is read with the offset before the
 * gap (02:30 on the last Sunday of March in Berlin is 03:30 CEST), and a wall time that occurs
 * twice in an autumn change is the first of the two.
 */
export function zonedTimeToUtc(wall: WallTime, timeZone: string): number {
  const local = wallToMs(wall);
  // No zone changes its offset twice within two days, so the offsets a day either side are the
  // only candidates.
  const before = zoneOffsetMs(local - DAY_MS, timeZone);
  const after = zoneOffsetMs(local + DAY_MS, timeZone);
  // local - offset is right when the zone has that offset at that instant.
  let best: number | undefined;
  for (const offset of before === after ? [before] : [before, after]) {
    const t = local - offset;
    if (zoneOffsetMs(t, timeZone) === offset && (best === undefined || t < best)) best = t;
  }
  return best ?? local - before;
}

/** Weekday of a wall date, 0 = Sunday ... 6 = Saturday. */
export function weekdayOf(w: Pick<WallTime, 'year' | 'month' | 'day'>): number {
  return new Date(wallToMs({ ...w, hour: 0, minute: 0, second: 0 })).getUTCDay();
}

/** YYYY-MM-DD of a wall date, for messages and date keys. */
export function dateKey(w: Pick<WallTime, 'year' | 'month' | 'day'>): string {
  return `${String(w.year).padStart(4, '0')}-${String(w.month).padStart(2, '0')}-${String(w.day).padStart(2, '0')}`;
}

/** `w` plus `days` calendar days (time of day unchanged). */
export function addDays(w: WallTime, days: number): WallTime {
  return msToWall(wallToMs(w) + days * DAY_MS);
}

/** True when `w` names a real calendar date and time (no 31 February, no 25:00). */
export function isRealWallTime(w: WallTime): boolean {
  if (![w.year, w.month, w.day, w.hour, w.minute, w.second].every(Number.isInteger)) return false;
  if (w.hour > 23 || w.minute > 59 || w.second > 60) return false;
  const back = msToWall(wallToMs({ ...w, second: Math.min(w.second, 59) }));
  return back.year === w.year && back.month === w.month && back.day === w.day;
}
