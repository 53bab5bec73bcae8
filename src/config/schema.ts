import os from 'node:os';
import { API_DEFAULT_HOST, API_DEFAULT_PORT } from './apiDefaults.js';
import { z } from 'zod';
import { isSafeName } from '../util/names.js';
import { redactUrl } from '../util/redact.js';

/**
 * The configuration schema: every field has its default, its bounds and a one-line description
 * (the example configuration is generated from those, so the manual cannot drift from the code).
 * Objects are strict: an unknown key is an error, because a misspelt key silently ignored is a
 * setting IT staff believe they made.
 */

/**
 * A value as an error message may quote it: short, and with any URL credentials masked, because
 * people paste camera URLs with passwords into the wrong key.
 */
export function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'an empty value';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  const text = redactUrl(typeof value === 'string' ? JSON.stringify(value) : String(value));
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

const safeName = () =>
  z.string().refine(isSafeName, {
    error: (iss) => `must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit, got ${describeValue(iss.input)}`,
  });

// Bounds live on the schema only: the loader's messages read them back from it ("an integer between 2 and 300").
const int = (min: number, max: number) => z.number().int().min(min).max(max);

/** The host name made safe for use as an agent id (it becomes a storage key segment). */
export function defaultAgentId(hostname: string = os.hostname()): string {
  const cleaned = hostname
    .toLowerCase()
    .replace(/[^a-z0-9._-]+/g, '-')
    .replace(/\.{2,}/g, '.')
    .replace(/^[^a-z0-9]+/, '')
    .slice(0, 64);
  return isSafeName(cleaned) ? cleaned : 'lectern';
}

const role = z.enum(['presenter', 'presentation']).default('presenter').describe('what the source shows: the teacher (presenter) or the board/slides (presentation)');

/**
 * An ALSA capture device by a name that survives reboots. Card numbers follow the order in which
 * the kernel found the cards, so `hw:1,0` can be another device (or none) after a restart or with
 * a USB device in another port; the card's id (`CARD=USB`) stays.
 */
const alsaDevice = z
  .string()
  .regex(/^[A-Za-z0-9_][A-Za-z0-9_.:=,-]*$/, { message: 'must be an ALSA capture device name such as plughw:CARD=USB,DEV=0 (lectern mics list shows them)' })
  .refine((d) => !/^[A-Za-z_]+:(?:CARD=)?\d+(?:,|$)/.test(d), {
    error: (iss) =>
      `names the sound card by its number (${describeValue(iss.input)}), which changes when the PC restarts or a USB device is plugged in elsewhere; ` +
      'name it by its card id instead, e.g. "plughw:CARD=USB,DEV=0" (lectern mics list shows the stable name of each device)',
  });

const alsaMicrophone = z
  .strictObject({
    kind: z.literal('alsa').describe("a microphone on this PC (ALSA), recorded instead of the source's own audio"),
    device: alsaDevice.describe('the capture device by its stable name, e.g. plughw:CARD=USB,DEV=0 (see lectern mics list)'),
    gainPercent: int(0, 100).optional().describe('capture gain set through the ALSA mixer at every recording start, in percent (leave out to keep the mixer as it is)'),
    mixerControl: z.string().min(1).default('Capture').describe('the mixer control of the capture gain (amixer -c <card id> scontrols lists them; many USB microphones call it Mic)'),
    channels: int(1, 8).default(1).describe('channels to record (1 for a single microphone)'),
    sampleRate: int(8000, 192000).default(48000).describe('sample rate asked of the device in Hz (the recording is AAC at 48 kHz)'),
  })
  .refine((m) => m.gainPercent === undefined || /(?:^|[:,])CARD=[A-Za-z0-9_-]+/.test(m.device), {
    message: 'needs a device named with its card id (e.g. plughw:CARD=USB,DEV=0): the gain is set on that card\'s mixer',
    path: ['gainPercent'],
  })
  .describe('a local microphone');

/**
 * The sound of a video source when it is not the source's own: the room's one chosen microphone.
 * A union by kind, so other kinds of audio source can join it.
 */
const sourceAudio = z.discriminatedUnion('kind', [alsaMicrophone]).optional().describe("a microphone recorded with this source instead of its own audio (the room's chosen audio source)");

const syntheticSource = z
  .strictObject({
    kind: z.literal('synthetic').describe('a built-in test pattern with a tone, encoded like a camera (for demos and tests)'),
    name: safeName().describe('stable name of the source, used in folders and logs'),
    role,
    width: int(160, 3840).default(1280).describe('picture width in pixels'),
    height: int(120, 2160).default(720).describe('picture height in pixels'),
    fps: int(1, 60).default(25).describe('frames per second'),
    toneHz: int(20, 20000).default(440).describe('frequency of the test tone in Hz'),
  })
  .describe('a synthetic camera');

const rtspSource = z
  .strictObject({
    kind: z.literal('rtsp').describe('a network camera or encoder reached by an RTSP URL'),
    name: safeName().describe('stable name of the source, used in folders and logs'),
    role,
    url: z
      .string()
      .regex(/^rtsps?:\/\/[^\s]+$/, { message: 'must be an rtsp:// or rtsps:// URL' })
      .refine((u) => !/^rtsps?:\/\/[^/@\s]*:[^/@\s]*@/.test(u), {
        message: 'must not contain a password; put the password in a file named by passwordFile (mode 0600) or in the environment variable named by passwordEnv',
      })
      .describe('stream URL without the password, e.g. rtsp://192.0.2.10:554/stream1'),
    audioIsAac: z.boolean().default(false).describe("the camera's audio is AAC: keep it as it is (less CPU); leave false for G.711 or when unsure"),
    username: z.string().min(1).optional().describe('camera user name'),
    passwordFile: z.string().min(1).optional().describe('file holding the camera password (mode 0600), or a systemd credential name'),
    passwordEnv: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, { message: 'must be an environment variable name' }).optional().describe('environment variable holding the camera password'),
    audio: sourceAudio,
  })
  .refine((s) => !(s.passwordFile !== undefined && s.passwordEnv !== undefined), {
    message: 'set passwordFile or passwordEnv, not both',
    path: ['passwordEnv'],
  })
  .describe('an RTSP camera');

const onvifSource = z
  .strictObject({
    kind: z.literal('onvif').describe('a network camera driven by ONVIF: its stream address is asked from the camera at each recording start'),
    name: safeName().describe('stable name of the source, used in folders and logs'),
    role,
    address: z
      .string()
      .regex(/^(?:https?:\/\/[^\s@/]+(?:\/\S*)?|\[[0-9A-Fa-f:.]+\](?::\d{1,5})?|[A-Za-z0-9.-]+(?::\d{1,5})?)$/, {
        message: 'must be host[:port] or the device service URL (http://host[:port]/onvif/device_service), without a user name or password',
      })
      .describe('the camera, as host[:port] (e.g. 192.0.2.10 or 192.0.2.10:8080) or its device service URL'),
    username: z.string().min(1).optional().describe('camera user name (an ONVIF user on the camera)'),
    passwordFile: z.string().min(1).optional().describe('file holding the camera password (mode 0600), or a systemd credential name'),
    passwordEnv: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, { message: 'must be an environment variable name' }).optional().describe('environment variable holding the camera password'),
    profile: z.string().min(1).optional().describe('media profile to record: its name or token, or a size such as 1280x720 (default: the first H.264 profile)'),
    preset: z.string().min(1).optional().describe('PTZ preset (name or token) the camera moves to when a recording starts'),
    privacyPreset: z.string().min(1).optional().describe('PTZ preset the camera turns to after a recording (e.g. facing the ceiling); leave out to stay'),
    timeoutMs: int(500, 60000).default(5000).describe('how long to wait for each answer from the camera, in ms'),
    audio: sourceAudio,
  })
  .refine((s) => !(s.passwordFile !== undefined && s.passwordEnv !== undefined), {
    message: 'set passwordFile or passwordEnv, not both',
    path: ['passwordEnv'],
  })
  .describe('an ONVIF camera');

const v4l2Source = z
  .strictObject({
    kind: z.literal('v4l2').describe('a camera or HDMI capture device on this PC (Video4Linux)'),
    name: safeName().describe('stable name of the source, used in folders and logs'),
    role,
    device: z
      .string()
      .regex(/^\/dev\/\S+$/, { message: 'must be a device path such as /dev/v4l/by-id/usb-...-video-index0 or /dev/video0' })
      .describe('the device; the /dev/v4l/by-id/... path stays the same across reboots, /dev/videoN may not'),
    inputFormat: z
      .enum(['mjpeg', 'h264', 'yuyv422'])
      .optional()
      .describe("the format to ask the device for (default: the device's choice); h264 is recorded as it is, anything else is encoded to H.264"),
    width: int(160, 3840).default(1280).describe('picture width in pixels'),
    height: int(120, 2160).default(720).describe('picture height in pixels'),
    fps: int(1, 60).default(30).describe('frames per second'),
    crf: int(0, 51).default(23).describe('x264 quality target when the picture is encoded (lower is better)'),
    maxBitrateKbps: int(100, 50000).default(4000).describe('bitrate ceiling of the encoded picture in kbit/s'),
    audio: sourceAudio,
  })
  .describe('a local video device');

export const sourceSchema = z.discriminatedUnion('kind', [syntheticSource, rtspSource, onvifSource, v4l2Source]);

const rendition = z.strictObject({
  name: safeName()
    .refine((n) => n !== 'audio', { message: '"audio" is reserved for the audio-only rendition' })
    .describe('folder and playlist name, e.g. 720p'),
  height: int(144, 2160)
    .refine((h) => h % 2 === 0, { error: (iss) => `must be even (H.264 4:2:0 needs even sizes), got ${describeValue(iss.input)}` })
    .describe('picture height; the width follows the source aspect ratio'),
  videoBitrateKbps: int(50, 20000).describe('bitrate ceiling (maxrate) in kbit/s'),
  crf: int(0, 51).default(28).describe('x264 quality target (lower is better); the bitrate ceiling caps it'),
});

const storagePrefix = z
  .string()
  .default('')
  .refine((p) => p === '' || p.split('/').every(isSafeName), { message: "must be empty or safe names joined by '/', without a leading or trailing '/'" })
  .describe('key prefix in the storage');

const envName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, { message: 'must be an environment variable name' });

/** S3's bucket naming rules, so a typo is a configuration error rather than a failed upload. */
const bucketName = z
  .string()
  .regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, { message: "must be 3-63 lowercase letters, digits, '.' or '-', starting and ending with a letter or digit" })
  .refine((b) => !b.includes('..') && !b.includes('.-') && !b.includes('-.'), { message: "must not contain '..', '.-' or '-.'" })
  .refine((b) => !/^\d+\.\d+\.\d+\.\d+$/.test(b), { message: 'must not look like an IP address' })
  .refine((b) => !b.startsWith('xn--') && !b.endsWith('-s3alias') && !b.endsWith('--ol-s3'), { message: "must not start with 'xn--' or end with '-s3alias' or '--ol-s3'" });

const fileStorage = z.strictObject({
  kind: z.literal('file').default('file').describe('file: a local or mounted folder; s3: an S3-compatible bucket (example below)'),
  root: z.string().min(1).optional().describe('the folder (default: <dataDir>/store)'),
  prefix: storagePrefix,
});

const s3Storage = z
  .strictObject({
    kind: z.literal('s3').describe('an S3-compatible bucket (AWS S3, Ceph RGW, MinIO...)'),
    endpoint: z
      .url({ protocol: /^https?$/, message: 'must be an http:// or https:// URL' })
      .refine((u) => !/^https?:\/\/[^/]*@/.test(u), { message: 'must not contain credentials; use accessKeyIdFile and secretAccessKeyFile' })
      .optional()
      .describe('the server, e.g. https://s3.example.edu (leave out for AWS S3 itself)'),
    region: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, { message: "must be letters, digits, '_' or '-'" }).default('us-east-1').describe('the region the bucket is in (most S3-compatible servers accept us-east-1)'),
    bucket: bucketName.describe('the bucket, which must exist'),
    forcePathStyle: z.boolean().default(true).describe('address the bucket as a path (http://host/bucket/...), as Ceph and MinIO need; false for virtual-host style'),
    accessKeyIdFile: z.string().min(1).optional().describe('file holding the access key id (mode 0600), or a systemd credential name'),
    accessKeyIdEnv: envName.optional().describe('environment variable holding the access key id (default without either: AWS_ACCESS_KEY_ID)'),
    secretAccessKeyFile: z.string().min(1).optional().describe('file holding the secret access key (mode 0600), or a systemd credential name'),
    secretAccessKeyEnv: envName.optional().describe('environment variable holding the secret access key (default without either: AWS_SECRET_ACCESS_KEY)'),
    prefix: storagePrefix,
  })
  .refine((s) => !(s.accessKeyIdFile !== undefined && s.accessKeyIdEnv !== undefined), { message: 'set accessKeyIdFile or accessKeyIdEnv, not both', path: ['accessKeyIdEnv'] })
  .refine((s) => !(s.secretAccessKeyFile !== undefined && s.secretAccessKeyEnv !== undefined), {
    message: 'set secretAccessKeyFile or secretAccessKeyEnv, not both',
    path: ['secretAccessKeyEnv'],
  })
  .describe('an S3-compatible bucket');

export const storageSchema = z.discriminatedUnion('kind', [fileStorage, s3Storage]);

/** An IANA time zone name this system knows (checked with Intl). */
function timeZone() {
  return z.string().refine(
    (tz) => {
      try {
        return new Intl.DateTimeFormat('en-US', { timeZone: tz }).resolvedOptions().timeZone.length > 0;
      } catch {
        return false;
      }
    },
    { error: (iss) => `must be an IANA time zone such as Europe/Berlin, got ${describeValue(iss.input)}` },
  );
}

export const configSchema = z
  .strictObject({
    agent: z
      .strictObject({
        id: safeName().default(defaultAgentId()).describe('this PC in storage paths and heartbeats (default: the host name)'),
        site: safeName().default('demo-site').describe('the university or campus'),
        room: safeName().default('demo-room').describe('the classroom'),
        dataDir: z.string().min(1).default('./lectern-data').describe('where the database, recordings and packages live (default under systemd: $STATE_DIRECTORY)'),
      })
      .prefault({})
      .describe('who this agent is and where it keeps its data'),
    log: z
      .strictObject({
        level: z.enum(['debug', 'info', 'warn', 'error']).default('info').describe('least severe level written to the journal'),
      })
      .prefault({})
      .describe('logging'),
    sources: z
      .array(sourceSchema)
      .min(1)
      .prefault([{ kind: 'synthetic', name: 'presenter' }])
      .superRefine((sources, ctx) => {
        const seen = new Set<string>();
        sources.forEach((s, i) => {
          if (seen.has(s.name)) ctx.addIssue({ code: 'custom', path: [i, 'name'], message: `duplicate source name "${s.name}"` });
          seen.add(s.name);
        });
        // One chosen audio source per room, and it must be heard: the package takes its sound
        // from the first presenter source (or the first source), so a microphone elsewhere is lost.
        const withMic = sources.flatMap((s, i) => (s.kind !== 'synthetic' && s.audio !== undefined ? [i] : []));
        const packagedIndex = Math.max(0, sources.findIndex((s) => s.role === 'presenter'));
        withMic.slice(1).forEach((i) =>
          ctx.addIssue({ code: 'custom', path: [i, 'audio'], message: 'only one source may record a microphone (the room has one chosen audio source)' }),
        );
        const first = withMic[0];
        if (first !== undefined && first !== packagedIndex) {
          ctx.addIssue({
            code: 'custom',
            path: [first, 'audio'],
            message: `the lecture's sound is taken from source "${sources[packagedIndex]?.name ?? ''}" (the first presenter source); put the microphone on that source`,
          });
        }
      })
      .describe("the room's video sources; the first presenter source is packaged with the lecture's sound, every other one as a video-only package beside it"),
    capture: z
      .strictObject({
        segmentSeconds: int(2, 300).default(10).describe('length of each recorded segment in seconds'),
        segmentFormat: z.enum(['mpegts', 'fmp4']).default('mpegts').describe('segment container; both survive a power cut up to the last packet'),
        rtspTimeoutMs: int(1000, 60000).default(5000).describe('RTSP socket timeout; ffmpeg gives up about twice this long after a camera goes silent'),
        stallTimeoutMs: int(3000, 600000).default(20000).describe('restart a source whose media stopped advancing for this long'),
        stopQuitGraceMs: int(1000, 120000).default(8000).describe('after sending q, wait this long before SIGINT'),
        stopInterruptGraceMs: int(1000, 120000).default(10000).describe('after SIGINT, wait this long before SIGKILL'),
        minFreeDiskBytes: z.number().int().min(0).default(1_073_741_824).describe('refuse to start a recording with less free disk than this'),
        stopFreeDiskBytes: z
          .number()
          .int()
          .min(0)
          .default(268_435_456)
          .describe('stop a live recording cleanly when free disk falls below this (at most minFreeDiskBytes; below that a disk_low alert is raised)'),
        monitor: z
          .strictObject({
            silenceDb: z.number().min(-120).max(0).default(-50).describe('audio quieter than this (dBFS RMS over a second) counts as silence'),
            silenceSeconds: int(0, 3600).default(30).describe('raise a no_audio alert after this much silence; 0 = off'),
            freezeSeconds: int(0, 3600).default(30).describe('raise a frozen_picture alert when the picture has not changed for this long; 0 = off'),
            freezeNoiseDb: z.number().min(-90).max(-10).default(-40).describe('picture changes smaller than this count as no change (camera noise, compression)'),
            blackSeconds: int(0, 3600).default(20).describe('raise a black_picture alert when the picture is black for this long; 0 = off'),
          })
          .prefault({})
          .describe('confidence monitoring: the capture ffmpeg also measures sound and picture and raises alerts'),
      })
      .prefault({})
      .describe('recording'),
    transcode: z
      .strictObject({
        hlsSegmentSeconds: int(2, 10).default(5).describe('length of HLS segments; also the fixed GOP'),
        renditions: z
          .array(rendition)
          .min(1)
          .prefault([
            { name: '720p', height: 720, videoBitrateKbps: 1200 },
            { name: '360p', height: 360, videoBitrateKbps: 350 },
          ])
          .superRefine((list, ctx) => {
            const names = new Set<string>();
            const heights = new Set<number>();
            list.forEach((r, i) => {
              if (names.has(r.name)) ctx.addIssue({ code: 'custom', path: [i, 'name'], message: `duplicate rendition name "${r.name}"` });
              if (heights.has(r.height)) ctx.addIssue({ code: 'custom', path: [i, 'height'], message: `duplicate rendition height ${r.height}` });
              names.add(r.name);
              heights.add(r.height);
            });
          })
          .describe('the video ladder, highest first'),
        audioBitrateKbps: int(24, 320).default(64).describe('bitrate of the audio (and of the audio-only rendition) in kbit/s'),
        preset: z.enum(['ultrafast', 'superfast', 'veryfast', 'faster', 'fast', 'medium', 'slow']).default('medium').describe('x264 speed preset'),
        niceness: int(0, 19).default(10).describe('CPU niceness of packaging, so capture always comes first'),
        hardwareEncoder: z
          .enum(['none', 'vaapi', 'qsv'])
          .default('none')
          .describe('hardware video encoder to try first (falls back to libx264, with a warning, when absent or failing)'),
        hardwareDevice: z.string().min(1).default('/dev/dri/renderD128').describe('DRM render node of the hardware encoder'),
        progressive: z.boolean().default(true).describe('encode the video ladder in chunks while the lecture is recorded, so the package is ready soon after Stop'),
        tiers: z
          .boolean()
          .default(true)
          .describe('publish each lecture in two tiers: audio and the lowest rendition first (tier 1), the full ladder later under the same id (tier 2)'),
      })
      .prefault({})
      .describe('the HLS package'),
    storage: storageSchema.prefault({}).describe('where finished lectures are published'),
    import: z
      .strictObject({
        folder: z.string().min(1).optional().describe("folder where other tools drop recordings (a recorder's FTP target, a USB stick); leave out to turn importing off"),
        settleMs: int(1000, 3_600_000).default(10000).describe('a dropped file counts as complete once its size has not changed for this long, in ms'),
        scanIntervalMs: int(500, 3_600_000).default(10000).describe('how often the folder is also scanned in full (file watchers miss events), in ms'),
      })
      .prefault({})
      .describe('importing recordings made elsewhere: each complete media file becomes a lecture'),
    queue: z
      .strictObject({
        leaseMs: int(5000, 3_600_000).default(60000).describe('how long a claimed job stays claimed without a heartbeat'),
        maxAttempts: int(1, 1000).default(10).describe('attempts before a job goes to the dead letter'),
        backoffBaseMs: int(100, 3_600_000).default(2000).describe('first retry delay; doubles on each failure'),
        backoffCapMs: int(1000, 86_400_000).default(600000).describe('longest retry delay'),
      })
      .prefault({})
      .describe('the durable job queue'),
    retention: z
      .strictObject({
        keepDays: int(0, 3650).default(7).describe('days local files of a published lecture are kept after the storage confirmed every file; 0 = delete once confirmed'),
        intervalMs: int(10_000, 86_400_000).default(600_000).describe('how often published lectures are checked for deletion, in ms'),
        purgeWhenLowDisk: z.boolean().default(true).describe('below capture.minFreeDiskBytes free, delete confirmed lectures early, oldest first (never unconfirmed ones)'),
      })
      .prefault({})
      .describe('deleting local files of published lectures: only after the storage confirmed each file (size and sha256)'),
    upload: z
      .strictObject({
        rateCapKbps: int(0, 10_000_000).default(0).describe('upload rate cap in kbit/s outside the windows below; 0 = uncapped'),
        windows: z
          .array(
            z.string().regex(
              /^\s*(?:(?:sun|mon|tue|wed|thu|fri|sat)[a-z]*(?:-(?:sun|mon|tue|wed|thu|fri|sat)[a-z]*)?(?:,(?:sun|mon|tue|wed|thu|fri|sat)[a-z]*(?:-(?:sun|mon|tue|wed|thu|fri|sat)[a-z]*)?)*\s+)?(?:[01]?\d|2[0-4]):[0-5]\d\s*-\s*(?:[01]?\d|2[0-4]):[0-5]\d\s+(?:unlimited|paused|\d+(?:\.\d+)?\s*(?:kbit\/s|mbit\/s|kbps|mbps))\s*$/i,
              { message: 'must read "[days] HH:MM-HH:MM cap", e.g. "Mon-Fri 07:00-18:00 1 Mbit/s", "18:00-07:00 unlimited" or "Sat 08:00-12:00 paused"' },
            ),
          )
          .default([])
          .describe('times with their own cap, first match wins, e.g. "Mon-Fri 07:00-18:00 1 Mbit/s" and "18:00-07:00 unlimited" (days are optional)'),
        timeZone: timeZone()
          .optional()
          .describe('zone of the window times, e.g. Europe/Berlin (default: the system zone)'),
        pauseWhileRecording: z.boolean().default(true).describe('no new uploads while a recording runs, so the camera streams keep the network'),
        yield: z
          .strictObject({
            enabled: z.boolean().default(true).describe("slow down while the round trip to the storage shows a queue, so the room's own traffic keeps the link"),
            thresholdMs: int(10, 5000).default(100).describe('round-trip time above its baseline, in ms, that counts as a queue on the link'),
            minRateKbps: int(8, 1_000_000).default(64).describe('yield never slows uploads below this, in kbit/s'),
            intervalMs: int(200, 60_000).default(1000).describe('how often the round trip is measured while uploading (a TCP connect to the storage), in ms'),
          })
          .prefault({})
          .describe('yield to other traffic (delay-based, like LEDBAT)'),
      })
      .prefault({})
      .describe('uploading when bandwidth allows: a rate cap, time windows, pause while recording, yield'),
    heartbeat: z
      .strictObject({
        enabled: z.boolean().default(true).describe("write this agent's health to agents/<id>/status.json in the storage while the daemon runs (kept on disk while offline)"),
        intervalMs: int(10_000, 86_400_000).default(300_000).describe('time between heartbeats in ms; the platform can call an agent silent after about two of them'),
      })
      .prefault({})
      .describe('the heartbeat by which the central platform sees each room from afar'),
    schedule: z
      .strictObject({
        source: z
          .string()
          .min(1)
          .default('none')
          .refine((v) => !/^https?:\/\/[^/]*@/i.test(v), { message: 'must not contain a user name or password' })
          .describe('the timetable: none, a local .ics or .yaml file, or the http(s):// URL of an ICS calendar (kept on disk for offline use)'),
        refreshIntervalMs: int(10_000, 86_400_000).default(300_000).describe('how often the timetable is read or fetched again; a changed local file is read at once'),
        timeZone: timeZone()
          .optional()
          .describe('zone of timetable times written without one, e.g. Europe/Berlin (default: the system zone)'),
        cacheDir: z.string().min(1).optional().describe('where a fetched timetable is kept (default: <dataDir>/schedule)'),
      })
      .prefault({})
      .describe('the room timetable: its lectures are recorded without anyone pressing Record'),
    api: z
      .strictObject({
        enabled: z.boolean().default(true).describe('serve the local API and the kiosk page while the daemon runs'),
        host: z
          .string()
          .regex(/^(?:[0-9.]+|[0-9A-Fa-f:]+|[A-Za-z0-9.-]+)$/, { message: 'must be an IP address or a host name, without a port' })
          .default(API_DEFAULT_HOST)
          .describe('address to listen on; requests from anywhere but this machine need the token of tokenFile'),
        port: int(1, 65535).default(API_DEFAULT_PORT).describe('TCP port of the API and the kiosk page (http://127.0.0.1:8750/)'),
        socketPath: z.string().min(1).optional().describe('also listen on this unix socket (mode 0660), e.g. /run/lectern/api.sock'),
        tokenFile: z.string().min(1).optional().describe('file holding the bearer token other machines must send (mode 0600), or a systemd credential name'),
        allowedHosts: z
          .array(z.string().regex(/^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/, { message: 'must be a host name or address, with an optional :port' }))
          .default([])
          .describe('more names the API answers for besides 127.0.0.1, localhost and [::1] (the Host header is checked against DNS rebinding)'),
        kioskPinFile: z.string().min(1).optional().describe('file holding a PIN of 4-12 digits that the kiosk asks for before Record and Stop (mode 0600)'),
      })
      .prefault({})
      .describe('the local HTTP API (used by lectern record and the kiosk page)'),
  })
  .describe('lectern configuration');

export type Config = z.output<typeof configSchema>;
export type SourceConfig = Config['sources'][number];
export type StorageConfig = Config['storage'];
export type S3StorageConfig = Extract<StorageConfig, { kind: 's3' }>;
