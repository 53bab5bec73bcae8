import type { MonitorEvent } from '../ffmpeg/captureArgs.js';
import type { SourceAlerts } from './alerts.js';

/**
 * Confidence monitoring of one capture run: turns the measurements of the capture ffmpeg's
 * monitor output (ffmpeg/captureArgs.ts MonitorOutput) into alerts. ffmpeg does the measuring
 * (RMS level once a second, freezedetect, blackdetect); the rules of "how long is too long" live
 * here, so they are tested as data with a clock we control.
 *
 * - no_audio: no level at or above `silenceDb` for `silenceSeconds`. Silence is only counted while
 *   the run's media advances: when nothing arrives at all, that is a stall, which the stall timer
 *   and source_lost report, not a silent microphone. No levels at all (a camera without audio)
 *   counts as silence.
 * - frozen_picture: freezedetect reports a freeze (it already waited `freezeSeconds`), unless the
 *   picture is black, which black_picture reports instead.
 * - black_picture: black for `blackSeconds`.
 *
 * A run's alerts end with the run: what the source does between runs is unknown (source_lost
 * covers it), and the next run raises them again if the condition persists.
 */

export interface ConfidenceSettings {
  /** dBFS; a second whose RMS level is below this counts as silent. */
  silenceDb: number;
  /** 0 = no audio alerts. */
  silenceSeconds: number;
  /** 0 = no frozen-picture alerts (measured by ffmpeg's freezedetect). */
  freezeSeconds: number;
  /** freezedetect's noise tolerance: frames differing less than this are "the same". */
  freezeNoiseDb: number;
  /** 0 = no black-picture alerts. */
  blackSeconds: number;
}

/** A level counts as "media advancing" when progress moved within this long. */
const ADVANCING_WINDOW_MS = 3_000;

export class ConfidenceMonitor {
  readonly #settings: ConfidenceSettings;
  readonly #alerts: SourceAlerts;
  readonly #source: string;
  readonly #now: () => number;
  #started = false;
  #stopped = false;
  #lastSoundAtMs = 0;
  #lastAdvanceAtMs = 0;
  #freezeSinceMs: number | undefined;
  #blackSinceMs: number | undefined;
  #lastLevelDb: number | undefined;

  constructor(opts: { settings: ConfidenceSettings; alerts: SourceAlerts; source: string; now?: () => number }) {
    this.#settings = opts.settings;
    this.#alerts = opts.alerts;
    this.#source = opts.source;
    this.#now = opts.now ?? Date.now;
  }

  /** The last audio level measured (dBFS), for status displays. */
  get lastLevelDb(): number | undefined {
    return this.#lastLevelDb;
  }

  /** Media began to flow (first progress of the run): silence is counted from here. */
  mediaStarted(atMs: number): void {
    if (this.#started) return;
    this.#started = true;
    // Levels may have arrived before the start was known (it is settled a few seconds in).
    this.#lastSoundAtMs = Math.max(this.#lastSoundAtMs, atMs);
    this.#lastAdvanceAtMs = this.#now();
  }

  /** ffmpeg reported that its output advanced. */
  advanced(): void {
    this.#lastAdvanceAtMs = this.#now();
  }

  handle(event: MonitorEvent): void {
    if (this.#stopped) return;
    const now = this.#now();
    switch (event.kind) {
      case 'audioLevel':
        this.#lastLevelDb = event.db;
        if (event.db >= this.#settings.silenceDb) this.#lastSoundAtMs = now;
        break;
      case 'freezeStart':
        // freezedetect speaks once the picture has been still for its duration.
        this.#freezeSinceMs ??= now - this.#settings.freezeSeconds * 1000;
        break;
      case 'freezeEnd':
        this.#freezeSinceMs = undefined;
        break;
      case 'blackStart':
        this.#blackSinceMs ??= now;
        break;
      case 'blackEnd':
        this.#blackSinceMs = undefined;
        break;
    }
    this.evaluate();
  }

  /** Applies the rules at the current time; call on every event and about once a second. */
  evaluate(): void {
    if (this.#stopped || !this.#started) return;
    const now = this.#now();
    const s = this.#settings;

    if (s.silenceSeconds > 0) {
      const silentMs = now - this.#lastSoundAtMs;
      const advancing = now - this.#lastAdvanceAtMs <= ADVANCING_WINDOW_MS;
      if (silentMs < s.silenceSeconds * 1000) {
        this.#alerts.resolve('no_audio', this.#lastSoundAtMs);
      } else if (advancing) {
        this.#alerts.raise(
          'no_audio',
          `no sound above ${s.silenceDb} dBFS from ${this.#source} for ${s.silenceSeconds} s (microphone muted, unplugged or dead?)`,
          this.#lastSoundAtMs,
        );
      }
    }

    const blackSince = this.#blackSinceMs;
    if (s.blackSeconds > 0) {
      if (blackSince !== undefined && now - blackSince >= s.blackSeconds * 1000) {
        this.#alerts.raise('black_picture', `the picture of ${this.#source} is black (lens covered, camera dark or no signal?)`, blackSince);
      } else if (blackSince === undefined) {
        this.#alerts.resolve('black_picture', now);
      }
    }

    if (s.freezeSeconds > 0) {
      const freezeSince = this.#freezeSinceMs;
      if (freezeSince !== undefined && blackSince === undefined) {
        this.#alerts.raise('frozen_picture', `the picture of ${this.#source} has not changed for ${s.freezeSeconds} s (camera image stuck?)`, freezeSince);
      } else {
        this.#alerts.resolve('frozen_picture', now);
      }
    }
  }

  /** The run ended: its confidence alerts end with it. */
  stop(atMs: number): void {
    if (this.#stopped) return;
    this.#stopped = true;
    for (const kind of ['no_audio', 'frozen_picture', 'black_picture'] as const) this.#alerts.resolve(kind, atMs);
  }
}
