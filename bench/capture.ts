/**
 * Capture CPU benchmark (issue: cameras and capture). In one run, from the same live RTSP camera
 * (GStreamer's RTSP server, tests/peers/rtspCamera.ts, H.264 + AAC), alternating rounds of:
 *   1. lectern's capture as the agent runs it: RecordingController + SourceRecorder, the capture
 *      ffmpeg with its confidence-monitor branch, segment ingest (sha256, ffprobe, SQLite);
 *   2. the reference: a bare `ffmpeg -rtsp_transport tcp -i URL -c copy` into 10 s segments.
 * CPU is user + system time: this process's own (the agent's part, which runs in it) plus the
 * reaped children's (ffmpeg, ffprobe), read from /proc/self/stat. The camera is a child too, but
 * it is reaped only at the end, so it is never counted. Prints the ratio (target <= 1.2).
 *
 * Run: npm run bench:capture [-- --seconds N --rounds R --width W --height H]
 */
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { RecordingController } from '../src/capture/recordingController.js';
import type { CaptureSettings } from '../src/capture/sourceRecorder.js';
import { closeDatabase, openDatabase } from '../src/db/index.js';
import { RecordingRepo } from '../src/db/recordings.js';
import { FfmpegProcess } from '../src/ffmpeg/process.js';
import { silentLogger } from '../src/log/logger.js';
import { sleep } from '../src/util/sleep.js';
import { startRtspCamera } from '../tests/peers/rtspCamera.js';

function numberArg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
}
const SECONDS = numberArg('seconds', 60);
const ROUNDS = numberArg('rounds', 2);
const WIDTH = numberArg('width', 1280);
const HEIGHT = numberArg('height', 720);
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

// The agent's defaults (src/config/schema.ts, src/agent/agent.ts).
const SETTINGS: CaptureSettings = {
  segmentSeconds: 10,
  format: 'mpegts',
  stallTimeoutMs: 20_000,
  stopQuitGraceMs: 8_000,
  stopInterruptGraceMs: 10_000,
  restartBackoff: { baseMs: 1_000, capMs: 2_000, jitter: 0.3 },
  stableRunMs: 60_000,
  monitor: { silenceDb: -50, silenceSeconds: 30, freezeSeconds: 30, freezeNoiseDb: -40, blackSeconds: 10 },
};

const CLOCK_TICKS_PER_SECOND = 100; // USER_HZ on Linux

/** CPU seconds of this process and of its reaped children. */
function cpuSeconds(): { self: number; children: number } {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  // Fields after the parenthesised command name; utime is field 14, cutime 16 (1-based).
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const tick = (i: number): number => Number(fields[i - 3]) / CLOCK_TICKS_PER_SECOND;
  const usage = process.cpuUsage();
  return { self: (usage.user + usage.system) / 1e6, children: tick(16) + tick(17) };
}

async function measure(fn: () => Promise<void>): Promise<{ self: number; children: number; total: number }> {
  const before = cpuSeconds();
  await fn();
  const after = cpuSeconds();
  const self = after.self - before.self;
  const children = after.children - before.children;
  return { self, children, total: self + children };
}

async function lecternRound(url: string, dir: string, monitor: boolean): Promise<void> {
  const db = openDatabase(path.join(dir, 'state.db'), { logger: silentLogger });
  const repo = new RecordingRepo(db);
  const { monitor: monitorSettings, ...plain } = SETTINGS;
  const controller = new RecordingController({
    sources: [{ name: 'presenter', role: 'presenter', input: { kind: 'rtsp', url, timeoutMs: 5_000, copyAudio: true }, secrets: [] }],
    settings: monitor && monitorSettings ? { ...plain, monitor: monitorSettings } : plain,
    store: repo,
    dirs: { dataDir: dir, sourceRunDir: (id, name, run) => path.join(dir, 'recordings', id, name, `run-${run}`) },
    disk: { check: async () => undefined },
    logger: silentLogger,
    onFinished: () => undefined,
  });
  await controller.start();
  await controller.startRecording();
  // The recording's length is the measurement itself.
  await sleep(SECONDS * 1000);
  await controller.stopRecording();
  await controller.stop();
  closeDatabase(db);
}

async function referenceRound(url: string, dir: string): Promise<void> {
  mkdirSync(dir, { recursive: true });
  const proc = new FfmpegProcess({
    args: ['-hide_banner', '-nostats', '-loglevel', 'warning', '-rtsp_transport', 'tcp', '-i', url, '-map', '0', '-c', 'copy', '-f', 'segment', '-segment_time', '10', path.join(dir, 'seg_%05d.ts')],
    label: 'reference',
    logger: silentLogger,
  });
  await proc.start();
  await sleep(SECONDS * 1000);
  await proc.stop();
}

async function main(): Promise<void> {
  const work = path.join(os.tmpdir(), `lectern-bench-capture-${process.pid}`);
  mkdirSync(work, { recursive: true });
  const camera = await startRtspCamera({ audio: 'aac', width: WIDTH, height: HEIGHT, fps: 25 });
  const rows: Record<'lectern' | 'noMonitor' | 'reference', Array<{ self: number; children: number; total: number }>> = { lectern: [], noMonitor: [], reference: [] };
  try {
    console.log(`capture bench: ${WIDTH}x${HEIGHT} 25 fps H.264 + AAC from the RTSP test camera, ${SECONDS} s per round, ${ROUNDS} rounds, ${os.cpus().length} cores`);
    for (let r = 0; r < ROUNDS; r++) {
      rows.reference.push(await measure(() => referenceRound(camera.url, path.join(work, `ref-${r}`))));
      rows.lectern.push(await measure(() => lecternRound(camera.url, path.join(work, `lec-${r}`), true)));
      rows.noMonitor.push(await measure(() => lecternRound(camera.url, path.join(work, `nomon-${r}`), false)));
      const last = (k: keyof typeof rows): string => {
        const m = rows[k].at(-1);
        return m ? `${m.total.toFixed(2)} s (agent ${m.self.toFixed(2)} + ffmpeg/ffprobe ${m.children.toFixed(2)})` : '';
      };
      console.log(`round ${r + 1}: reference ${last('reference')}; lectern ${last('lectern')}; lectern without monitor ${last('noMonitor')}`);
    }
  } finally {
    await camera.stop();
    rmSync(work, { recursive: true, force: true });
  }
  const ref = median(rows.reference.map((m) => m.total));
  const lec = median(rows.lectern.map((m) => m.total));
  const nomon = median(rows.noMonitor.map((m) => m.total));
  const pct = (cpu: number): string => `${((cpu / SECONDS) * 100).toFixed(1)}% of a core`;
  console.log(`median CPU per ${SECONDS} s: reference ${ref.toFixed(2)} s (${pct(ref)}), lectern ${lec.toFixed(2)} s (${pct(lec)}), lectern without monitor ${nomon.toFixed(2)} s (${pct(nomon)})`);
  console.log(`ratio lectern / bare ffmpeg -c copy: ${(lec / ref).toFixed(2)} (target <= 1.2); without the confidence monitor: ${(nomon / ref).toFixed(2)}`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
