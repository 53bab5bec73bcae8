import { access } from 'node:fs/promises';
import path from 'node:path';
import type { AlsaMic } from '../ffmpeg/captureArgs.js';
import { alsaCardId, setCaptureGain, type GainResult, type GainSetting } from '../ffmpeg/mixer.js';
import type { Logger } from '../log/logger.js';
import { LecternError } from '../util/errors.js';
import { pathExists } from '../util/pathExists.js';

/**
 * Devices on this PC that a capture run needs: a video device, and a microphone whose gain is set
 * again before every run (a USB microphone that was unplugged, or a PC that restarted, comes back
 * at the card's default level). A missing device fails the run with CAPTURE_DEVICE_MISSING, which
 * the recorder reports as a lost source and retries; a gain that cannot be set is only a warning.
 */

/** Throws CAPTURE_DEVICE_MISSING when the video device path does not exist. */
export async function checkVideoDevice(source: string, device: string): Promise<void> {
  try {
    await access(device);
  } catch {
    throw new LecternError('CAPTURE_DEVICE_MISSING', `${source}: the video device ${device} does not exist (unplugged? ls /dev/v4l/by-id/ lists the connected ones)`, {
      details: { source, device },
    });
  }
}

export interface MicrophoneConfig extends AlsaMic {
  gainPercent?: number | undefined;
  mixerControl: string;
}

export interface MicrophoneOptions {
  source: string;
  logger: Logger;
  /** Where ALSA lists its cards; tests point it elsewhere. */
  asoundDir?: string;
  /** The mixer step; tests count its calls. */
  setGain?: (setting: GainSetting) => Promise<GainResult>;
}

export class Microphone {
  readonly input: AlsaMic;
  readonly #config: MicrophoneConfig;
  readonly #source: string;
  readonly #log: Logger;
  readonly #asoundDir: string;
  readonly #setGain: (setting: GainSetting) => Promise<GainResult>;
  /** The last reason the gain could not be set, so a failing mixer warns once, not every run. */
  #lastGainFailure: string | undefined;

  constructor(config: MicrophoneConfig, opts: MicrophoneOptions) {
    this.#config = config;
    this.input = { device: config.device, channels: config.channels, sampleRate: config.sampleRate };
    this.#source = opts.source;
    this.#log = opts.logger.child({ scope: 'microphone', source: opts.source, device: config.device });
    this.#asoundDir = opts.asoundDir ?? '/proc/asound';
    this.#setGain = opts.setGain ?? ((setting) => setCaptureGain(setting));
  }

  /** Before each run: the card must be there, then its gain is set (never fails the run). */
  async prepare(): Promise<void> {
    const cardId = alsaCardId(this.#config.device);
    // A name without a card id (default, or a PCM from asound.conf) is ffmpeg's to open.
    if (cardId === undefined) return;
    // ALSA lists each card under its id as well as its number. Without /proc/asound no driver is
    // loaded, and only a PCM defined in asound.conf can answer: that is ffmpeg's to open.
    const alsaLoaded = await pathExists(path.join(this.#asoundDir, 'cards'));
    if (alsaLoaded && !(await pathExists(path.join(this.#asoundDir, cardId)))) {
      throw new LecternError(
        'CAPTURE_DEVICE_MISSING',
        `${this.#source}: the sound card ${cardId} of microphone ${this.#config.device} is not there (unplugged? lectern mics list shows the connected ones)`,
        { details: { source: this.#source, device: this.#config.device, cardId } },
      );
    }
    await this.applyGain();
  }

  /** Sets the configured gain, if any; a failure is logged once until it changes or succeeds. */
  async applyGain(): Promise<GainResult | undefined> {
    const cardId = alsaCardId(this.#config.device);
    const percent = this.#config.gainPercent;
    if (cardId === undefined || percent === undefined) return undefined;
    const result = await this.#setGain({ cardId, control: this.#config.mixerControl, percent });
    if (result.ok) {
      if (this.#lastGainFailure !== undefined) this.#log.info(`capture gain set to ${percent}% again`);
      else this.#log.debug(`capture gain set to ${percent}%`);
      this.#lastGainFailure = undefined;
    } else if (result.reason !== this.#lastGainFailure) {
      this.#log.warn(`cannot set the capture gain to ${percent}% (${result.reason}); recording at the mixer's current level`);
      this.#lastGainFailure = result.reason;
    }
    return result;
  }
}
