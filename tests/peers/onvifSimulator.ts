import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import dgram from 'node:dgram';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { XMLParser } from 'fast-xml-parser';

/**
 * An ONVIF camera for the tests, in-process on 127.0.0.1 (port 0): SOAP 1.2 over HTTP for the
 * device, media (ver10 and, optionally, ver20), and PTZ services; WS-Security UsernameToken
 * checking against its own clock (settable, to play a camera whose clock reset after a power
 * cut); a JPEG snapshot behind HTTP Digest; PTZ presets; an audio encoder configuration that can
 * be read and changed; and WS-Discovery over UDP (unicast replies to a Probe).
 *
 * It is written independently of src/camera (its own XML reading with fast-xml-parser's object
 * mode, its own digest checks), so a bug in the client cannot be cancelled out by the same bug
 * here. Replies use the prefixes and layout of gSOAP-based firmwares, as in the fixtures.
 */

export interface SimProfile {
  token: string;
  name: string;
  width: number;
  height: number;
  fps: number;
  bitrateKbps: number;
  encoding: string;
  audioSourceToken?: string;
  audioEncoderToken?: string;
}

export interface SimAudioEncoder {
  token: string;
  name: string;
  encoding: string;
  bitrateKbps: number;
  sampleRateKhz: number;
}

export interface SimPreset {
  token: string;
  name: string;
}

export interface SimCall {
  service: string;
  operation: string;
  /** A valid UsernameToken was present. */
  authenticated: boolean;
  /** The fault subcode sent back, if any. */
  fault?: string;
}

export interface OnvifSimulatorOptions {
  username: string;
  password: string;
  /** What GetStreamUri returns for each profile (by token), or one URL for all. */
  rtspUrl: string | Record<string, string>;
  snapshotJpeg: Buffer;
  /** The camera clock minus the real time, in ms. */
  clockOffsetMs?: number;
  /** Accept tokens whose Created is this far from the camera clock (real cameras: seconds to minutes). */
  tokenWindowMs?: number;
  /** Write this host[:port] into service and media URLs instead of the real one (a camera behind NAT). */
  reportedHost?: string;
  /** Offer only the Media2 service (an H.265-era camera). */
  media2Only?: boolean;
  /** Also require HTTP Digest on SOAP requests (as some newer firmwares do). */
  soapHttpDigest?: boolean;
  /** Put user:password into the stream URI it returns (some firmwares do). */
  credentialsInStreamUri?: boolean;
  /** Answer these operations only after a delay (timeouts). */
  delayMs?: Record<string, number>;
  /** Bind WS-Discovery here (default 127.0.0.1, port 0). */
  discovery?: { address?: string; port?: number; joinMulticast?: boolean };
}

const NS = {
  env: 'http://www.w3.org/2003/05/soap-envelope',
  tt: 'http://www.onvif.org/ver10/schema',
  tds: 'http://www.onvif.org/ver10/device/wsdl',
  trt: 'http://www.onvif.org/ver10/media/wsdl',
  tr2: 'http://www.onvif.org/ver20/media/wsdl',
  tptz: 'http://www.onvif.org/ver20/ptz/wsdl',
  ter: 'http://www.onvif.org/ver10/error',
  wsa: 'http://schemas.xmlsoap.org/ws/2004/08/addressing',
  d: 'http://schemas.xmlsoap.org/ws/2005/04/discovery',
  dn: 'http://www.onvif.org/ver10/network/wsdl',
};

const SERVICES: Record<string, string> = {
  '/onvif/device_service': 'device',
  '/onvif/media_service': 'media',
  '/onvif/media2_service': 'media2',
  '/onvif/ptz_service': 'ptz',
};

const PRE_AUTH = new Set(['GetSystemDateAndTime']);

const esc = (v: string | number | boolean): string =>
  String(v).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c] ?? c);

class Fault extends Error {
  constructor(
    readonly httpStatus: number,
    readonly code: 'Sender' | 'Receiver',
    readonly subcodes: string[],
    readonly reason: string,
  ) {
    super(reason);
  }
}

const xml = new XMLParser({ removeNSPrefix: true, ignoreAttributes: false, attributeNamePrefix: '@', parseTagValue: false, parseAttributeValue: false });

type Obj = Record<string, unknown>;
function text(v: unknown): string | undefined {
  if (typeof v === 'string') return v.trim();
  if (v && typeof v === 'object' && typeof (v as Obj)['#text'] === 'string') return ((v as Obj)['#text'] as string).trim();
  return undefined;
}
function obj(v: unknown): Obj {
  return v && typeof v === 'object' && !Array.isArray(v) ? (v as Obj) : {};
}

export class OnvifSimulator {
  readonly #o: OnvifSimulatorOptions;
  #server: http.Server | undefined;
  #udp: dgram.Socket | undefined;
  #timers = new Set<NodeJS.Timeout>();
  readonly #seenNonces = new Set<string>();
  readonly #snapshotNonces = new Set<string>();
  readonly #soapNonces = new Set<string>();
  readonly endpoint = `urn:uuid:${randomBytes(16).toString('hex').replace(/(.{8})(.{4})(.{4})(.{4})(.{12})/, '$1-$2-$3-$4-$5')}`;

  clockOffsetMs: number;
  readonly calls: SimCall[] = [];
  snapshotRequests = 0;
  readonly profiles: SimProfile[] = [
    { token: 'profile_main', name: 'mainStream', width: 1280, height: 720, fps: 25, bitrateKbps: 2048, encoding: 'H264', audioSourceToken: 'audio_src_cfg', audioEncoderToken: 'audio_enc_1' },
    { token: 'profile_sub', name: 'subStream', width: 640, height: 360, fps: 15, bitrateKbps: 512, encoding: 'H264' },
  ];
  readonly audioEncoders: SimAudioEncoder[] = [{ token: 'audio_enc_1', name: 'AudioEncoder_1', encoding: 'G711', bitrateKbps: 64, sampleRateKhz: 8 }];
  readonly presets: SimPreset[] = [
    { token: '1', name: 'Home' },
    { token: '2', name: 'Podium & Board <1>' },
  ];
  currentPreset: string | undefined;

  constructor(options: OnvifSimulatorOptions) {
    this.#o = options;
    this.clockOffsetMs = options.clockOffsetMs ?? 0;
  }

  get port(): number {
    return (this.#server?.address() as AddressInfo).port;
  }

  /** host:port as IT staff would type it. */
  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  get deviceUrl(): string {
    return `http://${this.address}/onvif/device_service`;
  }

  get discoveryPort(): number {
    return (this.#udp?.address() as AddressInfo).port;
  }

  async start(): Promise<void> {
    const server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => this.#handle(req, Buffer.concat(chunks), res));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    this.#server = server;

    const udp = dgram.createSocket({ type: 'udp4', reuseAddr: true });
    udp.on('message', (msg, rinfo) => this.#onProbe(msg, rinfo));
    const d = this.#o.discovery ?? {};
    await new Promise<void>((resolve) => udp.bind(d.port ?? 0, d.address ?? '127.0.0.1', resolve));
    if (d.joinMulticast) udp.addMembership('239.255.255.250');
    this.#udp = udp;
  }

  async stop(): Promise<void> {
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    const server = this.#server;
    this.#server = undefined;
    if (server) {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
    const udp = this.#udp;
    this.#udp = undefined;
    if (udp) await new Promise<void>((resolve) => udp.close(() => resolve()));
  }

  /** The camera's clock now. */
  now(): number {
    return Date.now() + this.clockOffsetMs;
  }

  operations(): string[] {
    return this.calls.map((c) => c.operation);
  }

  // ---- HTTP ----

  #handle(req: http.IncomingMessage, body: Buffer, res: http.ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://x');
    if (req.method === 'GET' && url.pathname === '/snapshot.jpg') {
      this.#snapshot(req, res);
      return;
    }
    const service = SERVICES[url.pathname];
    if (req.method !== 'POST' || !service) {
      res.writeHead(404).end();
      return;
    }
    let operation = 'unknown';
    let authenticated = false;
    try {
      const envelope = obj(obj(xml.parse(body.toString('utf8'))).Envelope);
      const soapBody = obj(envelope.Body);
      operation = Object.keys(soapBody).find((k) => !k.startsWith('@')) ?? 'unknown';
      const args = obj(soapBody[operation]);
      authenticated = this.#checkToken(obj(obj(envelope.Header).Security));
      if (this.#o.soapHttpDigest && !PRE_AUTH.has(operation) && !this.#checkHttpDigest(req, 'POST', this.#soapNonces)) {
        this.calls.push({ service, operation, authenticated, fault: 'HTTP 401' });
        this.#challenge(res, this.#soapNonces);
        return;
      }
      if (!PRE_AUTH.has(operation) && !authenticated) throw new Fault(400, 'Sender', ['ter:NotAuthorized'], 'Sender not Authorized');
      const reply = this.#dispatch(service, operation, args);
      this.calls.push({ service, operation, authenticated });
      this.#send(res, 200, envelopeXml(reply), operation);
    } catch (err) {
      const fault = err instanceof Fault ? err : new Fault(500, 'Receiver', ['ter:Action'], err instanceof Error ? err.message : String(err));
      this.calls.push({ service, operation, authenticated, fault: fault.subcodes.at(-1) ?? fault.code });
      this.#send(res, fault.httpStatus, envelopeXml(faultXml(fault)), operation);
    }
  }

  #send(res: http.ServerResponse, status: number, body: string, operation: string): void {
    const write = (): void => {
      if (res.destroyed) return;
      res.writeHead(status, { 'content-type': 'application/soap+xml; charset=utf-8' }).end(body);
    };
    const delay = this.#o.delayMs?.[operation];
    if (delay === undefined) {
      write();
      return;
    }
    const t = setTimeout(() => {
      this.#timers.delete(t);
      write();
    }, delay);
    this.#timers.add(t);
  }

  /** WS-Security UsernameToken PasswordDigest, checked against this camera's own clock. */
  #checkToken(security: Obj): boolean {
    const token = obj(security.UsernameToken);
    const username = text(token.Username);
    const password = text(token.Password);
    const nonce = text(token.Nonce);
    const created = text(token.Created);
    if (username === undefined || password === undefined || nonce === undefined || created === undefined) return false;
    if (username !== this.#o.username) return false;
    const expected = createHash('sha1')
      .update(Buffer.concat([Buffer.from(nonce, 'base64'), Buffer.from(created), Buffer.from(this.#o.password)]))
      .digest('base64');
    if (expected !== password) return false;
    const createdMs = Date.parse(created);
    if (!Number.isFinite(createdMs) || Math.abs(createdMs - this.now()) > (this.#o.tokenWindowMs ?? 5 * 60_000)) return false;
    if (this.#seenNonces.has(nonce)) return false; // a replayed token
    this.#seenNonces.add(nonce);
    return true;
  }

  #host(): string {
    return this.#o.reportedHost ?? this.address;
  }

  #dispatch(service: string, operation: string, args: Obj): string {
    const key = `${service}.${operation}`;
    switch (key) {
      case 'device.GetSystemDateAndTime': {
        const d = new Date(this.now());
        return (
          `<tds:GetSystemDateAndTimeResponse><tds:SystemDateAndTime><tt:DateTimeType>Manual</tt:DateTimeType><tt:DaylightSavings>false</tt:DaylightSavings>` +
          `<tt:TimeZone><tt:TZ>GMT0</tt:TZ></tt:TimeZone><tt:UTCDateTime><tt:Time><tt:Hour>${d.getUTCHours()}</tt:Hour><tt:Minute>${d.getUTCMinutes()}</tt:Minute><tt:Second>${d.getUTCSeconds()}</tt:Second></tt:Time>` +
          `<tt:Date><tt:Year>${d.getUTCFullYear()}</tt:Year><tt:Month>${d.getUTCMonth() + 1}</tt:Month><tt:Day>${d.getUTCDate()}</tt:Day></tt:Date></tt:UTCDateTime>` +
          `</tds:SystemDateAndTime></tds:GetSystemDateAndTimeResponse>`
        );
      }
      case 'device.GetCapabilities': {
        const h = this.#host();
        const media = this.#o.media2Only ? '' : `<tt:Media><tt:XAddr>http://${h}/onvif/media_service</tt:XAddr><tt:StreamingCapabilities><tt:RTPMulticast>false</tt:RTPMulticast><tt:RTP_TCP>true</tt:RTP_TCP><tt:RTP_RTSP_TCP>true</tt:RTP_RTSP_TCP></tt:StreamingCapabilities></tt:Media>`;
        return (
          `<tds:GetCapabilitiesResponse><tds:Capabilities><tt:Device><tt:XAddr>http://${h}/onvif/device_service</tt:XAddr></tt:Device>` +
          `${media}<tt:PTZ><tt:XAddr>http://${h}/onvif/ptz_service</tt:XAddr></tt:PTZ></tds:Capabilities></tds:GetCapabilitiesResponse>`
        );
      }
      case 'device.GetServices': {
        const h = this.#host();
        const service = (ns: string, p: string): string => `<tds:Service><tds:Namespace>${ns}</tds:Namespace><tds:XAddr>http://${h}${p}</tds:XAddr><tds:Version><tt:Major>2</tt:Major><tt:Minor>60</tt:Minor></tds:Version></tds:Service>`;
        return (
          `<tds:GetServicesResponse>${service(NS.tds, '/onvif/device_service')}` +
          `${this.#o.media2Only ? '' : service(NS.trt, '/onvif/media_service')}${service(NS.tr2, '/onvif/media2_service')}${service(NS.tptz, '/onvif/ptz_service')}</tds:GetServicesResponse>`
        );
      }
      case 'device.GetDeviceInformation':
        return `<tds:GetDeviceInformationResponse><tds:Manufacturer>Lectern Test &amp; Co</tds:Manufacturer><tds:Model>SIM-1</tds:Model><tds:FirmwareVersion>1.0.0</tds:FirmwareVersion><tds:SerialNumber>0001</tds:SerialNumber><tds:HardwareId>SIM</tds:HardwareId></tds:GetDeviceInformationResponse>`;
      case 'media.GetProfiles':
        if (this.#o.media2Only) break;
        return `<trt:GetProfilesResponse>${this.profiles.map((p) => this.#profileXml(p)).join('')}</trt:GetProfilesResponse>`;
      case 'media.GetStreamUri': {
        if (this.#o.media2Only) break;
        const setup = obj(args.StreamSetup);
        const protocol = text(obj(setup.Transport).Protocol);
        if (protocol !== 'RTSP') throw new Fault(400, 'Sender', ['ter:InvalidArgVal', 'ter:InvalidStreamSetup'], `unsupported transport ${protocol ?? '(none)'}`);
        return `<trt:GetStreamUriResponse><trt:MediaUri><tt:Uri>${esc(this.#streamUri(this.#profileArg(args).token))}</tt:Uri><tt:InvalidAfterConnect>false</tt:InvalidAfterConnect><tt:InvalidAfterReboot>false</tt:InvalidAfterReboot><tt:Timeout>PT0S</tt:Timeout></trt:MediaUri></trt:GetStreamUriResponse>`;
      }
      case 'media.GetSnapshotUri':
        if (this.#o.media2Only) break;
        return `<trt:GetSnapshotUriResponse><trt:MediaUri><tt:Uri>${esc(`http://${this.#host()}/snapshot.jpg?profile=${this.#profileArg(args).token}&size=small`)}</tt:Uri><tt:InvalidAfterConnect>false</tt:InvalidAfterConnect><tt:InvalidAfterReboot>false</tt:InvalidAfterReboot><tt:Timeout>PT0S</tt:Timeout></trt:MediaUri></trt:GetSnapshotUriResponse>`;
      case 'media.GetAudioSourceConfigurations':
        return `<trt:GetAudioSourceConfigurationsResponse><trt:Configurations token="audio_src_cfg"><tt:Name>AudioSourceConfig</tt:Name><tt:UseCount>${this.profiles.filter((p) => p.audioSourceToken).length}</tt:UseCount><tt:SourceToken>audio_in_1</tt:SourceToken></trt:Configurations></trt:GetAudioSourceConfigurationsResponse>`;
      case 'media.GetAudioEncoderConfigurations':
        return `<trt:GetAudioEncoderConfigurationsResponse>${this.audioEncoders.map((a) => `<trt:Configurations token="${esc(a.token)}">${this.#audioEncoderBody(a)}</trt:Configurations>`).join('')}</trt:GetAudioEncoderConfigurationsResponse>`;
      case 'media.GetAudioEncoderConfiguration': {
        const a = this.#audioEncoder(text(args.ConfigurationToken));
        return `<trt:GetAudioEncoderConfigurationResponse><trt:Configuration token="${esc(a.token)}">${this.#audioEncoderBody(a)}</trt:Configuration></trt:GetAudioEncoderConfigurationResponse>`;
      }
      case 'media.SetAudioEncoderConfiguration': {
        const c = obj(args.Configuration);
        const a = this.#audioEncoder(typeof c['@token'] === 'string' ? c['@token'] : undefined);
        const encoding = text(c.Encoding);
        const bitrate = Number(text(c.Bitrate));
        const sampleRate = Number(text(c.SampleRate));
        // The schema requires these; a client that leaves them out gets what a camera would say.
        if (text(c.Name) === undefined || text(c.SessionTimeout) === undefined || !c.Multicast) throw new Fault(400, 'Sender', ['ter:InvalidArgVal', 'ter:ConfigModify'], 'Name, Multicast and SessionTimeout are required');
        if (!encoding || !['G711', 'G726', 'AAC'].includes(encoding)) throw new Fault(400, 'Sender', ['ter:InvalidArgVal', 'ter:ConfigModify'], `unsupported audio encoding ${encoding ?? '(none)'}`);
        const allowed: Record<string, { bitrates: number[]; rates: number[] }> = { G711: { bitrates: [64], rates: [8] }, G726: { bitrates: [16, 24, 32, 40], rates: [8] }, AAC: { bitrates: [32, 64, 96, 128], rates: [16, 32, 48] } };
        const opts = allowed[encoding] as { bitrates: number[]; rates: number[] };
        if (!opts.bitrates.includes(bitrate) || !opts.rates.includes(sampleRate)) {
          throw new Fault(400, 'Sender', ['ter:InvalidArgVal', 'ter:ConfigModify'], `${encoding} supports ${opts.bitrates.join('/')} kbit/s at ${opts.rates.join('/')} kHz`);
        }
        Object.assign(a, { encoding, bitrateKbps: bitrate, sampleRateKhz: sampleRate, name: text(c.Name) ?? a.name });
        return '<trt:SetAudioEncoderConfigurationResponse></trt:SetAudioEncoderConfigurationResponse>';
      }
      case 'media.AddAudioSourceConfiguration': {
        const p = this.#profileArg(args);
        if (text(args.ConfigurationToken) !== 'audio_src_cfg') throw new Fault(400, 'Sender', ['ter:InvalidArgVal', 'ter:NoConfig'], 'no such audio source configuration');
        p.audioSourceToken = 'audio_src_cfg';
        return '<trt:AddAudioSourceConfigurationResponse></trt:AddAudioSourceConfigurationResponse>';
      }
      case 'media.AddAudioEncoderConfiguration': {
        const p = this.#profileArg(args);
        if (!p.audioSourceToken) throw new Fault(400, 'Sender', ['ter:InvalidArgVal', 'ter:ConfigurationConflict'], 'add an audio source first');
        p.audioEncoderToken = this.#audioEncoder(text(args.ConfigurationToken)).token;
        return '<trt:AddAudioEncoderConfigurationResponse></trt:AddAudioEncoderConfigurationResponse>';
      }
      case 'media2.GetProfiles':
        return `<tr2:GetProfilesResponse>${this.profiles.map((p) => this.#profile2Xml(p)).join('')}</tr2:GetProfilesResponse>`;
      case 'media2.GetStreamUri':
        if (text(args.Protocol) !== 'RTSP') throw new Fault(400, 'Sender', ['ter:InvalidArgVal', 'ter:InvalidStreamSetup'], 'unsupported protocol');
        return `<tr2:GetStreamUriResponse><tr2:Uri>${esc(this.#streamUri(this.#profileArg(args).token))}</tr2:Uri></tr2:GetStreamUriResponse>`;
      case 'media2.GetSnapshotUri':
        return `<tr2:GetSnapshotUriResponse><tr2:Uri>${esc(`http://${this.#host()}/snapshot.jpg?profile=${this.#profileArg(args).token}`)}</tr2:Uri></tr2:GetSnapshotUriResponse>`;
      case 'ptz.GetPresets':
        this.#profileArg(args);
        return `<tptz:GetPresetsResponse>${this.presets.map((p) => `<tptz:Preset token="${esc(p.token)}"><tt:Name>${esc(p.name)}</tt:Name></tptz:Preset>`).join('')}</tptz:GetPresetsResponse>`;
      case 'ptz.GotoPreset': {
        this.#profileArg(args);
        const token = text(args.PresetToken);
        if (!this.presets.some((p) => p.token === token)) throw new Fault(400, 'Sender', ['ter:InvalidArgVal', 'ter:NoToken'], `no preset ${token ?? '(none)'}`);
        this.currentPreset = token;
        return '<tptz:GotoPresetResponse></tptz:GotoPresetResponse>';
      }
      case 'ptz.SetPreset': {
        this.#profileArg(args);
        const name = text(args.PresetName);
        const token = text(args.PresetToken);
        if (!name) throw new Fault(400, 'Sender', ['ter:InvalidArgVal', 'ter:InvalidPresetName'], 'a preset needs a name');
        let preset = token === undefined ? undefined : this.presets.find((p) => p.token === token);
        if (token !== undefined && !preset) throw new Fault(400, 'Sender', ['ter:InvalidArgVal', 'ter:NoToken'], `no preset ${token}`);
        if (!preset && this.presets.some((p) => p.name === name)) throw new Fault(400, 'Sender', ['ter:InvalidArgVal', 'ter:PresetExist'], 'a preset with this name exists');
        if (!preset) {
          preset = { token: String(Math.max(0, ...this.presets.map((p) => Number(p.token) || 0)) + 1), name };
          this.presets.push(preset);
        } else {
          preset.name = name;
        }
        this.currentPreset = preset.token;
        return `<tptz:SetPresetResponse><tptz:PresetToken>${esc(preset.token)}</tptz:PresetToken></tptz:SetPresetResponse>`;
      }
      default:
        break;
    }
    throw new Fault(400, 'Receiver', ['ter:ActionNotSupported'], `${operation} is not supported by the ${service} service`);
  }

  #profileArg(args: Obj): SimProfile {
    const token = text(args.ProfileToken);
    const profile = this.profiles.find((p) => p.token === token);
    if (!profile) throw new Fault(400, 'Sender', ['ter:InvalidArgVal', 'ter:NoProfile'], `no profile ${token ?? '(none)'}`);
    return profile;
  }

  #audioEncoder(token: string | undefined): SimAudioEncoder {
    const a = this.audioEncoders.find((x) => x.token === token);
    if (!a) throw new Fault(400, 'Sender', ['ter:InvalidArgVal', 'ter:NoConfig'], `no audio encoder configuration ${token ?? '(none)'}`);
    return a;
  }

  #streamUri(token: string): string {
    const raw = typeof this.#o.rtspUrl === 'string' ? this.#o.rtspUrl : (this.#o.rtspUrl[token] ?? Object.values(this.#o.rtspUrl)[0] ?? '');
    if (!this.#o.credentialsInStreamUri) return raw;
    const url = new URL(raw);
    url.username = encodeURIComponent(this.#o.username);
    url.password = encodeURIComponent(this.#o.password);
    return url.toString();
  }

  #audioEncoderBody(a: SimAudioEncoder): string {
    const useCount = this.profiles.filter((p) => p.audioEncoderToken === a.token).length;
    return (
      `<tt:Name>${esc(a.name)}</tt:Name><tt:UseCount>${useCount}</tt:UseCount><tt:Encoding>${esc(a.encoding)}</tt:Encoding><tt:Bitrate>${a.bitrateKbps}</tt:Bitrate><tt:SampleRate>${a.sampleRateKhz}</tt:SampleRate>` +
      `<tt:Multicast><tt:Address><tt:Type>IPv4</tt:Type><tt:IPv4Address>0.0.0.0</tt:IPv4Address></tt:Address><tt:Port>0</tt:Port><tt:TTL>1</tt:TTL><tt:AutoStart>false</tt:AutoStart></tt:Multicast><tt:SessionTimeout>PT60S</tt:SessionTimeout>`
    );
  }

  #profileXml(p: SimProfile): string {
    const audioSource = p.audioSourceToken ? `<tt:AudioSourceConfiguration token="${p.audioSourceToken}"><tt:Name>AudioSourceConfig</tt:Name><tt:UseCount>1</tt:UseCount><tt:SourceToken>audio_in_1</tt:SourceToken></tt:AudioSourceConfiguration>` : '';
    const encoder = this.audioEncoders.find((a) => a.token === p.audioEncoderToken);
    const audio = encoder ? `<tt:AudioEncoderConfiguration token="${esc(encoder.token)}">${this.#audioEncoderBody(encoder)}</tt:AudioEncoderConfiguration>` : '';
    return (
      `<trt:Profiles token="${esc(p.token)}" fixed="true"><tt:Name>${esc(p.name)}</tt:Name>` +
      `<tt:VideoSourceConfiguration token="video_src_cfg"><tt:Name>VideoSourceConfig</tt:Name><tt:UseCount>2</tt:UseCount><tt:SourceToken>video_in_1</tt:SourceToken><tt:Bounds x="0" y="0" width="1280" height="720"></tt:Bounds></tt:VideoSourceConfiguration>` +
      audioSource +
      `<tt:VideoEncoderConfiguration token="venc_${esc(p.token)}"><tt:Name>VideoEncoder_${esc(p.token)}</tt:Name><tt:UseCount>1</tt:UseCount><tt:Encoding>${esc(p.encoding)}</tt:Encoding>` +
      `<tt:Resolution><tt:Width>${p.width}</tt:Width><tt:Height>${p.height}</tt:Height></tt:Resolution><tt:Quality>4</tt:Quality>` +
      `<tt:RateControl><tt:FrameRateLimit>${p.fps}</tt:FrameRateLimit><tt:EncodingInterval>1</tt:EncodingInterval><tt:BitrateLimit>${p.bitrateKbps}</tt:BitrateLimit></tt:RateControl>` +
      `<tt:H264><tt:GovLength>${p.fps * 2}</tt:GovLength><tt:H264Profile>Main</tt:H264Profile></tt:H264><tt:SessionTimeout>PT60S</tt:SessionTimeout></tt:VideoEncoderConfiguration>` +
      audio +
      `<tt:PTZConfiguration token="ptz_cfg"><tt:Name>PTZ</tt:Name><tt:UseCount>2</tt:UseCount><tt:NodeToken>ptz_node</tt:NodeToken></tt:PTZConfiguration>` +
      `</trt:Profiles>`
    );
  }

  #profile2Xml(p: SimProfile): string {
    return (
      `<tr2:Profiles token="${esc(p.token)}" fixed="true"><tr2:Name>${esc(p.name)}</tr2:Name><tr2:Configurations>` +
      `<tr2:VideoEncoder token="venc_${esc(p.token)}" GovLength="${p.fps * 2}" Profile="Main"><tt:Name>VideoEncoder</tt:Name><tt:UseCount>1</tt:UseCount><tt:Encoding>${esc(p.encoding)}</tt:Encoding>` +
      `<tt:Resolution><tt:Width>${p.width}</tt:Width><tt:Height>${p.height}</tt:Height></tt:Resolution><tt:RateControl ConstantBitRate="false"><tt:FrameRateLimit>${p.fps}</tt:FrameRateLimit><tt:BitrateLimit>${p.bitrateKbps}</tt:BitrateLimit></tt:RateControl><tt:Quality>4</tt:Quality></tr2:VideoEncoder>` +
      `<tr2:PTZ token="ptz_cfg"><tt:Name>PTZ</tt:Name><tt:UseCount>2</tt:UseCount><tt:NodeToken>ptz_node</tt:NodeToken></tr2:PTZ>` +
      `</tr2:Configurations></tr2:Profiles>`
    );
  }

  // ---- HTTP Digest (snapshot; SOAP when soapHttpDigest) ----

  #challenge(res: http.ServerResponse, nonces: Set<string>): void {
    // 16 random bytes in base64 always end in "==": the padding node-onvif's parser cut off.
    const nonce = randomBytes(16).toString('base64');
    nonces.add(nonce);
    res.writeHead(401, { 'www-authenticate': `Digest realm="lectern sim, \\"cam\\"", qop="auth,auth-int", nonce="${nonce}", opaque="b2Q=", algorithm=MD5, stale=FALSE` });
    res.end('unauthorized');
  }

  #checkHttpDigest(req: http.IncomingMessage, method: string, nonces: Set<string>): boolean {
    const header = req.headers.authorization;
    if (!header?.startsWith('Digest ')) return false;
    const params: Record<string, string> = {};
    for (const m of header.slice(7).matchAll(/([a-z]+)=(?:"((?:[^"\\]|\\.)*)"|([^,\s]+))/gi)) {
      params[(m[1] as string).toLowerCase()] = m[2] !== undefined ? m[2].replace(/\\(.)/g, '$1') : (m[3] as string);
    }
    const { username, realm, nonce, uri, response, qop, nc, cnonce, opaque } = params;
    if (username !== this.#o.username || realm !== 'lectern sim, "cam"' || !nonce || !nonces.has(nonce) || uri !== req.url || opaque !== 'b2Q=' || qop !== 'auth' || !nc || !cnonce || !response) return false;
    const md5 = (s: string): string => createHash('md5').update(s).digest('hex');
    const ha1 = md5(`${username}:${realm}:${this.#o.password}`);
    const expected = md5(`${ha1}:${nonce}:${nc}:${cnonce}:${qop}:${md5(`${method}:${uri}`)}`);
    const ok = expected.length === response.length && timingSafeEqual(Buffer.from(expected), Buffer.from(response));
    if (ok) nonces.delete(nonce);
    return ok;
  }

  #snapshot(req: http.IncomingMessage, res: http.ServerResponse): void {
    this.snapshotRequests++;
    if (req.headers.authorization?.startsWith('Basic ')) {
      // A client that sends the password in clear before being asked is a client with a bug.
      res.writeHead(400).end('basic authentication is not accepted');
      return;
    }
    if (!this.#checkHttpDigest(req, 'GET', this.#snapshotNonces)) {
      this.#challenge(res, this.#snapshotNonces);
      return;
    }
    res.writeHead(200, { 'content-type': 'image/jpeg', 'content-length': String(this.#o.snapshotJpeg.length) }).end(this.#o.snapshotJpeg);
  }

  // ---- WS-Discovery ----

  #onProbe(msg: Buffer, rinfo: dgram.RemoteInfo): void {
    let messageId: string | undefined;
    let types = '';
    try {
      const env = obj(obj(xml.parse(msg.toString('utf8'))).Envelope);
      messageId = text(obj(env.Header).MessageID);
      const probe = obj(obj(env.Body).Probe);
      if (!('Probe' in obj(env.Body))) return;
      types = text(probe.Types) ?? '';
    } catch {
      return;
    }
    if (types !== '' && !/(^|\s|:)NetworkVideoTransmitter(\s|$)/.test(types) && !/(^|\s|:)Device(\s|$)/.test(types)) return;
    const reply =
      `<?xml version="1.0" encoding="UTF-8"?><SOAP-ENV:Envelope xmlns:SOAP-ENV="${NS.env}" xmlns:wsa="${NS.wsa}" xmlns:d="${NS.d}" xmlns:dn="${NS.dn}" xmlns:tds="${NS.tds}">` +
      `<SOAP-ENV:Header><wsa:MessageID>urn:uuid:${randomBytes(16).toString('hex')}</wsa:MessageID>${messageId ? `<wsa:RelatesTo>${esc(messageId)}</wsa:RelatesTo>` : ''}` +
      `<wsa:To SOAP-ENV:mustUnderstand="true">http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</wsa:To><wsa:Action SOAP-ENV:mustUnderstand="true">http://schemas.xmlsoap.org/ws/2005/04/discovery/ProbeMatches</wsa:Action></SOAP-ENV:Header>` +
      `<SOAP-ENV:Body><d:ProbeMatches><d:ProbeMatch><wsa:EndpointReference><wsa:Address>${this.endpoint}</wsa:Address></wsa:EndpointReference>` +
      `<d:Types>dn:NetworkVideoTransmitter tds:Device</d:Types>` +
      `<d:Scopes>onvif://www.onvif.org/type/video_encoder onvif://www.onvif.org/Profile/Streaming onvif://www.onvif.org/hardware/SIM-1 onvif://www.onvif.org/name/Lectern%20Simulator onvif://www.onvif.org/location/room-101</d:Scopes>` +
      `<d:XAddrs>${esc(this.deviceUrl)}</d:XAddrs><d:MetadataVersion>1</d:MetadataVersion></d:ProbeMatch></d:ProbeMatches></SOAP-ENV:Body></SOAP-ENV:Envelope>`;
    this.#udp?.send(reply, rinfo.port, rinfo.address);
  }
}

function envelopeXml(body: string): string {
  return (
    `<?xml version="1.0" encoding="UTF-8"?>\n<SOAP-ENV:Envelope xmlns:SOAP-ENV="${NS.env}" xmlns:tt="${NS.tt}" xmlns:tds="${NS.tds}" xmlns:trt="${NS.trt}" xmlns:tr2="${NS.tr2}" xmlns:tptz="${NS.tptz}" xmlns:ter="${NS.ter}">` +
    `<SOAP-ENV:Header></SOAP-ENV:Header><SOAP-ENV:Body>${body}</SOAP-ENV:Body></SOAP-ENV:Envelope>\n`
  );
}

function faultXml(f: Fault): string {
  const subcodes = f.subcodes.reduceRight((inner, code) => `<SOAP-ENV:Subcode><SOAP-ENV:Value>${code}</SOAP-ENV:Value>${inner}</SOAP-ENV:Subcode>`, '');
  return `<SOAP-ENV:Fault><SOAP-ENV:Code><SOAP-ENV:Value>SOAP-ENV:${f.code}</SOAP-ENV:Value>${subcodes}</SOAP-ENV:Code><SOAP-ENV:Reason><SOAP-ENV:Text xml:lang="en">${esc(f.reason)}</SOAP-ENV:Text></SOAP-ENV:Reason></SOAP-ENV:Fault>`;
}

/** A tiny real JPEG made by ffmpeg, for the snapshot. */
export async function makeTestJpeg(file: string): Promise<Buffer> {
  const { execFile } = await import('node:child_process');
  const { readFile } = await import('node:fs/promises');
  await new Promise<void>((resolve, reject) =>
    execFile('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-n', '-f', 'lavfi', '-i', 'testsrc2=size=320x180', '-frames:v', '1', file], (err) => (err ? reject(err) : resolve())),
  );
  return readFile(file);
}
