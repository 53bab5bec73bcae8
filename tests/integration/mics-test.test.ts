import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { makeTmpDir } from '../helpers/tmp.js';
import { startRtspCamera, type RtspCamera } from '../peers/rtspCamera.js';

/**
 * `lectern mics test`: real ffmpeg measures a few seconds of a source's audio. The synthetic
 * source's tone has a level known from its definition (ffmpeg's sine: amplitude 1/8, so a peak
 * of 20·log10(1/8) = -18.06 dBFS and an RMS 3.01 dB lower), which a broken measurement misses.
 * The RTSP test camera is muted to digital silence for the silent-microphone answer. This
 * machine has no sound card, so an ALSA device can only show the clear error.
 */

const tmp = makeTmpDir('lectern-mics-test-');
let camera: RtspCamera;

beforeAll(async () => {
  camera = await startRtspCamera({ audio: 'aac' });
});
afterAll(async () => {
  await camera?.stop();
  tmp.cleanup();
});

function config(): string {
  const file = path.join(tmp.dir, 'mics.yaml');
  writeFileSync(
    file,
    ['agent:', `  dataDir: ${tmp.dir}/data`, 'sources:', '  - { name: tone, kind: synthetic }', `  - { name: room-cam, kind: rtsp, url: "${camera.url}" }`, ''].join('\n'),
  );
  return file;
}

describe('lectern mics test', () => {
  it('reports the peak and RMS of a source by numbers, as text and as JSON', async () => {
    const file = config();
    const json = await runCli(['--config', file, 'mics', 'test', 'tone', '--seconds', '2', '--json']);
    expect(json.code, json.stderr).toBe(0);
    const level = JSON.parse(json.stdout) as { peakDb: number; rmsDb: number; samples: number; verdict: string };
    expect(level.peakDb).toBeCloseTo(-18.06, 0);
    expect(level.rmsDb).toBeCloseTo(-21.07, 0);
    expect(level.samples).toBeGreaterThanOrEqual(2 * 48_000);
    expect(level.verdict).toBe('good');
    const text = await runCli(['--config', file, 'mics', 'test', 'tone', '--seconds', '1']);
    expect(text.stdout).toMatch(/^tone: peak -18\.\d dBFS, RMS -21\.\d dBFS over 1 s — a good level for speech$/m);
  });

  it('calls a muted camera microphone silent', async () => {
    await camera.mute();
    try {
      const run = await runCli(['--config', config(), 'mics', 'test', 'room-cam', '--seconds', '2']);
      expect(run.code, run.stderr).toBe(0);
      // AAC-coded digital silence decodes to about -91 dBFS, not to exact zeros.
      expect(run.stdout).toMatch(/room-cam: peak (-\d+\.\d dBFS|silence), RMS (-\d+\.\d dBFS|silence) over 2 s — silent: is the microphone on/);
    } finally {
      await camera.unmute();
    }
  });

  it('explains a missing ALSA device and an unknown name, with exit codes', async () => {
    const file = config();
    const alsa = await runCli(['--config', file, 'mics', 'test', 'hw:CARD=NoSuchCard,DEV=0', '--seconds', '1']);
    expect(alsa.code).toBe(3);
    expect(alsa.stderr).toMatch(/cannot open audio device hw:CARD=NoSuchCard,DEV=0/);
    const unknown = await runCli(['--config', file, 'mics', 'test', 'podium']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/"podium" is neither a configured source nor an ALSA device name/);
    const badSeconds = await runCli(['--config', file, 'mics', 'test', 'tone', '--seconds', '0']);
    expect(badSeconds.code).toBe(1);
  });
});
