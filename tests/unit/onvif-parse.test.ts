import { describe, expect, it } from 'vitest';
import { alignMediaUrl, alignServiceUrl, deviceServiceUrl, withCredentials } from '../../src/camera/address.js';
import { findPreset, selectProfile } from '../../src/camera/onvifCamera.js';
import {
  parseAudioEncoderConfiguration,
  parseCapabilities,
  parseDeviceInformation,
  parsePresets,
  parseProbeMatches,
  parseProfiles,
  parseServices,
  parseStreamUri,
  parseSystemDateAndTime,
} from '../../src/camera/parse.js';
import type { MediaProfile } from '../../src/camera/types.js';
import { isLecternError, type ErrorCode } from '../../src/util/errors.js';

const env = (body: string, prefix = 'SOAP-ENV'): string =>
  `<?xml version="1.0" encoding="UTF-8"?><${prefix}:Envelope xmlns:${prefix}="http://www.w3.org/2003/05/soap-envelope" xmlns:tt="http://www.onvif.org/ver10/schema" ` +
  `xmlns:tds="http://www.onvif.org/ver10/device/wsdl" xmlns:trt="http://www.onvif.org/ver10/media/wsdl" xmlns:tr2="http://www.onvif.org/ver20/media/wsdl" ` +
  `xmlns:tptz="http://www.onvif.org/ver20/ptz/wsdl" xmlns:ter="http://www.onvif.org/ver10/error"><${prefix}:Body>${body}</${prefix}:Body></${prefix}:Envelope>`;

function fails(code: ErrorCode, fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(isLecternError(err, code), String(err)).toBe(true);
    return (err as Error).message;
  }
  throw new Error(`expected ${code}`);
}

const dateTime = (utc: string): string =>
  env(`<tds:GetSystemDateAndTimeResponse><tds:SystemDateAndTime><tt:DateTimeType>NTP</tt:DateTimeType>${utc}</tds:SystemDateAndTime></tds:GetSystemDateAndTimeResponse>`);
const utcPart = (y: number, mo: number, d: number, h: number, mi: number, s: number, el = 'UTCDateTime'): string =>
  `<tt:${el}><tt:Time><tt:Hour>${h}</tt:Hour><tt:Minute>${mi}</tt:Minute><tt:Second>${s}</tt:Second></tt:Time><tt:Date><tt:Year>${y}</tt:Year><tt:Month>${mo}</tt:Month><tt:Day>${d}</tt:Day></tt:Date></tt:${el}>`;

describe('GetSystemDateAndTime', () => {
  it('turns the UTC parts into epoch ms without a month rollover', () => {
    // node-onvif set the parts on today's date: on the 31st, February 27 became March.
    expect(parseSystemDateAndTime(dateTime(utcPart(2018, 2, 27, 18, 10, 11)))).toEqual({ cameraTimeMs: Date.UTC(2018, 1, 27, 18, 10, 11), fromLocalTime: false });
    expect(parseSystemDateAndTime(dateTime(utcPart(1970, 1, 1, 0, 0, 5))).cameraTimeMs).toBe(5000);
  });

  it('falls back to local time when a camera gives no UTC, and says so', () => {
    expect(parseSystemDateAndTime(dateTime(utcPart(2024, 3, 1, 8, 0, 0, 'LocalDateTime')))).toEqual({ cameraTimeMs: Date.UTC(2024, 2, 1, 8, 0, 0), fromLocalTime: true });
  });

  it('names what is missing or impossible', () => {
    expect(fails('CAMERA_BAD_REPLY', () => parseSystemDateAndTime(dateTime('')))).toMatch(/neither UTCDateTime nor LocalDateTime/);
    expect(fails('CAMERA_BAD_REPLY', () => parseSystemDateAndTime(dateTime(utcPart(2024, 2, 30, 0, 0, 0))))).toMatch(/not a calendar date/);
    expect(fails('CAMERA_BAD_REPLY', () => parseSystemDateAndTime(dateTime(utcPart(2024, 13, 1, 0, 0, 0))))).toMatch(/Month is "13"/);
    expect(fails('CAMERA_BAD_REPLY', () => parseSystemDateAndTime(dateTime('<tt:UTCDateTime><tt:Date><tt:Year>2024</tt:Year></tt:Date></tt:UTCDateTime>')))).toMatch(/UTCDateTime\/Time is missing/);
  });
});

describe('faults', () => {
  const fault = (sub: string, reason: string): string =>
    env(`<SOAP-ENV:Fault><SOAP-ENV:Code><SOAP-ENV:Value>SOAP-ENV:Sender</SOAP-ENV:Value><SOAP-ENV:Subcode><SOAP-ENV:Value>${sub}</SOAP-ENV:Value></SOAP-ENV:Subcode></SOAP-ENV:Code><SOAP-ENV:Reason><SOAP-ENV:Text xml:lang="en">${reason}</SOAP-ENV:Text></SOAP-ENV:Reason></SOAP-ENV:Fault>`);

  it('tells authentication faults, unsupported actions and other faults apart', () => {
    expect(fails('CAMERA_AUTH_FAILED', () => parseProfiles(fault('ter:NotAuthorized', 'Sender not Authorized')))).toMatch(/GetProfiles: .*ter:NotAuthorized/);
    expect(fails('CAMERA_AUTH_FAILED', () => parseProfiles(fault('wsse:FailedAuthentication', 'x')))).toBeTruthy();
    expect(fails('CAMERA_UNSUPPORTED', () => parseProfiles(fault('ter:ActionNotSupported', 'no')))).toBeTruthy();
    expect(fails('CAMERA_FAULT', () => parseProfiles(fault('ter:InvalidArgVal', 'No such profile')))).toMatch(/No such profile/);
  });

  it('reads SOAP 1.1 faults', () => {
    const soap11 = `<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><s:Fault><faultcode>s:Client</faultcode><faultstring>Sender not authorized</faultstring></s:Fault></s:Body></s:Envelope>`;
    expect(fails('CAMERA_AUTH_FAILED', () => parseDeviceInformation(soap11))).toMatch(/s:Client: Sender not authorized/);
  });

  it('refuses a reply that is not the expected response', () => {
    expect(fails('CAMERA_BAD_REPLY', () => parseProfiles(env('<trt:GetStreamUriResponse/>')))).toMatch(/expected GetProfilesResponse, got GetStreamUriResponse/);
    expect(fails('CAMERA_BAD_REPLY', () => parseProfiles('<html><body>Login</body></html>'))).toMatch(/expected a SOAP Envelope, got <html>/);
  });
});

describe('media replies', () => {
  const profile = (token: string, name: string, w: number, h: number, extra = ''): string =>
    `<trt:Profiles token="${token}" fixed="true"><tt:Name>${name}</tt:Name><tt:VideoEncoderConfiguration token="v_${token}"><tt:Name>v</tt:Name><tt:Encoding>H264</tt:Encoding>` +
    `<tt:Resolution><tt:Width>${w}</tt:Width><tt:Height>${h}</tt:Height></tt:Resolution><tt:RateControl><tt:FrameRateLimit>25</tt:FrameRateLimit><tt:BitrateLimit>2048</tt:BitrateLimit></tt:RateControl></tt:VideoEncoderConfiguration>${extra}</trt:Profiles>`;

  it('reads profiles with video, audio and PTZ, one or many', () => {
    const one = parseProfiles(env(`<trt:GetProfilesResponse>${profile('p1', 'main', 1280, 720)}</trt:GetProfilesResponse>`));
    expect(one).toEqual([{ token: 'p1', name: 'main', video: { token: 'v_p1', encoding: 'H264', width: 1280, height: 720, fps: 25, bitrateKbps: 2048 } }]);
    const audio =
      '<tt:AudioSourceConfiguration token="as"><tt:Name>A</tt:Name><tt:SourceToken>in1</tt:SourceToken></tt:AudioSourceConfiguration>' +
      '<tt:AudioEncoderConfiguration token="ae"><tt:Name>AE</tt:Name><tt:Encoding>AAC</tt:Encoding><tt:Bitrate>64</tt:Bitrate><tt:SampleRate>16</tt:SampleRate></tt:AudioEncoderConfiguration>' +
      '<tt:PTZConfiguration token="ptz"/>';
    const two = parseProfiles(env(`<trt:GetProfilesResponse>${profile('p1', 'main', 1920, 1080, audio)}${profile('p2', 'sub', 640, 360)}</trt:GetProfilesResponse>`));
    expect(two).toHaveLength(2);
    expect(two[0]).toMatchObject({ audioSource: { token: 'as', sourceToken: 'in1' }, audio: { token: 'ae', encoding: 'AAC', bitrateKbps: 64, sampleRateKhz: 16 }, ptzConfigurationToken: 'ptz' });
    expect(parseProfiles(env('<trt:GetProfilesResponse></trt:GetProfilesResponse>'))).toEqual([]);
  });

  it('reads Media2 profiles', () => {
    const xml = env(
      '<tr2:GetProfilesResponse><tr2:Profiles token="m2"><tr2:Name>Main</tr2:Name><tr2:Configurations><tr2:VideoEncoder token="ve"><tt:Encoding>H265</tt:Encoding>' +
        '<tt:Resolution><tt:Width>2560</tt:Width><tt:Height>1440</tt:Height></tt:Resolution></tr2:VideoEncoder><tr2:PTZ token="z"/></tr2:Configurations></tr2:Profiles></tr2:GetProfilesResponse>',
    );
    expect(parseProfiles(xml)).toEqual([{ token: 'm2', name: 'Main', video: { token: 've', encoding: 'H265', width: 2560, height: 1440 }, ptzConfigurationToken: 'z' }]);
  });

  it('refuses a profile without a token, and drops a garbled encoder instead of failing', () => {
    expect(fails('CAMERA_BAD_REPLY', () => parseProfiles(env('<trt:GetProfilesResponse><trt:Profiles><tt:Name>x</tt:Name></trt:Profiles></trt:GetProfilesResponse>')))).toMatch(/profile 1 has no token/);
    const garbled = parseProfiles(env(`<trt:GetProfilesResponse>${profile('p', 'n', -1, 0)}</trt:GetProfilesResponse>`));
    expect(garbled[0]?.video).toBeUndefined();
  });

  it('reads stream URIs from Media1 and Media2, decoding &amp; in queries', () => {
    const media1 = env('<trt:GetStreamUriResponse><trt:MediaUri><tt:Uri>rtsp://10.0.0.5:554/cam/realmonitor?channel=1&amp;subtype=0</tt:Uri></trt:MediaUri></trt:GetStreamUriResponse>');
    expect(parseStreamUri(media1)).toBe('rtsp://10.0.0.5:554/cam/realmonitor?channel=1&subtype=0');
    expect(parseStreamUri(env('<tr2:GetStreamUriResponse><tr2:Uri>rtsp://h/live</tr2:Uri></tr2:GetStreamUriResponse>'))).toBe('rtsp://h/live');
    expect(fails('CAMERA_BAD_REPLY', () => parseStreamUri(env('<trt:GetStreamUriResponse><trt:MediaUri/></trt:GetStreamUriResponse>')))).toMatch(/Uri is missing/);
    expect(fails('CAMERA_BAD_REPLY', () => parseStreamUri(env('<trt:GetStreamUriResponse><trt:MediaUri><tt:Uri>not a url</tt:Uri></trt:MediaUri></trt:GetStreamUriResponse>')))).toMatch(/not a URL/);
  });

  it('reads an audio encoder configuration with what must be sent back', () => {
    const xml = env(
      '<trt:GetAudioEncoderConfigurationResponse><trt:Configuration token="ae"><tt:Name>AE</tt:Name><tt:UseCount>2</tt:UseCount><tt:Encoding>G711</tt:Encoding><tt:Bitrate>64</tt:Bitrate><tt:SampleRate>8</tt:SampleRate>' +
        '<tt:Multicast><tt:Address><tt:Type>IPv4</tt:Type><tt:IPv4Address>239.0.0.1</tt:IPv4Address></tt:Address><tt:Port>5000</tt:Port><tt:TTL>3</tt:TTL><tt:AutoStart>true</tt:AutoStart></tt:Multicast><tt:SessionTimeout>PT30S</tt:SessionTimeout></trt:Configuration></trt:GetAudioEncoderConfigurationResponse>',
    );
    expect(parseAudioEncoderConfiguration(xml)).toEqual({
      token: 'ae', name: 'AE', encoding: 'G711', bitrateKbps: 64, sampleRateKhz: 8, useCount: 2,
      multicast: { addressType: 'IPv4', address: '239.0.0.1', port: 5000, ttl: 3, autoStart: true }, sessionTimeout: 'PT30S',
    });
  });
});

describe('device, PTZ and discovery replies', () => {
  it('reads service addresses from GetCapabilities and GetServices', () => {
    const caps = env('<tds:GetCapabilitiesResponse><tds:Capabilities><tt:Media><tt:XAddr>http://10.0.0.5/onvif/Media</tt:XAddr></tt:Media><tt:PTZ><tt:XAddr>junk</tt:XAddr></tt:PTZ></tds:Capabilities></tds:GetCapabilitiesResponse>');
    expect(parseCapabilities(caps)).toEqual({ media: 'http://10.0.0.5/onvif/Media' });
    const services = env(
      '<tds:GetServicesResponse><tds:Service><tds:Namespace>http://www.onvif.org/ver20/media/wsdl</tds:Namespace><tds:XAddr>http://h:8000/m2</tds:XAddr></tds:Service>' +
        '<tds:Service><tds:Namespace>http://www.onvif.org/ver20/ptz/wsdl</tds:Namespace><tds:XAddr>http://h:8000/ptz</tds:XAddr></tds:Service></tds:GetServicesResponse>',
    );
    expect(parseServices(services)).toEqual({ media2: 'http://h:8000/m2', ptz: 'http://h:8000/ptz' });
  });

  it('reads presets with names needing escapes', () => {
    const xml = env('<tptz:GetPresetsResponse><tptz:Preset token="1"><tt:Name>Board &amp; &lt;Podium&gt;</tt:Name></tptz:Preset><tptz:Preset token="2"/></tptz:GetPresetsResponse>');
    const presets = parsePresets(xml);
    expect(presets).toEqual([{ token: '1', name: 'Board & <Podium>' }, { token: '2', name: '2' }]);
    expect(findPreset(presets, 'board & <podium>')?.token).toBe('1');
    expect(findPreset(presets, '2')?.token).toBe('2');
    expect(findPreset(presets, 'nope')).toBeUndefined();
  });

  it('reads ProbeMatches with names from scopes', () => {
    const xml =
      '<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:d="http://schemas.xmlsoap.org/ws/2005/04/discovery">' +
      '<s:Header><a:RelatesTo>urn:uuid:1</a:RelatesTo></s:Header><s:Body><d:ProbeMatches><d:ProbeMatch><a:EndpointReference><a:Address>urn:uuid:cam</a:Address></a:EndpointReference>' +
      '<d:Types>dn:NetworkVideoTransmitter</d:Types><d:Scopes>onvif://www.onvif.org/name/AXIS%20M1034-W onvif://www.onvif.org/hardware/M1034-W</d:Scopes>' +
      '<d:XAddrs>http://169.254.1.2/onvif/device_service http://10.0.0.246/onvif/device_service</d:XAddrs></d:ProbeMatch></d:ProbeMatches></s:Body></s:Envelope>';
    expect(parseProbeMatches(xml)).toEqual({
      relatesTo: 'urn:uuid:1',
      matches: [{ endpoint: 'urn:uuid:cam', xaddrs: ['http://169.254.1.2/onvif/device_service', 'http://10.0.0.246/onvif/device_service'], types: ['dn:NetworkVideoTransmitter'], scopes: expect.any(Array) as unknown as string[], name: 'AXIS M1034-W', hardware: 'M1034-W' }],
    });
  });
});

describe('profile selection and addresses', () => {
  const profiles: MediaProfile[] = [
    { token: 'jpeg', name: 'Snapshot', video: { token: 'a', encoding: 'JPEG', width: 1920, height: 1080 } },
    { token: 'main', name: 'mainStream', video: { token: 'b', encoding: 'H264', width: 1920, height: 1080 } },
    { token: 'sub', name: 'subStream', video: { token: 'c', encoding: 'H.264', width: 640, height: 360 } },
  ];

  it('picks the first H.264 profile by default, else by token, name or size', () => {
    expect(selectProfile(profiles).token).toBe('main');
    expect(selectProfile(profiles, 'sub').token).toBe('sub');
    expect(selectProfile(profiles, 'SUBSTREAM').token).toBe('sub');
    expect(selectProfile(profiles, '1920x1080').token).toBe('main');
    expect(selectProfile(profiles, '640x360').token).toBe('sub');
    expect(fails('CAMERA_NO_MATCH', () => selectProfile(profiles, '800x600'))).toMatch(/no profile "800x600" \(it has: Snapshot \[jpeg\] 1920x1080 JPEG; mainStream/);
    expect(fails('CAMERA_NO_MATCH', () => selectProfile([]))).toMatch(/no media profiles/);
  });

  it('turns host[:port] into the device service URL and refuses credentials in it', () => {
    expect(deviceServiceUrl('192.0.2.10').toString()).toBe('http://192.0.2.10/onvif/device_service');
    expect(deviceServiceUrl('cam.local:8080').toString()).toBe('http://cam.local:8080/onvif/device_service');
    expect(deviceServiceUrl('[fe80::1]:80').toString()).toBe('http://[fe80::1]/onvif/device_service');
    expect(deviceServiceUrl('http://192.0.2.10:2020/onvif/device').toString()).toBe('http://192.0.2.10:2020/onvif/device');
    expect(fails('CONFIG_INVALID', () => deviceServiceUrl('http://admin:pw@192.0.2.10/'))).not.toContain('pw');
  });

  it('points reported URLs at the configured host, strips and adds credentials', () => {
    const device = new URL('http://192.0.2.10:8080/onvif/device_service');
    expect(alignServiceUrl('http://192.168.1.64/onvif/Media?x=1', device)).toBe('http://192.0.2.10:8080/onvif/Media?x=1');
    expect(alignServiceUrl('http://192.0.2.10:8999/onvif/ptz', device)).toBe('http://192.0.2.10:8999/onvif/ptz');
    expect(alignMediaUrl('rtsp://admin:pw@192.168.1.64:554/Streaming/101?transportmode=unicast', device)).toBe('rtsp://192.0.2.10:554/Streaming/101?transportmode=unicast');
    // A snapshot on the very host:port the camera reported for its services follows the services.
    expect(alignMediaUrl('http://192.168.1.64/snap.jpg?ch=1', device, '192.168.1.64')).toBe('http://192.0.2.10:8080/snap.jpg?ch=1');
    expect(alignMediaUrl('http://192.168.1.64:85/snap.jpg', device, '192.168.1.64')).toBe('http://192.0.2.10:85/snap.jpg');
    expect(alignMediaUrl('rtsp://192.168.1.64:554/live', device, '192.168.1.64')).toBe('rtsp://192.0.2.10:554/live');
    expect(withCredentials('rtsp://192.0.2.10:554/s', 'ad min', 'p@ss:/w')).toBe('rtsp://ad%20min:p%40ss%3A%2Fw@192.0.2.10:554/s');
    expect(withCredentials('rtsp://192.0.2.10/s', undefined, 'x')).toBe('rtsp://192.0.2.10/s');
  });
});
