import { readFile } from 'node:fs/promises';
import { watch, type FSWatcher } from 'chokidar';
import type { Logger } from '../log/logger.js';

/**
 * Follows the segment list CSV that ffmpeg's segment muxer appends a line to each time it
 * closes a segment (`name,start,end`). A line is the only reliable "segment complete" signal:
 * a file that merely exists may still be written. File watchers miss events (editors, overlay
 * filesystems, a busy inotify queue), so a periodic scan reconciles, and `stop()` does a final
 * scan after ffmpeg has exited so the last segment is never missed.
 */

export interface SegmentListEntry {
  /** 0-based position in the list, equal to the muxer's segment number. */
  index: number;
  fileName: string;
  startSeconds: number;
  endSeconds: number;
}

export interface SegmentListWatcherOptions {
  listPath: string;
  logger: Logger;
  /** Called once per complete line, in order; awaited before the next one. */
  onSegment: (entry: SegmentListEntry) => Promise<void>;
  reconcileIntervalMs?: number;
}

/** Parses the complete lines of a segment list; a trailing partial line is ignored. */
export function parseSegmentList(text: string): SegmentListEntry[] {
  const complete = text.slice(0, text.lastIndexOf('\n') + 1);
  const entries: SegmentListEntry[] = [];
  for (const line of complete.split('\n')) {
    if (line.trim() === '') continue;
    // The muxer quotes names that contain commas; ours never do (seg_%05d.ext).
    const [fileName, start, end] = line.trim().split(',');
    const startSeconds = Number(start);
    const endSeconds = Number(end);
    if (!fileName || !Number.isFinite(startSeconds) || !Number.isFinite(endSeconds)) continue;
    entries.push({ index: entries.length, fileName, startSeconds, endSeconds });
  }
  return entries;
}

export class SegmentListWatcher {
  readonly #opts: SegmentListWatcherOptions;
  #watcher: FSWatcher | undefined;
  #timer: NodeJS.Timeout | undefined;
  #seen = 0;
  #stopped = false;
  #chain: Promise<void> = Promise.resolve();

  constructor(opts: SegmentListWatcherOptions) {
    this.#opts = opts;
  }

  /** Number of segments handed to `onSegment` so far. */
  get segmentCount(): number {
    return this.#seen;
  }

  async start(): Promise<void> {
    this.#timer = setInterval(() => void this.scan(), this.#opts.reconcileIntervalMs ?? 2_000);
    this.#timer.unref();
    await this.scan();
  }

  /**
   * Watches the list file itself once it exists (the first segment's close creates it; until then
   * the periodic scan looks for it). Not the run directory: ffmpeg flushes every packet into the
   * open segment, and each of those writes made a directory watcher re-read the directory
   * (measured: most of the agent's CPU while recording).
   */
  #watchList(): void {
    if (this.#watcher || this.#stopped) return;
    this.#watcher = watch(this.#opts.listPath, { ignoreInitial: true });
    this.#watcher.on('change', () => void this.scan());
    this.#watcher.on('error', (err) => this.#opts.logger.warn('segment list watcher error; the periodic scan continues', { err }));
  }

  /** Reads the list and hands over lines not seen yet. Scans are serialised. */
  scan(): Promise<void> {
    this.#chain = this.#chain.then(() => this.#scanOnce()).catch((err: unknown) => {
      this.#opts.logger.error('segment could not be registered; it will be retried on the next scan', { err });
    });
    return this.#chain;
  }

  async #scanOnce(): Promise<void> {
    let text: string;
    try {
      text = await readFile(this.#opts.listPath, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return; // no segment closed yet
      throw err;
    }
    this.#watchList();
    const entries = parseSegmentList(text);
    for (const entry of entries.slice(this.#seen)) {
      await this.#opts.onSegment(entry);
      this.#seen = entry.index + 1;
    }
  }

  /** Stops watching after one last scan; call after ffmpeg has exited. */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#watcher?.close();
    this.#watcher = undefined;
    await this.scan();
  }
}
