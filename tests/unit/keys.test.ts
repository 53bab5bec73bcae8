import { describe, expect, it } from 'vitest';
import { agentStatusKey, lecturePrefix, readyDayPrefix, readyKey } from '../../src/storage/keys.js';
import { assertValidKey, assertValidPrefix } from '../../src/storage/store.js';
import { isLecternError } from '../../src/util/errors.js';

const ID = '01JDQ8ZK4R6W1V7X9Y2B3C4D5E';
const LAST_SECOND = Date.parse('2026-11-28T23:59:59Z');
const NEXT_DAY = Date.parse('2026-11-29T00:00:00Z');

function codeOf(fn: () => unknown): string {
  try {
    fn();
    return 'returned';
  } catch (err) {
    return isLecternError(err) ? err.code : `not a LecternError: ${String(err)}`;
  }
}

describe('lecturePrefix', () => {
  it('files a lecture under its UTC start day, on both sides of midnight', () => {
    expect(lecturePrefix({ prefix: 'lectern', site: 'campus-a', room: 'R101', startedAtMs: LAST_SECOND, lectureId: ID })).toBe(
      `lectern/lectures/campus-a/R101/2026/11/28/${ID}/`,
    );
    expect(lecturePrefix({ prefix: 'lectern', site: 'campus-a', room: 'R101', startedAtMs: NEXT_DAY, lectureId: ID })).toBe(
      `lectern/lectures/campus-a/R101/2026/11/29/${ID}/`,
    );
  });

  it('has no leading slash for an empty prefix and zero-pads month and day', () => {
    const startedAtMs = Date.parse('2027-01-05T08:00:00Z');
    expect(lecturePrefix({ prefix: '', site: 's', room: 'r', startedAtMs, lectureId: ID })).toBe(`lectures/s/r/2027/01/05/${ID}/`);
  });

  it('accepts a nested prefix, with or without a trailing slash', () => {
    const base = { site: 's', room: 'r', startedAtMs: LAST_SECOND, lectureId: ID };
    expect(lecturePrefix({ ...base, prefix: 'uni/media' })).toBe(`uni/media/lectures/s/r/2026/11/28/${ID}/`);
    expect(lecturePrefix({ ...base, prefix: 'uni/media/' })).toBe(`uni/media/lectures/s/r/2026/11/28/${ID}/`);
  });

  it('rejects site, room and lecture id values that are not safe names', () => {
    const base = { prefix: 'p', site: 's', room: 'r', startedAtMs: LAST_SECOND, lectureId: ID };
    for (const site of ['', '../x', 'a/b', 'with space', '.hidden', 'a\\b', 'ü']) {
      expect({ site, code: codeOf(() => lecturePrefix({ ...base, site })) }).toEqual({ site, code: 'INVALID_NAME' });
    }
    expect(codeOf(() => lecturePrefix({ ...base, room: '..' }))).toBe('INVALID_NAME');
    expect(codeOf(() => lecturePrefix({ ...base, lectureId: `${ID}/..` }))).toBe('INVALID_NAME');
  });

  it('rejects unsafe prefixes and impossible start times', () => {
    const base = { prefix: 'p', site: 's', room: 'r', startedAtMs: LAST_SECOND, lectureId: ID };
    for (const prefix of ['/abs', 'a/../b', 'a//b', 'a b']) {
      expect({ prefix, code: codeOf(() => lecturePrefix({ ...base, prefix })) }).toEqual({ prefix, code: 'INVALID_NAME' });
    }
    expect(codeOf(() => lecturePrefix({ ...base, startedAtMs: Number.NaN }))).toBe('INVALID_NAME');
    expect(codeOf(() => lecturePrefix({ ...base, startedAtMs: Date.parse('not a date') }))).toBe('INVALID_NAME');
  });
});

describe('readyKey and readyDayPrefix', () => {
  it('put the pointer under the UTC day, which the day prefix lists', () => {
    expect(readyKey({ prefix: 'lectern', startedAtMs: LAST_SECOND, lectureId: ID })).toBe(`lectern/ready/2026/11/28/${ID}.json`);
    expect(readyKey({ prefix: 'lectern', startedAtMs: NEXT_DAY, lectureId: ID })).toBe(`lectern/ready/2026/11/29/${ID}.json`);
    expect(readyKey({ prefix: '', startedAtMs: NEXT_DAY, lectureId: ID })).toBe(`ready/2026/11/29/${ID}.json`);
    expect(readyDayPrefix({ prefix: 'lectern', dateUtc: '2026-11-28' })).toBe('lectern/ready/2026/11/28/');
    expect(readyDayPrefix({ prefix: '', dateUtc: '2026-01-02' })).toBe('ready/2026/01/02/');
    expect(readyKey({ prefix: 'lectern', startedAtMs: LAST_SECOND, lectureId: ID }).startsWith(readyDayPrefix({ prefix: 'lectern', dateUtc: '2026-11-28' }))).toBe(true);
  });

  it('rejects dates that are not real calendar days in YYYY-MM-DD', () => {
    for (const dateUtc of ['2026-02-30', '2026-2-3', '2026/11/28', '2026-13-01', '', '2026-11-28T00:00:00Z']) {
      expect({ dateUtc, code: codeOf(() => readyDayPrefix({ prefix: 'p', dateUtc })) }).toEqual({ dateUtc, code: 'INVALID_NAME' });
    }
    expect(readyDayPrefix({ prefix: 'p', dateUtc: '2028-02-29' })).toBe('p/ready/2028/02/29/');
  });

  it('rejects an unsafe lecture id', () => {
    expect(codeOf(() => readyKey({ prefix: 'p', startedAtMs: NEXT_DAY, lectureId: '../x' }))).toBe('INVALID_NAME');
  });
});

describe('agentStatusKey', () => {
  it('is the heartbeat key of one agent', () => {
    expect(agentStatusKey({ prefix: 'lectern', agentId: 'room-101' })).toBe('lectern/agents/room-101/status.json');
    expect(agentStatusKey({ prefix: '', agentId: 'room-101' })).toBe('agents/room-101/status.json');
    expect(codeOf(() => agentStatusKey({ prefix: 'lectern', agentId: 'a/b' }))).toBe('INVALID_NAME');
  });
});

describe('store key rules', () => {
  it('accept layout keys and reject anything that could leave a folder', () => {
    expect(assertValidKey(`lectern/lectures/s/r/2026/11/28/${ID}/hls/720p/seg_00001.m4s`)).toHaveLength(11);
    for (const key of ['../x', '/abs', 'a//b', 'a\\b', 'a/.', 'a/..', 'a/', '', 'a\0b', 'a/.x.tmp-abc', 'x'.repeat(256)]) {
      expect({ key, code: codeOf(() => assertValidKey(key)) }).toEqual({ key, code: 'INVALID_NAME' });
    }
  });

  it('split a prefix into whole segments and a partial last one', () => {
    expect(assertValidPrefix('')).toEqual({ dirSegments: [], partial: '' });
    expect(assertValidPrefix('ready/2026/11/2')).toEqual({ dirSegments: ['ready', '2026', '11'], partial: '2' });
    expect(assertValidPrefix('ready/')).toEqual({ dirSegments: ['ready'], partial: '' });
    expect(codeOf(() => assertValidPrefix('../ready'))).toBe('INVALID_NAME');
    expect(codeOf(() => assertValidPrefix('/ready'))).toBe('INVALID_NAME');
  });
});
