import { renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log/logger.js';
import { FileTimetableSource, parseIcs, Scheduler, type ScheduleIntent, type SchedulerClock, type SchedulerTimers, type TimetableSource } from '../../src/schedule/index.js';
import { waitFor } from '../../src/util/sleep.js';
import { makeTmpDir } from '../helpers/tmp.js';

/** A clock and timers that move only when the test says so; timers fire in time order. */
class FakeClock implements SchedulerClock, SchedulerTimers {
  #nowMs: number;
  #seq = 0;
  readonly #timers = new Map<number, { atMs: number; seq: number; fn: () => void }>();

  constructor(startMs: number) {
    this.#nowMs = startMs;
  }

  now(): number {
    return this.#nowMs;
  }

  setTimeout(fn: () => void, ms: number): unknown {
    const id = ++this.#seq;
    this.#timers.set(id, { atMs: this.#nowMs + ms, seq: id, fn });
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.#timers.delete(handle as number);
  }

  /** Runs every timer due up to `targetMs`, letting the scheduler's promises settle after each. */
  async advanceTo(targetMs: number): Promise<void> {
    for (;;) {
      await settle();
      const due = [...this.#timers.entries()].filter(([, t]) => t.atMs <= targetMs).sort(([, a], [, b]) => a.atMs - b.atMs || a.seq - b.seq)[0];
      if (!due) break;
      this.#timers.delete(due[0]);
      this.#nowMs = Math.max(this.#nowMs, due[1].atMs);
      due[1].fn();
    }
    this.#nowMs = targetMs;
    await settle();
  }
}

/** Lets chained promises and setImmediate callbacks run (the scheduler's work is promise-only here). */
async function settle(): Promise<void> {
  for (let i = 0; i < 30; i++) await new Promise((resolve) => setImmediate(resolve));
}

const T0 = Date.parse('2025-06-02T08:00:00Z');
const ics = (t: number): string => new Date(t).toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');

function calendar(events: { uid: string; startMs: number; endMs: number; summary: string }[]): string {
  return [
    'BEGIN:VCALENDAR',
    'VERSION:2.0',
    ...events.flatMap((e) => ['BEGIN:VEVENT', `UID:${e.uid}`, `DTSTART:${ics(e.startMs)}`, `DTEND:${ics(e.endMs)}`, `SUMMARY:${e.summary}`, 'X-LECTERN-PRESET:front', 'END:VEVENT']),
    'END:VCALENDAR',
    '',
  ].join('\r\n');
}

/** A source over a string the test can change. */
function memorySource(initial: string): TimetableSource & { text: string } {
  return {
    text: initial,
    description: 'memory',
    async load() {
      return { timetable: parseIcs(this.text, { timeZone: 'UTC', source: 'memory' }) };
    },
  };
}

function setup(source: TimetableSource, opts: { startMs: number; manual?: () => boolean; sink?: (i: ScheduleIntent, atMs: number) => Promise<void> | void }) {
  const clock = new FakeClock(opts.startMs);
  const lines: string[] = [];
  const log: { atMs: number; intent: ScheduleIntent }[] = [];
  const scheduler = new Scheduler({
    source,
    clock,
    timers: clock,
    onIntent: async (intent) => {
      log.push({ atMs: clock.now(), intent });
      await opts.sink?.(intent, clock.now());
    },
    isManualRecordingActive: opts.manual ?? (() => false),
    logger: createLogger({ level: 'debug', sink: { write: (l) => lines.push(l) } }),
    refreshIntervalMs: 3_600_000,
    // Reloads are explicit here; the real fs.watch has its own test below.
    watchFile: () => () => undefined,
  });
  const summary = (): string[] => log.map(({ atMs, intent }) => `${(atMs - T0) / 1000}s ${intent.kind} ${intent.eventId}${intent.kind !== 'stop' ? ` until ${(intent.plannedEndMs - T0) / 1000}s` : ` (${intent.reason})`}`);
  return { clock, scheduler, log, lines, summary };
}

describe('Scheduler', () => {
  const tmp = makeTmpDir('lectern-scheduler-');
  afterAll(() => tmp.cleanup());

  it('records two back-to-back 1-minute lectures as two: start A, stop A, start B, stop B, in that order', async () => {
    const source = memorySource(
      calendar([
        { uid: 'A', startMs: T0, endMs: T0 + 60_000, summary: 'CS101: First' },
        { uid: 'B', startMs: T0 + 60_000, endMs: T0 + 120_000, summary: 'CS102: Second' },
      ]),
    );
    // The sink takes a while (as stopping ffmpeg does): the start of B must wait for the stop of A.
    const trace: string[] = [];
    const { clock, scheduler, log, summary } = setup(source, {
      startMs: T0 - 30_000,
      sink: async (i) => {
        trace.push(`begin ${i.kind} ${i.eventId}`);
        for (let n = 0; n < 5; n++) await new Promise((resolve) => setImmediate(resolve));
        trace.push(`end ${i.kind} ${i.eventId}`);
      },
    });
    await scheduler.start();
    expect(log).toEqual([]);
    await clock.advanceTo(T0 + 180_000);
    expect(summary()).toEqual(['0s start A until 60s', '60s stop A (slot ended)', '60s start B until 120s', '120s stop B (slot ended)']);
    expect(trace).toEqual(['begin start A', 'end start A', 'begin stop A', 'end stop A', 'begin start B', 'end start B', 'begin stop B', 'end stop B']);
    expect(log[0]?.intent).toEqual({
      kind: 'start',
      eventId: 'A',
      meta: { title: 'First', course: 'CS101', teacher: null, preset: 'front', location: null },
      slotStartMs: T0,
      plannedEndMs: T0 + 60_000,
      late: false,
    });
    await scheduler.stop();
  });

  it('started 20 s into a slot, starts the rest of it at once with the slot end as planned end', async () => {
    const source = memorySource(calendar([{ uid: 'L', startMs: T0, endMs: T0 + 60_000, summary: 'Late boot' }]));
    const { clock, scheduler, log, summary } = setup(source, { startMs: T0 + 20_000 });
    await scheduler.start();
    expect(summary()).toEqual(['20s start L until 60s']);
    expect(log[0]?.intent).toMatchObject({ late: true, plannedEndMs: T0 + 60_000 });
    expect(scheduler.current()?.id).toBe('L');
    await clock.advanceTo(T0 + 90_000);
    expect(summary()).toEqual(['20s start L until 60s', '60s stop L (slot ended)']);
    expect(scheduler.current()).toBeUndefined();
    await scheduler.stop();
  });

  it('leaves a manual recording alone: the slot is skipped, not started later, and the next slot runs', async () => {
    let manual = true;
    const source = memorySource(
      calendar([
        { uid: 'M', startMs: T0, endMs: T0 + 600_000, summary: 'During manual' },
        { uid: 'N', startMs: T0 + 600_000, endMs: T0 + 660_000, summary: 'After' },
      ]),
    );
    const { clock, scheduler, summary, lines } = setup(source, { startMs: T0 - 1_000, manual: () => manual });
    await scheduler.start();
    await clock.advanceTo(T0 + 60_000);
    expect(summary()).toEqual([]);
    expect(lines.some((l) => l.includes('"During manual" skipped because a manual recording is running'))).toBe(true);
    manual = false;
    await clock.advanceTo(T0 + 700_000);
    expect(summary()).toEqual(['600s start N until 660s', '660s stop N (slot ended)']);
    await scheduler.stop();
  });

  it('does not start a slot with less than minRemainderMs left', async () => {
    const source = memorySource(calendar([{ uid: 'S', startMs: T0, endMs: T0 + 60_000, summary: 'Nearly over' }]));
    const { clock, scheduler, summary } = setup(source, { startMs: T0 + 55_000 });
    await scheduler.start();
    await clock.advanceTo(T0 + 120_000);
    expect(summary()).toEqual([]);
    await scheduler.stop();
  });

  it('follows reloads: an extended slot stops at its new end, a removed one stops at once; a broken file keeps the timetable', async () => {
    const file = path.join(tmp.dir, 'room.ics');
    writeFileSync(file, calendar([{ uid: 'R', startMs: T0, endMs: T0 + 60_000, summary: 'Reloaded' }]));
    const source = new FileTimetableSource({ path: file, timeZone: 'UTC' });
    const { clock, scheduler, summary, lines } = setup(source, { startMs: T0 + 10_000 });
    await scheduler.start();
    expect(summary()).toEqual(['10s start R until 60s']);

    writeFileSync(file, calendar([{ uid: 'R', startMs: T0, endMs: T0 + 120_000, summary: 'Reloaded' }]));
    await clock.advanceTo(T0 + 30_000);
    await scheduler.reload();
    await clock.advanceTo(T0 + 90_000);
    expect(summary()).toEqual(['10s start R until 60s', '30s update R until 120s']);

    writeFileSync(file, 'BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nDTSTART:nonsense\r\n');
    await scheduler.reload();
    expect(scheduler.status().lastError).toContain('SCHEDULE_INVALID');
    expect(lines.some((l) => l.includes('the previous timetable stays in force') && l.includes('room.ics:3'))).toBe(true);
    await clock.advanceTo(T0 + 100_000);
    expect(summary()).toHaveLength(2);

    writeFileSync(file, calendar([{ uid: 'other', startMs: T0 + 3_600_000, endMs: T0 + 3_660_000, summary: 'Later' }]));
    await scheduler.reload();
    expect(summary()).toEqual(['10s start R until 60s', '30s update R until 120s', '100s stop R (slot removed from the timetable)']);
    expect(scheduler.status().lastError).toBeUndefined();
    expect(scheduler.upcoming(3).map((s) => s.id)).toEqual(['other']);
    await scheduler.stop();
  });

  it('starts with no timetable when the first load fails, and never throws', async () => {
    const source = new FileTimetableSource({ path: path.join(tmp.dir, 'absent.ics'), timeZone: 'UTC' });
    const { scheduler, lines } = setup(source, { startMs: T0 });
    await scheduler.start();
    expect(scheduler.status().lastError).toContain('SCHEDULE_UNREADABLE');
    expect(scheduler.upcoming(5)).toEqual([]);
    expect(lines.some((l) => l.includes('no lectures are scheduled until it loads'))).toBe(true);
    await scheduler.stop();
  });

  it('reads the file again when it changes on disk (fs.watch, real timers)', async () => {
    const file = path.join(tmp.dir, 'watched.ics');
    const soon = Date.now() + 3_600_000;
    writeFileSync(file, calendar([{ uid: 'one', startMs: soon, endMs: soon + 60_000, summary: 'One' }]));
    const scheduler = new Scheduler({
      source: new FileTimetableSource({ path: file, timeZone: 'UTC' }),
      clock: { now: () => Date.now() },
      onIntent: () => undefined,
      isManualRecordingActive: () => false,
      logger: createLogger({ sink: { write: () => undefined } }),
      refreshIntervalMs: 3_600_000,
    });
    await scheduler.start();
    expect(scheduler.upcoming(5).map((s) => s.id)).toEqual(['one']);
    // Written the way editors do: a new file renamed over the old one.
    writeFileSync(`${file}.tmp`, calendar([{ uid: 'one', startMs: soon, endMs: soon + 60_000, summary: 'One' }, { uid: 'two', startMs: soon + 120_000, endMs: soon + 180_000, summary: 'Two' }]));
    renameSync(`${file}.tmp`, file);
    await waitFor(() => (scheduler.upcoming(5).length === 2 ? true : undefined), { timeoutMs: 5_000, what: 'the changed timetable to be read' });
    expect(scheduler.upcoming(5).map((s) => s.id)).toEqual(['one', 'two']);
    await scheduler.stop();
  });
});
