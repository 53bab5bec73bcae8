import { describe, expect, it } from 'vitest';
import { StatusAggregator, type StatusSources } from '../../src/agent/status.js';
import type { AgentStatus } from '../../src/api/types.js';
import type { ControllerStatus } from '../../src/capture/recordingController.js';
import { silentLogger } from '../../src/log/logger.js';

/**
 * The status aggregator as data: a controller status and a clock we set, and what subscribers get.
 * (The controller is a plain object here; the integration tests read the real one through the API.)
 */

function setup(over: Partial<StatusSources> = {}) {
  let now = 1_000_000;
  let controller: ControllerStatus = { state: 'idle', segments: 0, restarts: 0, sources: [], alerts: [] };
  let free = 50e9;
  const sources: StatusSources = {
    identity: { id: 'pc-12', site: 'uni', room: 'r12', version: '1.0.0' },
    controller: { status: () => controller },
    recording: (id) => (id === 'rec1' ? { title: 'Optics', course: 'PHYS2' } : undefined),
    queueCounts: () => ({ queued: 1, running: 0, done: 3, dead: 0, cancelled: 0 }),
    pendingLectures: () => 1,
    freeDiskBytes: () => Promise.resolve(free),
    disk: { minFreeBytes: 1e9, stopFreeBytes: 2e8 },
    kioskPinRequired: false,
    logger: silentLogger,
    now: () => now,
    ...over,
  };
  const agg = new StatusAggregator(sources, { intervalMs: 60_000, diskIntervalMs: 0 });
  const seen: AgentStatus[] = [];
  agg.subscribe((s) => seen.push(s));
  return {
    agg,
    seen,
    tick: (ms: number) => (now += ms),
    setController: (c: ControllerStatus) => (controller = c),
    setFree: (b: number) => (free = b),
  };
}

const recording = (startedAtMs: number, level: number | undefined, status = 'recording'): ControllerStatus => ({
  state: 'recording',
  recordingId: 'rec1',
  startedAtMs,
  plannedEndMs: null,
  segments: 2,
  restarts: 0,
  sources: [{ name: 'front', status: status as 'recording', run: 1, pid: 42, mediaStartedAtMs: startedAtMs, lastAdvanceAtMs: startedAtMs, audioLevelDb: level, segments: 2, restarts: 0 }],
  alerts: [],
});

describe('the status aggregator', () => {
  it('publishes a change once, and nothing when only the time of composing moved', async () => {
    const t = setup();
    await t.agg.start();
    expect(t.seen).toHaveLength(1);
    expect(t.seen[0]).toMatchObject({ recording: { state: 'idle', elapsedMs: 0 }, disk: { freeBytes: 50e9, low: false }, uploads: { pendingLectures: 1 } });
    t.tick(300);
    t.agg.refresh();
    t.agg.refresh();
    expect(t.seen).toHaveLength(1);
    t.agg.stop();
  });

  it('carries the live recording with its title, whole elapsed seconds and the audio level', async () => {
    const t = setup();
    await t.agg.start();
    const start = 1_000_000;
    t.setController(recording(start, -23.456));
    t.tick(1_400);
    t.agg.refresh();
    const s = t.seen.at(-1) as AgentStatus;
    expect(s.recording).toMatchObject({ state: 'recording', recordingId: 'rec1', title: 'Optics', course: 'PHYS2', elapsedMs: 1_000 });
    expect(s.audioLevelDb).toBe(-23.5);
    // A second later the elapsed time is news even with nothing else changed.
    t.tick(1_000);
    t.agg.refresh();
    expect(t.seen.at(-1)?.recording.elapsedMs).toBe(2_000);
    // A restarting source's last level is not sound now.
    t.setController(recording(start, -23.456, 'restarting'));
    t.agg.refresh();
    expect(t.seen.at(-1)?.audioLevelDb).toBeNull();
    t.agg.stop();
  });

  it('warns while idle that the disk is too full to record', async () => {
    const t = setup();
    t.setFree(5e8);
    await t.agg.start();
    const s = t.seen.at(-1) as AgentStatus;
    expect(s.disk.low).toBe(true);
    expect(s.alerts).toEqual([expect.objectContaining({ kind: 'disk_low', source: null })]);
    expect(s.alerts[0]?.message).toContain('a new recording needs 953.7 MiB');
    t.agg.stop();
  });

  it('keeps serving the last status when a source fails, and a faulty listener does not stop the others', async () => {
    let fail = false;
    const t = setup({ queueCounts: () => {
      if (fail) throw new Error('database is locked');
      return { queued: 0, running: 0, done: 0, dead: 0, cancelled: 0 };
    } });
    await t.agg.start();
    t.agg.subscribe(() => {
      throw new Error('listener bug');
    });
    const later: AgentStatus[] = [];
    t.agg.subscribe((s) => later.push(s));
    fail = true;
    t.tick(1_000);
    expect(t.agg.current().atMs).toBe(1_000_000);
    fail = false;
    t.setController(recording(1_000_000, -30));
    t.agg.refresh();
    expect(later.at(-1)?.recording.state).toBe('recording');
    t.agg.stop();
  });
});
