import { describe, expect, it } from 'vitest';
import { parseIcs, resolveTzid, utcToZonedTime, zonedTimeToUtc, type LectureSlot } from '../../src/schedule/index.js';
import { isLecternError, type LecternError } from '../../src/util/errors.js';

const iso = (ms: number): string => new Date(ms).toISOString();
const at = (s: string): number => Date.parse(s);
const wall = (y: number, mo: number, d: number, h: number, mi: number, s = 0) => ({ year: y, month: mo, day: d, hour: h, minute: mi, second: s });

/** A calendar around `body` lines, CRLF-terminated as RFC 5545 wants. */
function cal(...body: string[]): string {
  return ['BEGIN:VCALENDAR', 'VERSION:2.0', 'PRODID:-//test//lectern//EN', ...body, 'END:VCALENDAR', ''].join('\r\n');
}

function event(...props: string[]): string[] {
  return ['BEGIN:VEVENT', ...props, 'END:VEVENT'];
}

function slots(text: string, from: string, to: string, timeZone = 'UTC'): LectureSlot[] {
  return parseIcs(text, { timeZone, source: 'room.ics' }).slotsBetween(at(from), at(to));
}

function parseError(text: string): LecternError {
  try {
    parseIcs(text, { timeZone: 'UTC', source: 'room.ics' });
  } catch (err) {
    if (isLecternError(err, 'SCHEDULE_INVALID')) return err;
    throw err;
  }
  throw new Error('expected SCHEDULE_INVALID');
}

describe('zonedTimeToUtc', () => {
  it('converts wall time in Europe/Berlin on both sides of daylight saving', () => {
    expect(iso(zonedTimeToUtc(wall(2025, 1, 15, 9, 0), 'Europe/Berlin'))).toBe('2025-01-15T08:00:00.000Z');
    expect(iso(zonedTimeToUtc(wall(2025, 7, 15, 9, 0), 'Europe/Berlin'))).toBe('2025-07-15T07:00:00.000Z');
    // The last minute before the spring change and the first after it.
    expect(iso(zonedTimeToUtc(wall(2025, 3, 30, 1, 59), 'Europe/Berlin'))).toBe('2025-03-30T00:59:00.000Z');
    expect(iso(zonedTimeToUtc(wall(2025, 3, 30, 3, 0), 'Europe/Berlin'))).toBe('2025-03-30T01:00:00.000Z');
  });

  it('reads a skipped wall time with the offset before the gap, and a doubled one as the first (RFC 5545 §3.3.5)', () => {
    // 02:30 does not exist on 30 March 2025 in Berlin: it means 03:30 CEST.
    expect(iso(zonedTimeToUtc(wall(2025, 3, 30, 2, 30), 'Europe/Berlin'))).toBe('2025-03-30T01:30:00.000Z');
    // 02:30 happens twice on 26 October 2025: the first is still CEST (+02:00).
    expect(iso(zonedTimeToUtc(wall(2025, 10, 26, 2, 30), 'Europe/Berlin'))).toBe('2025-10-26T00:30:00.000Z');
    expect(iso(zonedTimeToUtc(wall(2025, 11, 2, 1, 30), 'America/New_York'))).toBe('2025-11-02T05:30:00.000Z');
  });

  it('handles zones without daylight saving and with half-hour offsets', () => {
    for (const month of [1, 7]) {
      expect(iso(zonedTimeToUtc(wall(2025, month, 10, 9, 0), 'Africa/Nairobi'))).toBe(`2025-0${month}-10T06:00:00.000Z`);
      expect(iso(zonedTimeToUtc(wall(2025, month, 10, 9, 0), 'Asia/Kolkata'))).toBe(`2025-0${month}-10T03:30:00.000Z`);
    }
    expect(iso(zonedTimeToUtc(wall(2025, 1, 1, 0, 15), 'Asia/Kolkata'))).toBe('2024-12-31T18:45:00.000Z');
  });

  it('round-trips with utcToZonedTime every 30 minutes through a DST week', () => {
    for (let t = at('2025-03-27T00:00:00Z'); t < at('2025-04-03T00:00:00Z'); t += 30 * 60_000) {
      for (const zone of ['Europe/Berlin', 'Africa/Nairobi', 'Asia/Kolkata', 'America/Sao_Paulo']) {
        expect(zonedTimeToUtc(utcToZonedTime(t, zone), zone), `${zone} ${iso(t)}`).toBe(t);
      }
    }
  });
});

describe('parseIcs', () => {
  it('unfolds lines (CRLF, space and tab continuations), unescapes text and reads the metadata conventions', () => {
    const text = cal(
      ...event(
        'UID:lec-1',
        'DTSTART:20250602T080000Z',
        'DTEND:20250602T093000Z',
        'SUMMARY:CS101: Algorithms and',
        '  Data Structures',
        'DESCRIPTION:Week 1\\nteacher: Dr. Ada\\, Lovelace\\npreset: board-wide',
        'LOCATION:Room 1.04\\; Main building',
        'X-SOMETHING-ELSE:ignored',
      ),
      ...event(
        'UID:lec-2',
        'DTSTART:20250602T100000Z',
        'DURATION:PT45M',
        'SUMMARY:Guest talk',
        'ORGANIZER;CN="Prof. Grace Hopper":mailto:grace@example.edu',
        'X-LECTERN-COURSE:CS102',
        'X-LECTERN-PRESET:lect',
        '\tern',
      ),
    );
    const [a, b] = slots(text, '2025-06-02T00:00:00Z', '2025-06-03T00:00:00Z');
    expect(a).toEqual({
      id: 'lec-1',
      startMs: at('2025-06-02T08:00:00Z'),
      endMs: at('2025-06-02T09:30:00Z'),
      title: 'Algorithms and Data Structures',
      course: 'CS101',
      teacher: 'Dr. Ada, Lovelace',
      preset: 'board-wide',
      location: 'Room 1.04; Main building',
    });
    expect(b).toMatchObject({ id: 'lec-2', title: 'Guest talk', course: 'CS102', teacher: 'Prof. Grace Hopper', preset: 'lectern', location: null });
    expect(b && b.endMs - b.startMs).toBe(45 * 60_000);
  });

  it('keeps a weekly TZID lecture at the same wall time across the change to summer time (Europe/Berlin)', () => {
    const text = cal(...event('UID:w', 'DTSTART;TZID=Europe/Berlin:20250324T091500', 'DTEND;TZID=Europe/Berlin:20250324T104500', 'RRULE:FREQ=WEEKLY;COUNT=3', 'SUMMARY:Analysis'));
    const got = slots(text, '2025-03-01T00:00:00Z', '2025-05-01T00:00:00Z');
    expect(got.map((s) => iso(s.startMs))).toEqual(['2025-03-24T08:15:00.000Z', '2025-03-31T07:15:00.000Z', '2025-04-07T07:15:00.000Z']);
    expect(got.every((s) => s.endMs - s.startMs === 90 * 60_000)).toBe(true);
    // Each repeat has its own stable id: the UID and its original start.
    expect(got.map((s) => s.id)).toEqual(['w@2025-03-24T08:15:00.000Z', 'w@2025-03-31T07:15:00.000Z', 'w@2025-04-07T07:15:00.000Z']);
  });

  it('expands a daily lecture through the DST week, and the autumn change back', () => {
    const spring = cal(...event('UID:d', 'DTSTART;TZID=Europe/Berlin:20250328T090000', 'DTEND;TZID=Europe/Berlin:20250328T100000', 'RRULE:FREQ=DAILY;COUNT=4'));
    expect(slots(spring, '2025-03-01T00:00:00Z', '2025-05-01T00:00:00Z').map((s) => iso(s.startMs))).toEqual([
      '2025-03-28T08:00:00.000Z',
      '2025-03-29T08:00:00.000Z',
      '2025-03-30T07:00:00.000Z',
      '2025-03-31T07:00:00.000Z',
    ]);
    const autumn = cal(...event('UID:d', 'DTSTART;TZID=Europe/Berlin:20251025T090000', 'DURATION:PT1H', 'RRULE:FREQ=DAILY;COUNT=2'));
    expect(slots(autumn, '2025-10-01T00:00:00Z', '2025-11-01T00:00:00Z').map((s) => iso(s.startMs))).toEqual(['2025-10-25T07:00:00.000Z', '2025-10-26T08:00:00.000Z']);
  });

  it('keeps the same UTC time all year in zones without daylight saving (Africa/Nairobi, Asia/Kolkata)', () => {
    const text = cal(
      ...event('UID:n', 'DTSTART;TZID=Africa/Nairobi:20250106T080000', 'DTEND;TZID=Africa/Nairobi:20250106T090000', 'RRULE:FREQ=WEEKLY;UNTIL=20251231T235959Z'),
      ...event('UID:k', 'DTSTART;TZID=Asia/Kolkata:20250106T091500', 'DTEND;TZID=Asia/Kolkata:20250106T100000', 'RRULE:FREQ=WEEKLY;UNTIL=20251231T235959Z'),
    );
    const all = slots(text, '2025-01-01T00:00:00Z', '2026-01-01T00:00:00Z');
    const nairobi = all.filter((s) => s.id.startsWith('n@'));
    const kolkata = all.filter((s) => s.id.startsWith('k@'));
    expect(nairobi).toHaveLength(52);
    expect(kolkata).toHaveLength(52);
    expect(new Set(nairobi.map((s) => iso(s.startMs).slice(11)))).toEqual(new Set(['05:00:00.000Z']));
    expect(new Set(kolkata.map((s) => iso(s.startMs).slice(11)))).toEqual(new Set(['03:45:00.000Z']));
  });

  it('reads floating times in the configured zone and Z times as UTC', () => {
    const text = cal(...event('UID:f', 'DTSTART:20250707T090000', 'DTEND:20250707T100000'), ...event('UID:z', 'DTSTART:20250707T090000Z', 'DTEND:20250707T100000Z'));
    const got = slots(text, '2025-07-07T00:00:00Z', '2025-07-08T00:00:00Z', 'Asia/Kolkata');
    expect(got.map((s) => [s.id, iso(s.startMs)])).toEqual([
      ['f', '2025-07-07T03:30:00.000Z'],
      ['z', '2025-07-07T09:00:00.000Z'],
    ]);
  });

  it('expands RRULE with BYDAY, INTERVAL, UNTIL and COUNT', () => {
    const text = cal(
      // Mondays and Wednesdays, every other week, until 16 June (inclusive, a date).
      ...event('UID:a', 'DTSTART;TZID=Europe/Berlin:20250602T100000', 'DTEND;TZID=Europe/Berlin:20250602T113000', 'RRULE:FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,WE;UNTIL=20250616'),
      // Weekdays only, from a Friday, 4 of them.
      ...event('UID:b', 'DTSTART:20250606T140000Z', 'DTEND:20250606T150000Z', 'RRULE:FREQ=DAILY;BYDAY=MO,TU,WE,TH,FR;COUNT=4'),
      // Every third day, until an instant that cuts off the last candidate.
      ...event('UID:c', 'DTSTART:20250601T060000Z', 'DTEND:20250601T070000Z', 'RRULE:FREQ=DAILY;INTERVAL=3;UNTIL=20250610T055959Z'),
    );
    const got = slots(text, '2025-05-01T00:00:00Z', '2025-08-01T00:00:00Z');
    const of = (p: string): string[] => got.filter((s) => s.id.startsWith(`${p}@`)).map((s) => iso(s.startMs).slice(0, 16));
    expect(of('a')).toEqual(['2025-06-02T08:00', '2025-06-04T08:00', '2025-06-16T08:00']);
    expect(of('b')).toEqual(['2025-06-06T14:00', '2025-06-09T14:00', '2025-06-10T14:00', '2025-06-11T14:00']);
    expect(of('c')).toEqual(['2025-06-01T06:00', '2025-06-04T06:00', '2025-06-07T06:00']);
  });

  it('finds the right repeats years after the first one (open-ended series, INTERVAL=2)', () => {
    const text = cal(...event('UID:old', 'DTSTART;TZID=Europe/Berlin:20200106T091500', 'DTEND;TZID=Europe/Berlin:20200106T104500', 'RRULE:FREQ=WEEKLY;INTERVAL=2'));
    // 2025-03-31 is 273 weeks after 2020-01-06: odd, so that week has no lecture; the next week has.
    expect(slots(text, '2025-03-30T00:00:00Z', '2025-04-06T00:00:00Z')).toEqual([]);
    expect(slots(text, '2025-04-06T00:00:00Z', '2025-04-13T00:00:00Z').map((s) => iso(s.startMs))).toEqual(['2025-04-07T07:15:00.000Z']);
    const count = slots(text, '2020-01-01T00:00:00Z', '2026-01-01T00:00:00Z').length;
    expect(count).toBe(157);
  });

  it('removes EXDATE repeats (which still count towards COUNT) and applies RECURRENCE-ID overrides', () => {
    const text = cal(
      ...event(
        'UID:s',
        'DTSTART;TZID=Europe/Berlin:20250505T090000',
        'DTEND;TZID=Europe/Berlin:20250505T100000',
        'RRULE:FREQ=WEEKLY;COUNT=5',
        'EXDATE;TZID=Europe/Berlin:20250512T090000,20250519T090000',
        'SUMMARY:Physics',
      ),
      // The 26 May lecture moves to Tuesday afternoon with another room; 2 June is cancelled.
      ...event('UID:s', 'RECURRENCE-ID;TZID=Europe/Berlin:20250526T090000', 'DTSTART;TZID=Europe/Berlin:20250527T140000', 'DTEND;TZID=Europe/Berlin:20250527T153000', 'SUMMARY:Physics (moved)', 'LOCATION:B2'),
      ...event('UID:s', 'RECURRENCE-ID:20250602T070000Z', 'DTSTART;TZID=Europe/Berlin:20250602T090000', 'DTEND;TZID=Europe/Berlin:20250602T100000', 'STATUS:CANCELLED'),
    );
    const got = slots(text, '2025-05-01T00:00:00Z', '2025-07-01T00:00:00Z');
    expect(got.map((s) => [s.id, iso(s.startMs), s.title])).toEqual([
      ['s@2025-05-05T07:00:00.000Z', '2025-05-05T07:00:00.000Z', 'Physics'],
      ['s@2025-05-26T07:00:00.000Z', '2025-05-27T12:00:00.000Z', 'Physics (moved)'],
    ]);
    expect(got[1]?.endMs).toBe(at('2025-05-27T13:30:00Z'));
    expect(got[1]?.location).toBe('B2');
  });

  it('drops cancelled events and all-day events', () => {
    const text = cal(
      ...event('UID:x', 'DTSTART:20250602T080000Z', 'DTEND:20250602T090000Z', 'STATUS:CANCELLED'),
      ...event('UID:y', 'DTSTART;VALUE=DATE:20250602', 'DTEND;VALUE=DATE:20250603', 'SUMMARY:Holiday'),
      ...event('UID:z', 'DTSTART:20250602', 'SUMMARY:Also all day'),
      ...event('UID:ok', 'DTSTART:20250602T100000Z', 'DTEND:20250602T110000Z'),
    );
    expect(slots(text, '2025-06-01T00:00:00Z', '2025-06-04T00:00:00Z').map((s) => s.id)).toEqual(['ok']);
  });

  it('maps Windows and prefixed TZIDs to IANA zones and ignores VTIMEZONE', () => {
    expect(resolveTzid('W. Europe Standard Time')).toBe('Europe/Berlin');
    expect(resolveTzid('/mozilla.org/20050126_1/Europe/Berlin')).toBe('Europe/Berlin');
    expect(resolveTzid('(UTC+01:00) Amsterdam, Berlin')).toBeUndefined();
    const text = cal(
      'BEGIN:VTIMEZONE',
      'TZID:W. Europe Standard Time',
      'BEGIN:STANDARD',
      'DTSTART:16010101T030000',
      'TZOFFSETFROM:+0200',
      'TZOFFSETTO:+0100',
      'END:STANDARD',
      'END:VTIMEZONE',
      ...event('UID:o', 'DTSTART;TZID="W. Europe Standard Time":20250707T090000', 'DTEND;TZID="W. Europe Standard Time":20250707T100000'),
    );
    expect(slots(text, '2025-07-07T00:00:00Z', '2025-07-08T00:00:00Z').map((s) => iso(s.startMs))).toEqual(['2025-07-07T07:00:00.000Z']);
  });

  it('skips an event it cannot honour with a warning naming its line, and keeps the rest', () => {
    const text = cal(
      ...event('UID:m', 'DTSTART:20250602T080000Z', 'DTEND:20250602T090000Z', 'RRULE:FREQ=MONTHLY;BYMONTHDAY=2'),
      ...event('UID:ok', 'DTSTART:20250602T100000Z', 'DTEND:20250602T110000Z'),
    );
    const timetable = parseIcs(text, { timeZone: 'UTC', source: 'room.ics' });
    expect(timetable.slotsBetween(at('2025-06-01T00:00:00Z'), at('2025-08-01T00:00:00Z')).map((s) => s.id)).toEqual(['ok']);
    expect(timetable.warnings).toEqual(['room.ics:8: RRULE FREQ=MONTHLY is not supported (only WEEKLY and DAILY); the event is skipped']);
  });

  it('rejects a malformed file listing every problem with its line', () => {
    const text = cal(
      ...event('UID:1', 'DTSTART:20251302T080000Z', 'DTEND:20250602T090000Z'), // DTSTART on line 6: month 13
      ...event('UID:2', 'DTSTART;TZID=Mars/Olympus:20250602T080000', 'DTEND:20250602T090000Z'), // line 11
      ...event('UID:3', 'DTEND:20250602T090000Z'), // the VEVENT on line 14 has no DTSTART
      ...event('UID:4', 'DTSTART:20250602T080000Z', 'DURATION:PT1H', 'RRULE:FREQ=WEEKLY;BYDAY=XX'), // RRULE on line 22
      'this line has no colon', // line 24
      'BEGIN:VEVENT', // line 25, never closed before END:VCALENDAR on line 26
    );
    const err = parseError(text);
    expect(err.details.problems).toEqual([
      'room.ics:6: DTSTART "20251302T080000Z" is not a real date and time',
      'room.ics:11: DTSTART: TZID "Mars/Olympus" is not a time zone this system knows; use an IANA name such as Europe/Berlin (VTIMEZONE definitions are not read)',
      'room.ics:14: VEVENT without DTSTART',
      'room.ics:22: RRULE BYDAY: "XX" is not a weekday (MO, TU, WE, TH, FR, SA, SU)',
      'room.ics:24: expected \':\' after the property name and parameters in "this line has no colon"',
      'room.ics:25: VEVENT without DTSTART',
      'room.ics:26: END:VCALENDAR does not close BEGIN:VEVENT (line 25)',
    ]);
    expect(err.message).toContain('the previous timetable stays in force');
  });

  it('counts physical lines in messages, so folded lines do not shift them', () => {
    const text = cal(...event('UID:1', 'SUMMARY:a long', ' summary folded', ' over three lines', 'DTSTART:2025-06-02T08:00:00Z', 'DTEND:20250602T090000Z'));
    expect(parseError(text).details.problems).toEqual(['room.ics:9: DTSTART "2025-06-02T08:00:00Z" is not a date-time (YYYYMMDDTHHMMSS, optionally ending in Z) or a date (YYYYMMDD)']);
  });

  it('rejects a file that is not iCalendar, and mismatched END lines', () => {
    expect(parseError('<html>Not found</html>\n').details.problems).toEqual(['room.ics:1: this is not an iCalendar file: expected BEGIN:VCALENDAR, got "<html>Not found</html>"']);
    expect(parseError(['BEGIN:VCALENDAR', 'BEGIN:VEVENT', 'DTSTART:20250602T080000Z', 'END:VTODO', 'END:VCALENDAR'].join('\n')).details.problems).toEqual([
      'room.ics:4: END:VTODO does not close BEGIN:VEVENT (line 2)',
      'room.ics:5: END:VCALENDAR does not close BEGIN:VEVENT (line 2)',
    ]);
  });
});
