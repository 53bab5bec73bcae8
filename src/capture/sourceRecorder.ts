import { access, mkdir, readdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { buildCaptureArgs, isMonitored, parseMonitorLine, SEGMENT_LIST_NAME, type CaptureInput } from '../ffmpeg/captureArgs.js';
import { EXTRA_PIPE_FD, FfmpegProcess, type FfmpegExit } from '../ffmpeg/process.js';
import type { FfmpegProgress } from '../ffmpeg/progress.js';
import type { Logger } from '../log/logger.js';
import { backoffDelayMs, type BackoffPolicy } from '../util/backoff.js';
import { describeError } from '../util/errors.js';
import { sleep } from '../util/sleep.js';
import { NO_ALERTS, type SourceAlerts } from './alerts.js';
import { ConfidenceMonitor, type ConfidenceSettings } from './confidence.js';
import { ingestSegment, salvageUnlistedSegments } from './ingest.js';
import { SegmentListWatcher, type SegmentListEntry } from './segmentList.js';

/**
 * Records one source of one recording. Each ffmpeg process is a "run" with its own directory;
 * any exit we did not ask for (code 0 included: ffmpeg exits 0 when a camera closes the session)
 * or a stall means the source was lost, and a new run starts after a capped backoff. The time
 * between runs is the gap the manifest reports: a run starts when its media starts (from
 * ffmpeg's first progress report) and ends when ffmpeg exits, and an attempt that never got
 * media (the camera still rebooting) leaves no run behind, so one outage is one gap.
 *
 * A lost source raises a `source_lost` alert that ends when media flows again; the same ffmpeg
 * also measures its input (confidence.ts) for a silent microphone and a frozen or black picture.
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
  resolve?: (signal: AbortSignal, opts?: { preset?: string }) => Promise<{ input: CaptureInput; secrets: string[] }>;
  /**
   * When present, called once a recording of this source has stopped (an ONVIF camera turns to
   * its privacy preset). Failures are the source's to log; they never fail the stop.
   */
  afterRecording?: (signal: AbortSignal) => Promise<void>;
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
  /** Confidence monitoring; absent = the capture ffmpeg only records. */
  monitor?: ConfidenceSettings;
}

/** The durable side of capture (implemented over SQLite by db/recordings.ts). */
export interface SegmentSink {
  nextRun(recordingId: string, source: string): number;
  startRun(recordingId: string, source: string, run: number, startedAtMs: number): void;
  endRun(recordingId: string, source: string, run: number, endedAtMs: number, reason: string): void;
  /** Moves a run's start to when its media began. */
  setRunStart(recordingId: string, source: string, run: number, startedAtMs: number): void;
  /** Forgets a run that never got media; false if it has segments after all. */
  discardRun(recordingId: string, source: string, run: number): boolean;
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
  /** This source's alerts (source_lost, and the confidence alerts). */
  alerts?: SourceAlerts;
  /**
   * The source was already lost before this recorder began (the agent restarted in the middle of
   * the lecture): source_lost is raised from that time until media flows.
   */
  lostSince?: { atMs: number; reason: string };
  /** Told about every lost source. */
  onSourceLost?: (info: { source: string; run: number; reason: string; restartInMs: number }) => void;
  /** The camera preset of this lecture (from the timetable); default the source's own. */
  preset?: string;
  onSegment?: (info: { source: string; run: number; seq: number; durationSeconds: number }) => void;
}

/** What a source is doing, for status displays and tests. */
export interface SourceState {
  name: string;
  status: SourceRecorderStatus;
  /** The current (or last) run number; 0 before the first. */
  run: number;
  pid: number | undefined;
  /** When the current run's media began (its first frame, from ffmpeg's progress); undefined until then. */
  mediaStartedAtMs: number | undefined;
  /** When ffmpeg last reported that the media advanced. */
  lastAdvanceAtMs: number | undefined;
  /** The last measured audio level of the current run, in dBFS. */
  audioLevelDb: number | undefined;
  segments: number;
  restarts: number;
}

/** The per-run state the loop and the callbacks share. */
interface RunState {
  run: number;
  runDir: string;
  /** Set once the estimate has settled (see #onProgress). */
  mediaStartedAtMs: number | undefined;
  /** The best estimate so far of when the first frame was captured. */
  firstFrameEstimateMs: number | undefined;
  lastAdvanceAtMs: number | undefined;
  maxOutTimeUs: number;
  monitor: ConfidenceMonitor | undefined;
}

// ffmpeg first buffers about a second of input while it probes the streams, then writes that
// backlog in a burst: until the burst is over, "now - out_time" overestimates when the first
// frame was captured (by ~1 s, measured with a G.711 camera). After this much media the estimate
// is steady; the smallest value seen until then is taken.
const MEDIA_SETTLED_US = 3_000_000;

// The last stderr line says why ffmpeg gave up ("Connection refused", "401 Unauthorized"); long
// lines are cut so alert messages stay readable on a kiosk.
const REASON_DETAIL_CHARS = 160;

export class SourceRecorder {
  readonly #o: SourceRecorderOptions;
  readonly #log: Logger;
  readonly #now: () => number;
  readonly #alerts: SourceAlerts;
  readonly #abort = new AbortController();
  #status: SourceRecorderStatus = 'starting';
  #process: FfmpegProcess | undefined;
  #loop: Promise<void> | undefined;
  #segments = 0;
  #restarts = 0;
  #runState: RunState | undefined;
  /** Why the last run ends when stop() asked for it ('stopped', or 'paused' for a pause). */
  #stopReason = 'stopped';

  constructor(options: SourceRecorderOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
    this.#alerts = options.alerts ?? NO_ALERTS;
    this.#log = options.logger.child({ scope: 'capture', source: options.source.name, recordingId: options.recordingId });
  }

  get name(): string {
    return this.#o.source.name;
  }

  state(): SourceState {
    const run = this.#runState;
    return {
      name: this.#o.source.name,
      status: this.#status,
      run: run?.run ?? 0,
      pid: this.pid,
      mediaStartedAtMs: run?.mediaStartedAtMs,
      lastAdvanceAtMs: run?.lastAdvanceAtMs,
      audioLevelDb: run?.monitor?.lastLevelDb,
      segments: this.#segments,
      restarts: this.#restarts,
    };
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

  /**
   * Stops the current run with the stop ladder and registers its last segment. `reason` is the
   * run's end reason ('paused' tells the packager the time after it is a pause, not a gap).
   */
  async stop(reason = 'stopped'): Promise<void> {
    this.#stopReason = reason;
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
    const { source, settings } = this.#o;
    if (this.#o.lostSince) {
      this.#alerts.raise('source_lost', `${source.name} was not recorded: ${this.#o.lostSince.reason}`, this.#o.lostSince.atMs);
    }
    let failuresInARow = 0;
    while (!this.#abort.signal.aborted) {
      const startedAtMs = this.#now();
      let exit: FfmpegExit | undefined;
      let run = 0;
      let reason: string;
      try {
        run = await this.#allocateRun();
        exit = await this.#runOnce(run, firstSpawn);
        reason = exit.requested && !exit.stalled ? this.#stopReason : exitReason(exit);
      } catch (err) {
        reason = describeError(err);
        this.#log.error(`run ${run} failed to start: ${reason}`);
      }
      firstSpawn();
      const endedAtMs = this.#now();
      const state = this.#runState?.run === run ? this.#runState : undefined;
      // A run that ended within its first seconds of media still had media, and starts with it.
      // It ended the outage before it, but not an alert raised during the run (a stall).
      if (state && state.mediaStartedAtMs === undefined && state.firstFrameEstimateMs !== undefined) {
        const firstFrameMs = state.firstFrameEstimateMs;
        state.mediaStartedAtMs = firstFrameMs;
        this.#o.sink.setRunStart(this.#o.recordingId, this.#o.source.name, state.run, firstFrameMs);
        const lostSince = this.#alerts.activeSince('source_lost');
        if (lostSince !== undefined && lostSince <= firstFrameMs) this.#alerts.resolve('source_lost', firstFrameMs);
      }
      const hadMedia = state?.mediaStartedAtMs !== undefined;
      state?.monitor?.stop(endedAtMs);
      if (run > 0) await this.#closeRun(run, hadMedia, endedAtMs, reason);
      if (this.#abort.signal.aborted) break;

      const lastedMs = endedAtMs - startedAtMs;
      failuresInARow = hadMedia && lastedMs >= settings.stableRunMs ? 1 : failuresInARow + 1;
      const delayMs = backoffDelayMs(failuresInARow, settings.restartBackoff);
      this.#restarts++;
      this.#log.warn(`source lost (${reason}); restarting in ${(delayMs / 1000).toFixed(1)} s (failure ${failuresInARow} in a row)`, {
        stderr: exit?.stderrTail.slice(-5).join(' | '),
      });
      // Raised once per outage: later failed attempts find it active and change nothing.
      this.#alerts.raise('source_lost', `${source.name} lost: ${reason}; reconnecting`, endedAtMs);
      this.#o.onSourceLost?.({ source: source.name, run, reason, restartInMs: delayMs });
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

  /** The next run number whose directory does not exist yet (a discarded attempt may have left one). */
  async #allocateRun(): Promise<number> {
    const { recordingId, source, sink, dirs } = this.#o;
    let run = sink.nextRun(recordingId, source.name);
    for (;;) {
      try {
        await access(dirs.sourceRunDir(recordingId, source.name, run));
        run++;
      } catch {
        return run;
      }
    }
  }

  /**
   * Ends a run in the database. An attempt that never got media and left no segment file is
   * forgotten (row and directory), so that a camera down for a minute is one gap, not thirty.
   */
  async #closeRun(run: number, hadMedia: boolean, endedAtMs: number, reason: string): Promise<void> {
    const { recordingId, source, sink, dirs } = this.#o;
    const runDir = dirs.sourceRunDir(recordingId, source.name, run);
    try {
      for (const s of await salvageUnlistedSegments({ recordingId, source: source.name, run, runDir, dataDir: dirs.dataDir }, sink, this.#now())) {
        if ('unreadable' in s) {
          this.#log.warn(`segment ${s.fileName} of run ${run} was left unfinished and cannot be read (${s.unreadable}); it is not part of the lecture`);
        } else {
          this.#segments++;
          this.#log.info(`segment ${s.fileName} of run ${run} was left unfinished (${reason}); kept its ${s.durationSeconds.toFixed(1)} s of media`);
        }
      }
    } catch (err) {
      this.#log.error(`cannot check run ${run} for an unfinished segment: ${describeError(err)}`);
    }
    if (!hadMedia && (await holdsNoMedia(runDir)) && sink.discardRun(recordingId, source.name, run)) {
      await rm(runDir, { recursive: true, force: true });
      this.#log.debug(`attempt for run ${run} got no media; forgotten`, { reason });
      return;
    }
    sink.endRun(recordingId, source.name, run, endedAtMs, reason);
  }

  async #runOnce(run: number, firstSpawn: () => void): Promise<FfmpegExit> {
    const { recordingId, source, settings, sink, dirs } = this.#o;
    // Before anything of the run exists: a camera that cannot be asked fails the run cleanly.
    const { input, secrets } = source.resolve ? await source.resolve(this.#abort.signal, this.#o.preset !== undefined ? { preset: this.#o.preset } : {}) : source;
    const runDir = dirs.sourceRunDir(recordingId, source.name, run);
    await mkdir(runDir, { recursive: true, mode: 0o750 });
    sink.startRun(recordingId, source.name, run, this.#now());

    const monitorSettings = isMonitored(input) ? settings.monitor : undefined;
    const monitor = monitorSettings ? new ConfidenceMonitor({ settings: monitorSettings, alerts: this.#alerts, source: source.name, now: this.#now }) : undefined;
    const state: RunState = { run, runDir, mediaStartedAtMs: undefined, firstFrameEstimateMs: undefined, lastAdvanceAtMs: undefined, maxOutTimeUs: 0, monitor };
    this.#runState = state;

    const watcher = new SegmentListWatcher({
      listPath: path.join(runDir, SEGMENT_LIST_NAME),
      logger: this.#log,
      onSegment: (entry) => this.#register(run, runDir, entry),
    });
    await watcher.start();
    const monitorOutput = monitorSettings
      ? {
          fd: EXTRA_PIPE_FD,
          audioLevels: monitorSettings.silenceSeconds > 0,
          freezeSeconds: monitorSettings.freezeSeconds,
          freezeNoiseDb: monitorSettings.freezeNoiseDb,
          black: monitorSettings.blackSeconds > 0,
        }
      : undefined;
    const proc = new FfmpegProcess({
      args: buildCaptureArgs(input, { runDir, segmentSeconds: settings.segmentSeconds, format: settings.format }, monitorOutput),
      logger: this.#log,
      label: `capture ${source.name}`,
      secrets,
      // Progress, not exit, is what tells a frozen camera from a live one: with the session
      // open and no media, ffmpeg's own -timeout never fires.
      stallTimeoutMs: settings.stallTimeoutMs,
      stopLadder: { quitGraceMs: settings.stopQuitGraceMs, interruptGraceMs: settings.stopInterruptGraceMs },
      onProgress: (progress) => this.#onProgress(state, progress),
      ...(monitor
        ? {
            onExtraLine: (line: string) => {
              const event = parseMonitorLine(line);
              if (event) monitor.handle(event);
            },
          }
        : {}),
    });
    this.#process = proc;
    // Rules that apply when nothing arrives: silence is an absence of levels, and a frozen camera
    // is an absence of progress. The stall is reported here at once; FfmpegProcess's watchdog
    // stops the process at the same moment, but its stop ladder can take a while (q and SIGINT
    // wait for a read that a frozen camera never ends).
    const spawnedAtMs = this.#now();
    const tick = setInterval(() => {
      monitor?.evaluate();
      this.#checkStall(state, spawnedAtMs);
    }, 1_000);
    tick.unref();
    try {
      await proc.start();
      if (!this.#abort.signal.aborted) this.#setStatus('recording');
      this.#log.info(`run ${run} started`, { runDir });
      firstSpawn();
      // stop() may have been called between spawn and now; make sure the ladder runs.
      if (this.#abort.signal.aborted) void proc.stop();
      return await proc.wait();
    } finally {
      clearInterval(tick);
      // After exit the list holds the last segment's line: the final scan registers it.
      await watcher.stop();
    }
  }

  #onProgress(state: RunState, progress: FfmpegProgress): void {
    const outTimeUs = progress.outTimeUs ?? 0;
    if (outTimeUs <= state.maxOutTimeUs) return;
    state.maxOutTimeUs = outTimeUs;
    const now = this.#now();
    state.lastAdvanceAtMs = now;
    if (state.mediaStartedAtMs === undefined) {
      // out_time is the media written so far: the first frame was captured that long ago.
      state.firstFrameEstimateMs = Math.min(state.firstFrameEstimateMs ?? Infinity, Math.round(now - outTimeUs / 1000));
      if (outTimeUs >= MEDIA_SETTLED_US) this.#mediaStarted(state, state.firstFrameEstimateMs);
    }
    state.monitor?.advanced();
  }

  #checkStall(state: RunState, spawnedAtMs: number): void {
    const stallMs = this.#o.settings.stallTimeoutMs;
    const since = state.lastAdvanceAtMs ?? spawnedAtMs;
    if (stallMs <= 0 || this.#abort.signal.aborted || this.#now() - since < stallMs) return;
    const what = state.lastAdvanceAtMs === undefined ? 'no media arrived' : 'the media stopped';
    this.#alerts.raise('source_lost', `${this.#o.source.name} lost: ${what} for ${Math.round(stallMs / 1000)} s (camera frozen?); restarting`, since);
  }

  /** The run has media: it starts (for the gap) when its first frame was captured. */
  #mediaStarted(state: RunState, atMs: number): void {
    state.mediaStartedAtMs = atMs;
    this.#o.sink.setRunStart(this.#o.recordingId, this.#o.source.name, state.run, atMs);
    this.#alerts.resolve('source_lost', atMs);
    state.monitor?.mediaStarted(atMs);
    this.#log.info(`run ${state.run} receives media`);
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
  // Exit 0 without a request: the camera closed the session (a reboot, a restart of its server).
  if (exit.code === 0) return 'the stream ended (ffmpeg exited with code 0)';
  const detail = lastLine(exit.stderrTail);
  return `ffmpeg exited with code ${exit.code ?? 'unknown'}${detail ? `: ${detail}` : ''}`;
}

function lastLine(lines: readonly string[]): string | undefined {
  for (let i = lines.length - 1; i >= 0; i--) {
    const line = lines[i]?.trim();
    if (line) return line.length > REASON_DETAIL_CHARS ? `${line.slice(0, REASON_DETAIL_CHARS)}…` : line;
  }
  return undefined;
}

/** True when a run directory holds no segment file with data (at most an empty segment list). */
async function holdsNoMedia(runDir: string): Promise<boolean> {
  let names: string[];
  try {
    names = await readdir(runDir);
  } catch {
    return true;
  }
  for (const name of names) {
    if (name !== SEGMENT_LIST_NAME) return false;
    if ((await stat(path.join(runDir, name))).size > 0) return false;
  }
  return true;
}
