import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { lstat, mkdir, open, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { watch, type FSWatcher } from 'chokidar';
import type { ProbeResult } from '../ffmpeg/ffprobe.js';
import type { Logger } from '../log/logger.js';
import { describeError, isLecternError, LecternError } from '../util/errors.js';
import { hashFile } from '../util/hash.js';
import { ulid } from '../util/ulid.js';
import { classifyProbe, isIgnoredName, isSidecarName, parseImportName, parseSidecar, sidecarNameFor, stemOf, type ImportMeta } from './importMeta.js';
import { pathExists } from '../util/pathExists.js';

/**
 * The import folder: other tools (a hardware recorder's FTP target, a USB stick, a teacher's
 * phone) drop recordings into one folder, and each complete media file becomes a lecture that
 * is packaged and published like one recorded here.
 *
 * - Complete = its size and mtime (and its sidecar's) have not changed for `settleMs`, and then
 *   ffprobe reads it as a recording. A file of 0 bytes is never complete (an FTP upload that has
 *   not sent data yet). Nothing else tells "the uploader is done": FTP and USB copies do not
 *   rename a temporary file (those that do, `.part` and friends, are ignored until renamed).
 * - Taken = copied into the data directory (`copiesDir/<sha256>.<ext>`, content-addressed, so a
 *   retry after a crash reuses the copy), registered as a stopped recording with one run and one
 *   segment, handed to packaging, then moved to `imported/`. The copy keeps the lecture safe
 *   when the folder is a USB stick that is pulled out before packaging is done.
 * - Exactly once, also across restarts and re-drops: the database, not memory, knows every
 *   imported file by its sha256; a file already known is only moved to `imported/`.
 *   (Moving the original rather than leaving a marker beside it: the folder then shows at a
 *   glance what is still waiting, a FAT-formatted stick gets no litter, and a later scan never
 *   has to hash hundreds of old files again to find the new one.)
 * - Not a recording (a text file, a photo, an audio-only file, a bad sidecar): moved to
 *   `rejected/` with `<name>.reason.txt` beside it. Nothing is ever deleted.
 *
 * One file is handled at a time. A watcher (chokidar) reports changes quickly; a full scan every
 * `scanIntervalMs` catches whatever it missed (network filesystems, a stick mounted later, a
 * busy inotify queue) and is what makes a restart pick up files dropped while it was down.
 */

/** What the import hands to the recordings table (db/recordings.ts createImported). */
export interface ImportedRecording {
  id: string;
  title: string;
  course: string | null;
  teacher: string | null;
  startedAtMs: number;
  stoppedAtMs: number;
  reason: string;
  source: string;
  segment: { path: string; bytes: number; sha256: string; durationSeconds: number };
}

/** The slice of RecordingRepo the import uses. */
export interface ImportRepo {
  findBySegmentSha256(sha256: string): string | undefined;
  createImported(rec: ImportedRecording, addedAtMs: number): { id: string };
}

export interface ImportFolderOptions {
  /** The watched folder; `imported/` and `rejected/` are made inside it. */
  folder: string;
  /** The data directory: segment paths are stored relative to it. */
  dataDir: string;
  /** Where accepted files are copied, under the data directory (e.g. <dataDir>/imports). */
  copiesDir: string;
  /** The source name imported media is registered under: the one the transcode job packages. */
  sourceName: string;
  settleMs: number;
  scanIntervalMs: number;
  repo: ImportRepo;
  /** Hands a registered recording to packaging; must be idempotent per recording id. */
  enqueue(recordingId: string): void;
  /** ffprobe (ffmpeg/ffprobe.ts probeMedia with a timeout). */
  probe(filePath: string): Promise<ProbeResult>;
  logger: Logger;
  now?: () => number;
}

export const IMPORTED_DIR = 'imported';
export const REJECTED_DIR = 'rejected';

interface Observed {
  signature: string;
  sinceMs: number;
}

export class ImportFolder {
  readonly #o: ImportFolderOptions;
  readonly #log: Logger;
  readonly #now: () => number;
  #watcher: FSWatcher | undefined;
  #scanTimer: NodeJS.Timeout | undefined;
  readonly #settleTimers = new Map<string, NodeJS.Timeout>();
  /** Names to look at on the next pass (events, scans and settle timers all land here). */
  readonly #dirty = new Set<string>();
  readonly #observed = new Map<string, Observed>();
  /** Files handled but not movable (read-only folder): not hashed again until they change. */
  readonly #stuck = new Map<string, string>();
  #running: Promise<void> | undefined;
  #stopping = false;
  #missingLogged = false;

  constructor(options: ImportFolderOptions) {
    this.#o = options;
    this.#log = options.logger.child({ scope: 'import' });
    this.#now = options.now ?? Date.now;
  }

  async start(): Promise<void> {
    this.#stopping = false;
    await mkdir(this.#o.copiesDir, { recursive: true, mode: 0o755 });
    await this.#removeStaleCopies();
    this.#scanTimer = setInterval(() => void this.scan(), this.#o.scanIntervalMs);
    this.#scanTimer.unref();
    await this.scan();
    this.#log.info('import folder watched', { folder: this.#o.folder, settleMs: this.#o.settleMs });
  }

  /** Stops watching and waits for the file in hand (seconds at most: a copy and two hashes). */
  async stop(): Promise<void> {
    this.#stopping = true;
    if (this.#scanTimer) clearInterval(this.#scanTimer);
    this.#scanTimer = undefined;
    for (const t of this.#settleTimers.values()) clearTimeout(t);
    this.#settleTimers.clear();
    const watcher = this.#watcher;
    this.#watcher = undefined;
    await watcher?.close();
    await this.#running;
  }

  /** Lists the folder and looks at every candidate; also (re)starts the watcher once the folder exists. */
  async scan(): Promise<void> {
    if (this.#stopping) return;
    let names: string[];
    try {
      names = (await readdir(this.#o.folder, { withFileTypes: true })).filter((e) => !e.isDirectory()).map((e) => e.name);
    } catch (err) {
      // A USB stick's mount point before the stick is in: wait for it, say so once.
      if (!this.#missingLogged) this.#log.warn(`import folder ${this.#o.folder} cannot be read (${describeError(err)}); looking again every ${this.#o.scanIntervalMs} ms`);
      this.#missingLogged = true;
      return;
    }
    this.#missingLogged = false;
    this.#startWatcher();
    const present = new Set(names);
    for (const name of this.#observed.keys()) if (!present.has(name)) this.#forget(name);
    for (const name of names) if (this.#isCandidate(name)) this.#dirty.add(name);
    this.#kick();
  }

  #startWatcher(): void {
    if (this.#watcher || this.#stopping) return;
    const watcher = watch(this.#o.folder, { depth: 0, ignoreInitial: true });
    const onFile = (p: string): void => {
      const name = path.basename(p);
      if (path.dirname(path.resolve(p)) !== path.resolve(this.#o.folder)) return;
      // A sidecar that changes re-checks its media file (its content is part of the signature).
      const media = isSidecarName(name) ? [...this.#observed.keys()].filter((n) => sidecarNameFor(n) === name) : [name];
      for (const m of media) if (this.#isCandidate(m)) this.#dirty.add(m);
      this.#kick();
    };
    watcher.on('add', onFile).on('change', onFile);
    watcher.on('unlink', (p) => this.#forget(path.basename(p)));
    watcher.on('error', (err) => this.#log.warn('import folder watcher error; the periodic scan continues', { err }));
    this.#watcher = watcher;
  }

  #isCandidate(name: string): boolean {
    return !isIgnoredName(name) && !isSidecarName(name);
  }

  #forget(name: string): void {
    this.#observed.delete(name);
    this.#stuck.delete(name);
    const t = this.#settleTimers.get(name);
    if (t) clearTimeout(t);
    this.#settleTimers.delete(name);
  }

  /** Runs the single worker loop unless it is running; it drains `#dirty` one file at a time. */
  #kick(): void {
    if (this.#running || this.#stopping || this.#dirty.size === 0) return;
    this.#running = this.#drain().finally(() => {
      this.#running = undefined;
      // A name that arrived between the loop's last check and here.
      this.#kick();
    });
  }

  async #drain(): Promise<void> {
    while (this.#dirty.size > 0 && !this.#stopping) {
      const name = this.#dirty.values().next().value as string;
      this.#dirty.delete(name);
      try {
        await this.#look(name);
      } catch (err) {
        // Our own trouble (disk full, database busy): the file stays and is tried again.
        this.#log.error(`import of ${name} failed; it stays in the folder and is tried again`, { err });
        this.#observed.delete(name);
      }
    }
  }

  /** The settle rule: hands the file on only once its signature held still for settleMs. */
  async #look(name: string): Promise<void> {
    const file = path.join(this.#o.folder, name);
    const signature = await this.#signature(name);
    if (signature === undefined) {
      this.#forget(name);
      return;
    }
    if (this.#stuck.get(name) === signature) return;
    const now = this.#now();
    const seen = this.#observed.get(name);
    if (!seen || seen.signature !== signature) {
      this.#observed.set(name, { signature, sinceMs: now });
      this.#recheckIn(name, this.#o.settleMs);
      return;
    }
    const waitedMs = now - seen.sinceMs;
    if (waitedMs < this.#o.settleMs) {
      this.#recheckIn(name, this.#o.settleMs - waitedMs);
      return;
    }
    if (signature.startsWith('0:')) return; // created, nothing written yet: never complete
    await this.#take(name, file, signature);
  }

  #recheckIn(name: string, ms: number): void {
    const old = this.#settleTimers.get(name);
    if (old) clearTimeout(old);
    const timer = setTimeout(() => {
      this.#settleTimers.delete(name);
      this.#dirty.add(name);
      this.#kick();
    }, Math.max(0, ms) + 5);
    timer.unref();
    this.#settleTimers.set(name, timer);
  }

  /** size:mtime of the file and of its sidecar; undefined when the file is gone or not a plain file. */
  async #signature(name: string): Promise<string | undefined> {
    let st;
    try {
      st = await lstat(path.join(this.#o.folder, name));
    } catch {
      return undefined;
    }
    if (!st.isFile()) return undefined;
    let sidecar = '-';
    try {
      const s = await stat(path.join(this.#o.folder, sidecarNameFor(name)));
      sidecar = `${s.size}:${s.mtimeMs}`;
    } catch {
      // no sidecar
    }
    return `${st.size}:${st.mtimeMs}:${sidecar}`;
  }

  /** A complete file: probe, metadata, dedupe, copy, register, hand on, move away. */
  async #take(name: string, file: string, signature: string): Promise<void> {
    const tookFromMs = this.#now();
    const sidecarName = sidecarNameFor(name);
    const sidecarPath = path.join(this.#o.folder, sidecarName);
    const hasSidecar = await pathExists(sidecarPath);

    let probe: ProbeResult;
    let meta: ImportMeta;
    let durationSeconds: number;
    try {
      meta = { ...parseImportName(name), ...(hasSidecar ? parseSidecar(await readFile(sidecarPath, 'utf8'), sidecarName) : {}) };
      try {
        probe = await this.#o.probe(file);
      } catch (err) {
        // ffprobe missing or too slow is our problem, not the file's: try again later.
        if (!isLecternError(err, 'FFPROBE_FAILED')) throw err;
        throw new LecternError('IMPORT_NOT_MEDIA', err.message.replaceAll(file, name), { cause: err });
      }
      ({ durationSeconds } = classifyProbe(probe, name));
    } catch (err) {
      if (!isLecternError(err, 'IMPORT_NOT_MEDIA') && !isLecternError(err, 'IMPORT_UNSUPPORTED') && !isLecternError(err, 'IMPORT_SIDECAR_INVALID')) throw err;
      await this.#reject(name, hasSidecar ? sidecarName : undefined, err);
      return;
    }

    const { sha256, bytes } = await hashFile(file);
    if ((await this.#signature(name)) !== signature) {
      this.#log.info(`${name} changed while it was read; waiting for it to settle again`);
      this.#observed.delete(name);
      this.#dirty.add(name);
      return;
    }

    const known = this.#o.repo.findBySegmentSha256(sha256);
    if (known !== undefined) {
      this.#log.info(`${name} was imported before as lecture ${known} (same sha256); moving it to ${IMPORTED_DIR}/ without importing it again`);
      // Idempotent per recording: a no-op unless an earlier attempt stopped between registering
      // the recording and handing it on.
      this.#o.enqueue(known);
    } else {
      const copy = await this.#copyIn(file, name, sha256, bytes);
      const startedAtMs = meta.recordedAtMs ?? (await stat(file)).mtimeMs - durationSeconds * 1000;
      const rec = this.#o.repo.createImported(
        {
          id: ulid(startedAtMs),
          title: meta.title ?? stemOf(name),
          course: meta.course ?? null,
          teacher: meta.teacher ?? null,
          startedAtMs,
          stoppedAtMs: startedAtMs + durationSeconds * 1000,
          reason: `imported from ${name} (sha256 ${sha256})`,
          source: this.#o.sourceName,
          segment: { path: path.relative(this.#o.dataDir, copy), bytes, sha256, durationSeconds },
        },
        this.#now(),
      );
      // A crash right here is healed by the agent's start: a stopped recording without a
      // transcode job is handed on then. A crash before the move below: the next look finds
      // the sha256 known and only moves the file.
      this.#o.enqueue(rec.id);
      this.#log.info(`imported ${name} as lecture ${rec.id}`, {
        course: meta.course ?? null,
        title: meta.title ?? stemOf(name),
        durationSeconds: Math.round(durationSeconds * 1000) / 1000,
        bytes,
        metadataFrom: hasSidecar ? 'sidecar' : meta.course !== undefined ? 'file name' : 'file',
        // Probe, hash and copy: on a slow classroom PC, where the time between settle and lecture goes.
        tookSeconds: Math.round(this.#now() - tookFromMs) / 1000,
      });
    }
    await this.#moveAside(name, hasSidecar ? sidecarName : undefined, IMPORTED_DIR, signature);
  }

  /**
   * Copies the file into copiesDir as <sha256><ext>: through a temporary name, hashed on the way
   * and checked against the original's hash, flushed, then renamed, so the registered path
   * always holds the registered bytes. An intact copy left by an earlier attempt is reused.
   */
  async #copyIn(file: string, name: string, sha256: string, bytes: number): Promise<string> {
    const ext = path.extname(name).toLowerCase();
    const target = path.join(this.#o.copiesDir, `${sha256}${/^\.[a-z0-9]{1,8}$/.test(ext) ? ext : ''}`);
    if (await pathExists(target)) {
      const existing = await hashFile(target);
      if (existing.sha256 === sha256 && existing.bytes === bytes) return target;
    }
    const part = path.join(this.#o.copiesDir, `.${sha256}.part`);
    await rm(part, { force: true });
    const hash = createHash('sha256');
    let copiedBytes = 0;
    const tap = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        hash.update(chunk);
        copiedBytes += chunk.length;
        done(null, chunk);
      },
    });
    await pipeline(createReadStream(file), tap, createWriteStream(part, { flags: 'wx', mode: 0o644 }));
    if (hash.digest('hex') !== sha256 || copiedBytes !== bytes) {
      await rm(part, { force: true });
      throw new LecternError('CHECKSUM_MISMATCH', `the copy of ${name} does not match the original (it changed while it was copied)`);
    }
    const fh = await open(part, 'r');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(part, target);
    await syncDir(this.#o.copiesDir);
    return target;
  }

  async #reject(name: string, sidecarName: string | undefined, err: LecternError): Promise<void> {
    const signature = (await this.#signature(name)) ?? '';
    const moved = await this.#moveAside(name, sidecarName, REJECTED_DIR, signature);
    if (!moved) return;
    const size = (await stat(path.join(this.#o.folder, REJECTED_DIR, moved))).size;
    const text = [
      `${err.code}: ${err.message}`,
      '',
      `file: ${name} (${size} bytes)${sidecarName ? `, with its sidecar ${sidecarName}` : ''}`,
      `rejected at: ${new Date(this.#now()).toISOString()}`,
      '',
      'Nothing was deleted. To try again, fix the cause and move the file back into the import folder.',
      '',
    ].join('\n');
    // Written aside and renamed: whoever watches rejected/ never reads half a reason.
    const reasonPath = path.join(this.#o.folder, REJECTED_DIR, `${moved}.reason.txt`);
    await writeFile(`${reasonPath}.tmp`, text, { mode: 0o644 });
    await rename(`${reasonPath}.tmp`, reasonPath);
    this.#log.warn(`${name} rejected: ${describeError(err)}`, { moved: `${REJECTED_DIR}/${moved}` });
  }

  /**
   * Moves the file (and its sidecar, under the matching stem) into a subfolder without
   * overwriting anything there: `name`, else `stem-2.ext`, `stem-3.ext`... Returns the name it
   * got, or undefined when the folder cannot be written (then it is left alone until it changes).
   */
  async #moveAside(name: string, sidecarName: string | undefined, dirName: string, signature: string): Promise<string | undefined> {
    const dir = path.join(this.#o.folder, dirName);
    try {
      await mkdir(dir, { recursive: true, mode: 0o755 });
      const ext = path.extname(name);
      const stem = stemOf(name);
      let target = name;
      for (let n = 2; (await pathExists(path.join(dir, target))) || (sidecarName !== undefined && (await pathExists(path.join(dir, sidecarNameFor(target))))); n++) {
        target = `${stem}-${n}${ext}`;
      }
      await rename(path.join(this.#o.folder, name), path.join(dir, target));
      if (sidecarName !== undefined) await rename(path.join(this.#o.folder, sidecarName), path.join(dir, sidecarNameFor(target)));
      this.#forget(name);
      return target;
    } catch (err) {
      this.#log.error(`${name} cannot be moved to ${dirName}/ (${describeError(err)}); it stays where it is and is not looked at again until it changes`);
      this.#stuck.set(name, signature);
      return undefined;
    }
  }

  /** Temporary copies left by a crash mid-copy. They are ours alone, never the user's files. */
  async #removeStaleCopies(): Promise<void> {
    for (const entry of await readdir(this.#o.copiesDir)) {
      if (/^\.[0-9a-f]{64}\.part$/.test(entry)) await rm(path.join(this.#o.copiesDir, entry), { force: true });
    }
  }
}

/** Makes a rename durable across a power cut. */
async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
