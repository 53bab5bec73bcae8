import type { CaptureInput } from './captureArgs.js';

/**
 * The microphone level check (`lectern mics test`): a few seconds of a source's audio through
 * ffmpeg's volumedetect, which prints the mean (RMS) and peak level of everything it heard. Pure
 * argv builder and parser; tested as data and against real ffmpeg.
 */

/** What can be measured: a capture source's input, or a local ALSA capture device. */
export type LevelInput = CaptureInput | { kind: 'alsa'; device: string; channels?: number; sampleRate?: number };

export interface AudioLevel {
  /** RMS level over the whole test, dBFS (-Infinity for digital silence). */
  rmsDb: number;
  /** Highest sample, dBFS. */
  peakDb: number;
  /** How much audio was measured, in samples (0: the source sent no audio). */
  samples: number;
}

export function buildLevelTestArgs(input: LevelInput, seconds: number): string[] {
  return ['-hide_banner', '-nostats', '-loglevel', 'info', '-n', ...levelInputArgs(input), '-t', String(seconds), '-map', '0:a:0', '-af', 'volumedetect', '-f', 'null', '-'];
}

function levelInputArgs(input: LevelInput): string[] {
  // A source recorded with a microphone is heard through the microphone.
  if ((input.kind === 'rtsp' || input.kind === 'v4l2') && input.mic) return levelInputArgs({ kind: 'alsa', ...input.mic });
  switch (input.kind) {
    case 'synthetic':
      return ['-f', 'lavfi', '-i', `sine=frequency=${input.toneHz}:sample_rate=48000`];
    case 'rtsp':
      return ['-rtsp_transport', 'tcp', '-timeout', String(Math.round(input.timeoutMs * 1000)), '-i', input.url];
    case 'v4l2':
      // A video device has no sound of its own: ffmpeg answers that 0:a:0 matches no stream.
      return ['-f', 'v4l2', '-i', input.device];
    case 'alsa':
      return [
        '-f', 'alsa',
        ...(input.channels !== undefined ? ['-channels', String(input.channels)] : []),
        ...(input.sampleRate !== undefined ? ['-sample_rate', String(input.sampleRate)] : []),
        '-i', input.device,
      ];
  }
}

/** Reads volumedetect's summary from ffmpeg's stderr lines; undefined when it printed none. */
export function parseVolumeDetect(lines: readonly string[]): AudioLevel | undefined {
  const value = (key: string): string | undefined => {
    for (const line of lines) {
      const m = new RegExp(`\\] ${key}: (\\S+)`).exec(line);
      if (m) return m[1];
    }
    return undefined;
  };
  const samples = value('n_samples');
  const mean = value('mean_volume');
  const max = value('max_volume');
  if (samples === undefined || mean === undefined || max === undefined) return undefined;
  return { samples: Number(samples), rmsDb: toDb(mean), peakDb: toDb(max) };
}

function toDb(text: string): number {
  return text === '-inf' ? -Infinity : Number(text);
}
