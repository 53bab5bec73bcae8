/**
 * Package benchmark (issue: the MOOC package). In one run, on the same recorded segments:
 *   1. lectern's Packager (loudness pass, ladder + audio-only + poster + thumbnails, validation, hashing)
 *   2. one hand-written ffmpeg command producing the same ladder (the reference)
 *   3. a plain x264 CRF 23 720p encode (the size reference)
 * and prints build-time ratio (target <= 1.05), real-time factor, bytes per lecture-hour of the
 * 720p rendition against the CRF 23 encode (target <= 0.6) and the SSIM of both against the source.
 *
 * Input: a lecture-like synthetic picture (a static "slide" with a small moving "teacher" in a
 * corner) and a tone, recorded as capture does. Run: npm run bench:package [-- --seconds N --rounds R]
 */
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseSegmentList } from '../src/capture/segmentList.js';
import { configSchema } from '../src/config/schema.js';
import { lectureX264Params } from '../src/ffmpeg/hlsArgs.js';
import { runFfmpeg } from '../src/ffmpeg/run.js';
import { silentLogger } from '../src/log/logger.js';
import { Packager, type PackageSegment } from '../src/transcode/packager.js';
import { buildConcatList } from '../src/transcode/playlists.js';
import { hashFile } from '../src/util/hash.js';

const secondsArg = process.argv.indexOf('--seconds');
const SECONDS = secondsArg > 0 ? Number(process.argv[secondsArg + 1]) : 120;
const roundsArg = process.argv.indexOf('--rounds');
const ROUNDS = roundsArg > 0 ? Number(process.argv[roundsArg + 1]) : 3;
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
// The production defaults (transcode section of the config): ladder, CRF, preset, segment length.
const DEFAULTS = configSchema.parse({}).transcode;
const rung = (i: number, height: number): (typeof DEFAULTS.renditions)[number] => {
  const r = DEFAULTS.renditions[i];
  if (DEFAULTS.renditions.length !== 2 || r?.height !== height) throw new Error('the bench expects the default ladder 720p + 360p');
  return r;
};
const [R720, R360] = [rung(0, 720), rung(1, 360)];
const FPS = 25;
const GOP = String(FPS * DEFAULTS.hlsSegmentSeconds);
// The hand-written reference spells the x264 options out; they must be the ones lectern passes.
const REFERENCE_X264_PARAMS = DEFAULTS.preset === 'medium' || DEFAULTS.preset === 'slow' ? 'psy=0:ipratio=2.0:qcomp=0.5:subme=9:me=umh' : 'psy=0:ipratio=2.0:qcomp=0.5';
if (REFERENCE_X264_PARAMS !== lectureX264Params(DEFAULTS.preset)) throw new Error(`the reference's x264 options differ from lectern's: ${lectureX264Params(DEFAULTS.preset)}`);
/** SSIM in dB: -10 log10(1 - SSIM). */
const ssimDb = (ssim: number): number => -10 * Math.log10(1 - ssim);

async function ffmpeg(args: string[], label: string, stderrRingLines = 100): Promise<string[]> {
  const exit = await runFfmpeg({ args: ['-hide_banner', '-nostats', '-progress', 'pipe:1', ...args], label, logger: silentLogger, stderrRingLines });
  return exit.stderrTail;
}

async function timed<T>(fn: () => Promise<T>): Promise<{ value: T; seconds: number }> {
  const t0 = process.hrtime.bigint();
  const value = await fn();
  return { value, seconds: Number(process.hrtime.bigint() - t0) / 1e9 };
}

function dirBytes(dir: string, filter: (f: string) => boolean = () => true): number {
  let total = 0;
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    const p = path.join(e.parentPath, e.name);
    if (e.isFile() && filter(p)) total += statSync(p).size;
  }
  return total;
}

async function ssim(distorted: string, reference: string): Promise<number> {
  const lines = await ffmpeg(['-loglevel', 'info', '-i', distorted, '-f', 'concat', '-safe', '0', '-i', reference, '-lavfi', '[0:v]scale=1280:720[a];[1:v]scale=1280:720[b];[a][b]ssim', '-f', 'null', '-'], 'ssim');
  const line = lines.find((l) => l.includes('SSIM Y:'));
  return Number(/All:([\d.]+)/.exec(line ?? '')?.[1] ?? NaN);
}

async function main(): Promise<void> {
  const work = path.join(os.tmpdir(), `lectern-bench-${process.pid}`);
  const rec = path.join(work, 'rec');
  mkdirSync(rec, { recursive: true });
  console.log(`lectern package benchmark: ${SECONDS} s lecture-like 1280x720 input, ${os.cpus().length} cores, ffmpeg from PATH`);
  console.log(
    `defaults: ${DEFAULTS.renditions.map((r) => `${r.name} crf ${r.crf} max ${r.videoBitrateKbps}k`).join(', ')}, preset ${DEFAULTS.preset} (${lectureX264Params(DEFAULTS.preset)}), ${DEFAULTS.hlsSegmentSeconds} s segments, audio ${DEFAULTS.audioBitrateKbps}k`,
  );

  // A static slide (one frozen test card) with a 320x240 moving picture in the corner, like a
  // teacher beside slides; recorded with the capture settings (H.264 from the "camera", 10 s TS).
  await ffmpeg(
    [
      '-loglevel', 'error',
      '-f', 'lavfi', '-i', `testsrc=size=1280x720:rate=25,trim=end_frame=1,loop=loop=-1:size=1,setpts=N/25/TB,trim=duration=${SECONDS}`,
      '-f', 'lavfi', '-i', `testsrc2=size=320x240:rate=25:duration=${SECONDS}`,
      '-f', 'lavfi', '-i', `sine=frequency=220:sample_rate=48000:duration=${SECONDS}`,
      '-filter_complex', '[0:v][1:v]overlay=x=940:y=460[v]',
      '-map', '[v]', '-map', '2:a',
      '-c:v', 'libx264', '-preset', 'veryfast', '-b:v', '3M', '-g', '50', '-c:a', 'aac', '-b:a', '96k',
      '-f', 'segment', '-segment_time', '10', '-reset_timestamps', '1', '-segment_format', 'mpegts',
      '-segment_list', `${rec}/segments.csv`, '-segment_list_type', 'csv', `${rec}/seg_%05d.ts`,
    ],
    'make input',
  );
  const segments: PackageSegment[] = await Promise.all(
    parseSegmentList(readFileSync(`${rec}/segments.csv`, 'utf8')).map(async (e) => {
      const file = path.join(rec, e.fileName);
      return { path: file, ...(await hashFile(file)), durationSeconds: e.endSeconds - e.startSeconds, run: 1 };
    }),
  );
  const recorded = segments.reduce((s, x) => s + x.durationSeconds, 0);
  const concat = path.join(work, 'source.ffconcat');
  writeFileSync(concat, buildConcatList(segments));

  // 1 and 2 alternate for ROUNDS rounds and the medians are compared, so a burst of other load
  // on the machine does not land on one side only.
  const ours = path.join(work, 'ours');
  const buildOurs = () =>
    new Packager({
      logger: silentLogger,
      settings: {
        renditions: DEFAULTS.renditions, hlsSegmentSeconds: DEFAULTS.hlsSegmentSeconds, audioBitrateKbps: DEFAULTS.audioBitrateKbps, preset: DEFAULTS.preset,
        niceness: 0, probeTimeoutMs: 60_000, durationToleranceSeconds: 0.5, thumbnailIntervalSeconds: 10,
      },
    }).build(
      {
        lectureId: '01JBENCH000000000000000000', agent: { id: 'bench', version: '0' }, site: 's', room: 'r', title: 'bench', course: null, teacher: null,
        startedAtMs: 0, endedAtMs: recorded * 1000, source: { name: 'presenter', role: 'presenter' }, segments, runs: [],
      },
      { stagingDir: `${ours}.building`, finalDir: ours },
    );

  // 2. the same ladder by hand: one ffmpeg in the form of research/libraries.md §2.6 (ladder,
  // audio group, master playlist), without loudness pass, thumbnails, poster or validation.
  const ref = path.join(work, 'ref', 'hls');
  const buildReference = () =>
    ffmpeg(
      [
        '-loglevel', 'error', '-f', 'concat', '-safe', '0', '-i', concat,
        '-filter_complex', '[0:v]split=2[s0][s1];[s0]scale=-2:720[v0];[s1]scale=-2:360[v1]',
        '-map', '[v0]', '-map', '[v1]', '-map', '0:a:0',
        '-c:v', 'libx264', '-preset', DEFAULTS.preset, '-x264-params', REFERENCE_X264_PARAMS, '-profile:v', 'main', '-pix_fmt', 'yuv420p',
        '-r', String(FPS), '-g', GOP, '-keyint_min', GOP, '-sc_threshold', '0',
        '-crf:v:0', String(R720.crf), '-maxrate:v:0', `${R720.videoBitrateKbps}k`, '-bufsize:v:0', `${R720.videoBitrateKbps * 2}k`,
        '-crf:v:1', String(R360.crf), '-maxrate:v:1', `${R360.videoBitrateKbps}k`, '-bufsize:v:1', `${R360.videoBitrateKbps * 2}k`,
        '-c:a', 'aac', '-b:a', `${DEFAULTS.audioBitrateKbps}k`, '-ac', '2', '-ar', '48000',
        '-f', 'hls', '-hls_time', String(DEFAULTS.hlsSegmentSeconds), '-hls_playlist_type', 'vod', '-hls_segment_type', 'fmp4',
        '-hls_segment_filename', `${ref}/%v/seg_%05d.m4s`, '-master_pl_name', 'master.m3u8',
        '-var_stream_map', 'v:0,agroup:aud,name:720p v:1,agroup:aud,name:360p a:0,agroup:aud,name:audio',
        `${ref}/%v/index.m3u8`,
      ],
      'reference ladder',
    );
  const oursSeconds: number[] = [];
  const refSeconds: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    rmSync(ours, { recursive: true, force: true });
    oursSeconds.push((await timed(buildOurs)).seconds);
    rmSync(ref, { recursive: true, force: true });
    mkdirSync(ref, { recursive: true });
    refSeconds.push((await timed(buildReference)).seconds);
  }
  const lectern = { seconds: median(oursSeconds) };
  const reference = { seconds: median(refSeconds) };

  // 3. plain x264 CRF 23 at 720p (what a generic "just encode it" pipeline would store).
  const plain = path.join(work, 'plain720.mp4');
  await ffmpeg(['-loglevel', 'error', '-f', 'concat', '-safe', '0', '-i', concat, '-vf', 'scale=-2:720', '-c:v', 'libx264', '-preset', 'veryfast', '-crf', '23', '-c:a', 'aac', '-b:a', '64k', plain], 'crf23');

  const ours720 = dirBytes(path.join(ours, 'hls', '720p'));
  const audioBytes = dirBytes(path.join(ours, 'hls', 'audio'));
  const plainBytes = statSync(plain).size;
  const perHour = (bytes: number): number => (bytes / recorded) * 3600;
  const [ssimOurs, ssimPlain] = [await ssim(path.join(ours, 'hls', '720p', 'index.m3u8'), concat), await ssim(plain, concat)];

  const rows: Array<[string, string]> = [
    ['recorded seconds', recorded.toFixed(1)],
    [`lectern package build, median of ${ROUNDS} (s)`, `${lectern.seconds.toFixed(2)}  [${oursSeconds.map((x) => x.toFixed(2)).join(', ')}]`],
    [`hand-written ladder command, median of ${ROUNDS} (s)`, `${reference.seconds.toFixed(2)}  [${refSeconds.map((x) => x.toFixed(2)).join(', ')}]`],
    ['build time ratio lectern / reference (target <= 1.05)', (lectern.seconds / reference.seconds).toFixed(3)],
    ['real-time factor (recorded s / build s)', (recorded / lectern.seconds).toFixed(2)],
    ['720p rendition + audio, MiB per lecture-hour', ((perHour(ours720 + audioBytes)) / 2 ** 20).toFixed(1)],
    ['plain x264 CRF 23 720p, MiB per lecture-hour', (perHour(plainBytes) / 2 ** 20).toFixed(1)],
    ['bytes ratio 720p+audio / CRF 23 (target <= 0.6)', ((ours720 + audioBytes) / plainBytes).toFixed(3)],
    ['SSIM 720p rendition vs source', `${ssimOurs.toFixed(4)}  (${ssimDb(ssimOurs).toFixed(2)} dB)`],
    ['SSIM CRF 23 vs source', `${ssimPlain.toFixed(4)}  (${ssimDb(ssimPlain).toFixed(2)} dB)`],
    ['SSIM dB 720p below CRF 23 (comparable: <= 1.5)', (ssimDb(ssimPlain) - ssimDb(ssimOurs)).toFixed(2)],
    ['whole package, MiB per lecture-hour', (perHour(dirBytes(ours)) / 2 ** 20).toFixed(1)],
  ];
  for (const [k, v] of rows) console.log(`${k.padEnd(56)} ${v}`);
  rmSync(work, { recursive: true, force: true });
}

await main();
