import type { Logger } from '../log/logger.js';
import { LecternError, isLecternError } from '../util/errors.js';
import { redactSecrets } from '../util/redact.js';
import { alignMediaUrl, alignServiceUrl, deviceServiceUrl, withCredentials } from './address.js';
import { describeUrl, httpRequestWithAuth } from './http.js';
import {
  expectResponse,
  parseAudioEncoderConfiguration,
  parseAudioEncoderConfigurations,
  parseAudioSourceConfigurations,
  parseCapabilities,
  parseDeviceInformation,
  parsePresets,
  parseProfiles,
  parseServices,
  parseSetPreset,
  parseSnapshotUri,
  parseStreamUri,
  parseSystemDateAndTime,
  SERVICE_NS,
  type AudioEncoderConfiguration,
  type ReportedServices,
} from './parse.js';
import { soapCall, type SoapReply } from './soap.js';
import type {
  AudioConfig,
  AudioEncoderChange,
  AudioEncoderInfo,
  CameraClock,
  CameraControl,
  CameraStatus,
  DeviceInfo,
  MediaProfile,
  Preset,
  ServiceAddresses,
  StreamInfo,
} from './types.js';
import { xmlEscape } from './xml.js';

/**
 * One ONVIF camera behind CameraControl. The clock is read first and without credentials (a
 * camera whose clock reset after a power cut rejects tokens signed with our time), every token is
 * then signed in the camera's time, and an authentication failure re-reads the clock and retries
 * once (the camera may have rebooted or jumped with NTP since) before giving up.
 */

export const DEFAULT_CAMERA_TIMEOUT_MS = 5000;
/** Snapshots larger than this are refused (a 4K JPEG is a few MB). */
const MAX_SNAPSHOT_BYTES = 16 * 1024 * 1024;
/** A camera clock further off than this is worth a warning: someone should set up NTP. */
const CLOCK_WARN_MS = 5 * 60 * 1000;
/** Further off than a day is a clock that was reset (power cut), or a parse gone wrong. */
const CLOCK_LOUD_MS = 24 * 60 * 60 * 1000;

export interface OnvifCameraOptions {
  /** `host[:port]` or the device service URL. */
  address: string;
  username?: string;
  password?: string;
  /** Per-request deadline. */
  timeoutMs?: number;
  /** Default profile selector: token, name or "WxH". */
  profile?: string;
  /** For log lines (the configured source name). */
  name?: string;
  logger: Logger;
  now?: () => number;
}

const MEDIA_NS = SERVICE_NS.media;
const MEDIA2_NS = SERVICE_NS.media2;
const PTZ_NS = SERVICE_NS.ptz;
const DEVICE_NS = SERVICE_NS.device;

export class OnvifCamera implements CameraControl {
  readonly #o: OnvifCameraOptions;
  readonly #log: Logger;
  readonly #device: URL;
  readonly #timeoutMs: number;
  readonly #now: () => number;
  #status: CameraStatus = 'new';
  #connecting: Promise<void> | undefined;
  #offsetMs = 0;
  #services: ServiceAddresses;
  /** host:port the camera reported for its services, when it differs from the configured one. */
  #reportedServiceHost: string | undefined;
  #info: DeviceInfo | undefined;
  #profiles: MediaProfile[] = [];

  constructor(options: OnvifCameraOptions) {
    this.#o = options;
    this.#device = deviceServiceUrl(options.address);
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_CAMERA_TIMEOUT_MS;
    this.#now = options.now ?? Date.now;
    this.#log = options.logger.child({ scope: 'camera', ...(options.name ? { camera: options.name } : {}) });
    this.#services = { device: this.#device.toString() };
  }

  get status(): CameraStatus {
    return this.#status;
  }

  /** The device service URL (no credentials). */
  get deviceUrl(): string {
    return this.#device.toString();
  }

  get services(): Readonly<ServiceAddresses> {
    return this.#services;
  }

  connect(signal?: AbortSignal): Promise<void> {
    this.#connecting ??= this.#connect(signal).finally(() => {
      this.#connecting = undefined;
    });
    return this.#connecting;
  }

  async #connect(signal: AbortSignal | undefined): Promise<void> {
    try {
      await this.#readClock(signal);
      this.#services = await this.#authed(() => this.#discoverServices(signal));
      this.#info = await this.#authed(() => this.#deviceInformation(signal));
      this.#profiles = await this.#authed(() => this.#getProfiles(signal));
      this.#status = 'connected';
      this.#log.info(`connected: ${this.#info.manufacturer} ${this.#info.model}`.trim(), {
        firmware: this.#info.firmwareVersion || undefined,
        profiles: this.#profiles.map(describeProfile).join('; '),
        clockOffsetMs: this.#offsetMs,
      });
    } catch (err) {
      this.#status = 'failed';
      throw this.#clean(err);
    }
  }

  deviceInfo(): DeviceInfo {
    if (!this.#info) throw new LecternError('INTERNAL', 'deviceInfo() before connect()');
    return this.#info;
  }

  profiles(): MediaProfile[] {
    return [...this.#profiles];
  }

  clockOffsetMs(): number {
    return this.#offsetMs;
  }

  selectProfile(selector: string | undefined = this.#o.profile): MediaProfile {
    return selectProfile(this.#profiles, selector);
  }

  async streamUri(profile?: MediaProfile | string, signal?: AbortSignal): Promise<StreamInfo> {
    await this.#ready(signal);
    const p = this.#profile(profile);
    const reply = await this.#authed(() =>
      this.#services.media
        ? this.#call(this.#services.media, MEDIA_NS, 'GetStreamUri', `<StreamSetup><tt:Stream>RTP-Unicast</tt:Stream><tt:Transport><tt:Protocol>RTSP</tt:Protocol></tt:Transport></StreamSetup>${token('ProfileToken', p.token)}`, signal)
        : this.#call(this.#requireMedia2(), MEDIA2_NS, 'GetStreamUri', `<Protocol>RTSP</Protocol>${token('ProfileToken', p.token)}`, signal),
    );
    const uri = alignMediaUrl(parseStreamUri(reply.xml), this.#device, this.#reportedServiceHost);
    return { uri, profile: p };
  }

  credentialedUri(uri: string): string {
    return withCredentials(uri, this.#o.username, this.#o.password);
  }

  async snapshot(profile?: MediaProfile | string, signal?: AbortSignal): Promise<{ contentType: string; body: Buffer }> {
    await this.#ready(signal);
    const p = this.#profile(profile);
    const reply = await this.#authed(() =>
      this.#services.media
        ? this.#call(this.#services.media, MEDIA_NS, 'GetSnapshotUri', token('ProfileToken', p.token), signal)
        : this.#call(this.#requireMedia2(), MEDIA2_NS, 'GetSnapshotUri', token('ProfileToken', p.token), signal),
    );
    const url = new URL(alignMediaUrl(parseSnapshotUri(reply.xml), this.#device, this.#reportedServiceHost));
    const res = await httpRequestWithAuth(
      { url, method: 'GET', timeoutMs: this.#timeoutMs, maxBytes: MAX_SNAPSHOT_BYTES, what: 'the snapshot', ...(signal ? { signal } : {}) },
      this.#credentials(),
    ).catch((err: unknown) => {
      throw this.#clean(err);
    });
    if (res.status === 401) throw new LecternError('CAMERA_AUTH_FAILED', `the snapshot: ${describeUrl(url)} refused the user name or password (HTTP 401)`);
    if (res.status !== 200) throw new LecternError('CAMERA_FAULT', `the snapshot: ${describeUrl(url)} answered HTTP ${res.status}`);
    const contentType = String(res.headers['content-type'] ?? '').split(';')[0]?.trim() ?? '';
    const isJpeg = res.body.length > 3 && res.body[0] === 0xff && res.body[1] === 0xd8;
    if (!contentType.startsWith('image/') && !isJpeg) {
      throw new LecternError('CAMERA_BAD_REPLY', `the snapshot: ${describeUrl(url)} sent ${contentType || 'something'} of ${res.body.length} bytes, not an image`);
    }
    return { contentType: contentType.startsWith('image/') ? contentType : 'image/jpeg', body: res.body };
  }

  async presets(profile?: MediaProfile | string, signal?: AbortSignal): Promise<Preset[]> {
    await this.#ready(signal);
    const p = this.#profile(profile);
    const ptz = this.#requirePtz();
    const reply = await this.#authed(() => this.#call(ptz, PTZ_NS, 'GetPresets', token('ProfileToken', p.token), signal));
    return parsePresets(reply.xml);
  }

  async gotoPreset(tokenOrName: string, profile?: MediaProfile | string, signal?: AbortSignal): Promise<Preset> {
    await this.#ready(signal);
    const p = this.#profile(profile);
    const list = await this.presets(p, signal);
    const preset = findPreset(list, tokenOrName);
    if (!preset) {
      throw new LecternError('CAMERA_NO_MATCH', `the camera has no preset "${tokenOrName}" (it has: ${list.map((x) => x.name).join(', ') || 'none'})`);
    }
    const ptz = this.#requirePtz();
    const reply = await this.#authed(() => this.#call(ptz, PTZ_NS, 'GotoPreset', `${token('ProfileToken', p.token)}${token('PresetToken', preset.token)}`, signal));
    expectResponse(reply.xml, 'GotoPreset');
    this.#log.info(`moved to preset "${preset.name}"`, { preset: preset.token });
    return preset;
  }

  async setPreset(name: string, profile?: MediaProfile | string, signal?: AbortSignal): Promise<Preset> {
    if (name.trim() === '') throw new LecternError('CAMERA_NO_MATCH', 'a preset needs a name');
    await this.#ready(signal);
    const p = this.#profile(profile);
    const existing = (await this.presets(p, signal)).find((x) => x.name === name);
    const ptz = this.#requirePtz();
    const body = `${token('ProfileToken', p.token)}${token('PresetName', name)}${existing ? token('PresetToken', existing.token) : ''}`;
    const reply = await this.#authed(() => this.#call(ptz, PTZ_NS, 'SetPreset', body, signal));
    const preset = { token: parseSetPreset(reply.xml), name };
    this.#log.info(`${existing ? 'updated' : 'saved'} preset "${name}"`, { preset: preset.token });
    return preset;
  }

  async audioConfig(profile?: MediaProfile | string, signal?: AbortSignal): Promise<AudioConfig> {
    await this.#ready(signal);
    const media = this.#requireMedia1('audio configuration');
    // Re-read the profiles: the audio attached to a profile is exactly what may have changed.
    this.#profiles = await this.#authed(() => this.#getProfiles(signal));
    const p = this.#profile(typeof profile === 'string' ? profile : profile?.token);
    const sources = await this.#authed(() => this.#call(media, MEDIA_NS, 'GetAudioSourceConfigurations', '', signal));
    const encoders = await this.#authed(() => this.#call(media, MEDIA_NS, 'GetAudioEncoderConfigurations', '', signal));
    const config: AudioConfig = {
      profileToken: p.token,
      availableSources: parseAudioSourceConfigurations(sources.xml),
      availableEncoders: parseAudioEncoderConfigurations(encoders.xml),
    };
    if (p.audioSource) config.source = p.audioSource;
    if (p.audio) config.encoder = p.audio;
    return config;
  }

  /**
   * Changes an audio encoder configuration (encoding, bit rate, sample rate). When the profile has
   * no audio yet, the first audio source and encoder configurations are attached to it first:
   * many cameras ship with audio off, and a lecture without sound is not a lecture.
   */
  async setAudioEncoder(change: AudioEncoderChange, profile?: MediaProfile | string, signal?: AbortSignal): Promise<AudioEncoderInfo> {
    const current = await this.audioConfig(profile, signal);
    const media = this.#requireMedia1('audio configuration');
    const profileToken = current.profileToken;
    if (!current.source) {
      const source = current.availableSources[0];
      if (!source) throw new LecternError('CAMERA_UNSUPPORTED', 'the camera has no audio source');
      const reply = await this.#authed(() => this.#call(media, MEDIA_NS, 'AddAudioSourceConfiguration', `${token('ProfileToken', profileToken)}${token('ConfigurationToken', source.token)}`, signal));
      expectResponse(reply.xml, 'AddAudioSourceConfiguration');
      this.#log.info(`attached audio source "${source.name}" to profile ${profileToken}`);
    }
    const encoderToken = change.token ?? current.encoder?.token ?? current.availableEncoders[0]?.token;
    if (!encoderToken) throw new LecternError('CAMERA_UNSUPPORTED', 'the camera has no audio encoder configuration');
    if (!current.encoder || current.encoder.token !== encoderToken) {
      const reply = await this.#authed(() => this.#call(media, MEDIA_NS, 'AddAudioEncoderConfiguration', `${token('ProfileToken', profileToken)}${token('ConfigurationToken', encoderToken)}`, signal));
      expectResponse(reply.xml, 'AddAudioEncoderConfiguration');
    }
    const before = parseAudioEncoderConfiguration((await this.#authed(() => this.#call(media, MEDIA_NS, 'GetAudioEncoderConfiguration', token('ConfigurationToken', encoderToken), signal))).xml);
    const wanted: AudioEncoderConfiguration = {
      ...before,
      ...(change.encoding !== undefined ? { encoding: change.encoding } : {}),
      ...(change.bitrateKbps !== undefined ? { bitrateKbps: change.bitrateKbps } : {}),
      ...(change.sampleRateKhz !== undefined ? { sampleRateKhz: change.sampleRateKhz } : {}),
    };
    const reply = await this.#authed(() => this.#call(media, MEDIA_NS, 'SetAudioEncoderConfiguration', `${audioEncoderXml(wanted)}<ForcePersistence>true</ForcePersistence>`, signal));
    expectResponse(reply.xml, 'SetAudioEncoderConfiguration');
    // The camera's own view afterwards: it may round a bit rate to one it supports.
    const after = parseAudioEncoderConfiguration((await this.#authed(() => this.#call(media, MEDIA_NS, 'GetAudioEncoderConfiguration', token('ConfigurationToken', encoderToken), signal))).xml);
    this.#profiles = await this.#authed(() => this.#getProfiles(signal));
    this.#log.info(`audio encoder ${after.token} is now ${after.encoding} ${after.bitrateKbps ?? '?'} kbit/s ${after.sampleRateKhz ?? '?'} kHz`);
    const { token: t, name, encoding, bitrateKbps, sampleRateKhz } = after;
    return { token: t, name, encoding, ...(bitrateKbps !== undefined ? { bitrateKbps } : {}), ...(sampleRateKhz !== undefined ? { sampleRateKhz } : {}) };
  }

  // ---- internals ----

  async #ready(signal: AbortSignal | undefined): Promise<void> {
    if (this.#status !== 'connected') await this.connect(signal);
  }

  #profile(profile: MediaProfile | string | undefined): MediaProfile {
    if (profile !== undefined && typeof profile !== 'string') return profile;
    return this.selectProfile(profile ?? this.#o.profile);
  }

  #credentials(): { username: string; password: string } | undefined {
    return this.#o.username === undefined ? undefined : { username: this.#o.username, password: this.#o.password ?? '' };
  }

  #requireMedia1(what: string): string {
    if (!this.#services.media) throw new LecternError('CAMERA_UNSUPPORTED', `${what}: the camera offers no ONVIF media (ver10) service`);
    return this.#services.media;
  }

  #requireMedia2(): string {
    if (!this.#services.media2) throw new LecternError('CAMERA_UNSUPPORTED', 'the camera offers no ONVIF media service');
    return this.#services.media2;
  }

  #requirePtz(): string {
    if (!this.#services.ptz) throw new LecternError('CAMERA_UNSUPPORTED', 'the camera offers no PTZ service, so it has no presets');
    return this.#services.ptz;
  }

  async #readClock(signal: AbortSignal | undefined): Promise<void> {
    let reply: SoapReply;
    try {
      reply = await this.#call(this.#device.toString(), DEVICE_NS, 'GetSystemDateAndTime', '', signal, false);
    } catch (err) {
      if (isLecternError(err, 'CAMERA_AUTH_FAILED') && this.#o.username !== undefined) {
        // ONVIF says this call needs no credentials; some firmwares want them anyway.
        this.#log.debug('the camera wants credentials to tell its time; asking with our clock');
        this.#offsetMs = 0;
        reply = await this.#call(this.#device.toString(), DEVICE_NS, 'GetSystemDateAndTime', '', signal);
      } else if (isLecternError(err, 'CAMERA_FAULT') || isLecternError(err, 'CAMERA_UNSUPPORTED') || isLecternError(err, 'CAMERA_BAD_REPLY')) {
        this.#log.warn(`cannot read the camera clock (${(err as LecternError).message}); signing with our own clock`);
        this.#offsetMs = 0;
        return;
      } else {
        throw err;
      }
    }
    let clock: CameraClock;
    try {
      clock = parseSystemDateAndTime(reply.xml);
    } catch (err) {
      if (!isLecternError(err, 'CAMERA_BAD_REPLY')) throw err;
      this.#log.warn(`cannot read the camera clock (${err.message}); signing with our own clock`);
      this.#offsetMs = 0;
      return;
    }
    // The camera reports whole seconds, truncated: on average its clock is half a second later.
    const cameraMs = clock.cameraTimeMs + 500;
    const ourMs = (reply.sentAtMs + reply.receivedAtMs) / 2;
    this.#offsetMs = Math.round(cameraMs - ourMs);
    const abs = Math.abs(this.#offsetMs);
    const fields = { cameraTime: new Date(clock.cameraTimeMs).toISOString(), ourTime: new Date(ourMs).toISOString(), clockOffsetMs: this.#offsetMs };
    if (abs > CLOCK_LOUD_MS) {
      this.#log.warn(`the camera clock is ${formatOffset(this.#offsetMs)} (reset by a power cut?); signing requests with the camera's time. Set up NTP on the camera`, fields);
    } else if (abs > CLOCK_WARN_MS) {
      this.#log.warn(`the camera clock is ${formatOffset(this.#offsetMs)}; signing requests with the camera's time`, fields);
    }
    if (clock.fromLocalTime) this.#log.debug('the camera gave only its local time; treating it as UTC');
  }

  async #discoverServices(signal: AbortSignal | undefined): Promise<ServiceAddresses> {
    let reported: ReportedServices = {};
    let firstError: LecternError | undefined;
    // Faults and odd replies only mean "ask the other way"; the network or the credentials failing means stop.
    const fatal = (err: unknown): boolean => !isLecternError(err) || ['CAMERA_AUTH_FAILED', 'CAMERA_UNREACHABLE', 'CAMERA_TIMEOUT'].includes(err.code);
    try {
      const reply = await this.#call(this.#device.toString(), DEVICE_NS, 'GetCapabilities', '<Category>All</Category>', signal);
      reported = parseCapabilities(reply.xml);
    } catch (err) {
      if (fatal(err)) throw err;
      firstError = err as LecternError;
      this.#log.debug(`GetCapabilities failed (${firstError.message}); asking GetServices`);
    }
    if (!reported.media || !reported.ptz) {
      // GetServices also lists Media2 (H.265 cameras) and services GetCapabilities leaves out.
      try {
        const reply = await this.#call(this.#device.toString(), DEVICE_NS, 'GetServices', '<IncludeCapability>false</IncludeCapability>', signal);
        reported = { ...parseServices(reply.xml), ...reported };
      } catch (err) {
        if (fatal(err)) throw err;
        firstError ??= err as LecternError;
        this.#log.debug(`GetServices failed (${(err as LecternError).message})`);
      }
    }
    const services: ServiceAddresses = { device: this.#device.toString() };
    if (reported.media) services.media = alignServiceUrl(reported.media, this.#device);
    if (reported.media2) services.media2 = alignServiceUrl(reported.media2, this.#device);
    if (reported.ptz) services.ptz = alignServiceUrl(reported.ptz, this.#device);
    if (!services.media && !services.media2) {
      throw firstError ?? new LecternError('CAMERA_UNSUPPORTED', 'the camera reports no ONVIF media service (neither GetCapabilities nor GetServices lists one)');
    }
    const reportedMedia = reported.media ?? reported.media2;
    const reportedHost = reportedMedia ? new URL(reportedMedia).host : undefined;
    this.#reportedServiceHost = reportedHost !== undefined && new URL(reportedMedia as string).hostname !== this.#device.hostname ? reportedHost : undefined;
    if (this.#reportedServiceHost) {
      this.#log.info(`the camera reports its services at ${this.#reportedServiceHost}; using ${this.#device.host} instead`);
    }
    return services;
  }

  async #deviceInformation(signal: AbortSignal | undefined): Promise<DeviceInfo> {
    try {
      return parseDeviceInformation((await this.#call(this.#device.toString(), DEVICE_NS, 'GetDeviceInformation', '', signal)).xml);
    } catch (err) {
      if (!isLecternError(err) || (err.code !== 'CAMERA_FAULT' && err.code !== 'CAMERA_UNSUPPORTED' && err.code !== 'CAMERA_BAD_REPLY')) throw err;
      // Who made the camera is nice to know, never a reason not to record.
      this.#log.warn(`cannot read the device information (${err.message})`);
      return { manufacturer: '', model: '', firmwareVersion: '', serialNumber: '', hardwareId: '' };
    }
  }

  async #getProfiles(signal: AbortSignal | undefined): Promise<MediaProfile[]> {
    const reply = this.#services.media
      ? await this.#call(this.#services.media, MEDIA_NS, 'GetProfiles', '', signal)
      : await this.#call(this.#requireMedia2(), MEDIA2_NS, 'GetProfiles', '<Type>All</Type>', signal);
    return parseProfiles(reply.xml);
  }

  #call(url: string, ns: string, operation: string, body: string, signal: AbortSignal | undefined, authenticate = true): Promise<SoapReply> {
    const creds = authenticate ? this.#credentials() : undefined;
    return soapCall({
      url,
      ns,
      operation,
      body,
      timeoutMs: this.#timeoutMs,
      logger: this.#log,
      now: this.#now,
      ...(creds ? { credentials: { ...creds, clockOffsetMs: this.#offsetMs } } : {}),
      ...(signal ? { signal } : {}),
    });
  }

  /** Runs an authenticated step; on an authentication failure, re-reads the clock and tries once more. */
  async #authed<T>(step: () => Promise<T>): Promise<T> {
    try {
      return await step();
    } catch (err) {
      if (!isLecternError(err, 'CAMERA_AUTH_FAILED') || this.#o.username === undefined) throw this.#clean(err);
      this.#log.info(`authentication failed (${err.message}); re-reading the camera clock and trying once more`);
      try {
        await this.#readClock(undefined);
        return await step();
      } catch (again) {
        if (isLecternError(again, 'CAMERA_AUTH_FAILED')) {
          throw this.#clean(
            new LecternError('CAMERA_AUTH_FAILED', `the camera at ${describeUrl(this.#device)} refused user "${this.#o.username}": check the user name and password (${again.message})`, {
              cause: again,
            }),
          );
        }
        throw this.#clean(again);
      }
    }
  }

  /** A last guard: a camera echoing the password in a fault must not put it in our logs. */
  #clean(err: unknown): unknown {
    const password = this.#o.password;
    if (!(err instanceof LecternError) || !password || !err.message.includes(password)) return err;
    return new LecternError(err.code, redactSecrets(err.message, [password]), { details: err.details });
  }
}

function token(element: string, value: string): string {
  return `<${element}>${xmlEscape(value)}</${element}>`;
}

function audioEncoderXml(c: AudioEncoderConfiguration): string {
  const mc = c.multicast;
  const addressElement = mc.addressType === 'IPv6' ? 'IPv6Address' : 'IPv4Address';
  return (
    `<Configuration token="${xmlEscape(c.token)}">` +
    `<tt:Name>${xmlEscape(c.name)}</tt:Name>` +
    `<tt:UseCount>${c.useCount}</tt:UseCount>` +
    `<tt:Encoding>${xmlEscape(c.encoding)}</tt:Encoding>` +
    `<tt:Bitrate>${Math.round(c.bitrateKbps ?? 0)}</tt:Bitrate>` +
    `<tt:SampleRate>${Math.round(c.sampleRateKhz ?? 0)}</tt:SampleRate>` +
    `<tt:Multicast><tt:Address><tt:Type>${xmlEscape(mc.addressType)}</tt:Type><tt:${addressElement}>${xmlEscape(mc.address)}</tt:${addressElement}></tt:Address>` +
    `<tt:Port>${mc.port}</tt:Port><tt:TTL>${mc.ttl}</tt:TTL><tt:AutoStart>${mc.autoStart}</tt:AutoStart></tt:Multicast>` +
    `<tt:SessionTimeout>${xmlEscape(c.sessionTimeout)}</tt:SessionTimeout>` +
    `</Configuration>`
  );
}

function normaliseEncoding(encoding: string): string {
  return encoding.toUpperCase().replace(/[^A-Z0-9]/g, '');
}

export function describeProfile(p: MediaProfile): string {
  const video = p.video ? ` ${p.video.width}x${p.video.height} ${p.video.encoding}${p.video.fps ? ` ${p.video.fps} fps` : ''}` : '';
  return `${p.name}${p.name !== p.token ? ` [${p.token}]` : ''}${video}${p.audio ? ` + ${p.audio.encoding}` : ''}`;
}

/**
 * Picks a profile by token, then name (exact, then ignoring case), then "WxH". Without a
 * selector: the first H.264 or H.265 profile (the main stream comes first on every camera seen),
 * else the first with video, else the first.
 */
export function selectProfile(profiles: readonly MediaProfile[], selector?: string): MediaProfile {
  if (profiles.length === 0) throw new LecternError('CAMERA_NO_MATCH', 'the camera reported no media profiles');
  if (selector === undefined || selector.trim() === '') {
    const streamable = profiles.find((p) => p.video && ['H264', 'H265', 'HEVC'].includes(normaliseEncoding(p.video.encoding)));
    return streamable ?? profiles.find((p) => p.video) ?? (profiles[0] as MediaProfile);
  }
  const wanted = selector.trim();
  const byToken = profiles.find((p) => p.token === wanted) ?? profiles.find((p) => p.name === wanted) ?? profiles.find((p) => p.name.toLowerCase() === wanted.toLowerCase());
  if (byToken) return byToken;
  const size = /^(\d+)\s*[xX×]\s*(\d+)$/.exec(wanted);
  if (size) {
    const [w, h] = [Number(size[1]), Number(size[2])];
    const sameSize = profiles.filter((p) => p.video?.width === w && p.video.height === h);
    const best = sameSize.find((p) => p.video && normaliseEncoding(p.video.encoding) === 'H264') ?? sameSize[0];
    if (best) return best;
  }
  throw new LecternError('CAMERA_NO_MATCH', `the camera has no profile "${wanted}" (it has: ${profiles.map(describeProfile).join('; ')})`);
}

export function findPreset(presets: readonly Preset[], tokenOrName: string): Preset | undefined {
  return (
    presets.find((p) => p.token === tokenOrName) ??
    presets.find((p) => p.name === tokenOrName) ??
    presets.find((p) => p.name.toLowerCase() === tokenOrName.toLowerCase())
  );
}

function formatOffset(ms: number): string {
  const abs = Math.abs(ms);
  const sign = ms < 0 ? 'behind by ' : 'ahead by ';
  if (abs >= 86_400_000) return `${sign}${(abs / 86_400_000).toFixed(1)} days`;
  if (abs >= 3_600_000) return `${sign}${(abs / 3_600_000).toFixed(1)} h`;
  if (abs >= 60_000) return `${sign}${(abs / 60_000).toFixed(1)} min`;
  return `${sign}${(abs / 1000).toFixed(1)} s`;
}
