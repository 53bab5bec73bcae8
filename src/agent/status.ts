import type { AgentStatus, AlertStatus, NextEvent } from '../api/types.js';
import type { ControllerStatus } from '../capture/recordingController.js';
import type { Logger } from '../log/logger.js';
import type { JobState } from '../queue/types.js';
import { describeError } from '../util/errors.js';
import { formatBytes } from '../util/units.js';

/**
 * The one status of the agent, read by the kiosk (through the API and its event stream), the CLI,
 * /metrics and, later, the heartbeat and sd_notify STATUS lines. It composes the recording
 * controller's status with the queue, free disk space and the upload backlog, once a second, and
 * publishes a new status to subscribers whenever anything in it changed (while recording the
 * elapsed time and the audio level change every second, so a kiosk gets a status each second).
 */

export interface StatusSources {
  identity: { id: string; site: string; room: string; version: string };
  controller: { status(): ControllerStatus };
  /** Title and course of a recording, by id. */
  recording(id: string): { title: string; course: string | null } | undefined;
  queueCounts(): Record<JobState, number>;
  /** Lectures recorded but not yet published, each once (with tiers: until the final publish). */
  pendingLectures(): number;
  freeDiskBytes(): Promise<number>;
  disk: { minFreeBytes: number; stopFreeBytes: number };
  /** The next scheduled lecture (timetable), when there is one. */
  next?: () => NextEvent | null;
  /** Upload backlog in bytes and its ETA, when the uploader measures them. */
  uploadBacklog?: () => { pendingBytes: number | null; etaSeconds: number | null };
  /** The bandwidth policy's view (upload/bandwidthPolicy.ts status()), when the store has one. */
  uploadPolicy?: () => {
    rateBytesPerSecond: number;
    capBytesPerSecond: number | null;
    window: string | null;
    pausedReason: string | null;
    linkDown: boolean;
    pendingBytes: number | null;
    etaSeconds: number | null;
  };
  kioskPinRequired: boolean;
  logger: Logger;
  now?: () => number;
}

export interface StatusAggregatorOptions {
  /** How often the status is recomposed; default 1000 ms. */
  intervalMs?: number;
  /** How often free disk space is measured (a statfs call); default 5000 ms. */
  diskIntervalMs?: number;
}

export class StatusAggregator {
  readonly #s: StatusSources;
  readonly #log: Logger;
  readonly #now: () => number;
  readonly #intervalMs: number;
  readonly #diskIntervalMs: number;
  readonly #listeners = new Set<(status: AgentStatus) => void>();
  readonly #startedAtMs: number;
  #current: AgentStatus;
  #fingerprint = '';
  #freeBytes: number | null = null;
  #diskMeasuredAtMs = 0;
  #diskPending = false;
  #timer: NodeJS.Timeout | undefined;

  constructor(sources: StatusSources, options: StatusAggregatorOptions = {}) {
    this.#s = sources;
    this.#log = sources.logger.child({ scope: 'status' });
    this.#now = sources.now ?? Date.now;
    this.#intervalMs = options.intervalMs ?? 1_000;
    this.#diskIntervalMs = options.diskIntervalMs ?? 5_000;
    this.#startedAtMs = this.#now();
    this.#current = this.#compose();
  }

  async start(): Promise<void> {
    await this.#measureDisk();
    this.refresh();
    this.#timer = setInterval(() => this.refresh(), this.#intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    this.#listeners.clear();
  }

  /** The latest status (recomposed now, so a command's effect shows at once). */
  current(): AgentStatus {
    this.refresh();
    return this.#current;
  }

  subscribe(listener: (status: AgentStatus) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Recomposes the status and publishes it when it changed. Call after every command. */
  refresh(): void {
    if (this.#now() - this.#diskMeasuredAtMs >= this.#diskIntervalMs) void this.#measureDisk();
    let next: AgentStatus;
    try {
      next = this.#compose();
    } catch (err) {
      // A database hiccup must not stop the status (or the kiosk) for good; the next tick retries.
      this.#log.warn(`cannot compose the status: ${describeError(err)}`);
      return;
    }
    this.#current = next;
    // `atMs` changes every time; anything else changing is news.
    const fingerprint = JSON.stringify({ ...next, atMs: 0 });
    if (fingerprint === this.#fingerprint) return;
    this.#fingerprint = fingerprint;
    for (const listener of this.#listeners) {
      try {
        listener(next);
      } catch (err) {
        this.#log.warn(`status listener failed: ${describeError(err)}`);
      }
    }
  }

  async #measureDisk(): Promise<void> {
    if (this.#diskPending) return;
    this.#diskPending = true;
    this.#diskMeasuredAtMs = this.#now();
    try {
      this.#freeBytes = await this.#s.freeDiskBytes();
    } catch (err) {
      this.#log.warn(`cannot measure free disk space: ${describeError(err)}`);
      this.#freeBytes = null;
    } finally {
      this.#diskPending = false;
    }
  }

  #compose(): AgentStatus {
    const s = this.#s;
    const now = this.#now();
    const c = s.controller.status();
    const info = c.recordingId === undefined ? undefined : s.recording(c.recordingId);
    const sources = c.sources.map((src) => ({
      name: src.name,
      status: src.status,
      // A level is only news while media flows: a lost camera's last level would look like sound.
      audioLevelDb: src.audioLevelDb === undefined || src.status !== 'recording' ? null : round1(src.audioLevelDb),
      lastAdvanceAtMs: src.lastAdvanceAtMs ?? null,
      segments: src.segments,
      restarts: src.restarts,
    }));
    const alerts: AlertStatus[] = c.alerts.map((a) => ({ kind: a.kind, source: a.source, message: a.message, startedAtMs: a.startedAtMs }));
    const diskLow = this.#freeBytes !== null && this.#freeBytes < s.disk.minFreeBytes;
    // While recording the controller raises disk_low itself; when idle the kiosk must still say
    // that Record will be refused.
    if (diskLow && c.state === 'idle' && !alerts.some((a) => a.kind === 'disk_low')) {
      alerts.push({ kind: 'disk_low', source: null, message: `only ${formatBytes(this.#freeBytes ?? 0)} free on the recording disk; a new recording needs ${formatBytes(s.disk.minFreeBytes)}`, startedAtMs: this.#diskMeasuredAtMs });
    }
    const counts = s.queueCounts();
    const policy = s.uploadPolicy?.();
    const backlog = s.uploadBacklog?.() ?? policy ?? { pendingBytes: null, etaSeconds: null };
    return {
      agent: { ...s.identity, startedAtMs: this.#startedAtMs },
      atMs: now,
      recording: {
        state: c.state,
        recordingId: c.recordingId ?? null,
        title: info?.title ?? null,
        course: info?.course ?? null,
        startedAtMs: c.startedAtMs ?? null,
        plannedEndMs: c.plannedEndMs ?? null,
        // Whole seconds: the status changes once a second, not on every read.
        elapsedMs: c.startedAtMs === undefined ? 0 : Math.max(0, Math.floor((now - c.startedAtMs) / 1000) * 1000),
        segments: c.segments,
        restarts: c.restarts,
        sources,
      },
      audioLevelDb: sources[0]?.audioLevelDb ?? null,
      alerts,
      disk: { freeBytes: this.#freeBytes, minFreeBytes: s.disk.minFreeBytes, stopFreeBytes: s.disk.stopFreeBytes, low: diskLow },
      queue: { queued: counts.queued, running: counts.running, done: counts.done, dead: counts.dead, cancelled: counts.cancelled },
      uploads: {
        pendingLectures: s.pendingLectures(),
        pendingBytes: backlog.pendingBytes,
        etaSeconds: backlog.etaSeconds,
        ...(policy
          ? { rateBytesPerSecond: policy.rateBytesPerSecond, capBytesPerSecond: policy.capBytesPerSecond, window: policy.window, pausedReason: policy.pausedReason ?? (policy.linkDown ? 'link_down' : null) }
          : {}),
      },
      next: s.next?.() ?? null,
      kiosk: { pinRequired: s.kioskPinRequired },
    };
  }
}

function round1(n: number): number {
  return Math.round(n * 10) / 10;
}
