import { describe, expect, it } from 'vitest';
import { isEndingAt, isManualRecording } from '../../src/agent/timetable.js';

// The agent's answer to "is a teacher's own recording running when this slot begins?" (a yes
// skips the slot) and "must the live recording stop first?". A wrong yes loses a lecture.

const T = Date.UTC(2026, 10, 30, 9);
const MIN = 60_000;
const slot = { startMs: T, endMs: T + 90 * MIN };
const noSlots = new Map<string, string>();

describe('a recording live when a slot begins', () => {
  it('is manual when a teacher started it: no planned end, or one past the slot start', () => {
    expect(isManualRecording({ state: 'recording', recordingId: 'M', plannedEndMs: null }, slot, noSlots)).toBe(true);
    expect(isManualRecording({ state: 'recording', recordingId: 'M', plannedEndMs: T + 10 * MIN }, slot, noSlots)).toBe(true);
    expect(isManualRecording({ state: 'paused', recordingId: 'M', plannedEndMs: null }, slot, noSlots)).toBe(true);
  });

  it('is not manual when nothing records', () => {
    expect(isManualRecording({ state: 'idle', recordingId: undefined, plannedEndMs: undefined }, slot, noSlots)).toBe(false);
  });

  it('is not manual when this timetable started it', () => {
    expect(isManualRecording({ state: 'recording', recordingId: 'A', plannedEndMs: T + 5 * MIN }, slot, new Map([['slot-a', 'A']]))).toBe(false);
  });

  it('is not manual when resumed after a restart with this slot\'s end', () => {
    expect(isManualRecording({ state: 'recording', recordingId: 'R', plannedEndMs: slot.endMs }, slot, noSlots)).toBe(false);
  });

  it('is not manual when it is the previous slot\'s, resumed after a restart and ending as this slot begins', () => {
    // chaos seed 101: the restarted daemon did not know lecture 7's slot; lecture 8 was skipped.
    const resumed = { state: 'recording' as const, recordingId: 'L7', plannedEndMs: slot.startMs };
    expect(isManualRecording(resumed, slot, noSlots)).toBe(false);
    expect(isEndingAt(resumed, slot.startMs, noSlots)).toBe(true);
    expect(isManualRecording({ ...resumed, plannedEndMs: slot.startMs - 1_000 }, slot, noSlots)).toBe(false);
  });
});

describe('stopping the live recording before a slot starts its own', () => {
  it('stops only a recording whose planned end has come and that no slot of this run started', () => {
    expect(isEndingAt({ state: 'recording', recordingId: 'L7', plannedEndMs: T }, T, noSlots)).toBe(true);
    // Its own slot's stop ends it; the start must not.
    expect(isEndingAt({ state: 'recording', recordingId: 'L7', plannedEndMs: T }, T, new Map([['slot-7', 'L7']]))).toBe(false);
    // A teacher's recording without an end, or one that runs on: left alone.
    expect(isEndingAt({ state: 'recording', recordingId: 'M', plannedEndMs: null }, T, noSlots)).toBe(false);
    expect(isEndingAt({ state: 'recording', recordingId: 'M', plannedEndMs: T + 1 }, T, noSlots)).toBe(false);
    expect(isEndingAt({ state: 'idle', recordingId: undefined, plannedEndMs: undefined }, T, noSlots)).toBe(false);
  });
});
