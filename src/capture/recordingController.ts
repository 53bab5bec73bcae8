import path from 'node:path';
import { stopOrphans } from '../ffmpeg/orphans.js';
import type { Logger } from '../log/logger.js';
import { LecternError } from '../util/errors.js';
import { ulid } from '../util/ulid.js';
import { ingestRunDir } from './ingest.js';
import { SourceRecorder, type CaptureSettings, type CaptureSource, type RunDirs, type SegmentSink } from './sourceRecorder.js';

/**
 * The only owner of live recordings. The kiosk, the CLI, the timetable and the demo all call
 * startRecording()/stopRecording() here; operations are serialised, so pressing Record twice
 * starts one recording and a Stop racing a Start sees a consistent state.
 */

export interface RecordingMeta {
  title?: string;
  course?: string | null;
  teacher?: string | null;
  plannedEndMs?: number | null;
}

/** The durable recording rows (implemented over SQLite by db/recordings.ts). */
export interface RecordingStore extends SegmentSink {
  runs(recordingId: string): ReadonlyArray<{ source: string; run: number; startedAtMs: number; endedAtMs: number | null }>;
  create(rec: { id: string; title: string; course?: string | null; teacher?: string | null; startedAtMs: number; plannedEndMs?: number | null }): { id: string; startedAtMs: number };
  live(): { id: string; startedAtMs: number } | undefined;
  finish(id: string, state: 'stopped' | 'failed', stoppedAtMs: number, reason: string): boolean;
  segments(recordingId: string): ReadonlyArray<{ source: string; run: number; durationSeconds: number }>;
}

/** Refuses to start when the disk is nearly full (storage/diskSpace.ts). */
export interface DiskCheck {
  check(what: string): Promise<void>;
}

/**
 * - `idle`: nothing is recorded.
 * - `starting`: a recording row exists and its sources are being started.
 * - `recording`: every source has a running (or restarting) recorder.
 * - `stopping`: sources are finishing their last segment.
 */
export type ControllerState = 'idle' | 'starting' | 'recording' | 'stopping';

export interface ControllerStatus {
  state: ControllerState;
  recordingId?: string;
  startedAtMs?: number;
  segments: number;
  restarts: number;
}

export interface RecordingControllerOptions {
  sources: readonly CaptureSource[];
  settings: CaptureSettings;
  store: RecordingStore;
  dirs: RunDirs;
  disk: DiskCheck;
  logger: Logger;
  now?: () => number;
  newId?: () => string;
  /** Called after a recording reached a final state; the agent hands it to the queue. */
  onFinished: (recordingId: string) => void;
}

export class RecordingController {
  readonly #o: RecordingControllerOptions;
  readonly #log: Logger;
  readonly #now: () => number;
  #state: ControllerState = 'idle';
  #current: { id: string; startedAtMs: number; recorders: SourceRecorder[] } | undefined;
  #ops: Promise<unknown> = Promise.resolve();

  constructor(options: RecordingControllerOptions) {
    if (options.sources.length === 0) throw new LecternError('INTERNAL', 'a recording controller needs at least one source');
    this.#o = options;
    this.#now = options.now ?? Date.now;
    this.#log = options.logger.child({ scope: 'recording' });
  }

  /**
   * Closes a recording that was live when the previous process died, so its segments are
   * packaged. (Continuing the same lecture after a restart is the capture issue's next step.)
   */
  async start(): Promise<void> {
    await this.#serial(async () => {
      const orphan = this.#o.store.live();
      if (!orphan) return;
      this.#log.warn(`recording ${orphan.id} was interrupted by a restart; closing it with the segments already recorded`);
      await this.#recoverRuns(orphan.id);
      this.#finish(orphan.id, 'interrupted by a restart');
    });
  }

  /** Stops a live recording cleanly (daemon shutdown). */
  async stop(): Promise<void> {
    await this.stopRecording('the agent is shutting down');
  }

  status(): ControllerStatus {
    const recorders = this.#current?.recorders ?? [];
    return {
      state: this.#state,
      recordingId: this.#current?.id,
      startedAtMs: this.#current?.startedAtMs,
      segments: recorders.reduce((n, r) => n + r.segmentCount, 0),
      restarts: recorders.reduce((n, r) => n + r.restartCount, 0),
    };
  }

  /** The pid of each source's current ffmpeg (absent while restarting or idle). */
  sourcePids(): Record<string, number | undefined> {
    const out: Record<string, number | undefined> = {};
    for (const [i, r] of (this.#current?.recorders ?? []).entries()) out[this.#o.sources[i]?.name ?? String(i)] = r.pid;
    return out;
  }

  /** Starts a recording, or returns the live one: `created` tells which. */
  startRecording(meta: RecordingMeta = {}): Promise<{ recordingId: string; created: boolean }> {
    return this.#serial(async () => {
      if (this.#current) return { recordingId: this.#current.id, created: false };
      await this.#o.disk.check('a new recording');
      const id = (this.#o.newId ?? (() => ulid(this.#now())))();
      const startedAtMs = this.#now();
      this.#o.store.create({
        id,
        title: meta.title ?? defaultTitle(startedAtMs),
        course: meta.course ?? null,
        teacher: meta.teacher ?? null,
        startedAtMs,
        plannedEndMs: meta.plannedEndMs ?? null,
      });
      this.#state = 'starting';
      const recorders = this.#o.sources.map(
        (source) =>
          new SourceRecorder({
            recordingId: id,
            source,
            settings: this.#o.settings,
            sink: this.#o.store,
            dirs: this.#o.dirs,
            logger: this.#o.logger,
            now: this.#now,
          }),
      );
      this.#current = { id, startedAtMs, recorders };
      await Promise.all(recorders.map((r) => r.start()));
      this.#state = 'recording';
      this.#log.info(`recording ${id} started`, { sources: this.#o.sources.map((s) => s.name).join(',') });
      return { recordingId: id, created: true };
    });
  }

  /** Stops the live recording, if any, and returns its id once every last segment is registered. */
  stopRecording(reason = 'stopped by request'): Promise<string | undefined> {
    return this.#serial(async () => {
      const current = this.#current;
      if (!current) return undefined;
      this.#state = 'stopping';
      await Promise.all(current.recorders.map((r) => r.stop()));
      this.#finish(current.id, reason);
      this.#current = undefined;
      this.#state = 'idle';
      return current.id;
    });
  }

  /**
   * The runs a crash left open: stop any ffmpeg still writing into them (it outlives the daemon
   * in its own process group), then register every segment their lists name, including those
   * closed after the daemon died.
   */
  async #recoverRuns(recordingId: string): Promise<void> {
    const { store, dirs, settings } = this.#o;
    await stopOrphans(`${path.sep}recordings${path.sep}${recordingId}${path.sep}`, { logger: this.#log, graceMs: settings.stopInterruptGraceMs });
    for (const run of store.runs(recordingId).filter((r) => r.endedAtMs === null)) {
      const runDir = dirs.sourceRunDir(recordingId, run.source, run.run);
      const added = await ingestRunDir({ recordingId, source: run.source, run: run.run, runDir, dataDir: dirs.dataDir }, store, this.#now());
      if (added > 0) this.#log.info(`recovered ${added} segment(s) of run ${run.run} of ${run.source} closed after the crash`);
      // The run ended when its media ended (a power cut stops the clock too), not at this restart.
      const recordedMs = store
        .segments(recordingId)
        .filter((s) => s.source === run.source && s.run === run.run)
        .reduce((ms, s) => ms + s.durationSeconds * 1000, 0);
      const endedAtMs = Math.min(this.#now(), run.startedAtMs + Math.round(recordedMs));
      store.endRun(recordingId, run.source, run.run, endedAtMs, 'interrupted by a restart');
    }
  }

  #finish(id: string, reason: string): void {
    const hasMedia = this.#o.store.segments(id).length > 0;
    this.#o.store.finish(id, hasMedia ? 'stopped' : 'failed', this.#now(), hasMedia ? reason : `${reason}; no complete segment was recorded`);
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

function defaultTitle(startedAtMs: number): string {
  return `Lecture ${new Date(startedAtMs).toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}
