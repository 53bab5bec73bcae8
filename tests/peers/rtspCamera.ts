import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * A real RTSP camera for the tests: GStreamer's RTSP server (tests/peers/rtspCamera.py, run with
 * Debian's /usr/bin/python3 where python3-gi lives) on 127.0.0.1 and a port the kernel picks.
 * One shared live media: a moving test pattern as H.264 with a 2 s GOP, and a tone as AAC or G.711
 * A-law, optionally behind digest authentication. Needs the Debian packages in
 * scripts/test-peers/rtsp.apt. Start it once per test file (beforeAll) and always stop() it.
 *
 * The faults are commands on the script's stdin; each resolves only when the script replied that
 * it took effect, so a test never races its own fault.
 */

export interface RtspCameraOptions {
  /** Digest authentication, as real cameras use; the password reaches the script by environment. */
  auth?: { user: string; password: string };
  audio?: 'aac' | 'alaw' | 'none';
  width?: number;
  height?: number;
  fps?: number;
}

export interface RtspCamera {
  /** rtsp://127.0.0.1:PORT/stream1, without credentials. */
  url: string;
  port: number;
  /** Closes every client connection and stops listening: connections are refused until up(). */
  reboot(): Promise<void>;
  /** Listens again on the same port. */
  up(): Promise<void>;
  /** Stops sending media while sessions stay open (ffmpeg's -timeout does not fire). */
  freeze(): Promise<void>;
  thaw(): Promise<void>;
  /** The audio becomes digital silence. */
  mute(): Promise<void>;
  unmute(): Promise<void>;
  /** The picture stops moving while media still flows (a frozen image). */
  still(): Promise<void>;
  /** The picture moves again (also ends black()). */
  move(): Promise<void>;
  /** The picture turns black. */
  black(): Promise<void>;
  /** Ends the camera process; safe to call twice. */
  stop(): Promise<void>;
}

const HERE = path.dirname(fileURLToPath(import.meta.url));
// Beside this file, or, when compiled for a benchmark (dist-bench/tests/peers), in the source tree.
const SCRIPT = [path.join(HERE, 'rtspCamera.py'), path.join(HERE, '..', '..', '..', 'tests', 'peers', 'rtspCamera.py')].find((p) => existsSync(p)) ?? path.join(HERE, 'rtspCamera.py');
const PYTHON = '/usr/bin/python3';
const START_TIMEOUT_MS = 15_000;
const COMMAND_TIMEOUT_MS = 10_000;
const STOP_GRACE_MS = 5_000;

export async function startRtspCamera(options: RtspCameraOptions = {}): Promise<RtspCamera> {
  const args = [
    SCRIPT,
    '--width', String(options.width ?? 320),
    '--height', String(options.height ?? 240),
    '--fps', String(options.fps ?? 25),
    '--audio', options.audio ?? 'aac',
  ];
  if (options.auth) args.push('--user', options.auth.user);
  const child = spawn(PYTHON, args, {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, RTSP_CAMERA_PASSWORD: options.auth?.password ?? '' },
  });
  const lines = new LineQueue(child);
  let stderr = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (d: string) => (stderr = (stderr + d).slice(-4000)));
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));

  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    if (child.exitCode === null && child.signalCode === null) {
      child.stdin?.end('quit\n');
      const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
      await exited;
      clearTimeout(timer);
    }
  };

  let port: number;
  try {
    const ready = await lines.next(START_TIMEOUT_MS, () => `the RTSP camera did not start: ${stderr}`);
    const match = /^ready (\d+)$/.exec(ready);
    if (!match) throw new Error(`the RTSP camera said "${ready}" instead of ready: ${stderr}`);
    port = Number(match[1]);
  } catch (err) {
    await stop();
    throw err;
  }

  // One command at a time: each waits for its own reply.
  let chain: Promise<unknown> = Promise.resolve();
  const command = (cmd: string): Promise<void> => {
    const run = async (): Promise<void> => {
      if (stopped) throw new Error(`the RTSP camera is stopped; cannot ${cmd}`);
      child.stdin?.write(`${cmd}\n`);
      const reply = await lines.next(COMMAND_TIMEOUT_MS, () => `the RTSP camera did not answer "${cmd}": ${stderr}`);
      if (reply !== `ok ${cmd}`) throw new Error(`the RTSP camera answered "${reply}" to "${cmd}"`);
    };
    const next = chain.then(run, run);
    chain = next.catch(() => undefined);
    return next;
  };

  return {
    url: `rtsp://127.0.0.1:${port}/stream1`,
    port,
    reboot: () => command('reboot'),
    up: () => command('up'),
    freeze: () => command('freeze'),
    thaw: () => command('thaw'),
    mute: () => command('mute'),
    unmute: () => command('unmute'),
    still: () => command('still'),
    move: () => command('move'),
    black: () => command('black'),
    stop,
  };
}

/** The script's stdout as a queue of lines. */
class LineQueue {
  readonly #lines: string[] = [];
  readonly #waiters: Array<(line: string | undefined) => void> = [];
  #closed = false;
  #pending = '';

  constructor(child: ChildProcess) {
    child.stdout?.setEncoding('utf8');
    child.stdout?.on('data', (chunk: string) => {
      const parts = (this.#pending + chunk).split('\n');
      this.#pending = parts.pop() ?? '';
      for (const line of parts) this.#push(line.trim());
    });
    child.once('close', () => {
      this.#closed = true;
      for (const w of this.#waiters.splice(0)) w(undefined);
    });
  }

  #push(line: string): void {
    const waiter = this.#waiters.shift();
    if (waiter) waiter(line);
    else this.#lines.push(line);
  }

  next(timeoutMs: number, describe: () => string): Promise<string> {
    const queued = this.#lines.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    if (this.#closed) return Promise.reject(new Error(`${describe()} (the process exited)`));
    return new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => {
        const i = this.#waiters.indexOf(take);
        if (i >= 0) this.#waiters.splice(i, 1);
        reject(new Error(`${describe()} (no reply in ${timeoutMs} ms)`));
      }, timeoutMs);
      const take = (line: string | undefined): void => {
        clearTimeout(timer);
        if (line === undefined) reject(new Error(`${describe()} (the process exited)`));
        else resolve(line);
      };
      this.#waiters.push(take);
    });
  }
}
