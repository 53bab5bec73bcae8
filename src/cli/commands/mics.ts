import type { Command } from 'commander';
import { buildCaptureSources } from '../../agent/sources.js';
import { listAlsaCaptureDevices, type AlsaListing } from '../../capture/alsa.js';
import type { Config } from '../../config/index.js';
import { buildLevelTestArgs, parseVolumeDetect, type AudioLevel, type LevelInput } from '../../ffmpeg/levelArgs.js';
import { runFfmpeg } from '../../ffmpeg/run.js';
import { createMemoryLogger } from '../../log/logger.js';
import { describeError } from '../../util/errors.js';
import { redactSecrets } from '../../util/redact.js';
import type { CliIo } from '../io.js';

/**
 * `lectern mics list`: the microphones this room can record: ALSA capture devices by their stable
 * names, and the sound each configured source brings. A PC without a sound card is a normal
 * answer, not an error.
 */
export function registerMicCommands(program: Command, io: CliIo, loadConfig: () => Config): void {
  const mics = program.command('mics').description('list the microphones lectern can record');
  mics
    .command('list')
    .description('ALSA capture devices (with the stable names to put in the configuration) and the audio of configured sources')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }) => {
      const alsa = await listAlsaCaptureDevices();
      const configured = loadConfig().sources;
      const sources = configured.map((s) => ({ source: s.name, kind: s.kind, audio: sourceAudio(s) }));
      const microphone = configuredMicrophone(configured);
      if (opts.json) {
        io.out(JSON.stringify({ alsa, sources, microphone: microphone ?? null }, null, 2));
        return;
      }
      io.out(describeAlsa(alsa));
      io.out('Audio of the configured sources:');
      for (const s of sources) io.out(`  ${s.source} (${s.kind}): ${s.audio}`);
      io.out(describeMicrophone(microphone, alsa));
    });

  mics
    .command('test <name>')
    .description('record a few seconds from a configured source or an ALSA device (e.g. hw:CARD=USB,DEV=0) and report its peak and RMS level')
    .option('-s, --seconds <n>', 'how long to listen', '5')
    .option('--json', 'print JSON')
    .action(async (name: string, opts: { seconds: string; json?: boolean }) => {
      const seconds = Number(opts.seconds);
      if (!Number.isFinite(seconds) || seconds < 1 || seconds > 60) {
        io.err(`--seconds must be a number from 1 to 60, got "${opts.seconds}"`);
        process.exitCode = 1;
        return;
      }
      const secrets: string[] = [];
      try {
        const input = await levelInputOf(name, loadConfig(), secrets);
        if (!input) {
          io.err(`"${name}" is neither a configured source nor an ALSA device name (hw:CARD=...,DEV=..., plughw:..., default); see: lectern mics list`);
          process.exitCode = 1;
          return;
        }
        const { logger } = createMemoryLogger('warn');
        const exit = await runFfmpeg({
          args: buildLevelTestArgs(input, seconds),
          label: `level test ${name}`,
          logger,
          secrets,
          // volumedetect's summary is printed last, after every line ffmpeg had to say.
          stderrRingLines: 400,
          // Connecting to a camera takes a moment before the seconds being measured.
          stallTimeoutMs: (seconds + 20) * 1000,
        });
        const level = parseVolumeDetect(exit.stderrTail);
        if (!level || level.samples === 0) {
          io.err(`${name}: no audio arrived (the source has no audio track, or it sent nothing)`);
          process.exitCode = 3;
          return;
        }
        if (opts.json) io.out(JSON.stringify({ name, seconds, ...level, verdict: verdictOf(level).kind }, (_k, v: unknown) => (v === -Infinity ? null : v), 2));
        else io.out(`${name}: peak ${formatDb(level.peakDb)}, RMS ${formatDb(level.rmsDb)} over ${seconds} s — ${verdictOf(level).text}`);
      } catch (err) {
        io.err(`${name}: ${redactSecrets(describeError(err), secrets)}`);
        process.exitCode = 3;
      }
    });
}

const ALSA_DEVICE = /^(hw|plughw|sysdefault|dsnoop|default)(:|$)/;

async function levelInputOf(name: string, config: Config, secrets: string[]): Promise<LevelInput | undefined> {
  const index = config.sources.findIndex((s) => s.name === name);
  if (index >= 0) {
    const configured = config.sources[index] as Config['sources'][number];
    // A source recorded with a microphone is heard through it (the video device need not be there).
    if (configured.kind !== 'synthetic' && configured.audio) return { kind: 'alsa', device: configured.audio.device, channels: configured.audio.channels, sampleRate: configured.audio.sampleRate };
    const source = buildCaptureSources({ ...config, sources: [configured] }, process.env)[0];
    if (!source) return undefined;
    if (source.input.kind === 'v4l2') throw new Error(`source ${name} is a video device without sound; give it a microphone (audio: { kind: alsa, device: ... }) or test the microphone by its ALSA name`);
    secrets.push(...source.secrets);
    if (!source.resolve) return source.input;
    const resolved = await source.resolve(AbortSignal.timeout(30_000));
    secrets.push(...resolved.secrets);
    return resolved.input;
  }
  // The configured microphone by its device name too, even a PCM defined in asound.conf.
  const mic = configuredMicrophone(config.sources);
  if (mic && mic.device === name) return { kind: 'alsa', device: name, channels: mic.channels, sampleRate: mic.sampleRate };
  return ALSA_DEVICE.test(name) ? { kind: 'alsa', device: name } : undefined;
}

type MicrophoneConfig = NonNullable<Extract<Config['sources'][number], { audio?: unknown }>['audio']>;

/** The room's chosen microphone (the configuration allows one) and the source it is recorded with. */
function configuredMicrophone(sources: Config['sources']): (MicrophoneConfig & { source: string }) | undefined {
  for (const s of sources) if (s.kind !== 'synthetic' && s.audio) return { ...s.audio, source: s.name };
  return undefined;
}

function describeMicrophone(mic: (MicrophoneConfig & { source: string }) | undefined, alsa: AlsaListing): string {
  if (!mic) return "Configured microphone: none (each source records its own audio).";
  const gain = mic.gainPercent !== undefined ? `gain ${mic.gainPercent}% (${mic.mixerControl}), set at every recording start` : 'gain left as the mixer has it';
  const cardId = /(?:^|[:,])CARD=([A-Za-z0-9_-]+)/.exec(mic.device)?.[1];
  const present = !alsa.available
    ? 'not connected: this PC has no sound card'
    : cardId === undefined || alsa.devices.some((d) => d.cardId === cardId)
      ? 'connected'
      : `not connected: no sound card with the id ${cardId}`;
  return `Configured microphone: ${mic.device}, recorded with source ${mic.source}; ${mic.channels} channel${mic.channels === 1 ? '' : 's'} at ${mic.sampleRate} Hz; ${gain}; ${present}`;
}

/**
 * Speech recorded for a lecture sits well between -30 and -12 dBFS RMS with peaks under -1 dBFS:
 * quieter and the loudness normalisation lifts the room's noise with it; louder and it clips.
 */
function verdictOf(level: AudioLevel): { kind: 'silent' | 'quiet' | 'good' | 'loud' | 'clipping'; text: string } {
  if (level.peakDb >= -0.5) return { kind: 'clipping', text: 'clipping: turn the gain down' };
  if (level.rmsDb < -60) return { kind: 'silent', text: 'silent: is the microphone on, connected and unmuted?' };
  if (level.rmsDb < -30) return { kind: 'quiet', text: 'quiet: turn the gain up (aim for RMS between -30 and -12 dBFS while someone speaks)' };
  if (level.rmsDb > -12) return { kind: 'loud', text: 'loud: turn the gain down a little (aim for RMS between -30 and -12 dBFS)' };
  return { kind: 'good', text: 'a good level for speech' };
}

function formatDb(db: number): string {
  return Number.isFinite(db) ? `${db.toFixed(1)} dBFS` : 'silence';
}

function describeAlsa(alsa: AlsaListing): string {
  if (!alsa.available) return `No ALSA capture devices: ${alsa.reason}.`;
  if (alsa.devices.length === 0) return 'ALSA capture devices: none (the sound cards have no capture device).';
  return ['ALSA capture devices (use the name in the configuration; card numbers change between reboots):', ...alsa.devices.map((d) => `  ${d.name}  ${d.cardName} / ${d.deviceName}`)].join('\n');
}

function sourceAudio(source: Config['sources'][number]): string {
  if (source.kind !== 'synthetic' && source.audio) return `the microphone ${source.audio.device} (instead of its own audio)`;
  switch (source.kind) {
    case 'synthetic':
      return 'a test tone';
    case 'rtsp':
      return 'the stream\'s audio track, if the camera sends one (transcoded to AAC)';
    case 'onvif':
      return 'the camera\'s audio encoder; see and change it with: lectern cameras audio <name>';
    case 'v4l2':
      return 'none (a video device has no sound; give it a microphone with audio:)';
  }
}
