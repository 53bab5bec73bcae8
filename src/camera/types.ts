/**
 * What the rest of lectern knows about a camera. `capture` and `agent` depend on these types
 * only; the ONVIF details stay in this module.
 */

export interface DeviceInfo {
  manufacturer: string;
  model: string;
  firmwareVersion: string;
  serialNumber: string;
  hardwareId: string;
}

/** The camera's clock as read by GetSystemDateAndTime. */
export interface CameraClock {
  /** The camera's time in epoch milliseconds (whole seconds: ONVIF has no fractions). */
  cameraTimeMs: number;
  /**
   * True when the camera gave only its local time, used here as if it were UTC. The offset is
   * then wrong by the camera's time zone, but still what the camera checks tokens against.
   */
  fromLocalTime: boolean;
}

/** Where the camera's services answer (absolute URLs, already pointed at the configured host). */
export interface ServiceAddresses {
  device: string;
  media?: string;
  media2?: string;
  ptz?: string;
}

export interface VideoEncoderInfo {
  token: string;
  /** H264, H265, JPEG, MPEG4 as the camera names it (Media2 may say "H264" or "H.264"). */
  encoding: string;
  width: number;
  height: number;
  fps?: number;
  bitrateKbps?: number;
}

export interface AudioEncoderInfo {
  token: string;
  name: string;
  /** G711, G726 or AAC. */
  encoding: string;
  bitrateKbps?: number;
  sampleRateKhz?: number;
}

export interface AudioSourceConfigInfo {
  token: string;
  name: string;
  sourceToken: string;
}

export interface MediaProfile {
  token: string;
  name: string;
  video?: VideoEncoderInfo;
  audioSource?: AudioSourceConfigInfo;
  audio?: AudioEncoderInfo;
  /** The token of the profile's PTZ configuration; presets need one. */
  ptzConfigurationToken?: string;
}

export interface Preset {
  token: string;
  name: string;
}

/** The audio side of one profile, and every configuration that could be attached to it. */
export interface AudioConfig {
  profileToken: string;
  source?: AudioSourceConfigInfo;
  encoder?: AudioEncoderInfo;
  availableSources: AudioSourceConfigInfo[];
  availableEncoders: AudioEncoderInfo[];
}

export interface AudioEncoderChange {
  /** Which encoder configuration; default: the one attached to the selected profile. */
  token?: string;
  encoding?: string;
  bitrateKbps?: number;
  sampleRateKhz?: number;
}

/** A stream for ffmpeg. `uri` never holds credentials; see credentialedUri(). */
export interface StreamInfo {
  uri: string;
  profile: MediaProfile;
}

/**
 * - `new`: constructed, nothing asked yet.
 * - `connected`: clock, services and profiles are known.
 * - `failed`: the last connect() failed; the next call tries again.
 */
export type CameraStatus = 'new' | 'connected' | 'failed';

/** The camera operations lectern uses, independent of the protocol behind them. */
export interface CameraControl {
  readonly status: CameraStatus;
  /** Reads the clock (unauthenticated), then services, device information and profiles. */
  connect(signal?: AbortSignal): Promise<void>;
  deviceInfo(): DeviceInfo;
  profiles(): MediaProfile[];
  /** The camera clock minus ours, in ms, as measured by the last connect(). */
  clockOffsetMs(): number;
  /** Picks a profile by token, name or "WxH"; without a selector, the first H.264/H.265 one. */
  selectProfile(selector?: string): MediaProfile;
  streamUri(profile?: MediaProfile | string, signal?: AbortSignal): Promise<StreamInfo>;
  snapshot(profile?: MediaProfile | string, signal?: AbortSignal): Promise<{ contentType: string; body: Buffer }>;
  presets(profile?: MediaProfile | string, signal?: AbortSignal): Promise<Preset[]>;
  /** Moves to a preset given by token or name. */
  gotoPreset(tokenOrName: string, profile?: MediaProfile | string, signal?: AbortSignal): Promise<Preset>;
  /** Saves the current position as a preset with this name (updating one of the same name). */
  setPreset(name: string, profile?: MediaProfile | string, signal?: AbortSignal): Promise<Preset>;
  audioConfig(profile?: MediaProfile | string, signal?: AbortSignal): Promise<AudioConfig>;
  setAudioEncoder(change: AudioEncoderChange, profile?: MediaProfile | string, signal?: AbortSignal): Promise<AudioEncoderInfo>;
  /** The URL ffmpeg needs: `uri` with the user name and password; never log it. */
  credentialedUri(uri: string): string;
}
