import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseYamlText } from '../../src/config/index.js';
import { FileTimetableSource, parseYamlTimetable, type YamlDocument } from '../../src/schedule/index.js';
import { isLecternError, type LecternError } from '../../src/util/errors.js';
import { makeTmpDir } from '../helpers/tmp.js';

// The YAML parser the agent injects (config/ owns the yaml library).
const parseYaml: (text: string) => YamlDocument = parseYamlText;

const at = (s: string): number => Date.parse(s);
const iso = (ms: number): string => new Date(ms).toISOString();

function load(text: string, timeZone = 'Europe/Berlin') {
  return parseYamlTimetable(text, parseYaml, { timeZone, source: 'room.yaml' });
}

function problems(text: string): string[] {
  try {
    load(text);
  } catch (err) {
    if (isLecternError(err, 'SCHEDULE_INVALID')) return (err as LecternError).details.problems as string[];
    throw err;
  }
  throw new Error('expected SCHEDULE_INVALID');
}

describe('YAML timetable', () => {
  const tmp = makeTmpDir('lectern-schedule-yaml-');
  afterAll(() => tmp.cleanup());

  it('expands a weekly lecture with a date range in its zone, across daylight saving, with exceptions', () => {
    const timetable = load(`
- course: CS101
  title: Algorithms
  teacher: Dr. Ada Lovelace
  preset: front-wide
  location: H1
  weekdays: [mon, thu]
  startTime: "09:15"
  endTime: "10:45"
  from: 2025-03-24
  until: 2025-04-07
  except: [2025-03-27]
`);
    const slots = timetable.slotsBetween(at('2025-03-01T00:00:00Z'), at('2025-05-01T00:00:00Z'));
    expect(slots.map((s) => iso(s.startMs))).toEqual([
      '2025-03-24T08:15:00.000Z', // CET
      '2025-03-31T07:15:00.000Z', // CEST from 30 March
      '2025-04-03T07:15:00.000Z',
      '2025-04-07T07:15:00.000Z', // until is inclusive
    ]);
    expect(slots[0]).toMatchObject({ course: 'CS101', title: 'Algorithms', teacher: 'Dr. Ada Lovelace', preset: 'front-wide', location: 'H1' });
    expect(slots.every((s) => s.endMs - s.startMs === 90 * 60_000)).toBe(true);
    // Ids differ per repeat and survive edits of the name or the end (a slot being recorded
    // must not be cut in two by a corrected title).
    const again = load(`
- course: CS101
  title: Algorithms and Data Structures
  teacher: Dr. Ada Lovelace
  preset: front-wide
  location: H1
  weekdays: [mon, thu]
  startTime: "09:15"
  endTime: "11:00"
  from: 2025-03-24
  until: 2025-04-07
  except: [2025-03-27]
`).slotsBetween(at('2025-03-01T00:00:00Z'), at('2025-05-01T00:00:00Z'));
    expect(again.map((s) => s.id)).toEqual(slots.map((s) => s.id));
    expect(new Set(slots.map((s) => s.id)).size).toBe(4);
  });

  it('reads single lectures, every-N-weeks series and per-entry zones', () => {
    const timetable = load(`
- title: Exam
  course: CS101
  start: 2025-07-21 10:00
  end: "12:30"
- course: MA201
  weekday: tue
  startTime: "8:00"
  endTime: "9:00"
  from: 2025-06-02
  until: 2025-06-30
  every: 2
  timeZone: Asia/Kolkata
- title: Seminar
  start: 2025-06-05T14:00
  end: 2025-06-05T15:00
  timeZone: Africa/Nairobi
`);
    const slots = timetable.slotsBetween(at('2025-06-01T00:00:00Z'), at('2025-08-01T00:00:00Z'));
    expect(slots.map((s) => [s.title, iso(s.startMs), iso(s.endMs)])).toEqual([
      ['MA201', '2025-06-03T02:30:00.000Z', '2025-06-03T03:30:00.000Z'],
      ['Seminar', '2025-06-05T11:00:00.000Z', '2025-06-05T12:00:00.000Z'],
      ['MA201', '2025-06-17T02:30:00.000Z', '2025-06-17T03:30:00.000Z'],
      ['Exam', '2025-07-21T08:00:00.000Z', '2025-07-21T10:30:00.000Z'],
    ]);
    expect(slots.find((s) => s.title === 'Exam')?.course).toBe('CS101');
  });

  it('names the line of every problem', () => {
    expect(
      problems(`- course: CS101
  weekdays: [mon, funday]
  startTime: "25:00"
  endTime: "10:00"
  from: 2025-04-01
  until: 2025-03-01
- title: Talk
  start: 2025-02-30 10:00
  end: 2025-03-01 11:00
- titel: Typo
  start: 2025-03-01 10:00
  end: 2025-03-01 09:00
- just a string
`),
    ).toEqual([
      'room.yaml:2: lecture 1: weekdays: "funday" is not a weekday (mon, tue, wed, thu, fri, sat, sun)',
      'room.yaml:3: lecture 1: startTime: "25:00" is not a time such as "09:15"',
      'room.yaml:8: lecture 2: start: "2025-02-30 10:00" is not a date and time such as "2025-07-21 10:00"',
      'room.yaml:10: lecture 3: titel: unknown key; expected one of course, title, teacher, preset, location, timeZone, start, end, weekday, weekdays, startTime, endTime, from, until, every, except',
      'room.yaml:10: lecture 3: a lecture needs a title or a course',
      'room.yaml:12: lecture 3: end: must be after start',
      'room.yaml:13: lecture 4: each lecture must be a mapping (course:, title:, start:...)',
    ]);
    expect(problems('- course: [unclosed\n')).toHaveLength(1);
    expect(problems('- course: [unclosed\n')[0]).toMatch(/^room\.yaml:\d+: /);
    expect(problems('course: CS101\n')).toEqual(['room.yaml:1: the timetable must be a list of lectures (lines starting with "- ")']);
  });

  it('loads a .yaml file through FileTimetableSource, and says clearly when no YAML parser was given', async () => {
    const file = path.join(tmp.dir, 'room.yaml');
    writeFileSync(file, '- title: Talk\n  start: 2025-06-05 14:00\n  end: "15:00"\n');
    const { timetable } = await new FileTimetableSource({ path: file, timeZone: 'UTC', parseYaml }).load();
    expect(timetable.slotsBetween(at('2025-06-05T00:00:00Z'), at('2025-06-06T00:00:00Z')).map((s) => iso(s.startMs))).toEqual(['2025-06-05T14:00:00.000Z']);
    await expect(new FileTimetableSource({ path: file, timeZone: 'UTC' }).load()).rejects.toMatchObject({ code: 'SCHEDULE_UNREADABLE' });
    await expect(new FileTimetableSource({ path: path.join(tmp.dir, 'missing.ics'), timeZone: 'UTC' }).load()).rejects.toMatchObject({
      code: 'SCHEDULE_UNREADABLE',
      message: expect.stringContaining('ENOENT') as unknown,
    });
  });
});
