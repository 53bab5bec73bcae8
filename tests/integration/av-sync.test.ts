import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/log/logger.js';
import { Packager, type PackageSegment } from '../../src/transcode/packager.js';
import { segmentsOfList, testPackagerSettings } from '../helpers/media.js';
import { makeTmpDir } from '../helpers/tmp.js';

// A/V sync across a camera reboot, with real ffmpeg on both sides. Each run carries a white
// flash and a 1 kHz beep at the same instants (1 s, 3 s, 5 s into the run). A camera that comes
// back after a reboot often sends its audio later than its video: the second run's audio
// starts 0.5 s after its first frame, as an RTSP reconnect gives it; in the third run the
// picture is the late one. The package must keep
// each beep on its flash, before and after the gap (issue: within 100 ms).

const tmp = makeTmpDir();
afterAll(() => tmp.cleanup());

const RUN_SECONDS = 6;
const MARKS = [1, 3, 5];

function ffmpeg(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('ffmpeg', ['-hide_banner', '-nostdin', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(stderr) : reject(new Error(`ffmpeg ${args.join(' ')} exited ${code}:\n${stderr.slice(-2000)}`))));
  });
}

/** One capture run's MPEG-TS segments, as the recorder writes them (reset timestamps, CSV list). */
async function recordRun(run: number, late: { audioSeconds?: number; videoSeconds?: number }): Promise<PackageSegment[]> {
  const dir = path.join(tmp.dir, `run-${run}`);
  mkdirSync(dir, { recursive: true });
  const flash = MARKS.map((t) => `between(t,${t},${t + 0.079})`).join('+');
  const beep = MARKS.map((t) => `between(t,${t},${t + 0.1})`).join('+');
  await ffmpeg([
    '-loglevel', 'error',
    '-f', 'lavfi', '-i', `color=c=black:s=320x240:r=25:d=${RUN_SECONDS},drawbox=c=white:t=fill:enable='${flash}'`,
    '-f', 'lavfi', '-i', `aevalsrc='if(${beep},0.5*sin(2*PI*1000*t),0)':s=48000:d=${RUN_SECONDS}`,
    // trim and atrim keep the timestamps: one stream then starts that much after the other.
    '-vf', `trim=start=${late.videoSeconds ?? 0}`,
    '-af', `atrim=start=${late.audioSeconds ?? 0}`,
    '-c:v', 'libx264', '-preset', 'ultrafast', '-g', '25', '-c:a', 'aac', '-b:a', '96k',
    '-f', 'segment', '-segment_time', '3', '-reset_timestamps', '1', '-segment_format', 'mpegts',
    '-segment_list', `${dir}/segments.csv`, '-segment_list_type', 'csv', `${dir}/seg_%05d.ts`,
  ]);
  return segmentsOfList(dir, run);
}

/** Start times of the white flashes in a video rendition (first bright frame of each). */
async function flashTimes(playlist: string): Promise<number[]> {
  const out = path.join(tmp.dir, `yavg-${path.basename(path.dirname(playlist))}.txt`);
  await ffmpeg(['-loglevel', 'error', '-i', playlist, '-vf', `signalstats,metadata=mode=print:key=lavfi.signalstats.YAVG:file=${out}`, '-f', 'null', '-']);
  const times: number[] = [];
  let pts = 0;
  let wasBright = false;
  for (const line of readFileSync(out, 'utf8').split('\n')) {
    const frame = /pts_time:([\d.]+)/.exec(line);
    if (frame) pts = Number(frame[1]);
    const y = /YAVG=([\d.]+)/.exec(line);
    if (!y) continue;
    const bright = Number(y[1]) > 128;
    if (bright && !wasBright) times.push(pts);
    wasBright = bright;
  }
  return times;
}

/**
 * Start times of the beeps in an audio rendition: each end of silence that another silence
 * follows (silencedetect also reports an end of silence where the stream ends).
 */
async function beepTimes(playlist: string): Promise<number[]> {
  const stderr = await ffmpeg(['-loglevel', 'info', '-i', playlist, '-af', 'silencedetect=n=-40dB:d=0.3', '-f', 'null', '-']);
  const events = [...stderr.matchAll(/silence_(start|end): ([\d.]+)/g)].map((m) => ({ kind: m[1], atSeconds: Number(m[2]) }));
  return events.filter((e, i) => e.kind === 'end' && events.slice(i + 1).some((later) => later.kind === 'start')).map((e) => e.atSeconds);
}

describe('A/V sync across a gap', () => {
  it('keeps every beep on its flash before and after a camera reboot whose audio returns late', async () => {
    // Run 3: a camera whose picture returns after its sound.
    const runs = [await recordRun(1, {}), await recordRun(2, { audioSeconds: 0.5 }), await recordRun(3, { videoSeconds: 0.5 })];
    // The second run's first segment really does start its audio late.
    const probe = await ffmpeg(['-loglevel', 'info', '-i', runs[1]?.[0]?.path ?? '', '-f', 'null', '-t', '0.1', '-']);
    expect(probe).toMatch(/Audio: aac/);

    const t0 = Date.UTC(2026, 10, 30, 9);
    const lectureId = '01JAVSYNC0000000000000000A';
    const packager = new Packager({
      logger: silentLogger,
      settings: testPackagerSettings({ renditions: [{ name: '240p', height: 240, videoBitrateKbps: 300, crf: 28 }], hlsSegmentSeconds: 2 }),
    });
    const out = path.join(tmp.dir, 'pkg');
    const { manifest } = await packager.build(
      {
        lectureId,
        agent: { id: 'test', version: '0' },
        site: 'site',
        room: 'room',
        title: 'Sync',
        course: null,
        teacher: null,
        startedAtMs: t0,
        endedAtMs: t0 + 34_000,
        source: { name: 'presenter', role: 'presenter' },
        segments: runs.flat(),
        runs: [
          { run: 1, startedAtMs: t0, endedAtMs: t0 + 6_000, endReason: 'camera lost' },
          { run: 2, startedAtMs: t0 + 14_000, endedAtMs: t0 + 20_000, endReason: 'camera lost' },
          { run: 3, startedAtMs: t0 + 28_000, endedAtMs: t0 + 34_000, endReason: 'stopped' },
        ],
      },
      { stagingDir: `${out}.building`, finalDir: out },
    );
    expect(manifest.gaps.length).toBeGreaterThanOrEqual(2);

    const flashes = await flashTimes(path.join(out, 'hls/240p/index.m3u8'));
    const beeps = await beepTimes(path.join(out, 'hls/audio/index.m3u8'));
    const offsetsMs = flashes.map((f, i) => Math.round(((beeps[i] ?? Number.NaN) - f) * 1000));
    const report = `flashes ${flashes.map((t) => t.toFixed(3)).join(' ')} | beeps ${beeps.map((t) => t.toFixed(3)).join(' ')} | offsets ms ${offsetsMs.join(' ')}`;
    console.log(`A/V sync: ${report}`);
    // Three marks per run, in both tracks.
    expect(flashes, report).toHaveLength(9);
    expect(beeps, report).toHaveLength(9);
    for (const ms of offsetsMs) expect(Math.abs(ms), report).toBeLessThanOrEqual(100);
  }, 90_000);
});
