import { watch, type FSWatcher } from 'node:fs';
import path from 'node:path';
import type { Logger } from '../log/logger.js';
import { describeError } from '../util/errors.js';
import type { TimetableSource } from './fileSource.js';
import type { LectureMeta, LectureSlot, Timetable } from './timetable.js';

/**
 * Turns the room's timetable into start and stop intents at slot boundaries. It never touches a
 * recording itself: the agent maps intents onto the RecordingController, which stays the one
 * owner of live recordings.
 *
 * - At a slot's start: `start` with the slot's id, metadata and plannedEndMs (the slot's end).
 * - Started inside a slot (the PC booted late, the daemon restarted): `start` for the rest of
 *   it at once, unless less than `minRemainderMs` is left.
 * - At a slot's end, or when a reload removes or moves the slot being recorded: `stop`; when a
 *   reload changes its end or its metadata: `update` with the new plannedEndMs.
 * - Back-to-back slots are separate lectures: at the shared instant, `stop` of the first is
 *   delivered (and awaited) before `start` of the second.
 * - Overlapping slots: the one that started first is recorded to its end; one still in progress
 *   then is joined for its remainder.
 *
 * Manual recordings (policy): a manual recording that is running when a slot begins is left
 * alone, and the slot is logged as skipped because of it; the slot is not started later even if
 * the manual recording stops before the slot ends, because a teacher who stops a recording means
 * it. In the same way a scheduled recording the teacher stops early is not restarted. The agent
 * answers `isManualRecordingActive(slot)`; a live recording that the scheduler started (or that
 * the controller resumed after a restart with the slot's planned end) is not manual.
 *
 * The timetable is reloaded every `refreshIntervalMs` and when its file changes (fs.watch on
 * the folder, since editors replace files by rename); a reload that fails keeps the previous
 * timetable in force. stop() only stops the scheduler: a recording in progress is the
 * controller's to finish at its planned end or at shutdown.
 */

export type ScheduleIntent =
  | {
      kind: 'start';
      eventId: string;
      meta: LectureMeta;
      slotStartMs: number;
      plannedEndMs: number;
      /** True when the slot had begun before the scheduler saw it (late boot, restart). */
      late: boolean;
    }
  /** The slot being recorded got another end (or title...) in a reload; its id and start are unchanged. */
  | { kind: 'update'; eventId: string; meta: LectureMeta; plannedEndMs: number }
  | { kind: 'stop'; eventId: string; reason: 'slot ended' | 'slot removed from the timetable' | 'slot moved in the timetable' };

export interface SchedulerClock {
  now(): number;
}

export interface SchedulerTimers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export interface SchedulerOptions {
  source: TimetableSource;
  clock: SchedulerClock;
  timers?: SchedulerTimers;
  /** Receives intents in order; the next one is not sent before this one settles. */
  onIntent: (intent: ScheduleIntent) => void | Promise<void>;
  isManualRecordingActive: (slot: LectureSlot) => boolean;
  logger: Logger;
  refreshIntervalMs: number;
  /** A slot with less than this left when it is first seen is not started. Default 10 s. */
  minRemainderMs?: number;
  /** How far ahead upcoming() looks. Default 14 days. */
  lookaheadMs?: number;
  /** Watches a file for changes; default fs.watch on its folder. Returns the closer. */
  watchFile?: (file: string, onChange: () => void) => () => void;
}

export interface SchedulerStatus {
  source: string;
  /** When the timetable in force was loaded; undefined = none yet. */
  loadedAtMs?: number;
  /** Why the last reload failed or used an older copy (cleared by a clean load). */
  lastError?: string;
  /** The slot being recorded on the scheduler's behalf. */
  activeEventId?: string;
}

const DAY_MS = 86_400_000;
// setTimeout takes at most 2^31-1 ms; longer waits are done in steps.
const MAX_TIMER_MS = 2_147_483_647;
// Slots whose starts arrive within this of the boundary count as on time, not as joined late.
const ON_TIME_MS = 5_000;
const WATCH_DEBOUNCE_MS = 300;
const defaultTimers: SchedulerTimers = {
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms);
    t.unref();
    return t;
  },
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

export class Scheduler {
  readonly #o: SchedulerOptions;
  readonly #log: Logger;
  readonly #timers: SchedulerTimers;
  #timetable: Timetable | undefined;
  #loadedAtMs: number | undefined;
  #lastError: string | undefined;
  #lastWarnings = '';
  #active: LectureSlot | undefined;
  /** Slots already started or skipped, by id, with their end (to forget them later). */
  readonly #handled = new Map<string, number>();
  #wakeTimer: unknown;
  #refreshTimer: unknown;
  #debounceTimer: unknown;
  #closeWatch: (() => void) | undefined;
  #ops: Promise<void> = Promise.resolve();
  #running = false;

  constructor(options: SchedulerOptions) {
    this.#o = options;
    this.#timers = options.timers ?? defaultTimers;
    this.#log = options.logger.child({ scope: 'schedule' });
  }

  /** Loads the timetable and acts on the slot in progress, if any. Never throws for a bad timetable. */
  async start(): Promise<void> {
    if (this.#running) return;
    this.#running = true;
    const file = this.#o.source.watchPath;
    if (file !== undefined) {
      try {
        this.#closeWatch = (this.#o.watchFile ?? watchFolderOf)(file, () => this.#onFileChange());
      } catch (err) {
        this.#log.warn(`cannot watch ${file} for changes (${describeError(err)}); it is read again every ${Math.round(this.#o.refreshIntervalMs / 1000)} s`);
      }
    }
    await this.#serial(async () => {
      await this.#reload();
      await this.#evaluate();
    });
    this.#scheduleRefresh();
  }

  async stop(): Promise<void> {
    this.#running = false;
    for (const t of [this.#wakeTimer, this.#refreshTimer, this.#debounceTimer]) if (t !== undefined) this.#timers.clearTimeout(t);
    this.#wakeTimer = this.#refreshTimer = this.#debounceTimer = undefined;
    this.#closeWatch?.();
    this.#closeWatch = undefined;
    await this.#ops;
  }

  /** Reloads now (the CLI or API may offer it); resolves after the new timetable is acted on. */
  reload(): Promise<void> {
    return this.#serial(async () => {
      await this.#reload();
      await this.#evaluate();
    });
  }

  /** The slot in progress now by the timetable (recorded or not), for the kiosk and status. */
  current(): LectureSlot | undefined {
    const now = this.#o.clock.now();
    if (this.#active && this.#active.startMs <= now && now < this.#active.endMs) return this.#active;
    return this.#inProgress(now)[0];
  }

  /** The next `n` slots that start after now. */
  upcoming(n: number): LectureSlot[] {
    const now = this.#o.clock.now();
    if (!this.#timetable || n <= 0) return [];
    return this.#timetable
      .slotsBetween(now, now + (this.#o.lookaheadMs ?? 14 * DAY_MS))
      .filter((s) => s.startMs > now)
      .slice(0, n);
  }

  status(): SchedulerStatus {
    return {
      source: this.#o.source.description,
      ...(this.#loadedAtMs !== undefined ? { loadedAtMs: this.#loadedAtMs } : {}),
      ...(this.#lastError !== undefined ? { lastError: this.#lastError } : {}),
      ...(this.#active ? { activeEventId: this.#active.id } : {}),
    };
  }

  #serial(fn: () => Promise<void>): Promise<void> {
    const next = this.#ops.then(fn, fn);
    this.#ops = next.catch((err: unknown) => this.#log.error(`timetable step failed: ${describeError(err)}`));
    return next;
  }

  async #reload(): Promise<void> {
    try {
      const { timetable, problem } = await this.#o.source.load();
      const first = this.#timetable === undefined;
      this.#timetable = timetable;
      this.#loadedAtMs = this.#o.clock.now();
      if (problem) {
        this.#lastError = describeError(problem);
        this.#log.warn(this.#lastError);
      } else {
        this.#lastError = undefined;
      }
      const warnings = timetable.warnings.join('\n');
      if (warnings !== this.#lastWarnings) for (const w of timetable.warnings) this.#log.warn(w);
      this.#lastWarnings = warnings;
      if (first) this.#log.info(`timetable loaded from ${this.#o.source.description}: ${timetable.series.length} lecture series`);
    } catch (err) {
      this.#lastError = describeError(err);
      const keeping = this.#timetable ? 'the previous timetable stays in force' : 'no lectures are scheduled until it loads';
      this.#log.error(`cannot load the timetable from ${this.#o.source.description}; ${keeping}: ${this.#lastError}`);
    }
  }

  #inProgress(now: number): LectureSlot[] {
    return (this.#timetable?.slotsBetween(now, now + 1) ?? []).filter((s) => s.startMs <= now && now < s.endMs);
  }

  /** Acts on the timetable at this instant, then sets the timer for the next boundary. */
  async #evaluate(): Promise<void> {
    if (!this.#running) return;
    const now = this.#o.clock.now();
    const inProgress = this.#inProgress(now);

    const active = this.#active;
    if (active) {
      const fresh = this.#timetable?.slotsBetween(active.startMs - DAY_MS, now + DAY_MS).find((s) => s.id === active.id);
      if (!fresh || fresh.startMs > now || now >= fresh.endMs) {
        const reason = !fresh ? 'slot removed from the timetable' : now >= fresh.endMs && fresh.endMs === active.endMs ? 'slot ended' : 'slot moved in the timetable';
        this.#active = undefined;
        this.#log.info(`timetable: stopping "${active.title}" (${reason})`, { eventId: active.id });
        await this.#emit({ kind: 'stop', eventId: active.id, reason });
      } else {
        // An edited end time takes effect: the stop follows the timetable, and the recording's
        // own planned end must follow too.
        this.#active = fresh;
        if (fresh.endMs !== active.endMs || JSON.stringify(metaOf(fresh)) !== JSON.stringify(metaOf(active))) {
          this.#log.info(`timetable: "${fresh.title}" now ends at ${new Date(fresh.endMs).toISOString()}`, { eventId: fresh.id });
          await this.#emit({ kind: 'update', eventId: fresh.id, meta: metaOf(fresh), plannedEndMs: fresh.endMs });
        }
      }
    }

    if (!this.#active) {
      for (const slot of inProgress) {
        if (this.#handled.has(slot.id)) continue;
        this.#handled.set(slot.id, slot.endMs);
        const leftMs = slot.endMs - now;
        if (leftMs < (this.#o.minRemainderMs ?? 10_000)) {
          this.#log.info(`timetable: "${slot.title}" has only ${Math.round(leftMs / 1000)} s left; not started`, { eventId: slot.id });
          continue;
        }
        if (this.#o.isManualRecordingActive(slot)) {
          this.#log.info(`timetable: "${slot.title}" skipped because a manual recording is running (it is left alone)`, { eventId: slot.id });
          continue;
        }
        const late = now - slot.startMs > ON_TIME_MS;
        this.#active = slot;
        this.#log.info(
          late ? `timetable: joining "${slot.title}" ${Math.round((now - slot.startMs) / 1000)} s after its start, until ${new Date(slot.endMs).toISOString()}` : `timetable: starting "${slot.title}"`,
          { eventId: slot.id, course: slot.course ?? undefined },
        );
        await this.#emit({ kind: 'start', eventId: slot.id, meta: metaOf(slot), slotStartMs: slot.startMs, plannedEndMs: slot.endMs, late });
        break;
      }
    }

    for (const [id, endMs] of this.#handled) if (endMs < now - DAY_MS) this.#handled.delete(id);
    this.#scheduleWake(now);
  }

  async #emit(intent: ScheduleIntent): Promise<void> {
    try {
      await this.#o.onIntent(intent);
    } catch (err) {
      this.#log.error(`timetable: the ${intent.kind} of ${intent.eventId} failed: ${describeError(err)}`);
    }
  }

  /** The next instant anything can change: a slot start or end after `now`. */
  #scheduleWake(now: number): void {
    if (this.#wakeTimer !== undefined) this.#timers.clearTimeout(this.#wakeTimer);
    this.#wakeTimer = undefined;
    if (!this.#running || !this.#timetable) return;
    let next = Number.POSITIVE_INFINITY;
    if (this.#active) next = this.#active.endMs;
    // The refresh timer re-evaluates at least every refreshIntervalMs, so looking that far is enough.
    const horizon = now + Math.max(this.#o.refreshIntervalMs, 60_000) + 1;
    for (const s of this.#timetable.slotsBetween(now, horizon)) {
      if (s.startMs > now) next = Math.min(next, s.startMs);
      if (s.endMs > now) next = Math.min(next, s.endMs);
    }
    if (!Number.isFinite(next)) return;
    const delayMs = Math.min(MAX_TIMER_MS, Math.max(0, next - now));
    this.#wakeTimer = this.#timers.setTimeout(() => {
      this.#wakeTimer = undefined;
      void this.#serial(() => this.#evaluate());
    }, delayMs);
  }

  #scheduleRefresh(): void {
    if (!this.#running) return;
    this.#refreshTimer = this.#timers.setTimeout(() => {
      this.#refreshTimer = undefined;
      void this.reload().finally(() => this.#scheduleRefresh());
    }, Math.min(MAX_TIMER_MS, this.#o.refreshIntervalMs));
  }

  #onFileChange(): void {
    if (!this.#running) return;
    // Editors write in several steps (truncate, write, rename): one reload after they settle.
    if (this.#debounceTimer !== undefined) this.#timers.clearTimeout(this.#debounceTimer);
    this.#debounceTimer = this.#timers.setTimeout(() => {
      this.#debounceTimer = undefined;
      this.#log.info(`timetable ${this.#o.source.description} changed; reading it again`);
      void this.reload();
    }, WATCH_DEBOUNCE_MS);
  }
}

function metaOf(slot: LectureSlot): LectureMeta {
  return { title: slot.title, course: slot.course, teacher: slot.teacher, preset: slot.preset, location: slot.location };
}

/** fs.watch on the folder, filtered to the file's name: survives editors that replace the file. */
function watchFolderOf(file: string, onChange: () => void): () => void {
  const name = path.basename(file);
  const watcher: FSWatcher = watch(path.dirname(file), { persistent: false }, (_event, changed) => {
    if (changed === null || changed === name) onChange();
  });
  watcher.on('error', () => watcher.close());
  return () => watcher.close();
}
