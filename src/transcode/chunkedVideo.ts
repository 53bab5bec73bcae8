import { link, mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { buildHlsVideoArgs, buildSpriteArgs, type HlsRendition, type VideoEncoder } from '../ffmpeg/hlsArgs.js';
import { runFfmpeg } from '../ffmpeg/run.js';
import type { Logger } from '../log/logger.js';
import { LecternError } from '../util/errors.js';
import { buildConcatList } from './playlists.js';
import {
  buildMediaPlaylist,
  chunkQuantumSeconds,
  isPrefixOf,
  parseMediaEntries,
  planChunk,
  recordedSeconds,
  type ChunkSource,
  type PlaylistEntry,
} from './chunks.js';
import { initSignature, initTimescale, shiftMediaSegment } from './fmp4.js';
import { FFMPEG_INIT_FILE } from './playlists.js';

/**
 * The video ladder of one lecture, encoded chunk by chunk into a progress folder (a sibling of
 * the package: packages/.{id}.progressive). state.json lists the finished chunks and is replaced
 * atomically after each one: a chunk is done only once its files are complete and shifted into
 * place; a chunk folder state.json does not list (a crash mid-chunk) is removed and redone.
 */

export interface ChunkParams {
  renditions: readonly HlsRendition[];
  segmentSeconds: number;
  fps: number;
  preset: string;
  encoder: VideoEncoder;
  thumbnail: { intervalSeconds: number; width: number; height: number };
  sourceWidth?: number;
  sourceHeight?: number;
}

interface ChunkRecord {
  index: number;
  startSeconds: number;
  /** What the chunk's playlists add up to. */
  encodedSeconds: number;
  final: boolean;
  entries: Record<string, PlaylistEntry[]>;
  /** File names of the init segments, per rendition. */
  inits: Record<string, string>;
  tiles: number;
}

interface ProgressState {
  version: 1;
  params: string;
  /** The recorded segments the chunks read, in order: a prefix of the recording. */
  inputs: ChunkSource[];
  doneSeconds: number;
  chunks: ChunkRecord[];
}

const STATE_FILE = 'state.json';
const TILE_PATTERN = 'tile_%05d.jpg';

/** Where a lecture's chunks are kept: beside its package, outside the staging folders the packager clears. */
export function progressiveDirFor(packageDir: string): string {
  return path.join(path.dirname(packageDir), `.${path.basename(packageDir)}.progressive`);
}

export class ChunkedVideo {
  readonly #dir: string;
  readonly #params: ChunkParams;
  readonly #log: Logger;
  readonly #niceness: number;
  #state: ProgressState;

  private constructor(dir: string, params: ChunkParams, state: ProgressState, logger: Logger, niceness: number) {
    this.#dir = dir;
    this.#params = params;
    this.#state = state;
    this.#log = logger;
    this.#niceness = niceness;
  }

  /**
   * The chunks already in `dir` for these parameters; a folder written with other parameters
   * (the configuration changed) or unreadable is started afresh.
   */
  static async open(dir: string, params: ChunkParams, opts: { logger: Logger; niceness: number }): Promise<ChunkedVideo> {
    const key = JSON.stringify(params);
    let state: ProgressState | undefined;
    try {
      const read = JSON.parse(await readFile(path.join(dir, STATE_FILE), 'utf8')) as ProgressState;
      if (read.version === 1 && read.params === key) state = read;
      else opts.logger.info(`progressive chunks in ${dir} were encoded with other settings; starting again`);
    } catch {
      // No state yet (or a torn one, which the atomic rename rules out): nothing is done.
    }
    if (!state) {
      await rm(dir, { recursive: true, force: true });
      state = { version: 1, params: key, inputs: [], doneSeconds: 0, chunks: [] };
    }
    await mkdir(dir, { recursive: true, mode: 0o755 });
    const listed = new Set(state.chunks.map((c) => chunkDirName(c.index)));
    for (const entry of await readdir(dir)) {
      if (entry !== STATE_FILE && !listed.has(entry)) await rm(path.join(dir, entry), { recursive: true, force: true });
    }
    return new ChunkedVideo(dir, params, state, opts.logger, opts.niceness);
  }

  get dir(): string {
    return this.#dir;
  }

  get doneSeconds(): number {
    return this.#state.doneSeconds;
  }

  get chunkCount(): number {
    return this.#state.chunks.length;
  }

  get finished(): boolean {
    return this.#state.chunks.at(-1)?.final === true;
  }

  /** The chunks were read from the first segments of this list, unchanged. */
  fits(segments: readonly ChunkSource[]): boolean {
    return isPrefixOf(this.#state.inputs, segments);
  }

  /** Forgets every chunk. */
  async reset(): Promise<void> {
    await rm(this.#dir, { recursive: true, force: true });
    await mkdir(this.#dir, { recursive: true, mode: 0o755 });
    this.#state = { ...this.#state, inputs: [], doneSeconds: 0, chunks: [] };
  }

  /**
   * Encodes the next chunk if there is one: while live, whole quanta of at least `minSeconds`;
   * with `final`, everything left. Returns the seconds encoded (0: nothing to do).
   */
  async encodeNext(segments: readonly ChunkSource[], opts: { final: boolean; minSeconds: number; label: string; signal?: AbortSignal }): Promise<number> {
    if (this.finished) return 0;
    if (!this.fits(segments)) throw new LecternError('TRANSCODE_FAILED', `the recorded segments no longer start with the ones chunks were encoded from (${this.#dir})`);
    const p = this.#params;
    const plan = planChunk(segments, this.#state.doneSeconds, {
      quantumSeconds: chunkQuantumSeconds(p.segmentSeconds, p.thumbnail.intervalSeconds),
      minSeconds: opts.minSeconds,
      final: opts.final,
      fps: p.fps,
    });
    if (!plan) return 0;
    const index = this.#state.chunks.length;
    const dir = path.join(this.#dir, chunkDirName(index));
    await rm(dir, { recursive: true, force: true });
    await mkdir(path.join(dir, 'thumbs'), { recursive: true, mode: 0o755 });
    const concatPath = path.join(dir, 'source.ffconcat');
    await writeFile(concatPath, buildConcatList(plan.files));
    const previous = this.#state.chunks;
    const firstName = p.renditions[0]?.name ?? '';
    const firstNumber = 1 + previous.reduce((n, c) => n + (c.entries[firstName]?.length ?? 0), 0);
    const firstTile = 1 + previous.reduce((n, c) => n + c.tiles, 0);
    const startedMs = Date.now();
    await runFfmpeg({
      label: `${opts.label} chunk ${index} (${plan.startSeconds.toFixed(0)} s +${plan.durationSeconds?.toFixed(0) ?? 'rest'})`,
      logger: this.#log,
      niceness: this.#niceness,
      ...(opts.signal ? { signal: opts.signal } : {}),
      args: buildHlsVideoArgs({
        concatListPath: concatPath,
        hlsDir: dir,
        renditions: p.renditions,
        segmentSeconds: p.segmentSeconds,
        fps: p.fps,
        preset: p.preset,
        encoder: p.encoder,
        window: { startSeconds: plan.localStartSeconds, ...(plan.durationSeconds !== undefined ? { durationSeconds: plan.durationSeconds } : {}) },
        startNumber: firstNumber,
        thumbnails: {
          ...p.thumbnail,
          columns: 1,
          rows: 1,
          pattern: path.join(dir, 'thumbs', TILE_PATTERN),
          startNumber: firstTile,
          // The frame at the chunk's end belongs to the next chunk.
          ...(plan.durationSeconds !== undefined ? { maxCount: Math.round(plan.durationSeconds / p.thumbnail.intervalSeconds) } : {}),
        },
        ...(p.sourceWidth && p.sourceHeight ? { sourceWidth: p.sourceWidth, sourceHeight: p.sourceHeight } : {}),
      }),
    });

    const entries: Record<string, PlaylistEntry[]> = {};
    const inits: Record<string, string> = {};
    for (const r of p.renditions) {
      const rdir = path.join(dir, r.name);
      const list = parseMediaEntries(await readFile(path.join(rdir, 'index.m3u8'), 'utf8'));
      const init = (await readdir(rdir)).find((f) => FFMPEG_INIT_FILE.test(f));
      if (list.length === 0 || !init) throw new LecternError('TRANSCODE_FAILED', `chunk ${index} of ${opts.label} wrote no ${r.name} segments`);
      const initBytes = await readFile(path.join(rdir, init));
      const first = previous[0];
      if (first) {
        const firstInit = await readFile(path.join(this.#dir, chunkDirName(0), r.name, first.inits[r.name] ?? ''));
        if (initSignature(firstInit) !== initSignature(initBytes)) {
          throw new LecternError('TRANSCODE_FAILED', `chunk ${index} of ${opts.label} has another ${r.name} stream format than the first chunk`);
        }
      }
      if (plan.startSeconds > 0) {
        const timescale = initTimescale(initBytes);
        if (!timescale) throw new LecternError('TRANSCODE_FAILED', `chunk ${index} of ${opts.label}: ${r.name} init segment has no timescale`);
        for (const e of list) {
          const file = path.join(rdir, e.uri);
          const buf = await readFile(file);
          shiftMediaSegment(buf, { seconds: plan.startSeconds, trackTimescale: timescale, sequenceOffset: firstNumber - 1 });
          await writeFile(file, buf);
        }
      }
      entries[r.name] = list;
      inits[r.name] = init;
    }
    const counts = new Set(Object.values(entries).map((l) => l.length));
    if (counts.size !== 1) throw new LecternError('TRANSCODE_FAILED', `chunk ${index} of ${opts.label}: the renditions have different segment counts`);
    await rm(concatPath);
    const tiles = (await readdir(path.join(dir, 'thumbs'))).length;
    const encodedSeconds = (entries[firstName] ?? []).reduce((s, e) => s + e.seconds, 0);
    const chunk: ChunkRecord = { index, startSeconds: plan.startSeconds, encodedSeconds, final: plan.durationSeconds === undefined, entries, inits, tiles };
    const lastInput = plan.firstFileIndex + plan.files.length;
    const next: ProgressState = {
      ...this.#state,
      inputs: segments.slice(0, Math.max(lastInput, this.#state.inputs.length)).map((s) => ({ path: s.path, sha256: s.sha256, durationSeconds: s.durationSeconds })),
      doneSeconds: plan.durationSeconds !== undefined ? plan.startSeconds + plan.durationSeconds : recordedSeconds(segments),
      chunks: [...previous, chunk],
    };
    const tmp = path.join(this.#dir, `${STATE_FILE}.tmp`);
    await writeFile(tmp, JSON.stringify(next));
    await rename(tmp, path.join(this.#dir, STATE_FILE));
    this.#state = next;
    this.#log.info(`${opts.label}: encoded chunk ${index}`, {
      startSeconds: round3(plan.startSeconds),
      mediaSeconds: round3(encodedSeconds),
      wallSeconds: round3((Date.now() - startedMs) / 1000),
    });
    return encodedSeconds;
  }

  /**
   * Puts the finished chunks into a package's staging folder: hard links (the chunks stay valid
   * until the package is in place, so a crash before that loses nothing), one init segment and
   * one playlist per rendition, and the seek-bar sprites drawn from the chunks' tiles. A tiered
   * package takes some renditions at a time (`renditions`, default all) and the sprites only
   * when `sprite` is given; the chunks stay whole for the next tier.
   */
  async assemble(stagingDir: string, opts: { renditions?: readonly string[]; sprite?: { columns: number; rows: number } }, signal?: AbortSignal): Promise<void> {
    const hlsDir = path.join(stagingDir, 'hls');
    const first = this.#state.chunks[0];
    if (!first) throw new LecternError('INTERNAL', 'no chunk to assemble');
    const wanted = opts.renditions;
    for (const r of this.#params.renditions.filter((x) => !wanted || wanted.includes(x.name))) {
      const out = path.join(hlsDir, r.name);
      await mkdir(out, { recursive: true, mode: 0o755 });
      await link(path.join(this.#dir, chunkDirName(0), r.name, first.inits[r.name] ?? ''), path.join(out, 'init.mp4'));
      const all: PlaylistEntry[] = [];
      for (const c of this.#state.chunks) {
        for (const e of c.entries[r.name] ?? []) {
          await link(path.join(this.#dir, chunkDirName(c.index), r.name, e.uri), path.join(out, e.uri));
          all.push(e);
        }
      }
      await writeFile(path.join(out, 'index.m3u8'), buildMediaPlaylist(all, 'init.mp4'), { mode: 0o644 });
    }
    const sprite = opts.sprite;
    if (!sprite) return;
    const tiles = path.join(stagingDir, '.tiles');
    await mkdir(tiles, { recursive: true });
    for (const c of this.#state.chunks) {
      const dir = path.join(this.#dir, chunkDirName(c.index), 'thumbs');
      for (const f of await readdir(dir)) await link(path.join(dir, f), path.join(tiles, f));
    }
    await mkdir(path.join(stagingDir, 'thumbs'), { recursive: true, mode: 0o755 });
    if ((await readdir(tiles)).length > 0) {
      await runFfmpeg({
        label: 'thumbnail sprites',
        logger: this.#log,
        niceness: this.#niceness,
        ...(signal ? { signal } : {}),
        args: buildSpriteArgs({ tilePattern: path.join(tiles, TILE_PATTERN), ...sprite, spritePattern: path.join(stagingDir, 'thumbs', 'sprite_%03d.jpg') }),
      });
    }
    await rm(tiles, { recursive: true, force: true });
  }
}

function chunkDirName(index: number): string {
  return `chunk_${String(index).padStart(4, '0')}`;
}

function round3(n: number): number {
  return Math.round(n * 1000) / 1000;
}
