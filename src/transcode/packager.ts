import { access, link, mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { probeMedia } from '../ffmpeg/ffprobe.js';
import { stopOrphans } from '../ffmpeg/orphans.js';
import {
  AUDIO_RENDITION_NAME,
  buildHlsAudioArgs,
  buildHlsVideoArgs,
  buildPosterArgs,
  type HlsPackageSpec,
  type HlsRendition,
  type ThumbnailSpec,
  type VideoEncoder,
} from '../ffmpeg/hlsArgs.js';
import { runFfmpeg } from '../ffmpeg/run.js';
import type { Logger } from '../log/logger.js';
import { describeError, isLecternError, LecternError } from '../util/errors.js';
import { hashFile } from '../util/hash.js';
import { mediaPositionSeconds, overlapMs } from '../util/mediaTime.js';
import { buildChaptersVtt, chaptersFromMarkers, CHAPTERS_FILE_NAME } from './chapters.js';
import {
  MANIFEST_FILE_NAME,
  MANIFEST_SCHEMA_VERSION,
  serializeJson,
  type LectureManifest,
  type ManifestFile,
  type ManifestGap,
  type ManifestPause,
  type ManifestRendition,
  type ManifestSource,
  type ManifestThumbnails,
} from './manifest.js';
import { measureLoudness } from './loudness.js';
import { AAC_LC_CODEC, avcCodecFromInit, buildMasterPlaylist, measureRendition, type MasterAudio, type MasterVideoVariant } from './master.js';
import { buildConcatList, FFMPEG_INIT_FILE, playlistDurationSeconds, rewriteInitReference } from './playlists.js';
import { buildThumbnailsVtt, thumbnailSize } from './thumbnails.js';
import { ChunkedVideo, progressiveDirFor, type ChunkParams } from './chunkedVideo.js';
import { pathExists } from '../util/pathExists.js';

/**
 * Builds the HLS VOD package of one recording from its registered segments: a staging folder
 * is filled, validated with ffprobe, described by lecture.json, and only then renamed into
 * place. A crash at any point leaves either no package or a complete one; never half of one.
 */

export interface PackageSegment {
  /** Absolute path of the recorded segment. */
  path: string;
  sha256: string;
  bytes: number;
  durationSeconds: number;
  run: number;
}

export interface PackageRun {
  run: number;
  startedAtMs: number;
  endedAtMs: number | null;
  endReason: string | null;
}

export interface PackageInput {
  lectureId: string;
  agent: { id: string; version: string };
  site: string;
  room: string;
  title: string;
  course: string | null;
  teacher: string | null;
  startedAtMs: number;
  endedAtMs: number;
  source: { name: string; role: 'presenter' | 'presentation' };
  segments: readonly PackageSegment[];
  runs: readonly PackageRun[];
  /** Alerts raised while recording; endedAtMs null = still active when the recording ended. */
  alerts?: ReadonlyArray<{ kind: string; source?: string | null; startedAtMs: number; endedAtMs: number | null; message: string }>;
  /** The teacher's pauses; endedAtMs null = paused when the recording ended. */
  pauses?: ReadonlyArray<{ startedAtMs: number; endedAtMs: number | null }>;
  /** Chapter markers by the wall-clock moment they were set. */
  markers?: ReadonlyArray<{ atMs: number; title: string }>;
  /** The room's other video sources (the board, the slides): each gets its own video ladder at tier 2. */
  otherSources?: readonly OtherSourceInput[];
}

export interface OtherSourceInput {
  name: string;
  role: 'presenter' | 'presentation';
  segments: readonly PackageSegment[];
  runs: readonly PackageRun[];
}

/** Where the other sources' packages live in a lecture folder (the presenter's stays at hls/, the storage contract). */
export const SOURCES_DIR = 'sources';

export interface PackagerSettings {
  renditions: readonly HlsRendition[];
  hlsSegmentSeconds: number;
  audioBitrateKbps: number;
  preset: string;
  niceness: number;
  probeTimeoutMs: number;
  /** Allowed difference between recorded and packaged duration. */
  durationToleranceSeconds: number;
  /** One seek-bar thumbnail per this many seconds. */
  thumbnailIntervalSeconds: number;
  /** A hardware video encoder to try first; libx264 whenever it is absent or fails. */
  hardware?: { encoder: 'none' | 'vaapi' | 'qsv'; device: string };
  /**
   * Use the video chunks a ProgressiveEncoder made while the lecture was recorded (only the rest
   * is encoded after Stop). Without usable chunks the video is encoded in one run as before.
   */
  progressive?: boolean;
}

/** The frame rate and ladder a recording is packaged with, from its first segment's video stream. */
export function videoLadder(
  settings: Pick<PackagerSettings, 'renditions'>,
  video: { width?: number | undefined; height?: number | undefined; frameRate?: number | undefined },
): { fps: number; renditions: readonly HlsRendition[] } {
  // A camera that reports 0 or absurd rates gets the lecture-friendly default.
  const fps = video.frameRate && video.frameRate >= 1 && video.frameRate <= 60 ? Math.round(video.frameRate) : 25;
  // Never upscale: a rung taller than the source is dropped (at least the lowest one stays).
  const sourceHeight = video.height ?? Number.MAX_SAFE_INTEGER;
  const fitting = settings.renditions.filter((r) => r.height <= sourceHeight);
  return { fps, renditions: fitting.length > 0 ? fitting : settings.renditions.slice(-1) };
}

/** The encoder of the ladder: the configured hardware one when its device exists, else libx264. */
export async function chooseVideoEncoder(settings: Pick<PackagerSettings, 'hardware'>): Promise<{ encoder: VideoEncoder; missingDevice?: string }> {
  const hw = settings.hardware;
  if (!hw || hw.encoder === 'none') return { encoder: { kind: 'libx264' } };
  try {
    await access(hw.device);
    return { encoder: { kind: hw.encoder, device: hw.device } };
  } catch {
    return { encoder: { kind: 'libx264' }, missingDevice: hw.device };
  }
}

/** What progressive chunks are encoded with; equal parameters are the condition for reusing them. */
export function chunkParamsFor(
  settings: PackagerSettings,
  video: { width?: number | undefined; height?: number | undefined; frameRate?: number | undefined },
  encoder: VideoEncoder,
): ChunkParams {
  const { fps, renditions } = videoLadder(settings, video);
  return {
    renditions,
    segmentSeconds: settings.hlsSegmentSeconds,
    fps,
    preset: settings.preset,
    encoder,
    thumbnail: { intervalSeconds: settings.thumbnailIntervalSeconds, ...thumbnailSize(video.width ?? 16, video.height ?? 9, THUMB_WIDTH) },
    ...(video.width && video.height ? { sourceWidth: video.width, sourceHeight: video.height } : {}),
  };
}

// 5x5 sheets of 160 px wide tiles: about 30 KiB a sheet, four minutes of lecture each at 10 s.
const THUMB_COLUMNS = 5;
const THUMB_ROWS = 5;
const THUMB_WIDTH = 160;


/** 1 = audio, the lowest rendition and the poster, published first; 2 = the full ladder. */
export type PackageTier = 1 | 2;

/** What one build encodes, and what the package holds when it is done. */
export interface TierPlan {
  tier: PackageTier;
  /** Video renditions this build encodes. */
  encode: HlsRendition[];
  /** Every video rendition of the finished package, highest first (the master's order). */
  video: Array<{ name: string; height: number }>;
  /** The audio-only rendition (with its loudness pass) and the poster are made by this build. */
  audio: boolean;
  poster: boolean;
  thumbnails: boolean;
}

/**
 * Tier 1: the lowest rung, audio and poster; tier 2 on a tier-1 package: the rungs it lacks and
 * the thumbnails; no tier (or a ladder of one rung): everything, as tier 2.
 */
export function planTier(ladder: readonly HlsRendition[], tier: PackageTier | undefined, base?: Pick<LectureManifest, 'renditions'>): TierPlan {
  const lowest = ladder.at(-1);
  if (tier === 1 && lowest && ladder.length > 1) {
    return { tier: 1, encode: [lowest], video: [{ name: lowest.name, height: lowest.height }], audio: true, poster: true, thumbnails: false };
  }
  if (tier === 2 && base) {
    const have = base.renditions.filter((r) => r.kind === 'video').map((r) => ({ name: r.name, height: r.height ?? 0 }));
    const encode = ladder.filter((r) => !have.some((h) => h.name === r.name));
    const video = [...have, ...encode.map((r) => ({ name: r.name, height: r.height }))].sort((a, b) => b.height - a.height);
    // Thumbnails come from the same decode as the rungs; with none left to encode there is none.
    return { tier: 2, encode, video, audio: false, poster: false, thumbnails: encode.length > 0 };
  }
  return { tier: 2, encode: [...ladder], video: ladder.map((r) => ({ name: r.name, height: r.height })), audio: true, poster: true, thumbnails: true };
}

/** Where a tier-1 package waits while its tier-2 successor is renamed into its place. */
function previousDirFor(finalDir: string): string {
  return path.join(path.dirname(finalDir), `.${path.basename(finalDir)}.previous`);
}

/**
 * Finishes or undoes a swap a crash cut: killed between the two renames, the tier-1 package is
 * put back (and tier 2 is built again); killed after them, the old tier 1 is removed.
 */
async function recoverTierSwap(finalDir: string): Promise<void> {
  const previous = previousDirFor(finalDir);
  if (!(await pathExists(previous))) return;
  if (await pathExists(finalDir)) await rm(previous, { recursive: true, force: true });
  else await rename(previous, finalDir);
}

async function swapTierIntoPlace(stagingDir: string, finalDir: string): Promise<void> {
  const previous = previousDirFor(finalDir);
  await rm(previous, { recursive: true, force: true });
  await rename(finalDir, previous);
  await rename(stagingDir, finalDir);
  await rm(previous, { recursive: true, force: true });
}

/**
 * A tier-2 build starts from the tier-1 package's files, hard-linked (the same bytes the store
 * may already hold); only the master playlist and lecture.json are written anew, never through
 * these links.
 */
async function linkTierFiles(base: LectureManifest, finalDir: string, stagingDir: string): Promise<void> {
  for (const file of base.files) {
    if (file.path === base.master || file.path === MANIFEST_FILE_NAME) continue;
    const to = path.join(stagingDir, ...file.path.split('/'));
    await mkdir(path.dirname(to), { recursive: true, mode: 0o755 });
    await link(path.join(finalDir, ...file.path.split('/')), to);
  }
}

export interface BuiltPackage {
  dir: string;
  manifest: LectureManifest;
}

export class Packager {
  readonly #settings: PackagerSettings;
  readonly #log: Logger;
  readonly #now: () => number;

  constructor(opts: { settings: PackagerSettings; logger: Logger; now?: () => number }) {
    this.#settings = opts.settings;
    this.#log = opts.logger.child({ scope: 'transcode' });
    this.#now = opts.now ?? Date.now;
  }

  /**
   * Builds into `stagingDir`, then renames it to `finalDir`. If `finalDir` already holds a
   * package with a readable manifest (a previous run finished but crashed before recording it),
   * that package is returned as it is.
   *
   * Tiers (DESIGN §3.1): `tier: 1` builds the audio-only rendition, the lowest video rendition,
   * the poster and the chapters; `tier: 2` adds the rest of the ladder and the thumbnails to the
   * tier-1 package in `finalDir`. Its files are kept byte for byte (the store may hold them
   * already) and only master.m3u8 and lecture.json are rewritten. Without `tier` the whole
   * package is built at once (tier 2); a ladder of one rung has nothing to add later, so its
   * tier 1 is already tier 2.
   */
  async build(input: PackageInput, dirs: { stagingDir: string; finalDir: string }, signal?: AbortSignal, opts: { tier?: PackageTier } = {}): Promise<BuiltPackage> {
    await recoverTierSwap(dirs.finalDir);
    const existing = await readExistingManifest(dirs.finalDir);
    if (existing && (opts.tier !== 2 || existing.tier === 2)) {
      this.#log.info(`package for ${input.lectureId} already built (tier ${existing.tier}); reusing it`);
      // Kept until the full ladder is in place: tier 2 assembles the rest of the ladder from them.
      if (existing.tier === 2) await rm(progressiveDirFor(dirs.finalDir), { recursive: true, force: true });
      return { dir: dirs.finalDir, manifest: existing };
    }
    // Without a tier-1 package (none was built, or it was lost) tier 2 is built whole.
    const base = opts.tier === 2 ? existing : undefined;
    if (input.segments.length === 0) throw new LecternError('RECORDING_EMPTY', `recording ${input.lectureId} has no segments to package`);

    const segments = await this.#verifiedSegments(input.segments);
    const stagingDir = await this.#freshStagingDir(dirs.stagingDir);
    const hlsDir = path.join(stagingDir, 'hls');
    await mkdir(hlsDir, { recursive: true, mode: 0o755 });
    if (base) await linkTierFiles(base, dirs.finalDir, stagingDir);

    const first = await probeMedia(segments[0]?.path ?? '', { timeoutMs: this.#settings.probeTimeoutMs });
    const video = first.streams.find((s) => s.codecType === 'video');
    if (!video) throw new LecternError('TRANSCODE_FAILED', `recording ${input.lectureId} has no video stream`);
    const hasAudio = base ? base.renditions.some((r) => r.kind === 'audio') : first.streams.some((s) => s.codecType === 'audio');
    const { fps, renditions: ladder } = videoLadder(this.#settings, video);
    const plan = planTier(ladder, opts.tier, base);

    const concatPath = path.join(stagingDir, 'source.ffconcat');
    await writeFile(concatPath, buildConcatList(segments));
    const recordedSeconds = segments.reduce((sum, s) => sum + s.durationSeconds, 0);
    const startedMs = this.#now();
    const thumbs: ThumbnailSpec = {
      intervalSeconds: this.#settings.thumbnailIntervalSeconds,
      ...thumbnailSize(video.width ?? 16, video.height ?? 9, THUMB_WIDTH),
      columns: THUMB_COLUMNS,
      rows: THUMB_ROWS,
      pattern: path.join(stagingDir, 'thumbs', 'sprite_%03d.jpg'),
    };
    await mkdir(path.join(stagingDir, 'thumbs'), { recursive: true, mode: 0o755 });
    const encodeAudio = hasAudio && plan.audio;
    if (encodeAudio) await mkdir(path.join(hlsDir, AUDIO_RENDITION_NAME), { mode: 0o755 });

    // The video ladder and the audio (loudness pass, then its encode) run side by side: the
    // audio work is small and hides inside the video encode, which is the real cost.
    const abort = new AbortController();
    const onAbort = (): void => abort.abort(signal?.reason);
    signal?.addEventListener('abort', onAbort, { once: true });
    const common = { logger: this.#log, niceness: this.#settings.niceness, signal: abort.signal };
    const videoSpec: HlsPackageSpec = {
      concatListPath: concatPath,
      hlsDir,
      renditions: plan.encode,
      segmentSeconds: this.#settings.hlsSegmentSeconds,
      fps,
      preset: this.#settings.preset,
      ...(plan.thumbnails ? { thumbnails: thumbs } : {}),
      // A tenth into the lecture (at most 30 s): past the blank seconds before the teacher starts.
      ...(plan.poster
        ? { poster: { atSeconds: round3(Math.min(30, recordedSeconds / 10)), height: Math.min(720, ladder[0]?.height ?? 720), path: path.join(stagingDir, 'poster.jpg') } }
        : {}),
      ...(video.width && video.height ? { sourceWidth: video.width, sourceHeight: video.height } : {}),
    };
    const chunks = this.#settings.progressive && plan.encode.length > 0 ? await this.#usableChunks(input.lectureId, dirs.finalDir, video, segments) : undefined;
    const videoJob = (
      plan.encode.length === 0
        ? Promise.resolve()
        : chunks
          ? this.#finishChunks(chunks, videoSpec, segments, input.lectureId, stagingDir, common)
          : this.#encodeVideo(videoSpec, input.lectureId, common)
    ).then(() => this.#now());
    const audioJob = encodeAudio
      ? (async () => {
          const loudness = await measureLoudness({ concatPath, lectureId: input.lectureId, ...common });
          await runFfmpeg({
            ...common,
            label: `package audio ${input.lectureId}`,
            args: buildHlsAudioArgs({
              concatListPath: concatPath,
              outDir: path.join(hlsDir, AUDIO_RENDITION_NAME),
              audioBitrateKbps: this.#settings.audioBitrateKbps,
              segmentSeconds: this.#settings.hlsSegmentSeconds,
              ...(loudness.filter ? { audioFilter: loudness.filter } : {}),
            }),
          });
          return { loudness, doneMs: this.#now() };
        })()
      : Promise.resolve(undefined);
    let audio: Awaited<typeof audioJob>;
    let videoDoneMs: number;
    try {
      [videoDoneMs, audio] = await Promise.all([videoJob, audioJob]);
    } catch (err) {
      abort.abort(err);
      await Promise.allSettled([videoJob, audioJob]);
      throw err;
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
    await rm(concatPath);
    const encodedMs = this.#now();

    await normaliseInitFiles(hlsDir);
    const thumbnails = plan.thumbnails ? await writeThumbnailsVtt(stagingDir, thumbs, recordedSeconds) : null;
    // Every video rendition of the package is checked, those a tier-1 package brought included.
    const validated = await this.#validate(hlsDir, plan.video, hasAudio, recordedSeconds);
    const renditionInfo = validated.renditions;
    // The other video sources come with the full ladder (tier 2): tier 1 is the presenter alone.
    const sources: ManifestSource[] = [];
    if (plan.tier === 2) {
      for (const src of input.otherSources ?? []) {
        // The job's own signal: the encode's controller above no longer follows it.
        const built = await this.#buildSource(src, input, stagingDir, validated.audio, { ...common, signal: signal ?? common.signal });
        if (built) sources.push(built);
      }
    }
    const durationSeconds = renditionInfo[0]?.durationSeconds ?? recordedSeconds;
    const pauses = input.pauses ?? [];
    // Markers and chapters were placed by tier 1; chapters.vtt is one of its files, kept as it is.
    const markers = base ? base.markers : positionMarkers(input, segments, durationSeconds);
    const chapters = base ? [] : chaptersFromMarkers(markers, durationSeconds);
    if (chapters.length > 0) await writeFile(path.join(stagingDir, CHAPTERS_FILE_NAME), buildChaptersVtt(chapters), { mode: 0o644 });
    const files = await listPackageFiles(stagingDir);

    const manifest: LectureManifest = {
      schemaVersion: MANIFEST_SCHEMA_VERSION,
      lectureId: input.lectureId,
      tier: plan.tier,
      agent: input.agent,
      site: input.site,
      room: input.room,
      title: input.title,
      course: input.course,
      teacher: input.teacher,
      startedAt: new Date(input.startedAtMs).toISOString(),
      endedAt: new Date(input.endedAtMs).toISOString(),
      durationSeconds: round3(durationSeconds),
      source: { ...input.source, segments: segments.length, recordedSeconds: round3(recordedSeconds) },
      master: 'hls/master.m3u8',
      renditions: renditionInfo,
      gaps: computeGaps(input.runs, segments, pauses, input.endedAtMs, input.startedAtMs, lostWindows(input, input.source.name)),
      pauses: computePauses(pauses, input.runs, segments, input.endedAtMs),
      loudness: base ? base.loudness : (audio?.loudness.manifest ?? null),
      poster: base ? base.poster : 'poster.jpg',
      thumbnails,
      markers,
      chapters: base ? (base.chapters ?? null) : chapters.length > 0 ? CHAPTERS_FILE_NAME : null,
      ...(sources.length > 0 ? { sources } : {}),
      alerts: (input.alerts ?? []).map((a) => ({
        kind: a.kind,
        startedAt: new Date(a.startedAtMs).toISOString(),
        endedAt: a.endedAtMs === null ? null : new Date(a.endedAtMs).toISOString(),
        message: a.message,
      })),
      files,
      createdAt: new Date(this.#now()).toISOString(),
    };
    await writeFile(path.join(stagingDir, MANIFEST_FILE_NAME), serializeJson(manifest), { mode: 0o644 });
    if (base) {
      await swapTierIntoPlace(stagingDir, dirs.finalDir);
    } else {
      await rm(dirs.finalDir, { recursive: true, force: true });
      await rename(stagingDir, dirs.finalDir);
    }
    // Only now, and only once the full ladder is there: until then a crash (or tier 2) must find the chunks again.
    if (manifest.tier === 2) await rm(progressiveDirFor(dirs.finalDir), { recursive: true, force: true });
    this.#log.info(`package for ${input.lectureId} built (tier ${manifest.tier})`, {
      durationSeconds: manifest.durationSeconds,
      renditions: renditionInfo.map((r) => r.name).join(','),
      // Where the time went, so a slow classroom PC can be diagnosed from its journal.
      videoSeconds: round3((videoDoneMs - startedMs) / 1000),
      progressiveChunks: chunks?.chunkCount ?? 0,
      audioSeconds: audio ? round3((audio.doneMs - startedMs) / 1000) : 0,
      checkSeconds: round3((this.#now() - encodedMs) / 1000),
      realTimeFactor: round3(recordedSeconds / Math.max((this.#now() - startedMs) / 1000, 0.001)),
    });
    return { dir: dirs.finalDir, manifest };
  }

  /**
   * The video ladder, on the configured hardware encoder when its device exists, else (and
   * whenever the hardware run fails) on libx264. The fallback is logged once per package: the
   * lecture is never lost to a driver problem, only packaged more slowly.
   */
  async #encodeVideo(spec: HlsPackageSpec, lectureId: string, common: { logger: Logger; niceness: number; signal: AbortSignal }): Promise<void> {
    const software: VideoEncoder = { kind: 'libx264' };
    const hw = this.#settings.hardware;
    let encoder: VideoEncoder = software;
    if (hw && hw.encoder !== 'none') {
      try {
        await access(hw.device);
        encoder = { kind: hw.encoder, device: hw.device };
      } catch {
        this.#log.warn(`hardware encoder ${hw.encoder} is configured but ${hw.device} does not exist; packaging ${lectureId} with libx264 instead`);
      }
    }
    const run = (e: VideoEncoder) => runFfmpeg({ ...common, label: `package ${lectureId} (${e.kind})`, args: buildHlsVideoArgs({ ...spec, encoder: e }) });
    if (encoder.kind === 'libx264') {
      await run(encoder);
      return;
    }
    try {
      await run(encoder);
    } catch (err) {
      if (common.signal.aborted) throw err;
      this.#log.warn(`hardware encoder ${encoder.kind} failed for ${lectureId} (${describeError(err).split('\n')[0] ?? ''}); packaging with libx264 instead`);
      // ffmpeg never overwrites (-n): clear what the failed run left before the software run.
      for (const r of spec.renditions) await rm(path.join(spec.hlsDir, r.name), { recursive: true, force: true });
      // Only what this run makes: a tier-2 build's poster is tier 1's, kept as it is.
      if (spec.poster) await rm(spec.poster.path, { force: true });
      if (spec.thumbnails) {
        const thumbsDir = path.dirname(spec.thumbnails.pattern);
        for (const f of await readdir(thumbsDir)) await rm(path.join(thumbsDir, f), { force: true });
      }
      await run(software);
    }
  }

  /**
   * The chunks a ProgressiveEncoder left for this lecture, if they fit this build: the same
   * parameters and read from the first of these segments, unchanged. Otherwise undefined (the
   * video is encoded in one run) and the folder is cleared.
   */
  async #usableChunks(
    lectureId: string,
    finalDir: string,
    video: { width?: number | undefined; height?: number | undefined; frameRate?: number | undefined },
    segments: readonly PackageSegment[],
  ): Promise<ChunkedVideo | undefined> {
    const dir = progressiveDirFor(finalDir);
    try {
      await access(dir);
    } catch {
      return undefined;
    }
    // An encoder of a killed agent must not write into chunks this build uses.
    await stopOrphans(dir, { logger: this.#log, graceMs: 5_000 });
    const { encoder } = await chooseVideoEncoder(this.#settings);
    const chunks = await ChunkedVideo.open(dir, chunkParamsFor(this.#settings, video, encoder), { logger: this.#log, niceness: this.#settings.niceness });
    if (chunks.chunkCount === 0) return undefined;
    if (!chunks.fits(segments)) {
      this.#log.warn(`the progressive chunks of ${lectureId} were encoded from segments that changed since; encoding its video in one run instead`);
      await chunks.reset();
      return undefined;
    }
    return chunks;
  }

  /**
   * Progressive path: encode what the chunks do not cover yet, put them into the staging folder
   * and draw the poster from the recorded segment holding its moment. Should any of it fail, the
   * video is encoded in one run instead: the chunks save time, they never decide the outcome.
   */
  async #finishChunks(
    chunks: ChunkedVideo,
    spec: HlsPackageSpec,
    segments: readonly PackageSegment[],
    lectureId: string,
    stagingDir: string,
    common: { logger: Logger; niceness: number; signal: AbortSignal },
  ): Promise<void> {
    try {
      const encodedBefore = chunks.doneSeconds;
      await chunks.encodeNext(segments, { final: true, minSeconds: 0, label: `package ${lectureId}`, signal: common.signal });
      await chunks.assemble(
        stagingDir,
        { renditions: spec.renditions.map((r) => r.name), ...(spec.thumbnails ? { sprite: { columns: THUMB_COLUMNS, rows: THUMB_ROWS } } : {}) },
        common.signal,
      );
      if (spec.poster) {
        let offset = 0;
        const at = spec.poster.atSeconds;
        const holder = segments.find((s) => {
          const inside = at < offset + s.durationSeconds;
          if (!inside) offset += s.durationSeconds;
          return inside;
        }) ?? segments.at(-1);
        if (!holder) throw new LecternError('INTERNAL', 'no segment for the poster');
        await runFfmpeg({
          ...common,
          label: `poster ${lectureId}`,
          args: buildPosterArgs({ inputPath: holder.path, atSeconds: round3(Math.max(0, Math.min(at - offset, holder.durationSeconds - 0.1))), height: spec.poster.height, path: spec.poster.path }),
        });
      }
      this.#log.info(`video of ${lectureId} from ${chunks.chunkCount} progressive chunks (${round3(encodedBefore)} s encoded while recording)`);
    } catch (err) {
      if (common.signal.aborted) throw err;
      this.#log.warn(`the progressive chunks of ${lectureId} could not be finished (${describeError(err).split('\n')[0] ?? ''}); encoding its video in one run instead`);
      for (const r of spec.renditions) await rm(path.join(spec.hlsDir, r.name), { recursive: true, force: true });
      if (spec.poster) await rm(spec.poster.path, { force: true });
      await rm(path.join(stagingDir, '.tiles'), { recursive: true, force: true });
      await rm(path.join(stagingDir, 'thumbs'), { recursive: true, force: true });
      await mkdir(path.join(stagingDir, 'thumbs'), { mode: 0o755 });
      await chunks.reset();
      await this.#encodeVideo(spec, lectureId, common);
    }
  }

  /**
   * A staging folder of this attempt alone. An ffmpeg left encoding by a killed agent would
   * otherwise keep writing segments into the folder a new attempt builds in; it is stopped, and
   * whatever earlier attempts left is removed.
   */
  async #freshStagingDir(base: string): Promise<string> {
    await stopOrphans(base, { logger: this.#log, graceMs: 5_000 });
    const parent = path.dirname(base);
    await mkdir(parent, { recursive: true, mode: 0o755 });
    for (const entry of await readdir(parent)) {
      if (entry.startsWith(path.basename(base))) await rm(path.join(parent, entry), { recursive: true, force: true });
    }
    const dir = `${base}-${process.pid}-${this.#now()}`;
    await mkdir(dir, { mode: 0o755 });
    return dir;
  }

  /** Every segment must still match the sha256 recorded when it closed; a damaged one is left out and logged. */
  async #verifiedSegments(segments: readonly PackageSegment[]): Promise<PackageSegment[]> {
    const ok: PackageSegment[] = [];
    for (const seg of segments) {
      try {
        const { sha256 } = await hashFile(seg.path);
        if (sha256 === seg.sha256) ok.push(seg);
        else this.#log.error(`segment ${seg.path} changed on disk since it was recorded; leaving it out`);
      } catch (err) {
        this.#log.error(`segment ${seg.path} cannot be read; leaving it out`, { err });
      }
    }
    if (ok.length === 0) throw new LecternError('RECORDING_EMPTY', 'no recorded segment is intact');
    return ok;
  }

  /**
   * Every rendition must decode (ffprobe) and last as long as the recording; then the master
   * playlist is written from the measured bit rates and the init segments' codecs.
   */
  async #validate(
    hlsDir: string,
    renditions: ReadonlyArray<{ name: string }>,
    hasAudio: boolean,
    recordedSeconds: number,
  ): Promise<{ renditions: ManifestRendition[]; audio: MasterAudio | undefined }> {
    const { variants, info: out } = await this.#validateVideo(hlsDir, renditions, recordedSeconds, 'hls/');
    let audio: MasterAudio | undefined;
    if (hasAudio) {
      const playlist = `${AUDIO_RENDITION_NAME}/index.m3u8`;
      const probe = await probeMedia(path.join(hlsDir, playlist), { timeoutMs: this.#settings.probeTimeoutMs });
      if (!probe.streams.some((s) => s.codecType === 'audio')) throw new LecternError('PACKAGE_INVALID', 'the audio-only rendition has no audio');
      audio = { uri: playlist, stats: await measureRendition(path.join(hlsDir, playlist)) };
      out.push({
        name: AUDIO_RENDITION_NAME,
        kind: 'audio',
        playlist: `hls/${playlist}`,
        bandwidth: audio.stats.peakBitsPerSecond,
        codecs: AAC_LC_CODEC,
        durationSeconds: round3(await this.#checkDuration(hlsDir, playlist, probe.durationSeconds, recordedSeconds)),
      });
    }
    await writeFile(path.join(hlsDir, 'master.m3u8'), buildMasterPlaylist(variants, audio), { mode: 0o644 });
    return { renditions: out, audio };
  }

  /** Each video rendition decodes, is H.264 and lasts what was recorded; `playlistPrefix` is its folder in the package. */
  async #validateVideo(
    hlsDir: string,
    renditions: ReadonlyArray<{ name: string }>,
    recordedSeconds: number,
    playlistPrefix: string,
  ): Promise<{ variants: MasterVideoVariant[]; info: ManifestRendition[] }> {
    const info: ManifestRendition[] = [];
    const variants: MasterVideoVariant[] = [];
    for (const r of renditions) {
      const playlist = `${r.name}/index.m3u8`;
      const probe = await probeMedia(path.join(hlsDir, playlist), { timeoutMs: this.#settings.probeTimeoutMs });
      const stream = probe.streams.find((s) => s.codecType === 'video');
      const codec = avcCodecFromInit(await readFile(path.join(hlsDir, r.name, 'init.mp4')));
      if (!stream?.width || !stream.height || !codec) throw new LecternError('PACKAGE_INVALID', `rendition ${playlistPrefix}${r.name} has no readable H.264 video`);
      const stats = await measureRendition(path.join(hlsDir, playlist));
      variants.push({ uri: playlist, width: stream.width, height: stream.height, codec, stats });
      info.push({
        name: r.name,
        kind: 'video',
        playlist: `${playlistPrefix}${playlist}`,
        bandwidth: stats.peakBitsPerSecond,
        codecs: codec,
        width: stream.width,
        height: stream.height,
        durationSeconds: round3(await this.#checkDuration(hlsDir, playlist, probe.durationSeconds, recordedSeconds)),
      });
    }
    return { variants, info };
  }

  /**
   * The video-only ladder of one more source (the board, the slides) under sources/{name}/hls/,
   * with a master playlist that takes the lecture's audio from the presenter's package. A source
   * with nothing intact or no video is left out with a warning: it never costs the lecture.
   */
  async #buildSource(
    src: OtherSourceInput,
    input: PackageInput,
    stagingDir: string,
    audio: MasterAudio | undefined,
    common: { logger: Logger; niceness: number; signal: AbortSignal },
  ): Promise<ManifestSource | undefined> {
    let segments: PackageSegment[];
    try {
      segments = await this.#verifiedSegments(src.segments);
    } catch (err) {
      if (!isLecternError(err, 'RECORDING_EMPTY')) throw err;
      this.#log.warn(`source ${src.name} of ${input.lectureId} has no intact segment; its package is left out`);
      return undefined;
    }
    const first = await probeMedia(segments[0]?.path ?? '', { timeoutMs: this.#settings.probeTimeoutMs });
    const video = first.streams.find((s) => s.codecType === 'video');
    if (!video) {
      this.#log.warn(`source ${src.name} of ${input.lectureId} has no video; its package is left out`);
      return undefined;
    }
    const { fps, renditions } = videoLadder(this.#settings, video);
    const rel = `${SOURCES_DIR}/${src.name}/hls`;
    const hlsDir = path.join(stagingDir, ...rel.split('/'));
    await mkdir(hlsDir, { recursive: true, mode: 0o755 });
    const concatPath = path.join(stagingDir, SOURCES_DIR, src.name, 'source.ffconcat');
    await writeFile(concatPath, buildConcatList(segments));
    await this.#encodeVideo(
      {
        concatListPath: concatPath,
        hlsDir,
        renditions,
        segmentSeconds: this.#settings.hlsSegmentSeconds,
        fps,
        preset: this.#settings.preset,
        ...(video.width && video.height ? { sourceWidth: video.width, sourceHeight: video.height } : {}),
      },
      `${input.lectureId} source ${src.name}`,
      common,
    );
    await rm(concatPath);
    await normaliseInitFiles(hlsDir);
    const recordedSeconds = segments.reduce((sum, s) => sum + s.durationSeconds, 0);
    const { variants, info } = await this.#validateVideo(hlsDir, renditions, recordedSeconds, `${rel}/`);
    // Same segment length and timeline as the presenter's: players switch views on the one audio.
    const sharedAudio = audio ? { uri: `../../../hls/${audio.uri}`, stats: audio.stats } : undefined;
    await writeFile(path.join(hlsDir, 'master.m3u8'), buildMasterPlaylist(variants, sharedAudio), { mode: 0o644 });
    return {
      name: src.name,
      role: src.role,
      master: `${rel}/master.m3u8`,
      renditions: info,
      segments: segments.length,
      recordedSeconds: round3(recordedSeconds),
      gaps: computeGaps(src.runs, segments, input.pauses ?? [], input.endedAtMs, input.startedAtMs, lostWindows(input, src.name)),
    };
  }


  async #checkDuration(hlsDir: string, playlist: string, probed: number | undefined, recordedSeconds: number): Promise<number> {
    const listed = playlistDurationSeconds(await readFile(path.join(hlsDir, playlist), 'utf8'));
    const duration = probed ?? listed;
    if (Math.abs(duration - recordedSeconds) > this.#settings.durationToleranceSeconds) {
      throw new LecternError(
        'PACKAGE_INVALID',
        `${playlist} lasts ${duration.toFixed(2)} s but ${recordedSeconds.toFixed(2)} s were recorded (tolerance ${this.#settings.durationToleranceSeconds} s)`,
      );
    }
    return duration;
  }
}

/** Writes thumbs/thumbs.vtt for the sprites ffmpeg wrote. */
async function writeThumbnailsVtt(stagingDir: string, spec: ThumbnailSpec, durationSeconds: number): Promise<ManifestThumbnails> {
  const sprites = (await readdir(path.join(stagingDir, 'thumbs'))).filter((f) => /^sprite_\d{3}\.jpg$/.test(f)).sort();
  const vtt = buildThumbnailsVtt({ durationSeconds, spec, spriteName: (sheet) => sprites[sheet - 1] ?? sprites.at(-1) ?? 'sprite_001.jpg' });
  await writeFile(path.join(stagingDir, 'thumbs', 'thumbs.vtt'), vtt, { mode: 0o644 });
  return { vtt: 'thumbs/thumbs.vtt', intervalSeconds: spec.intervalSeconds, width: spec.width, height: spec.height, sprites: sprites.map((f) => `thumbs/${f}`) };
}

async function readExistingManifest(dir: string): Promise<LectureManifest | undefined> {
  try {
    return JSON.parse(await readFile(path.join(dir, MANIFEST_FILE_NAME), 'utf8')) as LectureManifest;
  } catch {
    // Absent or unreadable: the package is (re)built from the segments, which are the truth.
    return undefined;
  }
}

/** `init_N.mp4` -> `init.mp4` in each rendition folder (the storage contract's name). */
async function normaliseInitFiles(hlsDir: string): Promise<void> {
  for (const entry of await readdir(hlsDir, { withFileTypes: true })) {
    if (!entry.isDirectory()) continue;
    const dir = path.join(hlsDir, entry.name);
    const init = (await readdir(dir)).find((f) => FFMPEG_INIT_FILE.test(f));
    if (!init) continue;
    await rename(path.join(dir, init), path.join(dir, 'init.mp4'));
    const playlistPath = path.join(dir, 'index.m3u8');
    await writeFile(playlistPath, rewriteInitReference(await readFile(playlistPath, 'utf8'), 'init.mp4'));
  }
}

/** Every file under the package folder except the manifest, sorted, with bytes and sha256. */
export async function listPackageFiles(dir: string): Promise<ManifestFile[]> {
  const out: ManifestFile[] = [];
  const walk = async (rel: string): Promise<void> => {
    for (const entry of await readdir(path.join(dir, rel), { withFileTypes: true })) {
      const childRel = rel ? `${rel}/${entry.name}` : entry.name;
      if (entry.isDirectory()) await walk(childRel);
      else if (childRel !== MANIFEST_FILE_NAME) {
        const { sha256, bytes } = await hashFile(path.join(dir, childRel));
        out.push({ path: childRel, bytes, sha256 });
      }
    }
  };
  await walk('');
  return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/** When the source was lost, by its alerts (an alert without a source counts for every source). */
function lostWindows(input: PackageInput, source: string): Array<{ startedAtMs: number; endedAtMs: number | null }> {
  return (input.alerts ?? []).filter((a) => a.kind === 'source_lost' && (a.source === undefined || a.source === null || a.source === source));
}

/** The end reason of a run a pause ended (capture/recordingController.ts). */
export const PAUSED_RUN_END_REASON = 'paused';

/**
 * Gaps between consecutive runs of the source: the camera (or the agent) was away from the end
 * of one run to the start of the next. Their position is the media recorded before them. A pause
 * is not a gap: the time after a run the pause ended is the pause's (up to the next run's first
 * frame), and time paused inside a longer outage is taken out of its gap.
 */
export function computeGaps(
  runs: readonly PackageRun[],
  segments: readonly PackageSegment[],
  pauses: ReadonlyArray<{ startedAtMs: number; endedAtMs: number | null }> = [],
  endedAtMs = Number.MAX_SAFE_INTEGER,
  startedAtMs?: number,
  lost: ReadonlyArray<{ startedAtMs: number; endedAtMs: number | null }> = [],
): ManifestGap[] {
  const gaps: ManifestGap[] = [];
  const sorted = [...runs].sort((a, b) => a.run - b.run);
  const first = sorted[0];
  // Before the first frame: connecting to a camera takes a second or two, which is not a loss; a
  // camera that was away, or an agent killed and restarted before any segment closed, is. When
  // the source was known lost before its first frame (an alert says so), all of it is listed,
  // however short: those seconds were not recorded (chaos seed 505: a kill 0.1 s after a slot
  // began left 4.4 s at the lecture's start unlisted).
  if (first && startedAtMs !== undefined) {
    const lostMs = first.startedAtMs - startedAtMs - overlapMs(startedAtMs, first.startedAtMs, pauses, endedAtMs);
    const knownLost = lost.some((w) => w.startedAtMs <= first.startedAtMs && (w.endedAtMs ?? Number.MAX_SAFE_INTEGER) >= startedAtMs);
    if (lostMs > LEADING_GAP_MIN_MS || (knownLost && lostMs > 0)) gaps.push({ atSeconds: 0, durationSeconds: round3(lostMs / 1000), reason: 'no media from the source yet' });
  }
  for (let i = 1; i < sorted.length; i++) {
    const prev = sorted[i - 1];
    const next = sorted[i];
    if (!prev || !next) continue;
    if (prev.endReason === PAUSED_RUN_END_REASON) continue;
    const prevEnd = prev.endedAtMs ?? prev.startedAtMs;
    const lostMs = Math.max(0, next.startedAtMs - prevEnd) - overlapMs(prevEnd, next.startedAtMs, pauses, endedAtMs);
    if (pauses.length > 0 && lostMs <= 0) continue;
    const atSeconds = segments.filter((s) => s.run < next.run).reduce((sum, s) => sum + s.durationSeconds, 0);
    gaps.push({
      atSeconds: round3(atSeconds),
      durationSeconds: round3(Math.max(0, lostMs) / 1000),
      reason: prev.endReason ?? 'unknown',
    });
  }
  // After the last frame: the source was lost and had not come back when the recording ended.
  const last = sorted.at(-1);
  if (last && endedAtMs !== Number.MAX_SAFE_INTEGER && last.endReason !== PAUSED_RUN_END_REASON) {
    const lastEnd = last.endedAtMs ?? last.startedAtMs;
    const lostMs = endedAtMs - lastEnd - overlapMs(lastEnd, endedAtMs, pauses, endedAtMs);
    if (lostMs > TRAILING_GAP_MIN_MS) {
      gaps.push({ atSeconds: round3(segments.reduce((sum, s) => sum + s.durationSeconds, 0)), durationSeconds: round3(lostMs / 1000), reason: last.endReason ?? 'unknown' });
    }
  }
  return gaps;
}

// A camera's first frame normally comes 1-3 s after the start (connecting, waiting for a key
// frame); only a longer wait is reported as lost time.
const LEADING_GAP_MIN_MS = 5_000;
// A recording's last run ends when the recording does (the stop ladder); a second more is a loss.
const TRAILING_GAP_MIN_MS = 1_000;

/** The pauses, each at the media recorded before it; one still open when the recording ended lasts to its end. */
export function computePauses(
  pauses: ReadonlyArray<{ startedAtMs: number; endedAtMs: number | null }>,
  runs: readonly PackageRun[],
  segments: readonly PackageSegment[],
  endedAtMs: number,
): ManifestPause[] {
  const recorded = recordedPerRun(segments);
  return [...pauses]
    .sort((a, b) => a.startedAtMs - b.startedAtMs)
    .map((p) => {
      const end = Math.max(p.startedAtMs, p.endedAtMs ?? endedAtMs);
      return {
        // At its end no run has media yet: the position is everything recorded before the pause.
        atSeconds: mediaPositionSeconds(end, runs, recorded),
        durationSeconds: round3((end - p.startedAtMs) / 1000),
        startedAt: new Date(p.startedAtMs).toISOString(),
        endedAt: new Date(end).toISOString(),
      };
    });
}

/** The markers at their positions in the packaged video (recomputed from the final runs), in order. */
function positionMarkers(input: PackageInput, segments: readonly PackageSegment[], durationSeconds: number): Array<{ atSeconds: number; title: string }> {
  const recorded = recordedPerRun(segments);
  return (input.markers ?? [])
    .map((m) => ({ atSeconds: round3(Math.min(durationSeconds, mediaPositionSeconds(m.atMs, input.runs, recorded))), title: m.title }))
    .sort((a, b) => a.atSeconds - b.atSeconds);
}

function recordedPerRun(segments: readonly PackageSegment[]): (run: number) => number {
  const perRun = new Map<number, number>();
  for (const s of segments) perRun.set(s.run, (perRun.get(s.run) ?? 0) + s.durationSeconds);
  return (run) => perRun.get(run) ?? 0;
}

function round3(n: number): number {
  return Math.round(n * 1000) / 1000;
}
