import { describeProfile, OnvifCamera } from '../camera/index.js';
import type { CaptureInput } from '../ffmpeg/captureArgs.js';
import { checkVideoDevice, Microphone } from '../capture/localDevices.js';
import type { CaptureSource } from '../capture/sourceRecorder.js';
import type { Config, SourceConfig } from '../config/index.js';
import { readSecret } from '../config/index.js';
import { silentLogger, type Logger } from '../log/logger.js';
import { describeError } from '../util/errors.js';

/**
 * Turns configured sources into capture sources. A camera password is read from its secret file
 * (or env) here, put into the URL ffmpeg needs, and listed as a secret so logs never show it.
 */
export function buildCaptureSources(config: Config, env: NodeJS.ProcessEnv, logger: Logger = silentLogger): CaptureSource[] {
  return config.sources.map((source): CaptureSource => {
    // The room's chosen microphone, muxed into this source's ffmpeg instead of its own audio.
    const mic = source.kind !== 'synthetic' && source.audio ? new Microphone(source.audio, { source: source.name, logger }) : undefined;
    switch (source.kind) {
      case 'synthetic':
        return {
          name: source.name,
          role: source.role,
          input: { kind: 'synthetic', width: source.width, height: source.height, fps: source.fps, toneHz: source.toneHz },
          secrets: [],
        };
      case 'rtsp': {
        const hasPassword = source.passwordFile !== undefined || source.passwordEnv !== undefined;
        const password = hasPassword
          ? readSecret({ file: source.passwordFile, env: source.passwordEnv }, { env, what: `the password of source ${source.name}` })
          : undefined;
        const url = new URL(source.url);
        if (source.username !== undefined) url.username = encodeURIComponent(source.username);
        if (password !== undefined) url.password = encodeURIComponent(password);
        return withRunCheck(
          {
            name: source.name,
            role: source.role,
            input: {
              kind: 'rtsp',
              url: url.toString(),
              timeoutMs: config.capture.rtspTimeoutMs,
              ...(source.audioIsAac ? { copyAudio: true } : {}),
              ...(mic ? { mic: mic.input } : {}),
            },
            secrets: password === undefined ? [] : [password, encodeURIComponent(password)],
          },
          mic ? () => mic.prepare() : undefined,
        );
      }
      case 'v4l2':
        return withRunCheck(
          {
            name: source.name,
            role: source.role,
            input: {
              kind: 'v4l2',
              device: source.device,
              ...(source.inputFormat !== undefined ? { inputFormat: source.inputFormat } : {}),
              width: source.width,
              height: source.height,
              fps: source.fps,
              crf: source.crf,
              maxBitrateKbps: source.maxBitrateKbps,
              ...(mic ? { mic: mic.input } : {}),
            },
            secrets: [],
          },
          async () => {
            await checkVideoDevice(source.name, source.device);
            await mic?.prepare();
          },
        );
      case 'onvif':
        return new OnvifCaptureSource(source, {
          password: source.passwordFile !== undefined || source.passwordEnv !== undefined
            ? readSecret({ file: source.passwordFile, env: source.passwordEnv }, { env, what: `the password of source ${source.name}` })
            : undefined,
          rtspTimeoutMs: config.capture.rtspTimeoutMs,
          logger,
          ...(mic ? { microphone: mic } : {}),
        });
    }
  });
}

/**
 * A source whose every run first checks what it needs on this PC (its device, its microphone's
 * card and gain); a failed check fails that run, which the recorder retries after its backoff.
 */
function withRunCheck(source: CaptureSource, check: (() => Promise<void>) | undefined): CaptureSource {
  if (!check) return source;
  return {
    ...source,
    resolve: async () => {
      await check();
      return { input: source.input, secrets: source.secrets };
    },
  };
}

/**
 * An ONVIF camera as a capture source: before each run it asks the camera for the stream of the
 * configured profile (the camera may have rebooted, been reset or changed its profiles since) and
 * moves it to the configured preset. When the camera's ONVIF service fails but a stream was
 * resolved before, the run uses that stream: RTSP often keeps working when ONVIF does not, and a
 * lecture must not be lost for want of a SOAP answer.
 */
export class OnvifCaptureSource implements CaptureSource {
  readonly name: string;
  readonly role: CaptureSource['role'];
  /** Replaced by resolve() before every run; this placeholder is never recorded from. */
  input: CaptureInput;
  secrets: string[];
  readonly #camera: OnvifCamera;
  readonly #config: Extract<SourceConfig, { kind: 'onvif' }>;
  readonly #rtspTimeoutMs: number;
  readonly #log: Logger;
  readonly #mic: Microphone | undefined;
  #last: { input: CaptureInput; secrets: string[] } | undefined;

  constructor(
    config: Extract<SourceConfig, { kind: 'onvif' }>,
    opts: { password: string | undefined; rtspTimeoutMs: number; logger: Logger; microphone?: Microphone },
  ) {
    this.name = config.name;
    this.role = config.role;
    this.#config = config;
    this.#rtspTimeoutMs = opts.rtspTimeoutMs;
    this.#log = opts.logger.child({ scope: 'camera', source: config.name });
    this.#mic = opts.microphone;
    this.#camera = new OnvifCamera({
      address: config.address,
      ...(config.username !== undefined ? { username: config.username } : {}),
      ...(opts.password !== undefined ? { password: opts.password } : {}),
      timeoutMs: config.timeoutMs,
      ...(config.profile !== undefined ? { profile: config.profile } : {}),
      name: config.name,
      logger: opts.logger,
    });
    this.secrets = opts.password === undefined ? [] : [opts.password, encodeURIComponent(opts.password)];
    this.input = { kind: 'rtsp', url: `rtsp://${new URL(this.#camera.deviceUrl).host}/`, timeoutMs: opts.rtspTimeoutMs };
  }

  readonly resolve = async (signal: AbortSignal, opts: { preset?: string } = {}): Promise<{ input: CaptureInput; secrets: string[] }> => {
    const resolved = await this.#resolve(signal, true, opts.preset ?? this.#config.preset);
    if (!this.#mic || resolved.input.kind !== 'rtsp') return resolved;
    await this.#mic.prepare();
    return { ...resolved, input: { ...resolved.input, mic: this.#mic.input } };
  };

  /** After a recording: the privacy preset (lens to the wall or the ceiling), if one is configured. */
  readonly afterRecording = async (signal: AbortSignal): Promise<void> => {
    const preset = this.#config.privacyPreset;
    if (preset === undefined) return;
    try {
      await this.#camera.connect(signal);
      await this.#camera.gotoPreset(preset, undefined, signal);
      this.#log.info(`turned to the privacy preset "${preset}"`);
    } catch (err) {
      this.#log.warn(`cannot turn to the privacy preset "${preset}": ${describeError(err)}`);
    }
  };

  /** At agent start: ask for the stream (so problems show in the log early) without moving the camera. */
  async check(signal: AbortSignal): Promise<void> {
    try {
      await this.#resolve(signal, false, undefined);
    } catch (err) {
      this.#log.warn(`camera not ready at start (${describeError(err)}); it is asked again when a recording starts`);
    }
  }

  async #resolve(signal: AbortSignal, moveToPreset: boolean, preset: string | undefined): Promise<{ input: CaptureInput; secrets: string[] }> {
    try {
      await this.#camera.connect(signal);
      const { uri, profile } = await this.#camera.streamUri(undefined, signal);
      if (moveToPreset && preset !== undefined) {
        // A camera pointing the wrong way still records the lecture; a failed move is a warning.
        await this.#camera.gotoPreset(preset, profile, signal).catch((err: unknown) => {
          this.#log.warn(`cannot move to preset "${preset}": ${describeError(err)}`);
        });
      }
      const input: CaptureInput = {
        kind: 'rtsp',
        url: this.#camera.credentialedUri(uri),
        timeoutMs: this.#rtspTimeoutMs,
        // The profile names its audio encoding: AAC (Media2: MP4A-LATM or mpeg4-generic) is kept as it is.
        ...(isAac(profile.audio?.encoding) ? { copyAudio: true } : {}),
      };
      const resolved = { input, secrets: this.secrets };
      if (this.#last?.input.kind !== 'rtsp' || this.#last.input.url !== resolved.input.url) this.#log.info(`stream ${uri}`, { profile: describeProfile(profile) });
      this.#last = resolved;
      this.input = resolved.input;
      return resolved;
    } catch (err) {
      if (signal.aborted || !this.#last) throw err;
      this.#log.warn(`cannot ask the camera for its stream (${describeError(err)}); recording from the stream it gave before`);
      return this.#last;
    }
  }
}

/** Asks every ONVIF camera for its stream once, in parallel; never throws. */
export async function checkCameras(sources: readonly CaptureSource[], signal: AbortSignal): Promise<void> {
  await Promise.all(sources.filter((s): s is OnvifCaptureSource => s instanceof OnvifCaptureSource).map((s) => s.check(signal)));
}

function isAac(encoding: string | undefined): boolean {
  return encoding !== undefined && /^(aac|mp4a-latm|mpeg4-generic)$/i.test(encoding);
}
