import { LecternError } from '../util/errors.js';
import type { AudioEncoderInfo, AudioSourceConfigInfo, CameraClock, DeviceInfo, MediaProfile, Preset, VideoEncoderInfo } from './types.js';
import { child, childrenNamed, childText, findFirst, parseXml, path, type XmlElement } from './xml.js';

/**
 * Pure parsers from a camera's SOAP reply (the whole envelope, as text) to typed results. They
 * are what the fixture conformance test feeds real cameras' replies through. Rules:
 * - a SOAP fault becomes CAMERA_AUTH_FAILED, CAMERA_UNSUPPORTED or CAMERA_FAULT with its codes;
 * - malformed XML or a missing element we cannot do without becomes CAMERA_BAD_REPLY naming it;
 * - optional details that a firmware leaves out or garbles are left undefined, so one odd
 *   field never blocks a recording that does not need it.
 */

export const SOAP12_NS = 'http://www.w3.org/2003/05/soap-envelope';
export const SOAP11_NS = 'http://schemas.xmlsoap.org/soap/envelope/';

export interface SoapFault {
  /** Fault code and subcodes as the camera wrote them, e.g. ["env:Sender", "ter:NotAuthorized"]. */
  codes: string[];
  reason: string;
}

function bad(operation: string, problem: string): LecternError {
  return new LecternError('CAMERA_BAD_REPLY', `${operation}: ${problem}`);
}

/** The SOAP Body of a reply; CAMERA_BAD_REPLY when the document is not a SOAP envelope. */
export function envelopeBody(xml: string, operation: string): XmlElement {
  const root = parseXml(xml, operation);
  if (root.name !== 'Envelope' || (root.ns !== SOAP12_NS && root.ns !== SOAP11_NS)) {
    throw bad(operation, `expected a SOAP Envelope, got <${root.name}>`);
  }
  const body = child(root, 'Body');
  if (!body) throw bad(operation, 'the SOAP envelope has no Body');
  return body;
}

export function readFault(body: XmlElement): SoapFault | undefined {
  const fault = child(body, 'Fault');
  if (!fault) return undefined;
  const codes: string[] = [];
  // SOAP 1.2: Code/Value, Code/Subcode/Value, nested; SOAP 1.1: faultcode.
  let code = child(fault, 'Code');
  while (code) {
    const value = childText(code, 'Value');
    if (value) codes.push(value);
    code = child(code, 'Subcode');
  }
  const faultcode = childText(fault, 'faultcode');
  if (faultcode) codes.push(faultcode);
  const reason = childrenNamed(child(fault, 'Reason'), 'Text').map((t) => t.text).find((t) => t !== '') ?? childText(fault, 'faultstring') ?? '';
  // ONVIF's own detail block sometimes says more than the reason (e.g. "No such profile").
  const detail = findFirst(child(fault, 'Detail') ?? child(fault, 'detail'), 'Fault');
  const detailReason = childText(detail, 'Reason') ?? childText(detail, 'Description');
  return { codes, reason: detailReason && detailReason !== reason ? `${reason} (${detailReason})`.trim() : reason };
}

const AUTH_FAULTS = ['notauthorized', 'failedauthentication', 'failedcheck', 'invalidsecurity', 'securitytokenunavailable', 'messageexpired'];
const UNSUPPORTED_FAULTS = ['actionnotsupported', 'notimplemented'];

/** The error a fault stands for. Authentication faults are told apart so callers can re-read the clock. */
export function faultError(operation: string, fault: SoapFault): LecternError {
  const locals = fault.codes.map((c) => (c.includes(':') ? c.slice(c.indexOf(':') + 1) : c).toLowerCase());
  const reason = fault.reason.toLowerCase();
  const summary = `${fault.codes.join(' / ') || 'no code'}${fault.reason ? `: ${fault.reason}` : ''}`;
  const details = { codes: fault.codes, reason: fault.reason };
  if (locals.some((c) => AUTH_FAULTS.includes(c)) || /not ?authori[sz]ed|authority failure|authentication fail|unauthori[sz]ed/.test(reason)) {
    return new LecternError('CAMERA_AUTH_FAILED', `${operation}: the camera refused the credentials (${summary})`, { details });
  }
  if (locals.some((c) => UNSUPPORTED_FAULTS.includes(c)) || /not supported|not implemented/.test(reason)) {
    return new LecternError('CAMERA_UNSUPPORTED', `${operation}: the camera does not support this (${summary})`, { details });
  }
  return new LecternError('CAMERA_FAULT', `${operation}: the camera answered with a fault (${summary})`, { details });
}

/** The `{operation}Response` element of a successful reply; throws the fault's error otherwise. */
export function readResponse(xml: string, operation: string): XmlElement {
  const body = envelopeBody(xml, operation);
  const fault = readFault(body);
  if (fault) throw faultError(operation, fault);
  const response = child(body, `${operation}Response`);
  if (!response) {
    const got = body.children[0]?.name;
    throw bad(operation, got ? `expected ${operation}Response, got ${got}` : `the SOAP Body is empty (expected ${operation}Response)`);
  }
  return response;
}

// ---- device service ----

function intIn(el: XmlElement | undefined, name: string, min: number, max: number, operation: string, where: string): number {
  const text = childText(el, name);
  if (text === undefined) throw bad(operation, `${where}/${name} is missing`);
  const value = Number(text);
  if (!Number.isInteger(value) || value < min || value > max) throw bad(operation, `${where}/${name} is "${text}", expected an integer from ${min} to ${max}`);
  return value;
}

export function parseSystemDateAndTime(xml: string): CameraClock {
  const op = 'GetSystemDateAndTime';
  const sdt = child(readResponse(xml, op), 'SystemDateAndTime');
  if (!sdt) throw bad(op, 'SystemDateAndTime is missing');
  const utc = child(sdt, 'UTCDateTime');
  const local = child(sdt, 'LocalDateTime');
  const source = utc ?? local;
  const where = utc ? 'UTCDateTime' : 'LocalDateTime';
  if (!source) throw bad(op, 'neither UTCDateTime nor LocalDateTime is present');
  const date = child(source, 'Date');
  const time = child(source, 'Time');
  if (!date) throw bad(op, `${where}/Date is missing`);
  if (!time) throw bad(op, `${where}/Time is missing`);
  // Cameras that lost their clock report 1970 or 2000; both are still a valid clock to sign with.
  const year = intIn(date, 'Year', 1970, 2200, op, `${where}/Date`);
  const month = intIn(date, 'Month', 1, 12, op, `${where}/Date`);
  const day = intIn(date, 'Day', 1, 31, op, `${where}/Date`);
  const hour = intIn(time, 'Hour', 0, 23, op, `${where}/Time`);
  const minute = intIn(time, 'Minute', 0, 59, op, `${where}/Time`);
  // 60 is a leap second; counting it as 59 is off by one second at most.
  const second = Math.min(59, intIn(time, 'Second', 0, 60, op, `${where}/Time`));
  // Date.UTC from the parts, never setUTC* on today's date (node-onvif's month-rollover bug).
  const ms = Date.UTC(year, month - 1, day, hour, minute, second);
  if (new Date(ms).getUTCDate() !== day) throw bad(op, `${where}/Date ${year}-${month}-${day} is not a calendar date`);
  return { cameraTimeMs: ms, fromLocalTime: !utc };
}

export function parseDeviceInformation(xml: string): DeviceInfo {
  const r = readResponse(xml, 'GetDeviceInformation');
  return {
    manufacturer: childText(r, 'Manufacturer') ?? '',
    model: childText(r, 'Model') ?? '',
    firmwareVersion: childText(r, 'FirmwareVersion') ?? '',
    serialNumber: childText(r, 'SerialNumber') ?? '',
    hardwareId: childText(r, 'HardwareId') ?? '',
  };
}

function httpUrl(text: string | undefined): string | undefined {
  if (!text) return undefined;
  try {
    const url = new URL(text.trim());
    return url.protocol === 'http:' || url.protocol === 'https:' ? url.toString() : undefined;
  } catch {
    return undefined;
  }
}

export interface ReportedServices {
  device?: string;
  media?: string;
  media2?: string;
  ptz?: string;
}

export function parseCapabilities(xml: string): ReportedServices {
  const caps = child(readResponse(xml, 'GetCapabilities'), 'Capabilities');
  if (!caps) throw bad('GetCapabilities', 'Capabilities is missing');
  const out: ReportedServices = {};
  const device = httpUrl(path(caps, 'Device', 'XAddr')?.text);
  const media = httpUrl(path(caps, 'Media', 'XAddr')?.text);
  const ptz = httpUrl(path(caps, 'PTZ', 'XAddr')?.text);
  if (device) out.device = device;
  if (media) out.media = media;
  if (ptz) out.ptz = ptz;
  return out;
}

export const SERVICE_NS = {
  device: 'http://www.onvif.org/ver10/device/wsdl',
  media: 'http://www.onvif.org/ver10/media/wsdl',
  media2: 'http://www.onvif.org/ver20/media/wsdl',
  ptz: 'http://www.onvif.org/ver20/ptz/wsdl',
} as const;

export function parseServices(xml: string): ReportedServices {
  const r = readResponse(xml, 'GetServices');
  const out: ReportedServices = {};
  for (const service of childrenNamed(r, 'Service')) {
    const ns = childText(service, 'Namespace');
    const xaddr = httpUrl(childText(service, 'XAddr'));
    if (!ns || !xaddr) continue;
    for (const [key, value] of Object.entries(SERVICE_NS) as Array<[keyof ReportedServices, string]>) {
      if (ns === value && out[key] === undefined) out[key] = xaddr;
    }
  }
  return out;
}

// ---- media service (ver10, and ver20 "Media2" where the shapes differ) ----

function positiveNumber(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  return Number.isFinite(n) && n > 0 ? n : undefined;
}

function parseVideoEncoder(el: XmlElement | undefined): VideoEncoderInfo | undefined {
  if (!el) return undefined;
  const resolution = child(el, 'Resolution');
  const width = positiveNumber(childText(resolution, 'Width'));
  const height = positiveNumber(childText(resolution, 'Height'));
  const encoding = childText(el, 'Encoding');
  if (!width || !height || !encoding || !Number.isInteger(width) || !Number.isInteger(height)) return undefined;
  const rate = child(el, 'RateControl');
  const info: VideoEncoderInfo = { token: el.attrs.token ?? '', encoding, width, height };
  const fps = positiveNumber(childText(rate, 'FrameRateLimit'));
  const bitrateKbps = positiveNumber(childText(rate, 'BitrateLimit'));
  if (fps !== undefined) info.fps = fps;
  if (bitrateKbps !== undefined) info.bitrateKbps = bitrateKbps;
  return info;
}

export function parseAudioEncoder(el: XmlElement | undefined): AudioEncoderInfo | undefined {
  const token = el?.attrs.token;
  const encoding = childText(el, 'Encoding');
  if (!el || !token || !encoding) return undefined;
  const info: AudioEncoderInfo = { token, name: childText(el, 'Name') ?? token, encoding };
  const bitrateKbps = positiveNumber(childText(el, 'Bitrate'));
  const sampleRateKhz = positiveNumber(childText(el, 'SampleRate'));
  if (bitrateKbps !== undefined) info.bitrateKbps = bitrateKbps;
  if (sampleRateKhz !== undefined) info.sampleRateKhz = sampleRateKhz;
  return info;
}

export function parseAudioSource(el: XmlElement | undefined): AudioSourceConfigInfo | undefined {
  const token = el?.attrs.token;
  if (!el || !token) return undefined;
  return { token, name: childText(el, 'Name') ?? token, sourceToken: childText(el, 'SourceToken') ?? '' };
}

export function parseProfiles(xml: string): MediaProfile[] {
  const op = 'GetProfiles';
  const r = readResponse(xml, op);
  return childrenNamed(r, 'Profiles').map((p, i) => {
    const token = p.attrs.token;
    if (!token) throw bad(op, `profile ${i + 1} has no token`);
    // Media2 groups the configurations under <Configurations> with shorter names.
    const configs = child(p, 'Configurations');
    const profile: MediaProfile = { token, name: childText(p, 'Name') ?? token };
    const video = parseVideoEncoder(configs ? child(configs, 'VideoEncoder') : child(p, 'VideoEncoderConfiguration'));
    const audioSource = parseAudioSource(configs ? child(configs, 'AudioSource') : child(p, 'AudioSourceConfiguration'));
    const audio = parseAudioEncoder(configs ? child(configs, 'AudioEncoder') : child(p, 'AudioEncoderConfiguration'));
    const ptzToken = (configs ? child(configs, 'PTZ') : child(p, 'PTZConfiguration'))?.attrs.token;
    if (video) profile.video = video;
    if (audioSource) profile.audioSource = audioSource;
    if (audio) profile.audio = audio;
    if (ptzToken) profile.ptzConfigurationToken = ptzToken;
    return profile;
  });
}

function parseMediaUri(xml: string, op: string): string {
  const r = readResponse(xml, op);
  // Media1: MediaUri/Uri; Media2: Uri directly.
  const text = childText(child(r, 'MediaUri'), 'Uri') ?? childText(r, 'Uri');
  if (!text) throw bad(op, 'Uri is missing');
  try {
    return new URL(text).toString();
  } catch {
    throw bad(op, `Uri "${text.slice(0, 200)}" is not a URL`);
  }
}

export function parseStreamUri(xml: string): string {
  return parseMediaUri(xml, 'GetStreamUri');
}

export function parseSnapshotUri(xml: string): string {
  return parseMediaUri(xml, 'GetSnapshotUri');
}

/** GetAudioEncoderConfigurations, or GetCompatibleAudioEncoderConfigurations. */
export function parseAudioEncoderConfigurations(xml: string, op = 'GetAudioEncoderConfigurations'): AudioEncoderInfo[] {
  return childrenNamed(readResponse(xml, op), 'Configurations').flatMap((c) => parseAudioEncoder(c) ?? []);
}

export function parseAudioSourceConfigurations(xml: string, op = 'GetAudioSourceConfigurations'): AudioSourceConfigInfo[] {
  return childrenNamed(readResponse(xml, op), 'Configurations').flatMap((c) => parseAudioSource(c) ?? []);
}

/**
 * One audio encoder configuration with everything SetAudioEncoderConfiguration must send back
 * (the schema requires Multicast and SessionTimeout, so they are echoed as the camera gave them).
 */
export interface AudioEncoderConfiguration extends AudioEncoderInfo {
  useCount: number;
  multicast: { addressType: string; address: string; port: number; ttl: number; autoStart: boolean };
  sessionTimeout: string;
}

export function parseAudioEncoderConfiguration(xml: string): AudioEncoderConfiguration {
  const op = 'GetAudioEncoderConfiguration';
  const el = child(readResponse(xml, op), 'Configuration');
  const info = parseAudioEncoder(el);
  if (!el || !info) throw bad(op, 'Configuration (with a token and an Encoding) is missing');
  const mc = child(el, 'Multicast');
  const addr = child(mc, 'Address');
  const addressType = childText(addr, 'Type') ?? 'IPv4';
  return {
    ...info,
    useCount: Number(childText(el, 'UseCount') ?? '0') || 0,
    multicast: {
      addressType,
      address: childText(addr, addressType === 'IPv6' ? 'IPv6Address' : 'IPv4Address') ?? '0.0.0.0',
      port: Number(childText(mc, 'Port') ?? '0') || 0,
      ttl: Number(childText(mc, 'TTL') ?? '1') || 1,
      autoStart: childText(mc, 'AutoStart') === 'true',
    },
    sessionTimeout: childText(el, 'SessionTimeout') ?? 'PT60S',
  };
}

// ---- PTZ ----

export function parsePresets(xml: string): Preset[] {
  const op = 'GetPresets';
  return childrenNamed(readResponse(xml, op), 'Preset').map((p, i) => {
    const token = p.attrs.token;
    if (!token) throw bad(op, `preset ${i + 1} has no token`);
    return { token, name: childText(p, 'Name') ?? token };
  });
}

export function parseSetPreset(xml: string): string {
  const token = childText(readResponse(xml, 'SetPreset'), 'PresetToken');
  if (!token) throw bad('SetPreset', 'PresetToken is missing');
  return token;
}

/** For operations whose reply carries nothing (GotoPreset, Set.../Add... configuration). */
export function expectResponse(xml: string, operation: string): void {
  readResponse(xml, operation);
}

// ---- WS-Discovery ----

export interface ProbeMatch {
  /** The device's stable endpoint reference (urn:uuid:...). */
  endpoint: string;
  xaddrs: string[];
  types: string[];
  scopes: string[];
  /** From the onvif://www.onvif.org/name/ scope, decoded. */
  name?: string;
  /** From the onvif://www.onvif.org/hardware/ scope, decoded. */
  hardware?: string;
}

export interface ProbeMatches {
  relatesTo?: string;
  matches: ProbeMatch[];
}

function scopeValue(scopes: readonly string[], key: string): string | undefined {
  const prefix = `onvif://www.onvif.org/${key}/`;
  const scope = scopes.find((s) => s.toLowerCase().startsWith(prefix));
  if (!scope) return undefined;
  const raw = scope.slice(prefix.length);
  try {
    return decodeURIComponent(raw.replace(/\+/g, ' ')) || undefined;
  } catch {
    return raw || undefined;
  }
}

export function parseProbeMatches(xml: string): ProbeMatches {
  const op = 'ProbeMatches';
  const root = parseXml(xml, op);
  if (root.name !== 'Envelope') throw bad(op, `expected a SOAP Envelope, got <${root.name}>`);
  const body = child(root, 'Body');
  const pm = child(body, 'ProbeMatches');
  if (!pm) throw bad(op, 'ProbeMatches is missing');
  const relatesTo = childText(child(root, 'Header'), 'RelatesTo');
  const words = (text: string | undefined): string[] => (text ?? '').split(/\s+/).filter((w) => w !== '');
  const matches = childrenNamed(pm, 'ProbeMatch').flatMap((m): ProbeMatch[] => {
    const endpoint = childText(child(m, 'EndpointReference'), 'Address');
    const xaddrs = words(childText(m, 'XAddrs')).flatMap((x) => httpUrl(x) ?? []);
    if (!endpoint && xaddrs.length === 0) return [];
    const scopes = words(childText(m, 'Scopes'));
    const match: ProbeMatch = { endpoint: endpoint ?? (xaddrs[0] as string), xaddrs, types: words(childText(m, 'Types')), scopes };
    const name = scopeValue(scopes, 'name');
    const hardware = scopeValue(scopes, 'hardware');
    if (name) match.name = name;
    if (hardware) match.hardware = hardware;
    return [match];
  });
  return relatesTo ? { relatesTo, matches } : { matches };
}
