import { renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Option, type Command } from 'commander';
import {
  deviceServiceUrl,
  discoverCameras,
  OnvifCamera,
  probeAddress,
  WS_DISCOVERY_PORT,
  type DiscoveredCamera,
  type MediaProfile,
  type Preset,
} from '../../camera/index.js';
import { readSecret, type Config } from '../../config/index.js';
import { createLogger, type LogLevel } from '../../log/logger.js';
import { describeError, isLecternError } from '../../util/errors.js';
import { redactSecrets, redactUrl } from '../../util/redact.js';
import type { CliIo } from '../io.js';

/**
 * `lectern cameras ...`: find ONVIF cameras and check one before putting it in the
 * configuration. A camera is named by a configured source of kind onvif, or given as an address
 * with --user and --password-file (the password never goes on the command line). Passwords never
 * appear in the output: stream URLs are shown as rtsp://user:***@host/...
 */

const EXIT = { usage: 1, config: 2, runtime: 3 } as const;

/** A mistake on the command line (exit 1), as opposed to a camera or network failure (exit 3). */
class UsageError extends Error {}
const DEFAULT_DISCOVERY_MS = 3000;

interface CameraOpts {
  user?: string;
  passwordFile?: string;
  passwordEnv?: string;
  timeoutMs?: string;
  profile?: string;
}

interface ResolvedCamera {
  camera: OnvifCamera;
  /** What to call it in messages: the source name or the address. */
  label: string;
}

export function registerCameraCommands(program: Command, io: CliIo, loadConfig: () => Config): void {
  const cameras = program.command('cameras').description('find, check and steer ONVIF cameras');
  const logLevel = (): LogLevel => program.opts<{ logLevel?: LogLevel }>().logLevel ?? 'warn';

  const withCameraOptions = (cmd: Command): Command =>
    cmd
      .option('--user <name>', 'camera user name (with an address instead of a configured source)')
      .option('--password-file <file>', 'file holding the camera password (mode 0600)')
      .option('--password-env <variable>', 'environment variable holding the camera password')
      .option('--timeout-ms <ms>', 'how long to wait for each answer (default: the source\'s timeoutMs, else 5000)')
      .option('--profile <profile>', 'media profile: name, token or size such as 1280x720 (default: the source\'s, else the first H.264 one)');

  cameras
    .command('discover')
    .description('find ONVIF cameras with WS-Discovery (multicast on every IPv4 interface, or unicast to --address)')
    .option('--address <host[:port]>', `probe only this address (port default ${WS_DISCOVERY_PORT})`)
    .option('--timeout-ms <ms>', 'how long to listen for answers', String(DEFAULT_DISCOVERY_MS))
    .option('--json', 'print JSON')
    .action(async (opts: { address?: string; timeoutMs: string; json?: boolean }) => {
      const timeoutMs = parseTimeout(opts.timeoutMs, io);
      if (timeoutMs === undefined) return;
      const logger = createLogger({ level: logLevel() });
      let found: DiscoveredCamera[];
      try {
        if (opts.address !== undefined) {
          const target = parseHostPort(opts.address, WS_DISCOVERY_PORT);
          if (!target) {
            io.err(`--address must be host or host:port, got "${opts.address}"`);
            process.exitCode = EXIT.usage;
            return;
          }
          found = await probeAddress(target.host, target.port, { timeoutMs, logger });
        } else {
          found = await discoverCameras({ timeoutMs, logger });
        }
      } catch (err) {
        io.err(`discovery failed: ${describeError(err)}`);
        process.exitCode = EXIT.runtime;
        return;
      }
      if (opts.json) {
        io.out(JSON.stringify(found, null, 2));
        return;
      }
      if (found.length === 0) {
        io.out(`No ONVIF camera answered within ${timeoutMs} ms${opts.address ? ` at ${opts.address}` : ''}.`);
        return;
      }
      io.out(`Found ${found.length} camera${found.length === 1 ? '' : 's'}:`);
      io.out(table(['NAME', 'HARDWARE', 'ADDRESS', 'ENDPOINT'], found.map((c) => [c.name ?? '', c.hardware ?? '', c.xaddrs.join(' '), c.endpoint])));
      io.out('Check one with: lectern cameras probe ADDRESS --user USER --password-file FILE');
    });

  withCameraOptions(
    cameras
      .command('probe')
      .description('connect to a camera and show its device, clock, profiles, stream and presets')
      .argument('<camera>', 'a configured onvif source name, or host[:port] / device service URL')
      .option('--json', 'print JSON'),
  ).action(async (name: string, opts: CameraOpts & { json?: boolean }) => {
    await runWithCamera(name, opts, async ({ camera, label }, out) => {
      await camera.connect();
      const selected = camera.selectProfile(opts.profile);
      const stream = await camera.streamUri(selected);
      const shownUri = redactUrl(camera.credentialedUri(stream.uri));
      let presets: Preset[] | undefined;
      let presetsNote: string | undefined;
      try {
        presets = camera.services.ptz ? await camera.presets(selected) : undefined;
        if (!presets) presetsNote = 'no PTZ service';
      } catch (err) {
        presetsNote = describeError(err);
      }
      const info = camera.deviceInfo();
      if (opts.json) {
        out(
          JSON.stringify(
            {
              camera: label,
              deviceUrl: camera.deviceUrl,
              device: info,
              clockOffsetMs: camera.clockOffsetMs(),
              services: { media: camera.services.media !== undefined, media2: camera.services.media2 !== undefined, ptz: camera.services.ptz !== undefined },
              profiles: camera.profiles(),
              selectedProfile: selected.token,
              streamUri: shownUri,
              presets: presets ?? null,
              ...(presetsNote ? { presetsNote } : {}),
            },
            null,
            2,
          ),
        );
        return;
      }
      out(`Camera ${label} (${camera.deviceUrl})`);
      out(`  device:   ${[info.manufacturer, info.model].filter(Boolean).join(' ') || 'unknown'}${info.firmwareVersion ? `, firmware ${info.firmwareVersion}` : ''}${info.serialNumber ? `, serial ${info.serialNumber}` : ''}`);
      out(`  clock:    ${describeOffset(camera.clockOffsetMs())}`);
      out(`  services: ${(['media', 'media2', 'ptz'] as const).filter((s) => camera.services[s]).join(', ')}`);
      out('  profiles:');
      for (const p of camera.profiles()) out(`    ${p.token === selected.token ? '*' : ' '} ${describeProfileLong(p)}`);
      out(`  stream:   ${shownUri}  (profile ${selected.name})`);
      out(`  presets:  ${presets ? (presets.length ? presets.map((p) => `${p.token} "${p.name}"`).join(', ') : 'none') : presetsNote}`);
    });
  });

  withCameraOptions(
    cameras
      .command('snapshot')
      .description('save a JPEG snapshot from the camera')
      .argument('<camera>', 'a configured onvif source name, or host[:port] / device service URL')
      .requiredOption('-o, --output <file>', 'where to write the JPEG'),
  ).action(async (name: string, opts: CameraOpts & { output: string }) => {
    await runWithCamera(name, opts, async ({ camera }, out) => {
      const snap = await camera.snapshot(opts.profile);
      const target = path.resolve(opts.output);
      // Written beside the target and renamed, so an interrupted write never leaves half a file.
      const partial = `${target}.partial-${process.pid}`;
      writeFileSync(partial, snap.body, { mode: 0o644 });
      renameSync(partial, target);
      out(`wrote ${target} (${snap.body.length} bytes, ${snap.contentType})`);
    });
  });

  withCameraOptions(
    cameras
      .command('preset')
      .description('move the camera to a PTZ preset (name or token), or save its current position with --save')
      .argument('<camera>', 'a configured onvif source name, or host[:port] / device service URL')
      .argument('<preset>', 'preset name or token')
      .option('--save', 'save the current position under this name instead of moving'),
  ).action(async (name: string, preset: string, opts: CameraOpts & { save?: boolean }) => {
    await runWithCamera(name, opts, async ({ camera }, out) => {
      if (opts.save) {
        const saved = await camera.setPreset(preset, opts.profile);
        out(`saved preset "${saved.name}" (token ${saved.token})`);
      } else {
        const moved = await camera.gotoPreset(preset, opts.profile);
        out(`moving to preset "${moved.name}" (token ${moved.token})`);
      }
    });
  });

  withCameraOptions(
    cameras
      .command('audio')
      .description('show the audio of a profile, or change its encoder (attaching audio to the profile if it has none)')
      .argument('<camera>', 'a configured onvif source name, or host[:port] / device service URL')
      .addOption(new Option('--encoding <codec>', 'audio codec').choices(['G711', 'G726', 'AAC']))
      .option('--bitrate-kbps <n>', 'audio bit rate in kbit/s')
      .option('--sample-rate-khz <n>', 'audio sample rate in kHz')
      .option('--json', 'print JSON'),
  ).action(async (name: string, opts: CameraOpts & { encoding?: string; bitrateKbps?: string; sampleRateKhz?: string; json?: boolean }) => {
    const bitrateKbps = opts.bitrateKbps === undefined ? undefined : Number(opts.bitrateKbps);
    const sampleRateKhz = opts.sampleRateKhz === undefined ? undefined : Number(opts.sampleRateKhz);
    for (const [flag, value] of [['--bitrate-kbps', bitrateKbps], ['--sample-rate-khz', sampleRateKhz]] as const) {
      if (value !== undefined && (!Number.isInteger(value) || value <= 0)) {
        io.err(`${flag} must be a positive integer`);
        process.exitCode = EXIT.usage;
        return;
      }
    }
    await runWithCamera(name, opts, async ({ camera }, out) => {
      const change = opts.encoding !== undefined || bitrateKbps !== undefined || sampleRateKhz !== undefined;
      if (change) {
        await camera.setAudioEncoder(
          { ...(opts.encoding !== undefined ? { encoding: opts.encoding } : {}), ...(bitrateKbps !== undefined ? { bitrateKbps } : {}), ...(sampleRateKhz !== undefined ? { sampleRateKhz } : {}) },
          opts.profile,
        );
      }
      const audio = await camera.audioConfig(opts.profile);
      if (opts.json) {
        out(JSON.stringify(audio, null, 2));
        return;
      }
      const enc = audio.encoder;
      out(`profile ${audio.profileToken}: ${enc ? `${enc.encoding} ${enc.bitrateKbps ?? '?'} kbit/s ${enc.sampleRateKhz ?? '?'} kHz (encoder ${enc.token})` : 'no audio'}${audio.source ? `, source ${audio.source.sourceToken}` : ''}`);
    });
  });

  /** Builds the camera, runs `body`, and turns failures into messages and exit codes. */
  async function runWithCamera(name: string, opts: CameraOpts, body: (c: ResolvedCamera, out: (s: string) => void) => Promise<void>): Promise<void> {
    let resolved: ResolvedCamera | undefined;
    const secrets: string[] = [];
    const out = (s: string): void => io.out(redactSecrets(s, secrets));
    const err = (s: string): void => io.err(redactSecrets(s, secrets));
    try {
      resolved = resolveCamera(name, opts, loadConfig, logLevel(), secrets);
      await body(resolved, out);
    } catch (e) {
      if (isLecternError(e, 'CONFIG_INVALID') || isLecternError(e, 'CONFIG_UNREADABLE')) throw e;
      err(`${resolved?.label ?? name}: ${describeError(e)}`);
      process.exitCode = e instanceof UsageError || isLecternError(e, 'CAMERA_NO_MATCH') ? EXIT.usage : isLecternError(e) && e.code.startsWith('SECRET_') ? EXIT.config : EXIT.runtime;
    }
  }
}

function resolveCamera(name: string, opts: CameraOpts, loadConfig: () => Config, level: LogLevel, secrets: string[]): ResolvedCamera {
  const timeoutOverride = opts.timeoutMs === undefined ? undefined : Number(opts.timeoutMs);
  if (timeoutOverride !== undefined && (!Number.isInteger(timeoutOverride) || timeoutOverride < 100 || timeoutOverride > 120_000)) {
    throw new UsageError('--timeout-ms must be an integer from 100 to 120000');
  }
  const addressMode = opts.user !== undefined || opts.passwordFile !== undefined || opts.passwordEnv !== undefined;
  const source = addressMode ? undefined : loadConfig().sources.find((s) => s.name === name);
  if (source && source.kind !== 'onvif') {
    throw new UsageError(`source "${name}" is of kind ${source.kind}, not an ONVIF camera`);
  }
  if (opts.passwordFile !== undefined && opts.passwordEnv !== undefined) throw new UsageError('give --password-file or --password-env, not both');

  const passwordRef = source ? { file: source.passwordFile, env: source.passwordEnv } : { file: opts.passwordFile, env: opts.passwordEnv };
  const password = passwordRef.file !== undefined || passwordRef.env !== undefined ? readSecret(passwordRef, { env: process.env, what: `the password of ${source ? `source ${name}` : name}` }) : undefined;
  if (password !== undefined) secrets.push(password, encodeURIComponent(password));
  const address = source ? source.address : name;
  if (!source) {
    // A bare word is a source name that is not configured, not a host to look up in DNS.
    let ok = /[.:\[]/.test(address);
    try {
      deviceServiceUrl(address);
    } catch {
      ok = false;
    }
    if (!ok) throw new UsageError(`"${name}" is neither a configured onvif source nor host[:port] or a device service URL`);
  }
  const username = source ? source.username : opts.user;
  const logger = createLogger({ level, secrets });
  const camera = new OnvifCamera({
    address,
    ...(username !== undefined ? { username } : {}),
    ...(password !== undefined ? { password } : {}),
    timeoutMs: timeoutOverride ?? source?.timeoutMs ?? 5000,
    ...((opts.profile ?? source?.profile) !== undefined ? { profile: (opts.profile ?? source?.profile) as string } : {}),
    name: source ? name : address,
    logger,
  });
  return { camera, label: source ? name : address };
}

function parseTimeout(text: string, io: CliIo): number | undefined {
  const value = Number(text);
  if (!Number.isInteger(value) || value < 100 || value > 120_000) {
    io.err(`--timeout-ms must be an integer from 100 to 120000, got "${text}"`);
    process.exitCode = EXIT.usage;
    return undefined;
  }
  return value;
}

function parseHostPort(text: string, defaultPort: number): { host: string; port: number } | undefined {
  const m = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(?::(\d{1,5}))?$/.exec(text.trim());
  if (!m) return undefined;
  const port = m[2] === undefined ? defaultPort : Number(m[2]);
  if (port < 1 || port > 65535) return undefined;
  return { host: (m[1] as string).replace(/^\[|\]$/g, ''), port };
}

function describeProfileLong(p: MediaProfile): string {
  const v = p.video;
  const video = v ? `${v.width}x${v.height} ${v.encoding}${v.fps ? ` ${v.fps} fps` : ''}${v.bitrateKbps ? ` ${v.bitrateKbps} kbit/s` : ''}` : 'no video encoder';
  const a = p.audio;
  const audio = a ? `, audio ${a.encoding}${a.bitrateKbps ? ` ${a.bitrateKbps} kbit/s` : ''}${a.sampleRateKhz ? ` ${a.sampleRateKhz} kHz` : ''}` : ', no audio';
  return `${p.name}${p.name !== p.token ? ` [${p.token}]` : ''}: ${video}${audio}${p.ptzConfigurationToken ? ', PTZ' : ''}`;
}

function describeOffset(ms: number): string {
  const abs = Math.abs(ms);
  if (abs < 2000) return 'in step with this PC';
  const text = abs >= 3_600_000 ? `${(abs / 3_600_000).toFixed(1)} h` : abs >= 60_000 ? `${(abs / 60_000).toFixed(1)} min` : `${(abs / 1000).toFixed(1)} s`;
  return `camera is ${text} ${ms > 0 ? 'ahead of' : 'behind'} this PC (requests are signed with the camera's time; set up NTP on the camera)`;
}

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

