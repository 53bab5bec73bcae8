import { describe, expect, it } from 'vitest';
import { AlertBook, type AlertKind, type AlertStore } from '../../src/capture/alerts.js';
import { ConfidenceMonitor, type ConfidenceSettings } from '../../src/capture/confidence.js';
import { createMemoryLogger } from '../../src/log/logger.js';

// The rules as data, with a clock the test moves. The same code runs against a real camera in
// tests/integration/capture-rtsp.test.ts; here every edge can be placed exactly.

const SETTINGS: ConfidenceSettings = { silenceDb: -50, silenceSeconds: 10, freezeSeconds: 8, freezeNoiseDb: -40, blackSeconds: 5 };

/** An AlertStore in memory: what the database would hold. */
function memoryStore(): AlertStore & { rows: Array<{ id: number; kind: string; source: string | null; startedAtMs: number; endedAtMs: number | null; message: string }> } {
  const rows: Array<{ id: number; kind: string; source: string | null; startedAtMs: number; endedAtMs: number | null; message: string }> = [];
  return {
    rows,
    addAlert: (a) => rows.push({ id: rows.length + 1, kind: a.kind, source: a.source, startedAtMs: a.startedAtMs, endedAtMs: null, message: a.message }),
    endAlert: (id, endedAtMs) => {
      const row = rows.find((r) => r.id === id);
      if (row && row.endedAtMs === null) row.endedAtMs = endedAtMs;
    },
  };
}

function rig(settings: ConfidenceSettings = SETTINGS) {
  let now = 1_000_000;
  const store = memoryStore();
  const book = new AlertBook({ recordingId: 'R', store, logger: createMemoryLogger().logger });
  const monitor = new ConfidenceMonitor({ settings, alerts: book.forSource('cam'), source: 'cam', now: () => now });
  /** Moves the clock second by second, as ffmpeg reports: progress each second, a level each second. */
  const run = (seconds: number, levelDb: number | undefined): void => {
    for (let i = 0; i < seconds; i++) {
      now += 1000;
      monitor.advanced();
      if (levelDb !== undefined) monitor.handle({ kind: 'audioLevel', db: levelDb });
      monitor.evaluate();
    }
  };
  const active = (): AlertKind[] => book.active().map((a) => a.kind);
  return { monitor, book, store, run, active, now: () => now, tick: (ms: number) => (now += ms) };
}

describe('ConfidenceMonitor', () => {
  it('raises no_audio after the silence lasts its time, dated from the last sound, and ends it at the next sound', () => {
    const r = rig();
    r.monitor.mediaStarted(r.now());
    r.run(5, -20);
    const lastSoundMs = r.now();
    r.run(9, -Infinity);
    expect(r.active()).toEqual([]);
    r.run(1, -70); // quieter than -50 dBFS is silence too
    expect(r.active()).toEqual(['no_audio']);
    expect(r.store.rows[0]?.startedAtMs).toBe(lastSoundMs);
    r.run(3, -45);
    expect(r.active()).toEqual([]);
    expect(r.store.rows).toHaveLength(1);
    expect(r.store.rows[0]?.endedAtMs).toBe(lastSoundMs + 11_000); // the first second with sound
  });

  it('counts a camera without audio (no levels at all) as silent, but not a camera that sends nothing', () => {
    const noAudio = rig();
    noAudio.monitor.mediaStarted(noAudio.now());
    noAudio.run(10, undefined);
    expect(noAudio.active()).toEqual(['no_audio']);

    const stalled = rig();
    stalled.monitor.mediaStarted(stalled.now());
    stalled.run(2, -20);
    // No progress, no levels: a stall, which source_lost reports; no_audio stays quiet.
    for (let i = 0; i < 20; i++) {
      stalled.tick(1000);
      stalled.monitor.evaluate();
    }
    expect(stalled.active()).toEqual([]);
  });

  it('counts levels that arrived before the media start was settled', () => {
    const r = rig();
    const firstFrameMs = r.now();
    r.run(3, -20);
    r.monitor.mediaStarted(firstFrameMs); // known only a few seconds in, dated back
    r.run(9, -Infinity);
    expect(r.active()).toEqual([]);
    r.run(1, -Infinity);
    expect(r.active()).toEqual(['no_audio']);
  });

  it('raises frozen_picture when freezedetect reports, dated back by its duration, and ends it with the freeze', () => {
    const r = rig();
    r.monitor.mediaStarted(r.now());
    r.run(20, -20);
    r.monitor.handle({ kind: 'freezeStart' });
    expect(r.active()).toEqual(['frozen_picture']);
    expect(r.store.rows[0]?.startedAtMs).toBe(r.now() - 8_000);
    r.run(2, -20);
    r.monitor.handle({ kind: 'freezeEnd' });
    expect(r.active()).toEqual([]);
    expect(r.store.rows[0]?.endedAtMs).toBe(r.now());
  });

  it('raises black_picture after its time and not frozen_picture for the same black picture', () => {
    const r = rig();
    r.monitor.mediaStarted(r.now());
    r.run(2, -20);
    const blackMs = r.now();
    r.monitor.handle({ kind: 'blackStart' });
    r.run(4, -20);
    expect(r.active()).toEqual([]);
    r.monitor.handle({ kind: 'freezeStart' }); // a black picture is also a still one
    r.run(1, -20);
    expect(r.active()).toEqual(['black_picture']);
    expect(r.store.rows[0]?.startedAtMs).toBe(blackMs);
    // The picture comes back still: now it is a frozen picture.
    r.monitor.handle({ kind: 'blackEnd' });
    expect(r.active()).toEqual(['frozen_picture']);
    r.monitor.handle({ kind: 'freezeEnd' });
    expect(r.active()).toEqual([]);
  });

  it('ends its alerts with the run and ignores what comes after', () => {
    const r = rig();
    r.monitor.mediaStarted(r.now());
    r.run(11, -Infinity);
    r.monitor.handle({ kind: 'freezeStart' });
    expect(r.active().sort()).toEqual(['frozen_picture', 'no_audio']);
    const endMs = r.now();
    r.monitor.stop(endMs);
    expect(r.active()).toEqual([]);
    expect(r.store.rows.map((a) => a.endedAtMs)).toEqual([endMs, endMs]);
    r.monitor.handle({ kind: 'freezeStart' });
    r.run(20, -Infinity);
    expect(r.store.rows).toHaveLength(2);
  });

  it('does nothing for a rule switched off (0 s)', () => {
    const r = rig({ ...SETTINGS, silenceSeconds: 0, freezeSeconds: 0, blackSeconds: 0 });
    r.monitor.mediaStarted(r.now());
    r.monitor.handle({ kind: 'freezeStart' });
    r.monitor.handle({ kind: 'blackStart' });
    r.run(60, -Infinity);
    expect(r.store.rows).toEqual([]);
  });
});

describe('AlertBook', () => {
  it('keeps one alert per kind and source while it lasts, and records its end', () => {
    const store = memoryStore();
    const changes: string[] = [];
    const book = new AlertBook({ recordingId: 'R', store, logger: createMemoryLogger().logger, onChange: (a) => changes.push(`${a.kind}:${a.endedAtMs === null ? 'on' : 'off'}`) });
    book.raise('source_lost', 'a', 'lost', 100);
    book.raise('source_lost', 'a', 'lost again', 200); // the same outage: nothing new
    book.raise('source_lost', 'b', 'lost', 150);
    book.raise('disk_low', null, 'disk', 120);
    expect(book.active().map((a) => `${a.kind}/${a.source ?? '-'}`)).toEqual(['source_lost/a', 'disk_low/-', 'source_lost/b']);
    book.resolve('source_lost', 'a', 50); // an end before the start is moved to the start
    book.resolve('source_lost', 'a', 500); // no longer active: nothing happens
    expect(store.rows.find((r) => r.source === 'a')?.endedAtMs).toBe(100);
    book.resolveAll(900);
    expect(book.active()).toEqual([]);
    expect(store.rows.map((r) => r.endedAtMs)).toEqual([100, 900, 900]);
    expect(changes).toEqual(['source_lost:on', 'source_lost:on', 'disk_low:on', 'source_lost:off', 'disk_low:off', 'source_lost:off']);
  });

  it('a failing listener does not stop the alert', () => {
    const store = memoryStore();
    const book = new AlertBook({ recordingId: 'R', store, logger: createMemoryLogger().logger, onChange: () => { throw new Error('kiosk down'); } });
    book.raise('no_audio', 'a', 'silent', 1);
    expect(book.isActive('no_audio', 'a')).toBe(true);
    expect(store.rows).toHaveLength(1);
  });
});
