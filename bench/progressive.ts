/**
 * Progressive packaging benchmark (issue 4 acceptance: a 10-minute lecture fully packaged within
 * 60 s after Stop on the 2-core machine). A lecture-like input (a static slide, a small moving
 * "teacher", a tone; 1280x720 at 25 fps in 10 s MPEG-TS segments, as capture writes them) is
 * made first; then its segments are registered in a real SQLite recordings table at the pace
 * they would close (--pace 1 = real time) while the ProgressiveEncoder polls it every 5 s with
 * the config's transcode defaults (720p + 360p, niceness 10). At "Stop" the Packager builds
 * the package from the chunks; the seconds from Stop to a complete, validated package are
 * reported, next to the same package built in one run from the same segments.
 *
 * Run: npx tsc -p tsconfig.bench.json && node dist-bench/bench/progressive.js [--seconds 600] [--pace 1]
 */
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseSegmentList } from '../src/capture/segmentList.js';
import { configSchema } from '../src/config/schema.js';
import { closeDatabase, openDatabase } from '../src/db/index.js';
import { RecordingRepo } from '../src/db/recordings.js';
import { runFfmpeg } from '../src/ffmpeg/run.js';
import { createLogger, silentLogger } from '../src/log/logger.js';
import { Packager, type PackageSegment, type PackagerSettings } from '../src/transcode/packager.js';
import { ProgressiveEncoder } from '../src/transcode/progressive.js';
import { hashFile } from '../src/util/hash.js';
import { sleep } from '../src/util/sleep.js';

const arg = (name: string, fallback: number): number => {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const SECONDS = arg('--seconds', 600);
const PACE = arg('--pace', 1);
const ID = '01JBENCHPROGRESSIVE0000000';

// What a room runs: the config's transcode defaults.
const DEFAULTS = configSchema.parse({}).transcode;
const settings = (progressive: boolean): PackagerSettings => ({
  renditions: DEFAULTS.renditions,
  hlsSegmentSeconds: DEFAULTS.hlsSegmentSeconds,
  audioBitrateKbps: DEFAULTS.audioBitrateKbps,
  preset: DEFAULTS.preset,
  niceness: DEFAULTS.niceness,
  probeTimeoutMs: 60_000,
  durationToleranceSeconds: 0.5,
  thumbnailIntervalSeconds: 10,
  progressive,
});

async function main(): Promise<void> {
  const work = path.join(os.tmpdir(), `lectern-bench-progressive-${process.pid}`);
  const rec = path.join(work, 'recordings', ID, 'presenter', 'run-0001');
  mkdirSync(rec, { recursive: true });
  console.log(`progressive packaging benchmark: ${SECONDS} s lecture-like 1280x720 input, pace ${PACE}x real time, ${os.cpus().length} cores`);
  const t0 = performance.now();
  await runFfmpeg({
    label: 'make input',
    logger: silentLogger,
    args: [
      '-hide_banner', '-loglevel', 'error', '-progress', 'pipe:1',
      '-f', 'lavfi', '-i', `testsrc=size=1280x720:rate=25,trim=end_frame=1,loop=loop=-1:size=1,setpts=N/25/TB,trim=duration=${SECONDS}`,
      '-f', 'lavfi', '-i', `testsrc2=size=320x240:rate=25:duration=${SECONDS}`,
      '-f', 'lavfi', '-i', `sine=frequency=220:sample_rate=48000:duration=${SECONDS}`,
      '-filter_complex', '[0:v][1:v]overlay=x=940:y=460[v]',
      '-map', '[v]', '-map', '2:a',
      '-c:v', 'libx264', '-preset', 'veryfast', '-b:v', '3M', '-g', '50', '-c:a', 'aac', '-b:a', '96k',
      '-f', 'segment', '-segment_time', '10', '-reset_timestamps', '1', '-segment_format', 'mpegts',
      '-segment_list', `${rec}/segments.csv`, '-segment_list_type', 'csv', `${rec}/seg_%05d.ts`,
    ],
  });
  console.log(`input made in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
  const segments: PackageSegment[] = await Promise.all(
    parseSegmentList(readFileSync(`${rec}/segments.csv`, 'utf8')).map(async (e) => {
      const file = path.join(rec, e.fileName);
      return { path: file, ...(await hashFile(file)), durationSeconds: e.endSeconds - e.startSeconds, run: 1 };
    }),
  );
  const recorded = segments.reduce((s, x) => s + x.durationSeconds, 0);

  const db = openDatabase(path.join(work, 'state.db'), { logger: silentLogger });
  const repo = new RecordingRepo(db);
  const startedAtMs = Date.now();
  repo.create({ id: ID, title: 'bench', startedAtMs });
  repo.startRun(ID, 'presenter', 1, startedAtMs);
  const logger = createLogger({ level: 'info' });
  const encoder = new ProgressiveEncoder({
    recordings: repo,
    dataDir: work,
    sourceName: 'presenter',
    packageDir: (id) => path.join(work, 'packages', id),
    settings: settings(true),
    logger,
  });
  encoder.start();
  // Each segment "closes" when the recording has reached its end.
  const liveStart = performance.now();
  let offset = 0;
  for (const [i, s] of segments.entries()) {
    offset += s.durationSeconds;
    const dueMs = liveStart + (offset * 1000) / PACE;
    await sleep(Math.max(0, dueMs - performance.now()));
    repo.addSegment({ recordingId: ID, source: 'presenter', run: 1, seq: i, path: path.relative(work, s.path), bytes: s.bytes, sha256: s.sha256, startSeconds: offset - s.durationSeconds, durationSeconds: s.durationSeconds }, Date.now());
  }
  // Stop: the controller finishes the recording and the transcode job runs.
  const stopAt = performance.now();
  repo.finish(ID, 'stopped', Date.now(), 'stopped');
  await encoder.release(ID);
  const releasedAt = performance.now();
  const input = {
    lectureId: ID, agent: { id: 'bench', version: '0' }, site: 's', room: 'r', title: 'bench', course: null, teacher: null,
    startedAtMs, endedAtMs: Date.now(), source: { name: 'presenter', role: 'presenter' as const }, segments, runs: [],
  };
  const out = path.join(work, 'packages', ID);
  const built = await new Packager({ logger, settings: settings(true) }).build(input, { stagingDir: path.join(work, 'packages', `.${ID}.building`), finalDir: out });
  const afterStop = (performance.now() - stopAt) / 1000;
  await encoder.stop();

  const oneRunStart = performance.now();
  const oneOut = path.join(work, 'packages', `${ID}-one-run`);
  const one = await new Packager({ logger: silentLogger, settings: settings(false) }).build(input, { stagingDir: path.join(work, 'packages', `.one.building`), finalDir: oneOut });
  const oneRun = (performance.now() - oneRunStart) / 1000;

  const rows: Array<[string, string]> = [
    ['recorded seconds', recorded.toFixed(1)],
    ['waiting for the chunk in progress at Stop (s)', ((releasedAt - stopAt) / 1000).toFixed(1)],
    ['progressive: Stop -> package complete (s, target <= 60)', afterStop.toFixed(1)],
    ['one run: package build from Stop (s)', oneRun.toFixed(1)],
    ['durations progressive / one run (s)', `${built.manifest.renditions.map((r) => `${r.name} ${r.durationSeconds}`).join(', ')} / ${one.manifest.renditions.map((r) => `${r.name} ${r.durationSeconds}`).join(', ')}`],
  ];
  for (const [k, v] of rows) console.log(`${k.padEnd(58)} ${v}`);
  closeDatabase(db);
  rmSync(work, { recursive: true, force: true });
}

await main();
