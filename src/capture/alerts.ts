import type { Logger } from '../log/logger.js';

/**
 * Alerts: something a person should know about while a lecture is recorded, with when it started
 * and when it ended. They are kept in SQLite with the recording (and so survive a crash), shown by
 * RecordingController.status() while they last, logged, and listed in the lecture's manifest.
 */

/**
 * - `source_lost`: a source's ffmpeg ended without being asked (camera rebooted, network down,
 *   stall, killed) or the agent restarted; ends when media flows again.
 * - `no_audio`: no sound above the silence threshold for the configured time (dead or muted mic).
 * - `frozen_picture`: the picture has not changed for the configured time.
 * - `black_picture`: the picture has been black for the configured time (lens cap, no HDMI signal).
 * - `disk_low`: free disk space is below the start threshold while recording; below the stop
 *   threshold the recording is stopped.
 */
export type AlertKind = 'source_lost' | 'no_audio' | 'frozen_picture' | 'black_picture' | 'disk_low';

export interface Alert {
  id: number;
  recordingId: string;
  kind: AlertKind;
  /** The source it is about; null for the whole agent (the disk). */
  source: string | null;
  startedAtMs: number;
  /** null while the condition lasts. */
  endedAtMs: number | null;
  message: string;
}

/** The durable side (db/recordings.ts). */
export interface AlertStore {
  addAlert(alert: { recordingId: string; kind: string; source: string | null; startedAtMs: number; message: string }): number;
  endAlert(id: number, endedAtMs: number): void;
}

/** What a source recorder may do with alerts: its own source's, one of each kind at a time. */
export interface SourceAlerts {
  raise(kind: AlertKind, message: string, startedAtMs: number): void;
  resolve(kind: AlertKind, endedAtMs: number): void;
  /** When the active alert of this kind started; undefined when none is active. */
  activeSince(kind: AlertKind): number | undefined;
}

export interface AlertBookOptions {
  recordingId: string;
  store: AlertStore;
  logger: Logger;
  onChange?: (alert: Alert) => void;
}

/**
 * The alerts of one recording. Raising an alert that is already active changes nothing, so a
 * condition that persists (a camera that stays down through many reconnect attempts) is one
 * alert with one start and one end.
 */
export class AlertBook {
  readonly #o: AlertBookOptions;
  readonly #log: Logger;
  readonly #active = new Map<string, Alert>();

  constructor(options: AlertBookOptions) {
    this.#o = options;
    this.#log = options.logger.child({ scope: 'alert', recordingId: options.recordingId });
  }

  /** The alerts that last now, oldest first. */
  active(): Alert[] {
    return [...this.#active.values()].sort((a, b) => a.startedAtMs - b.startedAtMs || a.id - b.id);
  }

  isActive(kind: AlertKind, source: string | null): boolean {
    return this.#active.has(keyOf(kind, source));
  }

  activeSince(kind: AlertKind, source: string | null): number | undefined {
    return this.#active.get(keyOf(kind, source))?.startedAtMs;
  }

  raise(kind: AlertKind, source: string | null, message: string, startedAtMs: number): void {
    const key = keyOf(kind, source);
    if (this.#active.has(key)) return;
    const startMs = Math.round(startedAtMs);
    const id = this.#o.store.addAlert({ recordingId: this.#o.recordingId, kind, source, startedAtMs: startMs, message });
    const alert: Alert = { id, recordingId: this.#o.recordingId, kind, source, startedAtMs: startMs, endedAtMs: null, message };
    this.#active.set(key, alert);
    this.#log.warn(`${kind}: ${message}`, { source: source ?? undefined });
    this.#notify(alert);
  }

  resolve(kind: AlertKind, source: string | null, endedAtMs: number): void {
    const key = keyOf(kind, source);
    const alert = this.#active.get(key);
    if (!alert) return;
    this.#active.delete(key);
    const endMs = Math.max(alert.startedAtMs, Math.round(endedAtMs));
    this.#o.store.endAlert(alert.id, endMs);
    const ended = { ...alert, endedAtMs: endMs };
    this.#log.info(`${kind} ended after ${((endMs - alert.startedAtMs) / 1000).toFixed(1)} s`, { source: source ?? undefined });
    this.#notify(ended);
  }

  /** Ends every active alert (the recording stopped: what happens after is not this lecture's). */
  resolveAll(endedAtMs: number): void {
    for (const alert of this.active()) this.resolve(alert.kind, alert.source, endedAtMs);
  }

  /** The alerts of one source, as that source's recorder sees them. */
  forSource(source: string): SourceAlerts {
    return {
      raise: (kind, message, startedAtMs) => this.raise(kind, source, message, startedAtMs),
      resolve: (kind, endedAtMs) => this.resolve(kind, source, endedAtMs),
      activeSince: (kind) => this.activeSince(kind, source),
    };
  }

  #notify(alert: Alert): void {
    try {
      this.#o.onChange?.(alert);
    } catch (err) {
      // A faulty listener (kiosk, heartbeat) must not break the recording.
      this.#log.warn('alert listener failed', { err });
    }
  }
}

function keyOf(kind: AlertKind, source: string | null): string {
  return `${kind}\u0000${source ?? ''}`;
}

/** Alerts nobody listens to (a recorder built without a controller, e.g. in a test). */
export const NO_ALERTS: SourceAlerts = {
  raise: () => undefined,
  resolve: () => undefined,
  activeSince: () => undefined,
};
