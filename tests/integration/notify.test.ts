import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Notifier, cleanStatus, formatStatusLine, watchdogTimeoutMs } from '../../src/agent/notify.js';
import type { AgentStatus } from '../../src/api/types.js';
import { createMemoryLogger } from '../../src/log/logger.js';
import { waitFor } from '../../src/util/sleep.js';
import { ROOT } from '../helpers/cli.js';
import { makeTmpDir } from '../helpers/tmp.js';

// The Notifier with the real systemd-notify binary, talking to a real AF_UNIX datagram socket
// (tests/peers/notifySocket.py, which closes BARRIER fds the way systemd does). Only systemd
// itself is absent: its notification socket is the edge this test stands in for.

interface Datagram {
  fields: string[];
  fds: number;
}

interface Listener {
  socketPath: string;
  /** Every datagram but systemd-notify's BARRIER=1 handshakes, in arrival order. */
  messages: Datagram[];
  barriers: () => number;
  close: () => Promise<void>;
}

async function startListener(dir: string): Promise<Listener> {
  const socketPath = path.join(dir, 'notify.sock');
  const child: ChildProcess = spawn('python3', [path.join(ROOT, 'tests/peers/notifySocket.py'), socketPath], { stdio: ['pipe', 'pipe', 'inherit'] });
  const messages: Datagram[] = [];
  let barriers = 0;
  let listening!: () => void;
  const ready = new Promise<void>((resolve) => (listening = resolve));
  const exited = new Promise<void>((resolve) => child.on('close', () => resolve()));
  createInterface({ input: child.stdout! }).on('line', (line) => {
    const parsed = JSON.parse(line) as Partial<Datagram> & { listening?: string };
    if (parsed.listening) listening();
    else if (parsed.fields?.includes('BARRIER=1')) barriers += 1;
    else if (parsed.fields) messages.push({ fields: parsed.fields, fds: parsed.fds ?? 0 });
  });
  await Promise.race([ready, exited.then(() => Promise.reject(new Error('the notify socket listener exited')))]);
  return {
    socketPath,
    messages,
    barriers: () => barriers,
    close: async () => {
      child.stdin?.end();
      await exited;
    },
  };
}

const has = (m: Datagram, field: string): boolean => m.fields.includes(field);

describe('Notifier (sd_notify through systemd-notify)', () => {
  let tmp: ReturnType<typeof makeTmpDir>;
  let listener: Listener;
  beforeEach(async () => {
    tmp = makeTmpDir();
    listener = await startListener(tmp.dir);
  });
  afterEach(async () => {
    await listener.close();
    tmp.cleanup();
  });

  it('sends READY=1 with the status, pings only while healthy, and STOPPING=1 at the end', async () => {
    const { logger, lines } = createMemoryLogger();
    let healthy = true;
    const checks: boolean[] = [];
    let status = 'Idle, 3 lectures waiting';
    const notifier = new Notifier({
      env: { PATH: process.env.PATH, NOTIFY_SOCKET: listener.socketPath, WATCHDOG_USEC: '300000', WATCHDOG_PID: String(process.pid) },
      logger,
      healthy: () => {
        checks.push(healthy);
        return healthy;
      },
      status: () => status,
    });
    expect(notifier.enabled).toBe(true);
    expect(notifier.watchdogIntervalMs).toBe(150);

    await notifier.start();
    // start() resolves after systemd-notify returned, which it does only after the barrier.
    expect(listener.messages[0]?.fields).toEqual(['READY=1', 'STATUS=Idle, 3 lectures waiting']);
    expect(listener.barriers()).toBeGreaterThanOrEqual(1);

    const pings = (): number => listener.messages.filter((m) => has(m, 'WATCHDOG=1')).length;
    await waitFor(() => (pings() >= 3 ? true : undefined), { timeoutMs: 10_000, what: 'three watchdog pings' });
    // A changed status goes out with the next tick, once.
    status = 'Recording CS101 (12:03)';
    await waitFor(() => (listener.messages.some((m) => has(m, 'STATUS=Recording CS101 (12:03)')) ? true : undefined), { timeoutMs: 10_000, what: 'the new status' });

    // The work loop turns unhealthy: every tick still runs the check, but no ping goes out.
    healthy = false;
    const healthyChecks = (): number => checks.filter(Boolean).length;
    const failedChecks = (): number => (checks.includes(false) ? checks.length - checks.indexOf(false) : 0);
    await waitFor(() => (failedChecks() >= 4 ? true : undefined), {
      timeoutMs: 10_000,
      what: 'four failed health checks',
    });
    // Ticks never overlap, so every ping of a passed check has been sent by now: one per pass.
    expect(pings()).toBe(healthyChecks());
    expect(lines.some((l) => l.includes('watchdog pings paused'))).toBe(true);

    // Healthy again: the pings resume.
    const pingsWhileUnhealthy = pings();
    healthy = true;
    await waitFor(() => (pings() >= pingsWhileUnhealthy + 2 ? true : undefined), { timeoutMs: 10_000, what: 'pings to resume' });
    expect(lines.some((l) => l.includes('watchdog pings resumed'))).toBe(true);

    await notifier.stop('Stopping: finishing the recording');
    const last = listener.messages.at(-1);
    expect(last?.fields).toEqual(['STOPPING=1', 'STATUS=Stopping: finishing the recording']);
    // Nothing after STOPPING=1: the status of the same text is not repeated either.
    const countAtStop = listener.messages.length;
    const checksAtStop = checks.length;
    await notifier.setStatus('late status');
    expect(listener.messages.length).toBe(countAtStop);
    expect(checks.length).toBe(checksAtStop);
    // Each status text went out exactly once.
    const statuses = listener.messages.flatMap((m) => m.fields.filter((f) => f.startsWith('STATUS=')));
    expect(new Set(statuses).size).toBe(statuses.length);
  });

  it('counts a throwing health check as unhealthy', async () => {
    const { logger, lines } = createMemoryLogger();
    let calls = 0;
    const notifier = new Notifier({
      env: { PATH: process.env.PATH, NOTIFY_SOCKET: listener.socketPath, WATCHDOG_USEC: '200000' },
      logger,
      healthy: () => {
        calls += 1;
        throw new Error('database is locked');
      },
    });
    await notifier.start();
    await waitFor(() => (calls >= 3 ? true : undefined), { timeoutMs: 10_000, what: 'three health checks' });
    await notifier.stop();
    expect(listener.messages.map((m) => m.fields[0])).toEqual(['READY=1', 'STOPPING=1']);
    expect(lines.some((l) => l.includes('the health check threw: database is locked'))).toBe(true);
  });

  it('does not ping for a WATCHDOG_PID of another process (a child that inherited the variables)', async () => {
    const notifier = new Notifier({
      env: { PATH: process.env.PATH, NOTIFY_SOCKET: listener.socketPath, WATCHDOG_USEC: '200000', WATCHDOG_PID: String(process.pid + 1) },
      logger: createMemoryLogger().logger,
      healthy: () => true,
      statusIntervalMs: 50,
      status: () => 'Idle',
    });
    expect(notifier.watchdogIntervalMs).toBeUndefined();
    await notifier.start();
    await notifier.stop();
    expect(listener.messages.flatMap((m) => m.fields)).not.toContain('WATCHDOG=1');
    expect(listener.messages[0]?.fields).toEqual(['READY=1', 'STATUS=Idle']);
  });

  it('logs and carries on when systemd does not answer', async () => {
    const { logger, lines } = createMemoryLogger();
    const notifier = new Notifier({
      env: { PATH: process.env.PATH, NOTIFY_SOCKET: path.join(tmp.dir, 'nobody-listens.sock') },
      logger,
      healthy: () => true,
    });
    await notifier.start();
    await notifier.stop();
    expect(lines.filter((l) => l.includes('cannot notify systemd'))).toHaveLength(1);
    expect(listener.messages).toEqual([]);
  });
});

describe('Notifier without systemd', () => {
  it('does nothing when NOTIFY_SOCKET is unset', async () => {
    // The sender is injected here only to prove it is never called.
    const sent: string[][] = [];
    let checks = 0;
    const notifier = new Notifier({
      env: { WATCHDOG_USEC: '100000' },
      logger: createMemoryLogger().logger,
      healthy: () => {
        checks += 1;
        return true;
      },
      send: async (fields) => {
        sent.push(fields);
      },
      statusIntervalMs: 10,
    });
    expect(notifier.enabled).toBe(false);
    expect(notifier.watchdogIntervalMs).toBeUndefined();
    await notifier.start();
    await notifier.setStatus('Recording');
    await notifier.stop();
    expect(sent).toEqual([]);
    expect(checks).toBe(0);
  });

  it('reads WATCHDOG_USEC as systemd means it and keeps STATUS on one line', () => {
    expect(watchdogTimeoutMs({ WATCHDOG_USEC: '30000000' }, 42)).toBe(30_000);
    expect(watchdogTimeoutMs({ WATCHDOG_USEC: '30000000', WATCHDOG_PID: '42' }, 42)).toBe(30_000);
    expect(watchdogTimeoutMs({ WATCHDOG_USEC: '30000000', WATCHDOG_PID: '43' }, 42)).toBeUndefined();
    expect(watchdogTimeoutMs({ WATCHDOG_USEC: 'soon' }, 42)).toBeUndefined();
    expect(watchdogTimeoutMs({}, 42)).toBeUndefined();
    expect(cleanStatus('Recording\nCS101\t(12:03)\u0000')).toBe('Recording CS101 (12:03)');
    expect(cleanStatus('x'.repeat(500))).toHaveLength(200);
  });
});

describe('formatStatusLine', () => {
  const base: AgentStatus = {
    agent: { id: 'pc-101', site: 'campus', room: 'r101', version: '0.1.0', startedAtMs: 0 },
    atMs: 0,
    recording: { state: 'idle', recordingId: null, title: null, course: null, startedAtMs: null, plannedEndMs: null, elapsedMs: 0, segments: 0, restarts: 0, sources: [] },
    audioLevelDb: null,
    alerts: [],
    disk: { freeBytes: null, minFreeBytes: 0, stopFreeBytes: 0, low: false },
    queue: { queued: 0, running: 0, done: 0, dead: 0, cancelled: 0 },
    uploads: { pendingLectures: 0, pendingBytes: null, etaSeconds: null },
    next: null,
    kiosk: { pinRequired: false },
  };

  it('says what a person in front of systemctl status needs to know', () => {
    expect(formatStatusLine(base)).toBe('Idle');
    const recording = { ...base.recording, state: 'recording' as const, course: 'CS101', title: 'Graphs', elapsedMs: 723_400 };
    expect(formatStatusLine({ ...base, recording })).toBe('Recording CS101 (12:03)');
    expect(formatStatusLine({ ...base, recording: { ...recording, course: null, elapsedMs: 3_723_000 } })).toBe('Recording Graphs (1:02:03)');
    const alerts = [
      { kind: 'no_audio', source: 'presenter', message: 'no sound', startedAtMs: 1 },
      { kind: 'disk_low', source: null, message: 'disk', startedAtMs: 2 },
    ];
    expect(formatStatusLine({ ...base, recording, alerts })).toBe('Recording CS101 (12:03); alerts: no_audio, disk_low');
    const next = { title: 'Algebra', course: 'MA102', startsAtMs: Date.UTC(2026, 10, 30, 18, 0), endsAtMs: Date.UTC(2026, 10, 30, 19, 30) };
    expect(formatStatusLine({ ...base, uploads: { ...base.uploads, pendingLectures: 3 }, next }, 'UTC')).toBe('Idle, 3 lectures waiting to publish, next MA102 at 18:00');
    expect(formatStatusLine({ ...base, uploads: { ...base.uploads, pendingLectures: 1 }, next }, 'Europe/Berlin')).toBe('Idle, 1 lecture waiting to publish, next MA102 at 19:00');
  });
});
