import type { Command } from 'commander';
import { listAlsaCaptureDevices, type AlsaListing } from '../../capture/alsa.js';
import type { Config } from '../../config/index.js';
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
      const sources = loadConfig().sources.map((s) => ({ source: s.name, kind: s.kind, audio: sourceAudio(s.kind) }));
      if (opts.json) {
        io.out(JSON.stringify({ alsa, sources }, null, 2));
        return;
      }
      io.out(describeAlsa(alsa));
      io.out('Audio of the configured sources:');
      for (const s of sources) io.out(`  ${s.source} (${s.kind}): ${s.audio}`);
    });
}

function describeAlsa(alsa: AlsaListing): string {
  if (!alsa.available) return `No ALSA capture devices: ${alsa.reason}.`;
  if (alsa.devices.length === 0) return 'ALSA capture devices: none (the sound cards have no capture device).';
  return ['ALSA capture devices (use the name in the configuration; card numbers change between reboots):', ...alsa.devices.map((d) => `  ${d.name}  ${d.cardName} / ${d.deviceName}`)].join('\n');
}

function sourceAudio(kind: Config['sources'][number]['kind']): string {
  switch (kind) {
    case 'synthetic':
      return 'a test tone';
    case 'rtsp':
      return 'the stream\'s audio track, if the camera sends one (transcoded to AAC)';
    case 'onvif':
      return 'the camera\'s audio encoder; see and change it with: lectern cameras audio <name>';
  }
}
