import { describe, expect, it } from 'vitest';
import { assertSafeName, isSafeName } from '../../src/util/names.js';
import { ulid, ULID_PATTERN, ulidTimeMs } from '../../src/util/ulid.js';
import { formatBytes, formatDuration } from '../../src/util/units.js';

describe('ulid', () => {
  it('encodes the time so ids sort by creation time', () => {
    const a = ulid(1_700_000_000_000);
    const b = ulid(1_700_000_000_001);
    expect(a).toMatch(ULID_PATTERN);
    expect(ulidTimeMs(a)).toBe(1_700_000_000_000);
    expect(a < b).toBe(true);
  });

  it('uses all 80 random bits', () => {
    expect(ulid(0, (n) => new Uint8Array(n).fill(0xff)).slice(10)).toBe('ZZZZZZZZZZZZZZZZ');
    expect(ulid(0, (n) => new Uint8Array(n)).slice(10)).toBe('0000000000000000');
  });
});

describe('names', () => {
  it('accepts plain names and rejects anything that could leave its folder', () => {
    expect(isSafeName('room-101_b.2')).toBe(true);
    for (const bad of ['', '..', 'a/b', '../x', '.hidden', 'a b', 'x'.repeat(65), 'a..b']) expect(isSafeName(bad)).toBe(false);
    expect(() => assertSafeName('a/b', 'room')).toThrow(/room "a\/b"/);
  });
});

describe('units', () => {
  it('formats bytes and durations for people', () => {
    expect(formatBytes(512)).toBe('512 B');
    expect(formatBytes(5 * 1024 * 1024)).toBe('5.0 MiB');
    expect(formatDuration(59.6)).toBe('1:00');
    expect(formatDuration(3725)).toBe('1:02:05');
  });
});
