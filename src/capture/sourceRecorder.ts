import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { buildCaptureArgs, SEGMENT_LIST_NAME, type CaptureInput } from '../ffmpeg/captureArgs.js';
import { FfmpegProcess, type FfmpegExit } from '../ffmpeg/process.js';
import type { Logger } from '../log/logger.js';
import { backoffDelayMs, type BackoffPolicy } from '../util/backoff.js';
import { describeError } from '../util/errors.js';
import { sleep } from '../util/sleep.js';
import { ingestSegment } from './ingest.js';
import { SegmentListWatcher, type SegmentListEntry } from './segmentList.js';

/**
 * Records one source of one recording. Each ffmpeg process is a "run" with its own directory;
 * any exit we did not ask for (code 0 included: ffmpeg exits 0 when a camera closes the session)
 * or a stall means the source was lost, and a new run starts after a capped backoff. The time
 * between runs is the gap the manifest reports.
 */

/** A capture source as the recorder needs it: its name, its input and the secrets in it. */
export interface CaptureSource {
  name: string;
  role: 'presenter' | 'presentation';
  input: CaptureInput;
  /** Values to keep out of logs (e.g. the camera password inside `input.url`). */
  secrets: string[];
  /**
   * When present (an ONVIF camera), called before each run; its result replaces `input` and
   * `secrets` for that run. A rejection fails the run, which is retried after the backoff.
   */
  resolve?: (signal: AbortSignal) => Promise<{ input: CaptureInput; secrets: string[] }>;
}

export interface CaptureSettings {
  segmentSeconds: number;
  format: 'mpegts' | 'fmp4';
  stallTimeoutMs: number;
  stopQuitGraceMs: number;
  stopInterruptGraceMs: number;
  restartBackoff: BackoffPolicy;
  /** A run that lasted this long resets the backoff: the source was healthy again. */
  stableRunMs: number;
}

/** The durable side of capture (implemented over SQLite by db/recordings.ts). */
export interface SegmentSink {
  nextRun(recordingId: string, source: string): number;
  startRun(recordingId: string, source: string, run: number, startedAtMs: number): void;
  endRun(recordingId: string, source: string, run: number, endedAtMs: number, reason: string): void;
  addSegment(
    seg: { recordingId: string; source: string; run: number; seq: number; path: string; bytes: number; sha256: string; startSeconds: number; durationSeconds: number },
    addedAtMs: number,
  ): boolean;
}

/** Where run directories go (storage/localLayout.ts). */
export interface RunDirs {
  readonly dataDir: string;
  sourceRunDir(recordingId: string, sourceName: string, run: number): string;
}

/**
 * - `starting`: the first run is being set up.
 * - `recording`: ffmpeg runs and has not been asked to stop.
 * - `restarting`: the source was lost; waiting out the backoff before the next run.
 * - `stopping`: the stop ladder is running.
 * - `stopped`: no process; every complete segment is registered.
 */
export type SourceRecorderStatus = 'starting' | 'recording' | 'restarting' | 'stopping' | 'stopped';

export interface SourceRecorderOptions {
  recordingId: string;
  source: CaptureSource;
  settings: CaptureSettings;
  sink: SegmentSink;
  dirs: RunDirs;
  logger: Logger;
  now?: () => number;
  /** Told about every lost source (alerts are raised by the caller). */
  onSourceLost?: (info: { source: string; run: number; reason: string; restartInMs: number }) => void;
  onSegment?: (info: { source: string; run: number; seq: number; durationSeconds: number }) => void;
}

export class SourceRecorder {
  readonly #o: SourceRecorderOptions;
  readonly #log: Logger;
  readonly #now: () => number;
  readonly #abort = new AbortController();
  #status: SourceRecorderStatus = 'starting';
  #process: FfmpegProcess | undefined;
  #loop: Promise<void> | undefined;
  #segments = 0;
  #restarts = 0;

  constructor(options: SourceRecorderOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
    this.#log = options.logger.child({ scope: 'capture', source: options.source.name, recordingId: options.recordingId });
  }

  get status(): SourceRecorderStatus {
    return this.#status;
  }

  get segmentCount(): number {
    return this.#segments;
  }

  get restartCount(): number {
    return this.#restarts;
  }

  /** The pid of the current ffmpeg, if one runs (for status and for crash tests). */
  get pid(): number | undefined {
    return this.#process?.status === 'running' ? this.#process.pid : undefined;
  }

  /** Starts the first run; resolves once ffmpeg is spawned (or the first attempt failed and a retry is scheduled). */
  async start(): Promise<void> {
    if (this.#loop) return;
    let firstSpawn!: () => void;
    const spawned = new Promise<void>((resolve) => (firstSpawn = resolve));
    this.#loop = this.#runLoop(firstSpawn);
    await spawned;
  }

  /** Stops the current run with the stop ladder and registers its last segment. */
  async stop(): Promise<void> {
    if (!this.#loop) {
      this.#status = 'stopped';
      return;
    }
    this.#setStatus('stopping');
    this.#abort.abort(new Error('recording stopped'));
    await this.#process?.stop();
    await this.#loop;
  }

  #setStatus(status: SourceRecorderStatus): void {
    if (this.#status !== status) this.#log.debug(`source ${status}`);
    this.#status = status;
  }

  async #runLoop(firstSpawn: () => void): Promise<void> {
    let failuresInARow = 0;
    while (!this.#abort.signal.aborted) {
      const startedAtMs = this.#now();
      let exit: FfmpegExit | undefined;
      let run = 0;
      let reason: string;
      try {
        run = this.#o.sink.nextRun(this.#o.recordingId, this.#o.source.name);
        exit = await this.#runOnce(run, firstSpawn);
        reason = exitReason(exit);
      } catch (err) {
        reason = describeError(err);
        this.#log.error(`run ${run} failed to start: ${reason}`);
      }
      firstSpawn();
      if (run > 0) this.#o.sink.endRun(this.#o.recordingId, this.#o.source.name, run, this.#now(), reason);
      if (this.#abort.signal.aborted) break;

      const lastedMs = this.#now() - startedAtMs;
      failuresInARow = lastedMs >= this.#o.settings.stableRunMs ? 1 : failuresInARow + 1;
      const delayMs = backoffDelayMs(failuresInARow, this.#o.settings.restartBackoff);
      this.#restarts++;
      this.#log.warn(`source lost (${reason}); restarting in ${(delayMs / 1000).toFixed(1)} s (failure ${failuresInARow} in a row)`, {
        stderr: exit?.stderrTail.slice(-5).join(' | '),
      });
      this.#o.onSourceLost?.({ source: this.#o.source.name, run, reason, restartInMs: delayMs });
      this.#setStatus('restarting');
      try {
        await sleep(delayMs, this.#abort.signal);
      } catch {
        break; // stop() during the backoff: nothing runs, nothing to finish
      }
    }
    this.#process = undefined;
    this.#setStatus('stopped');
  }

  async #runOnce(run: number, firstSpawn: () => void): Promise<FfmpegExit> {
    const { recordingId, source, settings, sink, dirs } = this.#o;
    // Before anything of the run exists: a camera that cannot be asked fails the run cleanly.
    const { input, secrets } = source.resolve ? await source.resolve(this.#abort.signal) : source;
    const runDir = dirs.sourceRunDir(recordingId, source.name, run);
    await mkdir(runDir, { recursive: true, mode: 0o750 });
    sink.startRun(recordingId, source.name, run, this.#now());

    const watcher = new SegmentListWatcher({
      listPath: path.join(runDir, SEGMENT_LIST_NAME),
      logger: this.#log,
      onSegment: (entry) => this.#register(run, runDir, entry),
    });
    await watcher.start();
    const proc = new FfmpegProcess({
      args: buildCaptureArgs(input, { runDir, segmentSeconds: settings.segmentSeconds, format: settings.format }),
      logger: this.#log,
      label: `capture ${source.name}`,
      secrets,
      // Progress, not exit, is what tells a frozen camera from a live one: with the session
      // open and no media, ffmpeg's own -timeout never fires.
      stallTimeoutMs: settings.stallTimeoutMs,
      stopLadder: { quitGraceMs: settings.stopQuitGraceMs, interruptGraceMs: settings.stopInterruptGraceMs },
    });
    this.#process = proc;
    try {
      await proc.start();
      if (!this.#abort.signal.aborted) this.#setStatus('recording');
      this.#log.info(`run ${run} started`, { runDir });
      firstSpawn();
      // stop() may have been called between spawn and now; make sure the ladder runs.
      if (this.#abort.signal.aborted) void proc.stop();
      return await proc.wait();
    } finally {
      // After exit the list holds the last segment's line: the final scan registers it.
      await watcher.stop();
    }
  }

  async #register(run: number, runDir: string, entry: SegmentListEntry): Promise<void> {
    const where = { recordingId: this.#o.recordingId, source: this.#o.source.name, run, runDir, dataDir: this.#o.dirs.dataDir };
    const { added, bytes, durationSeconds } = await ingestSegment(where, entry, this.#o.sink, this.#now());
    if (!added) return;
    this.#segments++;
    this.#o.onSegment?.({ source: this.#o.source.name, run, seq: entry.index, durationSeconds });
    this.#log.debug(`segment ${entry.fileName} complete`, { bytes, durationSeconds });
  }
}

function exitReason(exit: FfmpegExit): string {
  if (exit.stalled) return 'no media progress (stall)';
  if (exit.requested) return 'stopped';
  if (exit.signal) return `ffmpeg killed by ${exit.signal}`;
  return `ffmpeg exited with code ${exit.code ?? 'unknown'}`;
}
