import { describe, it, expect, beforeEach, afterEach, onTestFinished } from 'vitest';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { FfmpegProcess } from '../../src/ffmpeg/process.js';
import type { FfmpegProgress } from '../../src/ffmpeg/progress.js';
import { decodeCheck, probeMedia } from '../../src/ffmpeg/ffprobe.js';
import { runFfmpeg } from '../../src/ffmpeg/run.js';
import { createMemoryLogger } from '../../src/log/logger.js';
import { isLecternError } from '../../src/util/errors.js';
import { waitFor } from '../../src/util/sleep.js';
import { ignoreSigintArgs } from '../fixtures/ignore-sigint.js';

const QUIET = ['-hide_banner', '-nostats', '-loglevel', 'warning'];
const PROGRESS = ['-progress', 'pipe:1', '-stats_period', '0.25'];
// A live-like source: -re paces the test pattern at real time, as a camera would.
const LIVE_TESTSRC = ['-re', '-f', 'lavfi', '-i', 'testsrc=size=320x240:rate=25'];
const H264 = ['-c:v', 'libx264', '-preset', 'ultrafast', '-tune', 'zerolatency', '-g', '25'];

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lectern-'));
});
afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    // ESRCH: no such process.
    return false;
  }
}

/** A loopback TCP server that accepts connections and never sends a byte (a frozen camera). */
async function silentServer(): Promise<{ port: number; close: () => Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket: net.Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no TCP address');
  return {
    port: address.port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

describe('FfmpegProcess with real ffmpeg', () => {
  it('records a live test pattern, reports progress, and stops cleanly with q', async () => {
    const out = path.join(dir, 'rec.ts');
    const { logger } = createMemoryLogger();
    const seen: FfmpegProgress[] = [];
    const proc = new FfmpegProcess({
      args: [...QUIET, ...LIVE_TESTSRC, ...H264, ...PROGRESS, '-f', 'mpegts', out],
      logger,
      label: 'capture presenter',
      // Short enough that it would fire during this test if advancing progress did not re-arm it.
      stallTimeoutMs: 1500,
      onProgress: (p) => seen.push(p),
    });
    expect(proc.status).toBe('idle');
    await proc.start();
    expect(proc.status).toBe('running');
    expect(proc.pid).toBeGreaterThan(0);

    await waitFor(() => {
      if (proc.status !== 'running') throw new Error(`ffmpeg left 'running' early: ${proc.status}`);
      return (proc.lastProgress?.outTimeUs ?? 0) >= 2_500_000 ? true : undefined;
    }, {
      timeoutMs: 15_000,
      what: '2.5 s of recorded output',
    });
    expect(proc.status).toBe('running');

    const stopping = proc.stop();
    expect(proc.status).toBe('stopping');
    expect(proc.stop()).toBe(stopping);
    const exit = await stopping;

    expect(exit).toMatchObject({ code: 0, signal: null, requested: true, stalled: false, escalation: 'quit' });
    expect(proc.status).toBe('exited');
    expect(exit.durationMs).toBeGreaterThanOrEqual(2500);
    expect(await proc.wait()).toBe(exit);
    // Progress was parsed from the real pipe and advanced.
    expect(seen.length).toBeGreaterThanOrEqual(5);
    const times = seen.map((p) => p.outTimeUs ?? 0);
    expect(Math.max(...times)).toBeGreaterThan(times[0] ?? 0);
    expect(seen.at(-1)?.end).toBe(true);

    const probe = await probeMedia(out, { timeoutMs: 10_000 });
    expect(probe.formatName).toBe('mpegts');
    expect(probe.durationSeconds).toBeGreaterThanOrEqual(2.4);
    expect(probe.streams).toEqual([expect.objectContaining({ codecType: 'video', codecName: 'h264', width: 320, height: 240 })]);
    expect(await decodeCheck(out, { timeoutMs: 10_000 })).toEqual([]);
  });

  it('declares a stall when the input sends nothing, and stops the process', async () => {
    const server = await silentServer();
    const { logger, lines } = createMemoryLogger();
    try {
      const proc = new FfmpegProcess({
        args: [...QUIET, '-f', 'mpegts', '-i', `tcp://127.0.0.1:${server.port}`, '-c', 'copy', ...PROGRESS, '-f', 'null', '-'],
        logger,
        label: 'capture frozen',
        stallTimeoutMs: 1500,
        stopLadder: { quitGraceMs: 500, interruptGraceMs: 1000 },
      });
      const startedAt = Date.now();
      await proc.start();
      await waitFor(() => (proc.status === 'stopping' ? true : undefined), { timeoutMs: 5000, what: 'the stall watchdog' });
      // The watchdog must not fire early: nothing arrives, but 1.5 s have to pass first.
      expect(Date.now() - startedAt).toBeGreaterThanOrEqual(1400);
      const exit = await proc.wait();
      const elapsedMs = Date.now() - startedAt;

      expect(exit.stalled).toBe(true);
      expect(exit.requested).toBe(false);
      // ffmpeg 5.1 blocked in avformat_open_input ignores `q`; the first SIGINT interrupts the
      // read and it exits with code 1 ("Immediate exit requested" / "Interrupted").
      expect(exit.escalation).toBe('interrupt');
      expect(exit.code).toBe(1);
      expect(elapsedMs).toBeLessThan(1500 + 500 + 1000 + 3000);
      expect(lines.some((l) => l.includes('WARN') && l.includes('capture frozen: ffmpeg made no progress for 1.5 s; stopping it'))).toBe(true);
    } finally {
      await server.close();
    }
  });

  it('keeps password URLs and secret values out of the logs and the stderr tail', async () => {
    const { logger, lines } = createMemoryLogger('debug');
    const secretKey = 'AKIAVERYSECRETKEY';
    // Port 1 on loopback refuses at once; ffmpeg then prints the URL (with its password) on stderr.
    const url = `rtsp://admin:s3cret@127.0.0.1:1/${secretKey}`;
    const proc = new FfmpegProcess({
      args: [...QUIET, '-rtsp_transport', 'tcp', '-i', url, '-metadata', `comment=${secretKey}`, '-f', 'null', '-'],
      logger,
      label: 'capture secret',
      secrets: [secretKey],
    });
    await proc.start();
    const exit = await proc.wait();

    expect(exit.code).toBe(1);
    expect(exit.requested).toBe(false);
    // The stderr tail is not passed through the logger, so this checks the ring's own redaction.
    expect(exit.stderrTail).toContain('rtsp://admin:***@127.0.0.1:1/***: Connection refused');
    const debugArgv = lines.find((l) => l.includes('DEBUG') && l.includes('capture secret: starting ffmpeg'));
    expect(debugArgv).toContain('rtsp://admin:***@127.0.0.1:1/***');
    expect(debugArgv).toContain('comment=***');
    const warn = lines.find((l) => l.includes('WARN') && l.includes('capture secret: ffmpeg exited unexpectedly (code 1)'));
    expect(warn).toContain('Connection refused');
    const everything = [...lines, ...exit.stderrTail].join('\n');
    expect(everything).not.toContain('s3cret');
    expect(everything).not.toContain(secretKey);
  });

  it('rejects with FFMPEG_NOT_FOUND when the binary is missing', async () => {
    const proc = new FfmpegProcess({ args: ['-version'], command: path.join(dir, 'no-such-ffmpeg'), logger: createMemoryLogger().logger, label: 'missing' });
    const started = proc.start();
    await expect(started).rejects.toSatisfy((err: unknown) => isLecternError(err, 'FFMPEG_NOT_FOUND'));
    await expect(proc.wait()).rejects.toSatisfy((err: unknown) => isLecternError(err, 'FFMPEG_NOT_FOUND'));
    expect(proc.status).toBe('exited');
    expect(proc.pid).toBeUndefined();
  });
});

describe('FfmpegProcess stop ladder', () => {
  it('escalates to SIGKILL of the process group when q and SIGINT are ignored', async () => {
    const { logger } = createMemoryLogger();
    const proc = new FfmpegProcess({
      command: process.execPath,
      args: ignoreSigintArgs('ignore-all-with-child'),
      logger,
      label: 'stubborn',
      stopLadder: { quitGraceMs: 300, interruptGraceMs: 300 },
    });
    await proc.start();
    const grandchildPid = await waitFor(
      () => {
        const tail = proc.stderrTail();
        const line = tail.find((l) => l.startsWith('grandchild '));
        return tail.includes('ready') && line ? Number(line.slice('grandchild '.length)) : undefined;
      },
      { timeoutMs: 5000, what: 'the fixture to install its handlers' },
    );
    expect(isAlive(grandchildPid)).toBe(true);
    // A broken group kill would leave the grandchild behind; don't let it outlive the test.
    const timer = setTimeout(() => {
      if (isAlive(grandchildPid)) process.kill(grandchildPid, 'SIGKILL');
    }, 10_000);
    onTestFinished(() => clearTimeout(timer));

    const stopAt = Date.now();
    const exit = await proc.stop();
    const elapsedMs = Date.now() - stopAt;

    expect(exit).toMatchObject({ code: null, signal: 'SIGKILL', requested: true, stalled: false, escalation: 'kill' });
    expect(elapsedMs).toBeGreaterThanOrEqual(600 - 20);
    expect(elapsedMs).toBeLessThan(600 + 3000);
    // Each rung really reached the process, in order.
    const tail = exit.stderrTail;
    const quitAt = tail.indexOf('ignoring stdin: "q\\n"');
    const intAt = tail.indexOf('got SIGINT, ignoring it');
    expect(quitAt).toBeGreaterThanOrEqual(0);
    expect(intAt).toBeGreaterThan(quitAt);
    // 'close' came only because the grandchild holding the pipes died with the group.
    await waitFor(() => (isAlive(grandchildPid) ? undefined : true), { timeoutMs: 2000, what: 'the grandchild to be reaped' });
    // Without the group kill, 'close' never comes; fail in seconds rather than at the suite timeout.
  }, 15_000);

  it('stops at SIGINT when the process ignores q but honours SIGINT, and applies niceness', async () => {
    const { logger, lines } = createMemoryLogger();
    const proc = new FfmpegProcess({
      command: process.execPath,
      args: ignoreSigintArgs('ignore-q'),
      logger,
      label: 'half-deaf',
      niceness: 7,
      stopLadder: { quitGraceMs: 300, interruptGraceMs: 5000 },
    });
    await proc.start();
    await waitFor(() => (proc.stderrTail().includes('ready') ? true : undefined), { timeoutMs: 5000, what: 'the fixture' });
    expect(os.getPriority(proc.pid)).toBe(7);

    const stopAt = Date.now();
    const exit = await proc.stop();
    const elapsedMs = Date.now() - stopAt;

    expect(exit).toMatchObject({ code: 255, signal: null, requested: true, escalation: 'interrupt' });
    expect(exit.stderrTail).toContain('got SIGINT, exiting');
    expect(elapsedMs).toBeGreaterThanOrEqual(300 - 20);
    // Well before the SIGKILL rung at 5.3 s.
    expect(elapsedMs).toBeLessThan(3000);
    // A requested stop with a non-zero code is not a failure worth a warning.
    expect(lines.filter((l) => l.includes('WARN'))).toEqual([]);
  });

  it('settles stop() without spawning when start() was never called', async () => {
    const proc = new FfmpegProcess({ args: [], command: process.execPath, logger: createMemoryLogger().logger, label: 'never' });
    const exit = await proc.stop();
    expect(exit).toMatchObject({ code: null, signal: null, requested: true, escalation: 'none' });
    expect(proc.status).toBe('exited');
    await expect(proc.start()).rejects.toSatisfy((err: unknown) => isLecternError(err, 'INTERNAL'));
    expect(proc.pid).toBeUndefined();
  });
});

describe('runFfmpeg', () => {
  it('resolves when a one-shot job exits 0 and the output exists', async () => {
    const out = path.join(dir, 'poster.mp4');
    const exit = await runFfmpeg({
      args: [...QUIET, '-f', 'lavfi', '-i', 'testsrc=size=320x240:rate=25', '-t', '1', ...H264, out],
      logger: createMemoryLogger().logger,
      label: 'transcode test',
    });
    expect(exit).toMatchObject({ code: 0, requested: false, escalation: 'none' });
    const probe = await probeMedia(out, { timeoutMs: 10_000 });
    expect(probe.durationSeconds).toBeCloseTo(1, 1);
  });

  it('throws FFMPEG_FAILED naming the label, the exit code and the stderr cause', async () => {
    const missing = path.join(dir, 'missing-input.ts');
    const error: unknown = await runFfmpeg({
      args: [...QUIET, '-i', missing, '-f', 'null', '-'],
      logger: createMemoryLogger().logger,
      label: 'transcode lecture 42',
    }).catch((err: unknown) => err);
    expect(isLecternError(error, 'FFMPEG_FAILED')).toBe(true);
    const message = (error as Error).message;
    expect(message).toContain('transcode lecture 42');
    expect(message).toContain('exited with code 1');
    expect(message).toContain(`${missing}: No such file or directory`);
  });

  it('runs the stop ladder on abort and rejects with the abort reason', async () => {
    const controller = new AbortController();
    let progressBlocks = 0;
    const job = runFfmpeg({
      args: [...QUIET, ...LIVE_TESTSRC, ...H264, ...PROGRESS, '-f', 'mpegts', path.join(dir, 'long.ts')],
      logger: createMemoryLogger().logger,
      label: 'transcode cancelled',
      signal: controller.signal,
      onProgress: () => {
        progressBlocks += 1;
      },
    });
    await waitFor(() => (progressBlocks >= 2 ? true : undefined), { timeoutMs: 10_000, what: 'progress' });
    const reason = new Error('cancelled by test');
    const abortAt = Date.now();
    controller.abort(reason);
    await expect(job).rejects.toBe(reason);
    // `q` worked: far quicker than the default 8 s quit grace.
    expect(Date.now() - abortAt).toBeLessThan(4000);
    // The output was finalised by ffmpeg, not cut by a kill.
    expect(await decodeCheck(path.join(dir, 'long.ts'), { timeoutMs: 10_000 })).toEqual([]);
  });

  it('rejects at once, spawning nothing, when the signal is already aborted', async () => {
    const reason = new Error('already');
    const job = runFfmpeg({ args: [], command: path.join(dir, 'no-such'), logger: createMemoryLogger().logger, label: 'x', signal: AbortSignal.abort(reason) });
    await expect(job).rejects.toBe(reason);
  });
});
