import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { setPriority } from 'node:os';
import { performance } from 'node:perf_hooks';
import type { Logger } from '../log/logger.js';
import { LecternError, describeError } from '../util/errors.js';
import { redactArgv } from '../util/redact.js';
import { ProgressParser } from './progress.js';
import type { FfmpegProgress } from './progress.js';
import { StderrRing } from './stderrRing.js';

/**
 * The one owner of a running ffmpeg (or ffprobe, or a test stand-in). It spawns with an argv
 * array and no shell, drains both pipes, parses `-progress pipe:1` from stdout, keeps a redacted
 * stderr tail, watches for stalls and stops the process with a ladder.
 *
 * The ladder follows what ffmpeg 5.1 was measured to do (research/libraries.md §2.3): `q` on
 * stdin exits 0 with a finalised output; one SIGINT exits 255, still finalised; SIGKILL leaves
 * only what the muxer already flushed. `q` and the first SIGINT are both ignored while a read is
 * blocked, which is why the last rung exists.
 */

/** Lifecycle of an FfmpegProcess. */
export type FfmpegStatus =
  /** Constructed; start() has not been called. */
  | 'idle'
  /** Spawned and not asked to stop. */
  | 'running'
  /** The stop ladder is running (asked by stop() or by the stall watchdog). */
  | 'stopping'
  /** The process closed its pipes and exited, or never spawned. */
  | 'exited';

/** The furthest rung of the stop ladder that was used. */
export type FfmpegEscalation =
  /** The ladder never ran: the process exited on its own. */
  | 'none'
  /** `q` was written to stdin, and that was enough. */
  | 'quit'
  /** SIGINT was sent to the process after the quit grace ran out. */
  | 'interrupt'
  /** SIGKILL was sent to the process group after the interrupt grace ran out. */
  | 'kill';

/** How a process ended. Output files are complete once this exists (it is built on 'close'). */
export interface FfmpegExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** stop() was called; an exit without it (even code 0) means the input or ffmpeg gave up. */
  requested: boolean;
  /** The stall watchdog fired and started the stop ladder. */
  stalled: boolean;
  escalation: FfmpegEscalation;
  /** The last stderr lines, redacted. */
  stderrTail: string[];
  /** From spawn to close. */
  durationMs: number;
}

export interface StopLadder {
  /** How long to wait after `q` before sending SIGINT. */
  quitGraceMs: number;
  /** How long to wait after SIGINT before sending SIGKILL to the process group. */
  interruptGraceMs: number;
}

export interface FfmpegProcessOptions {
  args: string[];
  /** The program to run; default 'ffmpeg'. Tests pass node and a script. */
  command?: string;
  logger: Logger;
  /** Names the process in logs and errors, e.g. 'capture presenter'. */
  label: string;
  /** Values to blank out of logged argv and stderr, besides URL credentials. */
  secrets?: string[];
  cwd?: string;
  /** Stop the process when neither out_time nor total_size advanced for this long; 0 = off. */
  stallTimeoutMs?: number;
  stopLadder?: StopLadder;
  /** Scheduling niceness applied after spawn (transcodes yield to capture). */
  niceness?: number;
  onProgress?: (progress: FfmpegProgress) => void;
  /**
   * When set, the process gets a fourth pipe (fd 3, `pipe:3` to ffmpeg) whose lines are handed
   * here as they arrive: metadata a filter prints (`ametadata=mode=print:file='pipe\:3'`) stays
   * apart from `-progress` on stdout.
   */
  onExtraLine?: (line: string) => void;
  /** Lines of stderr to keep; default 100. */
  stderrRingLines?: number;
}

/** The file descriptor of the extra pipe (see FfmpegProcessOptions.onExtraLine). */
export const EXTRA_PIPE_FD = 3;

// 8 s lets ffmpeg write the trailer of a long fMP4 after `q`; 10 s more after SIGINT covers a
// blocked read that a `-timeout` ends (research/libraries.md §2.3: 5–10 s, then 10 s).
export const DEFAULT_STOP_LADDER: StopLadder = { quitGraceMs: 8_000, interruptGraceMs: 10_000 };

// Log only the end of the ring on failure; the whole ring is in FfmpegExit.stderrTail.
const WARN_TAIL_LINES = 20;
const MAX_EXTRA_LINE_CHARS = 4096;

export class FfmpegProcess {
  readonly #opts: FfmpegProcessOptions;
  readonly #command: string;
  readonly #ladder: StopLadder;
  readonly #log: Logger;
  readonly #ring: StderrRing;
  readonly #parser = new ProgressParser();

  #child: ChildProcess | undefined;
  #status: FfmpegStatus = 'idle';
  #startPromise: Promise<void> | undefined;
  #stopPromise: Promise<FfmpegExit> | undefined;
  readonly #exitPromise: Promise<FfmpegExit>;
  #resolveExit!: (exit: FfmpegExit) => void;
  #rejectExit!: (err: unknown) => void;
  #settled = false;

  #spawnedAt = 0;
  #exited = false;
  #requested = false;
  #stalled = false;
  #escalation: FfmpegEscalation = 'none';
  #lastProgress: FfmpegProgress | undefined;
  #maxOutTimeUs = -1;
  #maxTotalSizeBytes = -1;
  #stallTimer: NodeJS.Timeout | undefined;
  #extraPending = '';
  #ladderTimer: NodeJS.Timeout | undefined;

  constructor(options: FfmpegProcessOptions) {
    this.#opts = options;
    this.#command = options.command ?? 'ffmpeg';
    this.#ladder = options.stopLadder ?? DEFAULT_STOP_LADDER;
    this.#log = options.logger;
    this.#ring = new StderrRing({ maxLines: options.stderrRingLines ?? 100, secrets: options.secrets ?? [] });
    this.#exitPromise = new Promise<FfmpegExit>((resolve, reject) => {
      this.#resolveExit = resolve;
      this.#rejectExit = reject;
    });
    // A spawn failure rejects wait() as well as start(); a caller that only awaits start() must
    // not get an unhandled rejection from the promise it never asked for.
    this.#exitPromise.catch(() => undefined);
  }

  get status(): FfmpegStatus {
    return this.#status;
  }

  get pid(): number | undefined {
    return this.#child?.pid;
  }

  get lastProgress(): FfmpegProgress | undefined {
    return this.#lastProgress;
  }

  /** The redacted stderr lines kept so far, oldest first. */
  stderrTail(): string[] {
    return this.#ring.lines();
  }

  /**
   * Spawns the process. Resolves once it runs; rejects with FFMPEG_NOT_FOUND when the program is
   * missing. Calling it again returns the first call's promise.
   */
  start(): Promise<void> {
    if (this.#startPromise === undefined && this.#status === 'exited') {
      return Promise.reject(new LecternError('INTERNAL', `${this.#opts.label}: start() after stop(); create a new FfmpegProcess`));
    }
    this.#startPromise ??= this.#spawn();
    return this.#startPromise;
  }

  /**
   * Resolves when the process has exited and closed its pipes. Rejects only when it could not be
   * spawned, with the same error as start().
   */
  wait(): Promise<FfmpegExit> {
    return this.#exitPromise;
  }

  /**
   * Runs the stop ladder (`q`, SIGINT, SIGKILL to the group) and resolves with the exit. Safe to
   * call in any state and more than once; later calls return the same promise.
   */
  stop(): Promise<FfmpegExit> {
    if (this.#status === 'idle') {
      // Nothing was spawned: settle so that wait() callers and shutdown paths do not hang.
      this.#status = 'exited';
      this.#requested = true;
      this.#settle({ code: null, signal: null });
    }
    if (this.#status === 'exited') return this.#exitPromise;
    this.#requested = true;
    return this.#runLadder();
  }

  #spawn(): Promise<void> {
    const secrets = this.#opts.secrets ?? [];
    this.#log.debug(`${this.#opts.label}: starting ${this.#command}`, {
      argv: redactArgv([this.#command, ...this.#opts.args], secrets).join(' '),
    });
    return new Promise<void>((resolve, reject) => {
      let child: ChildProcess;
      try {
        // detached: own process group, so a Ctrl-C aimed at the daemon does not reach ffmpeg
        // before the ladder runs, and the last rung can kill anything ffmpeg started.
        child = spawn(this.#command, this.#opts.args, {
          cwd: this.#opts.cwd,
          detached: true,
          shell: false,
          stdio: this.#opts.onExtraLine ? ['pipe', 'pipe', 'pipe', 'pipe'] : ['pipe', 'pipe', 'pipe'],
        });
      } catch (err) {
        const error = this.#spawnError(err);
        this.#status = 'exited';
        this.#settleWithError(error);
        reject(error);
        return;
      }
      this.#child = child;
      // 'running' from here on, so a stop() before the 'spawn' event runs the ladder instead of
      // mistaking the process for one that was never started.
      this.#status = 'running';

      child.once('spawn', () => {
        this.#spawnedAt = performance.now();
        this.#applyNiceness(child);
        this.#armStallTimer();
        this.#log.debug(`${this.#opts.label}: ${this.#command} started`, { pid: child.pid });
        resolve();
      });
      child.on('error', (err) => {
        if (child.pid === undefined) {
          // The program never ran; 'close' follows with a negative errno that means nothing.
          const error = this.#spawnError(err);
          this.#status = 'exited';
          this.#clearTimers();
          this.#settleWithError(error);
          reject(error);
          return;
        }
        // A failed kill() or similar on a running process; 'close' still settles the exit.
        this.#log.debug(`${this.#opts.label}: process error`, { error: describeError(err) });
      });

      child.stdout?.setEncoding('utf8');
      child.stdout?.on('data', (chunk: string) => this.#onStdout(chunk));
      child.stderr?.setEncoding('utf8');
      child.stderr?.on('data', (chunk: string) => this.#ring.push(chunk));
      const extra = child.stdio[EXTRA_PIPE_FD];
      if (this.#opts.onExtraLine && extra && 'setEncoding' in extra) {
        extra.setEncoding('utf8');
        extra.on('data', (chunk: string) => this.#onExtra(chunk));
        // A last line without its newline still counts.
        extra.on('end', () => {
          if (this.#extraPending !== '') this.#onExtra('\n');
        });
        extra.on('error', (err) => this.#log.debug(`${this.#opts.label}: extra pipe error`, { error: describeError(err) }));
      }
      // Writing `q` to a process that just exited raises EPIPE on stdin; that is expected.
      child.stdin?.on('error', (err) => {
        this.#log.debug(`${this.#opts.label}: stdin error`, { error: describeError(err) });
      });

      child.once('exit', () => {
        this.#exited = true;
      });
      child.once('close', (code: number | null, signal: NodeJS.Signals | null) => {
        if (child.pid === undefined) return;
        this.#ring.flush();
        this.#status = 'exited';
        this.#clearTimers();
        this.#settle({ code, signal });
      });
    });
  }

  #spawnError(err: unknown): LecternError {
    const code = (err as NodeJS.ErrnoException | undefined)?.code;
    if (code === 'ENOENT') {
      return new LecternError('FFMPEG_NOT_FOUND', `${this.#opts.label}: ${this.#command} is not installed or not on PATH`, {
        cause: err,
        details: { command: this.#command },
      });
    }
    return new LecternError('FFMPEG_FAILED', `${this.#opts.label}: ${this.#command} could not be started (${describeError(err)})`, {
      cause: err,
      details: { command: this.#command },
    });
  }

  #applyNiceness(child: ChildProcess): void {
    const niceness = this.#opts.niceness;
    if (niceness === undefined || child.pid === undefined) return;
    try {
      setPriority(child.pid, niceness);
    } catch (err) {
      // Raising priority needs privileges; running at the default niceness is still correct.
      this.#log.debug(`${this.#opts.label}: could not set niceness ${niceness}; running at default priority`, {
        error: describeError(err),
      });
    }
  }

  #onStdout(chunk: string): void {
    for (const progress of this.#parser.push(chunk)) {
      this.#lastProgress = progress;
      const advanced =
        (progress.outTimeUs !== undefined && progress.outTimeUs > this.#maxOutTimeUs) ||
        (progress.totalSizeBytes !== undefined && progress.totalSizeBytes > this.#maxTotalSizeBytes);
      if (progress.outTimeUs !== undefined) this.#maxOutTimeUs = Math.max(this.#maxOutTimeUs, progress.outTimeUs);
      if (progress.totalSizeBytes !== undefined) {
        this.#maxTotalSizeBytes = Math.max(this.#maxTotalSizeBytes, progress.totalSizeBytes);
      }
      if (progress.end) {
        // ffmpeg is writing the trailer; no more blocks will come, so silence is not a stall.
        this.#clearStallTimer();
      } else if (advanced) {
        this.#armStallTimer();
      }
      try {
        this.#opts.onProgress?.(progress);
      } catch (err) {
        // A faulty listener must not take the pipe reader (and with it the recording) down.
        this.#log.warn(`${this.#opts.label}: progress listener failed; continuing`, { error: describeError(err) });
      }
    }
  }

  #onExtra(chunk: string): void {
    const lines = (this.#extraPending + chunk).split('\n');
    // Bounded like the progress parser: an endless line is not metadata.
    this.#extraPending = (lines.pop() ?? '').slice(-MAX_EXTRA_LINE_CHARS);
    for (const line of lines) {
      try {
        this.#opts.onExtraLine?.(line);
      } catch (err) {
        this.#log.warn(`${this.#opts.label}: extra pipe listener failed; continuing`, { error: describeError(err) });
      }
    }
  }

  #armStallTimer(): void {
    const timeoutMs = this.#opts.stallTimeoutMs ?? 0;
    if (timeoutMs <= 0 || this.#status !== 'running') return;
    this.#clearStallTimer();
    this.#stallTimer = setTimeout(() => this.#onStall(timeoutMs), timeoutMs);
    this.#stallTimer.unref();
  }

  #onStall(timeoutMs: number): void {
    this.#stallTimer = undefined;
    if (this.#status !== 'running') return;
    this.#stalled = true;
    this.#log.warn(
      `${this.#opts.label}: ffmpeg made no progress for ${timeoutMs / 1000} s; stopping it (q, then SIGINT after ${this.#ladder.quitGraceMs} ms, then SIGKILL)`,
      { pid: this.pid },
    );
    void this.#runLadder();
  }

  #runLadder(): Promise<FfmpegExit> {
    if (this.#stopPromise) return this.#stopPromise;
    this.#status = 'stopping';
    this.#clearStallTimer();
    const child = this.#child;
    this.#escalation = 'quit';
    if (child?.stdin?.writable) child.stdin.write('q\n');

    this.#ladderTimer = setTimeout(() => {
      if (this.#status === 'exited') return;
      if (!this.#exited) {
        this.#escalation = 'interrupt';
        this.#log.debug(`${this.#opts.label}: no exit ${this.#ladder.quitGraceMs} ms after q; sending SIGINT`, { pid: this.pid });
        child?.kill('SIGINT');
      }
      this.#ladderTimer = setTimeout(() => {
        if (this.#status === 'exited') return;
        this.#escalation = 'kill';
        this.#log.warn(`${this.#opts.label}: no exit ${this.#ladder.interruptGraceMs} ms after SIGINT; killing its process group`, {
          pid: this.pid,
        });
        this.#killGroup();
      }, this.#ladder.interruptGraceMs);
      this.#ladderTimer.unref();
    }, this.#ladder.quitGraceMs);
    this.#ladderTimer.unref();

    this.#stopPromise = this.#exitPromise;
    return this.#stopPromise;
  }

  #killGroup(): void {
    const pid = this.#child?.pid;
    if (pid === undefined) return;
    try {
      // Negative pid = the whole group (detached made ffmpeg its leader).
      process.kill(-pid, 'SIGKILL');
    } catch (err) {
      // ESRCH: the group is already gone. Fall back to the process alone, which may still be
      // a zombie awaiting 'close'.
      this.#log.debug(`${this.#opts.label}: group kill failed; killing the process`, { error: describeError(err) });
      this.#child?.kill('SIGKILL');
    }
  }

  #clearStallTimer(): void {
    if (this.#stallTimer) clearTimeout(this.#stallTimer);
    this.#stallTimer = undefined;
  }

  #clearTimers(): void {
    this.#clearStallTimer();
    if (this.#ladderTimer) clearTimeout(this.#ladderTimer);
    this.#ladderTimer = undefined;
  }

  #settle(result: { code: number | null; signal: NodeJS.Signals | null }): void {
    if (this.#settled) return;
    this.#settled = true;
    const exit: FfmpegExit = {
      code: result.code,
      signal: result.signal,
      requested: this.#requested,
      stalled: this.#stalled,
      escalation: this.#escalation,
      stderrTail: this.#ring.lines(),
      durationMs: this.#spawnedAt === 0 ? 0 : Math.round(performance.now() - this.#spawnedAt),
    };
    const fields = { code: exit.code, signal: exit.signal, escalation: exit.escalation, durationMs: exit.durationMs };
    if (!exit.requested && exit.code !== 0 && this.#child !== undefined) {
      this.#log.warn(
        `${this.#opts.label}: ${this.#command} exited unexpectedly (${exit.signal ?? `code ${exit.code}`}); the owner decides whether to restart`,
        { ...fields, stalled: exit.stalled, stderrTail: exit.stderrTail.slice(-WARN_TAIL_LINES) },
      );
    } else {
      this.#log.debug(`${this.#opts.label}: ${this.#command} exited`, { ...fields, requested: exit.requested });
    }
    this.#resolveExit(exit);
  }

  #settleWithError(error: LecternError): void {
    if (this.#settled) return;
    this.#settled = true;
    this.#rejectExit(error);
  }
}
