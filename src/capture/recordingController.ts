import { rm } from 'node:fs/promises';
import path from 'node:path';
import { stopOrphans } from '../ffmpeg/orphans.js';
import type { Logger } from '../log/logger.js';
import { LecternError, describeError } from '../util/errors.js';
import { formatBytes } from '../util/units.js';
import { mediaPositionSeconds } from '../util/mediaTime.js';
import { ulid } from '../util/ulid.js';
import { AlertBook, type Alert, type AlertStore } from './alerts.js';
import { ingestRunDir, salvageUnlistedSegments } from './ingest.js';
import { SourceRecorder, type CaptureSettings, type CaptureSource, type RunDirs, type SegmentSink, type SourceState } from './sourceRecorder.js';

/**
 * The only owner of live recordings. The kiosk, the CLI, the timetable and the demo all call
 * startRecording()/stopRecording() here; operations are serialised, so pressing Record twice
 * starts one recording and a Stop racing a Start sees a consistent state.
 *
 * A recording that was live when the agent died (kill -9, power cut) is continued at start() as
 * the same lecture, with a gap, until its planned end or a stop; one whose planned end has passed
 * is closed and packaged. While recording, free disk space is watched: below the start threshold
 * a disk_low alert is raised, below the (lower) stop threshold the recording is stopped cleanly
 * with reason "disk full" before ffmpeg would die on ENOSPC.
 *
 * The teacher's controls: pause() ends every source's run (reason 'paused': no gap, no alert) and
 * stores the pause, so nothing is recorded until resume() starts new runs; a lecture paused when
 * the agent died stays paused after the restart. extend()/setPlannedEnd() move the planned end
 * (stored, timer re-armed); marker() stores a chapter at the current position in the packaged video.
 */

export interface RecordingMeta {
  title?: string;
  course?: string | null;
  teacher?: string | null;
  /** When the recording stops by itself (a timetable slot, the demo); null = until stopped. */
  plannedEndMs?: number | null;
  /**
   * The PTZ preset the cameras move to for this lecture (a timetable event's); null = each
   * source's configured one. Kept in memory only: a lecture continued after a crash uses the
   * configured preset.
   */
  preset?: string | null;
}

/** The durable recording rows (implemented over SQLite by db/recordings.ts). */
export interface RecordingStore extends SegmentSink, AlertStore {
  runs(recordingId: string): ReadonlyArray<{ source: string; run: number; startedAtMs: number; endedAtMs: number | null }>;
  create(rec: { id: string; title: string; course?: string | null; teacher?: string | null; startedAtMs: number; plannedEndMs?: number | null }): { id: string; startedAtMs: number };
  live(): { id: string; startedAtMs: number; plannedEndMs: number | null } | undefined;
  finish(id: string, state: 'stopped' | 'failed', stoppedAtMs: number, reason: string): boolean;
  segments(recordingId: string): ReadonlyArray<{ source: string; run: number; durationSeconds: number }>;
  alerts(recordingId: string): ReadonlyArray<{ id: number; source: string | null; endedAtMs: number | null }>;
  setPlannedEnd(id: string, plannedEndMs: number | null): boolean;
  startPause(recordingId: string, startedAtMs: number): boolean;
  endPause(recordingId: string, endedAtMs: number): boolean;
  openPause(recordingId: string): { startedAtMs: number } | undefined;
  addMarker(marker: { recordingId: string; atMs: number; mediaSeconds: number; title: string }): unknown;
  markers(recordingId: string): ReadonlyArray<unknown>;
}

/** Free disk space (storage/diskSpace.ts DiskGuard). */
export interface DiskCheck {
  /** Refuses (DISK_LOW) when there is too little space for new work. */
  check(what: string): Promise<void>;
  /** Bytes free for the data directory; without it the disk is not watched while recording. */
  freeBytes?(): Promise<number>;
}

export interface DiskWatch {
  intervalMs: number;
  /** Below this while recording: a disk_low alert (the start threshold). */
  alertBelowBytes: number;
  /** Below this while recording: the recording stops with reason "disk full". */
  stopBelowBytes: number;
}

/**
 * - `idle`: nothing is recorded.
 * - `starting`: a recording row exists and its sources are being started.
 * - `recording`: every source has a running (or restarting) recorder.
 * - `paused`: a recording is live but nothing is recorded: no source runs until resume (or stop, or the planned end).
 * - `stopping`: sources are finishing their last segment.
 */
export type ControllerState = 'idle' | 'starting' | 'recording' | 'paused' | 'stopping';

export interface ControllerStatus {
  state: ControllerState;
  recordingId?: string;
  startedAtMs?: number;
  plannedEndMs?: number | null;
  /** When the current pause began (state `paused`). */
  pausedSinceMs?: number;
  /** Of the whole lecture, across pauses. */
  segments: number;
  restarts: number;
  /** Each source of the live recording (none while paused). */
  sources: SourceState[];
  /** The alerts of the live recording that last now. */
  alerts: Alert[];
}

export interface RecordingControllerOptions {
  sources: readonly CaptureSource[];
  settings: CaptureSettings;
  store: RecordingStore;
  dirs: RunDirs;
  disk: DiskCheck;
  /** Watch free space while recording (needs disk.freeBytes). */
  diskWatch?: DiskWatch;
  logger: Logger;
  now?: () => number;
  newId?: () => string;
  /** Called after a recording reached a final state; the agent hands it to the queue. */
  onFinished: (recordingId: string) => void;
  /** Called when an alert is raised or ends (kiosk, heartbeat). */
  onAlert?: (alert: Alert) => void;
}

const MAX_TIMER_MS = 2_147_483_647;
// A camera asked to turn after a recording gets this long to answer.
const AFTER_RECORDING_TIMEOUT_MS = 30_000;
const MARKER_TITLE_MAX_CHARS = 200;
// Control characters would end up in lecture.json, chapters.vtt, logs and the kiosk.
const CONTROL_CHARS = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;

interface LiveRecording {
  id: string;
  startedAtMs: number;
  plannedEndMs: number | null;
  /** Empty while paused: each resume starts new recorders (new runs). */
  recorders: SourceRecorder[];
  alerts: AlertBook;
  timers: NodeJS.Timeout[];
  /** Stops the recording at plannedEndMs; re-armed when the end moves. */
  endTimer: NodeJS.Timeout | undefined;
  /** When the current pause began; undefined while recording. */
  pausedSinceMs: number | undefined;
  /** This lecture's camera preset (RecordingMeta.preset). */
  preset: string | undefined;
  /** Segments and restarts of the recorders earlier pauses ended, so the status counts the lecture. */
  pastSegments: number;
  pastRestarts: number;
}

export class RecordingController {
  readonly #o: RecordingControllerOptions;
  readonly #log: Logger;
  readonly #now: () => number;
  #state: ControllerState = 'idle';
  #current: LiveRecording | undefined;
  #ops: Promise<unknown> = Promise.resolve();

  constructor(options: RecordingControllerOptions) {
    if (options.sources.length === 0) throw new LecternError('INTERNAL', 'a recording controller needs at least one source');
    this.#o = options;
    this.#now = options.now ?? Date.now;
    this.#log = options.logger.child({ scope: 'recording' });
  }

  /**
   * Takes over a recording that was live when the previous process died: stops the ffmpeg it left
   * behind, registers every segment it closed, and then continues the same lecture with new runs
   * (the time in between is a gap, and a source_lost alert) until its planned end or a stop. When
   * the planned end has passed, the recording is closed so that its segments are packaged.
   */
  async start(): Promise<void> {
    await this.#serial(async () => {
      const orphan = this.#o.store.live();
      if (!orphan) return;
      const lastEnds = await this.#recoverRuns(orphan.id);
      this.#endStaleAlerts(orphan.id, lastEnds);
      const now = this.#now();
      if (orphan.plannedEndMs !== null && orphan.plannedEndMs <= now) {
        this.#log.warn(`recording ${orphan.id} was interrupted by a restart and its planned end has passed; closing it with the segments already recorded`);
        this.#finish(orphan.id, 'interrupted by a restart');
        return;
      }
      const until = orphan.plannedEndMs === null ? 'until it is stopped' : `until its planned end in ${Math.round((orphan.plannedEndMs - now) / 1000)} s`;
      const pause = this.#o.store.openPause(orphan.id);
      if (pause) {
        // The teacher paused it: a restart must not start recording the room by itself.
        this.#log.warn(`recording ${orphan.id} was paused when the agent stopped; it stays paused ${until}, or until resumed`);
        await this.#begin(orphan.id, orphan.startedAtMs, orphan.plannedEndMs, { pausedSinceMs: pause.startedAtMs });
        return;
      }
      this.#log.warn(`recording ${orphan.id} was interrupted by a restart; continuing the same lecture ${until}`);
      await this.#begin(orphan.id, orphan.startedAtMs, orphan.plannedEndMs, {
        lostSince: (source) => ({ atMs: lastEnds.get(source) ?? orphan.startedAtMs, reason: 'the agent restarted (power cut or crash)' }),
      });
    });
  }

  /** Stops a live recording cleanly (daemon shutdown). */
  async stop(): Promise<void> {
    await this.stopRecording('the agent is shutting down');
  }

  status(): ControllerStatus {
    const current = this.#current;
    const recorders = current?.recorders ?? [];
    return {
      state: this.#state,
      recordingId: current?.id,
      startedAtMs: current?.startedAtMs,
      plannedEndMs: current?.plannedEndMs,
      ...(current?.pausedSinceMs !== undefined ? { pausedSinceMs: current.pausedSinceMs } : {}),
      segments: recorders.reduce((n, r) => n + r.segmentCount, current?.pastSegments ?? 0),
      restarts: recorders.reduce((n, r) => n + r.restartCount, current?.pastRestarts ?? 0),
      sources: recorders.map((r) => r.state()),
      alerts: current?.alerts.active() ?? [],
    };
  }

  /** The pid of each source's current ffmpeg (absent while restarting or idle). */
  sourcePids(): Record<string, number | undefined> {
    const out: Record<string, number | undefined> = {};
    for (const r of this.#current?.recorders ?? []) out[r.name] = r.pid;
    return out;
  }

  /** Starts a recording, or returns the live one: `created` tells which. */
  startRecording(meta: RecordingMeta = {}): Promise<{ recordingId: string; created: boolean }> {
    return this.#serial(async () => {
      if (this.#current) return { recordingId: this.#current.id, created: false };
      await this.#o.disk.check('a new recording');
      const id = (this.#o.newId ?? (() => ulid(this.#now())))();
      const startedAtMs = this.#now();
      const plannedEndMs = meta.plannedEndMs ?? null;
      this.#o.store.create({
        id,
        title: meta.title ?? defaultTitle(startedAtMs),
        course: meta.course ?? null,
        teacher: meta.teacher ?? null,
        startedAtMs,
        plannedEndMs,
      });
      await this.#begin(id, startedAtMs, plannedEndMs, meta.preset ? { preset: meta.preset } : {});
      return { recordingId: id, created: true };
    });
  }

  /** Stops the live recording, if any, and returns its id once every last segment is registered. */
  stopRecording(reason = 'stopped by request'): Promise<string | undefined> {
    return this.#serial(async () => {
      const current = this.#current;
      if (!current) return undefined;
      this.#state = 'stopping';
      for (const timer of current.timers) clearTimeout(timer);
      clearTimeout(current.endTimer);
      await Promise.all(current.recorders.map((r) => r.stop()));
      // What happens after the stop is not this lecture's: its alerts end with it.
      current.alerts.resolveAll(this.#now());
      this.#finish(current.id, reason);
      this.#current = undefined;
      this.#state = 'idle';
      // The recording is safe; turning a camera away (privacy preset) must not hold up the stop.
      for (const source of this.#o.sources) void source.afterRecording?.(AbortSignal.timeout(AFTER_RECORDING_TIMEOUT_MS));
      return current.id;
    });
  }

  /**
   * Pauses the live recording: every source's run ends (reason 'paused', so the packager shows a
   * pause, not a gap, and no source_lost alert is raised) and nothing is recorded until resume().
   * The pause is stored before the runs end, so a crash from here on restarts into a paused
   * lecture. Pausing a paused recording changes nothing. The planned end still applies.
   */
  pause(): Promise<{ recordingId: string; pausedSinceMs: number }> {
    return this.#serial(async () => {
      const current = this.#liveOrThrow('pause');
      if (current.pausedSinceMs !== undefined) return { recordingId: current.id, pausedSinceMs: current.pausedSinceMs };
      const atMs = this.#now();
      if (!this.#o.store.startPause(current.id, atMs)) this.#log.warn(`recording ${current.id} already had an open pause in the database; keeping it`);
      current.pausedSinceMs = this.#o.store.openPause(current.id)?.startedAtMs ?? atMs;
      this.#state = 'paused';
      const recorders = current.recorders;
      current.recorders = [];
      await Promise.all(recorders.map((r) => r.stop('paused')));
      for (const r of recorders) {
        current.pastSegments += r.segmentCount;
        current.pastRestarts += r.restartCount;
      }
      // Nothing is watched while paused: what was wrong ends with the media, and is raised again
      // after the resume if it still is.
      current.alerts.resolveAll(this.#now());
      this.#log.info(`recording ${current.id} paused`);
      return { recordingId: current.id, pausedSinceMs: current.pausedSinceMs };
    });
  }

  /** Ends the pause: new runs start for every source. Resuming a recording that is not paused changes nothing. */
  resume(): Promise<{ recordingId: string }> {
    return this.#serial(async () => {
      const current = this.#liveOrThrow('resume');
      if (current.pausedSinceMs === undefined) return { recordingId: current.id };
      await this.#o.disk.check('resuming the recording');
      this.#state = 'starting';
      this.#o.store.endPause(current.id, this.#now());
      current.pausedSinceMs = undefined;
      await this.#startRecorders(current);
      this.#state = 'recording';
      this.#log.info(`recording ${current.id} resumed`);
      return { recordingId: current.id };
    });
  }

  /**
   * Moves the planned end later: by `minutes` from the current planned end (a recording without
   * one runs until stopped, and is refused with RECORDING_NO_PLANNED_END), or to `untilMs`.
   */
  extend(by: { minutes: number } | { untilMs: number }): Promise<{ recordingId: string; plannedEndMs: number }> {
    return this.#serial(async () => {
      const current = this.#liveOrThrow('extend');
      let untilMs: number;
      if ('minutes' in by) {
        if (!Number.isFinite(by.minutes) || by.minutes <= 0) throw new LecternError('INTERNAL', `a recording is extended by a positive number of minutes, not ${by.minutes}`);
        if (current.plannedEndMs === null) {
          throw new LecternError('RECORDING_NO_PLANNED_END', `recording ${current.id} has no planned end: it runs until it is stopped, so there is nothing to extend`);
        }
        untilMs = current.plannedEndMs + Math.round(by.minutes * 60_000);
      } else {
        untilMs = by.untilMs;
      }
      this.#movePlannedEnd(current, untilMs);
      return { recordingId: current.id, plannedEndMs: untilMs };
    });
  }

  /** Sets the planned end of the live recording (the timetable's slot end; null = until stopped). */
  setPlannedEnd(plannedEndMs: number | null): Promise<{ recordingId: string; plannedEndMs: number | null }> {
    return this.#serial(async () => {
      const current = this.#liveOrThrow('set the planned end of');
      this.#movePlannedEnd(current, plannedEndMs);
      return { recordingId: current.id, plannedEndMs };
    });
  }

  /**
   * A chapter marker at this moment: its position is the media recorded before it in the
   * packaged video (pauses and gaps take no time there). The title is trimmed and must be 1 to 200
   * characters on one line; without one it is "Chapter N".
   */
  marker(title?: string | null): Promise<{ recordingId: string; atSeconds: number; title: string }> {
    // The moment of the press, not of the end of whatever operation is queued before it.
    const atMs = this.#now();
    return this.#serial(async () => {
      const current = this.#liveOrThrow('mark');
      const text = markerTitle(title, this.#o.store.markers(current.id).length + 1);
      const atSeconds = this.#mediaPosition(current.id, atMs);
      this.#o.store.addMarker({ recordingId: current.id, atMs, mediaSeconds: atSeconds, title: text });
      this.#log.info(`marker "${text}" at ${atSeconds.toFixed(1)} s of recording ${current.id}`);
      return { recordingId: current.id, atSeconds, title: text };
    });
  }

  #liveOrThrow(what: string): LiveRecording {
    if (!this.#current) throw new LecternError('RECORDING_NOT_ACTIVE', `no recording is live, so there is nothing to ${what}`);
    return this.#current;
  }

  /** Durable first, then the timer: a crash after the answer still stops at the new end. */
  #movePlannedEnd(current: LiveRecording, plannedEndMs: number | null): void {
    const now = this.#now();
    if (plannedEndMs !== null && (!Number.isFinite(plannedEndMs) || plannedEndMs <= now)) {
      throw new LecternError('RECORDING_END_IN_PAST', `the planned end ${Number.isFinite(plannedEndMs) ? new Date(plannedEndMs).toISOString() : String(plannedEndMs)} is not in the future; stop the recording instead`);
    }
    this.#o.store.setPlannedEnd(current.id, plannedEndMs);
    current.plannedEndMs = plannedEndMs;
    this.#armPlannedEnd(current);
    this.#log.info(plannedEndMs === null ? `recording ${current.id} now runs until stopped` : `recording ${current.id} now ends at ${new Date(plannedEndMs).toISOString()}`);
  }

  #armPlannedEnd(current: LiveRecording): void {
    clearTimeout(current.endTimer);
    current.endTimer = undefined;
    const endMs = current.plannedEndMs;
    if (endMs === null) return;
    // setTimeout takes at most 2^31-1 ms (24.8 days): a later end is reached in several steps.
    const timer = setTimeout(() => {
      if (this.#current !== current || current.plannedEndMs !== endMs) return;
      if (this.#now() < endMs) this.#armPlannedEnd(current);
      else void this.#stopCurrent(current.id, 'planned end reached');
    }, Math.min(MAX_TIMER_MS, Math.max(0, endMs - this.#now())));
    timer.unref();
    current.endTimer = timer;
  }

  /** Where `atMs` falls in the packaged video (the packaged source is the presenter). */
  #mediaPosition(recordingId: string, atMs: number): number {
    const source = (this.#o.sources.find((s) => s.role === 'presenter') ?? this.#o.sources[0])?.name;
    const runs = this.#o.store.runs(recordingId).filter((r) => r.source === source);
    const perRun = new Map<number, number>();
    for (const s of this.#o.store.segments(recordingId)) {
      if (s.source === source) perRun.set(s.run, (perRun.get(s.run) ?? 0) + s.durationSeconds);
    }
    return mediaPositionSeconds(atMs, runs, (run) => perRun.get(run) ?? 0);
  }

  /** Takes a recording row that exists live: its recorders start, unless it is paused; `lostSince` for a resumed one. */
  async #begin(
    id: string,
    startedAtMs: number,
    plannedEndMs: number | null,
    opts: { lostSince?: (source: string) => { atMs: number; reason: string }; pausedSinceMs?: number; preset?: string } = {},
  ): Promise<void> {
    this.#state = 'starting';
    const alerts = new AlertBook({ recordingId: id, store: this.#o.store, logger: this.#o.logger, ...(this.#o.onAlert ? { onChange: this.#o.onAlert } : {}) });
    const current: LiveRecording = {
      id,
      startedAtMs,
      plannedEndMs,
      recorders: [],
      alerts,
      timers: [],
      endTimer: undefined,
      pausedSinceMs: opts.pausedSinceMs,
      preset: opts.preset,
      pastSegments: 0,
      pastRestarts: 0,
    };
    this.#current = current;
    if (opts.pausedSinceMs === undefined) await this.#startRecorders(current, opts.lostSince);
    this.#state = opts.pausedSinceMs === undefined ? 'recording' : 'paused';
    this.#armPlannedEnd(current);
    this.#watchDisk(current);
    this.#log.info(`recording ${id} ${opts.pausedSinceMs === undefined ? 'started' : 'taken over, paused'}`, { sources: this.#o.sources.map((s) => s.name).join(',') });
  }

  /** A new recorder (so a new run) per source. */
  async #startRecorders(current: LiveRecording, lostSince?: (source: string) => { atMs: number; reason: string }): Promise<void> {
    current.recorders = this.#o.sources.map(
      (source) =>
        new SourceRecorder({
          recordingId: current.id,
          source,
          settings: this.#o.settings,
          sink: this.#o.store,
          dirs: this.#o.dirs,
          logger: this.#o.logger,
          now: this.#now,
          alerts: current.alerts.forSource(source.name),
          ...(lostSince ? { lostSince: lostSince(source.name) } : {}),
          ...(current.preset !== undefined ? { preset: current.preset } : {}),
        }),
    );
    await Promise.all(current.recorders.map((r) => r.start()));
  }

  /** Stops the recording `id` if it is still the live one (a timer may fire after a manual stop). */
  async #stopCurrent(id: string, reason: string): Promise<void> {
    if (this.#current?.id !== id) return;
    try {
      await this.stopRecording(reason);
    } catch (err) {
      this.#log.error(`recording ${id} did not stop cleanly (${reason}): ${describeError(err)}`);
    }
  }

  #watchDisk(current: LiveRecording): void {
    const watch = this.#o.diskWatch;
    const freeBytes = this.#o.disk.freeBytes?.bind(this.#o.disk);
    if (!watch || !freeBytes) return;
    let checking = false;
    const check = async (): Promise<void> => {
      if (checking || this.#current !== current || this.#state !== 'recording') return;
      checking = true;
      try {
        const free = await freeBytes();
        const now = this.#now();
        if (free < watch.stopBelowBytes) {
          current.alerts.raise('disk_low', null, `only ${formatBytes(free)} free on the recording disk; the recording was stopped to keep what was recorded`, now);
          this.#log.error(`only ${formatBytes(free)} free (stop threshold ${formatBytes(watch.stopBelowBytes)}); stopping recording ${current.id}`);
          await this.#stopCurrent(current.id, 'disk full');
        } else if (free < watch.alertBelowBytes) {
          current.alerts.raise('disk_low', null, `only ${formatBytes(free)} free on the recording disk; recording stops below ${formatBytes(watch.stopBelowBytes)}`, now);
        } else {
          current.alerts.resolve('disk_low', null, now);
        }
      } catch (err) {
        // Not knowing is no reason to stop a lecture; the next check may know.
        this.#log.warn(`cannot measure free disk space: ${describeError(err)}`);
      } finally {
        checking = false;
      }
    };
    const timer = setInterval(() => void check(), watch.intervalMs);
    timer.unref();
    current.timers.push(timer);
  }

  /**
   * The runs a crash left open: stop any ffmpeg still writing into them (it outlives the daemon
   * in its own process group), then register every segment their lists name, including those
   * closed after the daemon died. Returns when each source's media last ended.
   */
  async #recoverRuns(recordingId: string): Promise<Map<string, number>> {
    const { store, dirs, settings } = this.#o;
    await stopOrphans(`${path.sep}recordings${path.sep}${recordingId}${path.sep}`, { logger: this.#log, graceMs: settings.stopInterruptGraceMs });
    for (const run of store.runs(recordingId).filter((r) => r.endedAtMs === null)) {
      const runDir = dirs.sourceRunDir(recordingId, run.source, run.run);
      const where = { recordingId, source: run.source, run: run.run, runDir, dataDir: dirs.dataDir };
      const added = await ingestRunDir(where, store, this.#now());
      if (added > 0) this.#log.info(`recovered ${added} segment(s) of run ${run.run} of ${run.source} closed after the crash`);
      // The segment being written at the crash has no line in the list but holds media up to it.
      for (const s of await salvageUnlistedSegments(where, store, this.#now())) {
        if ('unreadable' in s) this.#log.warn(`segment ${s.fileName} of run ${run.run} of ${run.source}, unfinished at the crash, cannot be read (${s.unreadable})`);
        else this.#log.info(`kept ${s.durationSeconds.toFixed(1)} s of segment ${s.fileName} of run ${run.run} of ${run.source}, unfinished at the crash`);
      }
      const segments = store.segments(recordingId).filter((s) => s.source === run.source && s.run === run.run);
      if (segments.length === 0 && store.discardRun(recordingId, run.source, run.run)) {
        // An attempt that had not got media yet when the agent died: not a run, not a gap.
        await rm(runDir, { recursive: true, force: true });
        continue;
      }
      // The run ended when its media ended (a power cut stops the clock too), not at this restart.
      const recordedMs = segments.reduce((ms, s) => ms + s.durationSeconds * 1000, 0);
      const endedAtMs = Math.min(this.#now(), run.startedAtMs + Math.round(recordedMs));
      store.endRun(recordingId, run.source, run.run, endedAtMs, 'interrupted by a restart');
    }
    const lastEnds = new Map<string, number>();
    for (const run of store.runs(recordingId)) {
      const end = run.endedAtMs ?? run.startedAtMs;
      lastEnds.set(run.source, Math.max(lastEnds.get(run.source) ?? 0, end));
    }
    return lastEnds;
  }

  /** Alerts left open by the dead process end where its media ended: nobody watched after that. */
  #endStaleAlerts(recordingId: string, lastEnds: Map<string, number>): void {
    const latest = Math.max(0, ...lastEnds.values());
    for (const alert of this.#o.store.alerts(recordingId)) {
      if (alert.endedAtMs !== null) continue;
      this.#o.store.endAlert(alert.id, (alert.source === null ? undefined : lastEnds.get(alert.source)) ?? latest);
    }
  }

  #finish(id: string, reason: string): void {
    const hasMedia = this.#o.store.segments(id).length > 0;
    const now = this.#now();
    // A lecture stopped while paused: the pause lasted until the end.
    this.#o.store.endPause(id, now);
    this.#o.store.finish(id, hasMedia ? 'stopped' : 'failed', now, hasMedia ? reason : `${reason}; no complete segment was recorded`);
    if (hasMedia) {
      this.#log.info(`recording ${id} finished (${reason})`);
      this.#o.onFinished(id);
    } else {
      this.#log.error(`recording ${id} has no complete segment; nothing to package`);
    }
  }

  #serial<T>(op: () => Promise<T>): Promise<T> {
    const next = this.#ops.then(op, op);
    this.#ops = next.catch(() => undefined);
    return next;
  }
}

function markerTitle(title: string | null | undefined, n: number): string {
  if (title === undefined || title === null) return `Chapter ${n}`;
  const text = title.trim();
  if (text.length === 0 || text.length > MARKER_TITLE_MAX_CHARS || CONTROL_CHARS.test(text)) {
    throw new LecternError('MARKER_TITLE_INVALID', `a marker title must be 1 to ${MARKER_TITLE_MAX_CHARS} characters on one line (got ${text.length} characters${CONTROL_CHARS.test(text) ? ' with a line break or control character' : ''})`);
  }
  return text;
}

function defaultTitle(startedAtMs: number): string {
  return `Lecture ${new Date(startedAtMs).toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}
