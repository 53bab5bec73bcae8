import path from 'node:path';
import { probeMedia } from '../ffmpeg/ffprobe.js';
import { stopOrphans } from '../ffmpeg/orphans.js';
import type { Logger } from '../log/logger.js';
import { describeError } from '../util/errors.js';
import { sleep } from '../util/sleep.js';
import { ChunkedVideo, progressiveDirFor } from './chunkedVideo.js';
import { chooseVideoEncoder, chunkParamsFor, type PackagerSettings } from './packager.js';

/**
 * Progressive packaging: while a lecture is recorded, the video ladder of what has been recorded
 * so far is encoded in chunks (one niced ffmpeg at a time, so capture always comes first), into
 * the progress folder the Packager finishes from after Stop. Only the last chunk, the audio and
 * the checks are then left. It learns of new segments by polling the recordings table, the same
 * truth the packager reads, so capture needs no hook and a restart resumes where state.json says.
 */

/** What the encoder reads about recordings (db/recordings.ts provides it). */
export interface LiveRecordings {
  live(): { id: string } | undefined;
  segments(recordingId: string, source?: string): ReadonlyArray<{ source: string; path: string; sha256: string; durationSeconds: number }>;
}

export interface ProgressiveEncoderOptions {
  recordings: LiveRecordings;
  /** Segment paths in the table are relative to it. */
  dataDir: string;
  /** The source whose video is packaged (the presenter camera). */
  sourceName: string;
  packageDir(lectureId: string): string;
  settings: PackagerSettings;
  logger: Logger;
  /** How often the table is looked at. */
  pollIntervalMs?: number;
  /** A chunk covers at least this much media (rounded up to whole HLS segments and thumbnail intervals). */
  minChunkSeconds?: number;
  probeTimeoutMs?: number;
}

const DEFAULT_POLL_INTERVAL_MS = 5_000;
const DEFAULT_MIN_CHUNK_SECONDS = 20;

export class ProgressiveEncoder {
  readonly #o: ProgressiveEncoderOptions;
  readonly #log: Logger;
  #abort: AbortController | undefined;
  #loop: Promise<void> | undefined;
  #current: { id: string; chunks: ChunkedVideo } | undefined;
  /** The chunk being encoded now, and for which recording. */
  #inFlight: { id: string; done: Promise<unknown> } | undefined;
  /** Recordings the packager took over (or that failed here): never touched again by this encoder. */
  readonly #released = new Set<string>();

  constructor(options: ProgressiveEncoderOptions) {
    this.#o = options;
    this.#log = options.logger.child({ scope: 'progressive' });
  }

  start(): void {
    if (this.#loop) return;
    const abort = new AbortController();
    this.#abort = abort;
    this.#loop = this.#run(abort.signal);
  }

  /** Stops polling and any chunk in progress (its folder is redone after a restart). */
  async stop(): Promise<void> {
    this.#abort?.abort(new Error('the progressive encoder is stopping'));
    await this.#loop;
    this.#loop = undefined;
    this.#abort = undefined;
  }

  /**
   * The packager takes over this lecture: no new chunk is started for it, and the one being
   * encoded (if any) is finished first, so its work is kept.
   */
  async release(recordingId: string): Promise<void> {
    this.#released.add(recordingId);
    if (this.#current?.id === recordingId) this.#current = undefined;
    const inFlight = this.#inFlight;
    if (inFlight?.id === recordingId) await inFlight.done.catch(() => undefined);
  }

  async #run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      try {
        await this.tick(signal);
      } catch (err) {
        if (signal.aborted) break;
        this.#log.error(`progressive packaging failed: ${describeError(err)}`);
      }
      try {
        await sleep(this.#o.pollIntervalMs ?? DEFAULT_POLL_INTERVAL_MS, signal);
      } catch {
        break;
      }
    }
  }

  /** One look at the live recording: encodes a chunk when enough new media is there. Exposed for tests. */
  async tick(signal?: AbortSignal): Promise<number> {
    const live = this.#o.recordings.live();
    if (!live || this.#released.has(live.id)) return 0;
    const segments = this.#o.recordings
      .segments(live.id, this.#o.sourceName)
      .filter((s) => s.source === this.#o.sourceName)
      .map((s) => ({ path: path.resolve(this.#o.dataDir, s.path), sha256: s.sha256, durationSeconds: s.durationSeconds }));
    const first = segments[0];
    if (!first) return 0;
    const id = live.id;
    const job = (async () => {
      const chunks = await this.#chunksFor(id, first.path);
      if (!chunks.fits(segments)) {
        this.#log.warn(`recording ${id}: its segments changed under the encoded chunks; starting its chunks again`);
        await chunks.reset();
      }
      return chunks.encodeNext(segments, { final: false, minSeconds: this.#o.minChunkSeconds ?? DEFAULT_MIN_CHUNK_SECONDS, label: `progressive ${id}`, ...(signal ? { signal } : {}) });
    })();
    this.#inFlight = { id, done: job };
    try {
      return await job;
    } catch (err) {
      if (signal?.aborted) throw err;
      // A chunk that fails once will fail again; the packager encodes this lecture in one run.
      this.#released.add(id);
      this.#current = undefined;
      this.#log.warn(`recording ${id}: progressive packaging stopped (${describeError(err).split('\n')[0] ?? ''}); it will be packaged in one run after it stops`);
      return 0;
    } finally {
      this.#inFlight = undefined;
    }
  }

  async #chunksFor(id: string, firstSegmentPath: string): Promise<ChunkedVideo> {
    if (this.#current?.id === id) return this.#current.chunks;
    const dir = progressiveDirFor(this.#o.packageDir(id));
    // After a restart an ffmpeg of the killed agent may still be writing a chunk here.
    await stopOrphans(dir, { logger: this.#log, graceMs: 5_000 });
    const probe = await probeMedia(firstSegmentPath, { timeoutMs: this.#o.probeTimeoutMs ?? 30_000 });
    const video = probe.streams.find((s) => s.codecType === 'video');
    const { encoder } = await chooseVideoEncoder(this.#o.settings);
    const chunks = await ChunkedVideo.open(dir, chunkParamsFor(this.#o.settings, video ?? {}, encoder), { logger: this.#log, niceness: this.#o.settings.niceness });
    this.#current = { id, chunks };
    return chunks;
  }
}
