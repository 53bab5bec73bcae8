import { createHash, randomBytes } from 'node:crypto';
import { constants, promises as fs, type Dirent, type Stats } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '../log/logger.js';
import { isLecternError, LecternError } from '../util/errors.js';
import { assertValidKey, assertValidPrefix, isValidKey, TEMP_NAME, type ListOptions, type PutFileOptions, type Store, type StoreObjectInfo } from './store.js';

/**
 * The Store port over a local or mounted folder; each key is a file under `root`.
 *
 * Writes are crash-safe: the bytes go to `.<name>.tmp-<random>` in the target directory, which is
 * fsynced, checked (putFile) and renamed over the final name, and then the directory is fsynced.
 * After a power cut a key holds either its old object or the complete new one, never a torn one,
 * so "lecture.json is present" keeps meaning "every file before it is complete". Temp files left
 * by a crash are invisible to list/head and removed by start().
 *
 * Files are 0644 and directories 0755 whatever the umask, because the platform reads the folder
 * as another user.
 */

export interface FileStoreOptions {
  root: string;
  logger: Logger;
  /**
   * start() removes temp files untouched for this long. Several agents may share one mounted
   * folder, so a fresh temp file can be another agent's write in progress; its mtime moves with
   * every write, so 15 minutes of silence means its writer is gone.
   */
  staleTempMs?: number;
}

const FILE_MODE = 0o644;
const DIR_MODE = 0o755;
const DEFAULT_STALE_TEMP_MS = 15 * 60_000;
// head() hashes on demand; remembering recent hashes keeps a publish re-run from reading every
// file twice. Bounded so a long-running daemon does not grow without limit.
const HASH_CACHE_ENTRIES = 20_000;
// A key segment may be 255 characters, the limit of a file name; the temp name adds to it.
const TEMP_BASE_CHARS = 200;

interface CachedHash {
  ino: number;
  sizeBytes: number;
  mtimeMs: number;
  sha256: string;
}

type WriteCode = 'STORE_WRITE_FAILED' | 'STORE_READ_FAILED';

export class FileStore implements Store {
  readonly description: string;
  readonly #root: string;
  readonly #log: Logger;
  readonly #staleTempMs: number;
  readonly #hashes = new Map<string, CachedHash>();

  constructor(options: FileStoreOptions) {
    this.#root = path.resolve(options.root);
    this.description = `file:${this.#root}`;
    this.#log = options.logger.child({ scope: 'file-store' });
    this.#staleTempMs = options.staleTempMs ?? DEFAULT_STALE_TEMP_MS;
  }

  async start(): Promise<void> {
    try {
      await this.#ensureDir(this.#root);
    } catch (err) {
      throw this.#error('STORE_WRITE_FAILED', `cannot create the store folder ${this.#root}`, err);
    }
    const removed = await this.#sweepTemp(this.#root, Date.now() - this.#staleTempMs);
    if (removed > 0) this.#log.info(`removed ${removed} temp file(s) left by an interrupted write`, { store: this.description });
  }

  async stop(): Promise<void> {
    // Nothing is held open between calls.
  }

  async putFile(key: string, localPath: string, opts: PutFileOptions): Promise<void> {
    const target = this.#pathOf(key);
    let local: Stats;
    try {
      local = await fs.stat(localPath);
    } catch (err) {
      throw this.#error('STORE_WRITE_FAILED', `cannot read the local file ${localPath} to store as "${key}"`, err, key);
    }
    if (local.size !== opts.sizeBytes) {
      await this.#discard(key, target);
      throw new LecternError('CHECKSUM_MISMATCH', `the local file ${localPath} has ${local.size} bytes, expected ${opts.sizeBytes}; "${key}" was not stored`, {
        details: { key, localPath, sizeBytes: local.size, expectedBytes: opts.sizeBytes },
      });
    }
    await this.#writeAtomically(key, target, (tmp) => fs.copyFile(localPath, tmp, constants.COPYFILE_EXCL), async (fh) => {
      // Check what landed in the store, not the source: this catches a source that changed
      // during the copy as well as a bad copy.
      const stored = await hashHandle(fh);
      if (stored.sizeBytes !== opts.sizeBytes || stored.sha256 !== opts.sha256) {
        await this.#discard(key, target);
        throw new LecternError('CHECKSUM_MISMATCH', `"${key}" stored from ${localPath} has sha256 ${stored.sha256} (${stored.sizeBytes} bytes), expected ${opts.sha256} (${opts.sizeBytes} bytes); removed it`, {
          details: { key, localPath, sha256: stored.sha256, expectedSha256: opts.sha256 },
        });
      }
      return stored.sha256;
    });
  }

  async putBytes(key: string, data: Uint8Array | string, _opts?: { contentType?: string }): Promise<void> {
    const target = this.#pathOf(key);
    await this.#writeAtomically(key, target, (tmp) => fs.writeFile(tmp, data, { flag: 'wx', mode: FILE_MODE }), async () => undefined);
  }

  async head(key: string): Promise<StoreObjectInfo | undefined> {
    const file = this.#pathOf(key);
    const fh = await this.#openForRead(key, file);
    if (!fh) return undefined;
    try {
      const st = await fh.stat();
      if (!st.isFile()) return undefined;
      const cached = this.#hashes.get(key);
      let sha256: string;
      if (cached && cached.ino === st.ino && cached.sizeBytes === st.size && cached.mtimeMs === st.mtimeMs) {
        sha256 = cached.sha256;
      } else {
        sha256 = (await hashHandle(fh)).sha256;
        this.#remember(key, st, sha256);
      }
      return { key, sizeBytes: st.size, sha256, modifiedMs: st.mtimeMs };
    } catch (err) {
      throw this.#error('STORE_READ_FAILED', `cannot read "${key}" in ${this.description}`, err, key);
    } finally {
      await fh.close();
    }
  }

  async getBytes(key: string): Promise<Buffer> {
    const file = this.#pathOf(key);
    const fh = await this.#openForRead(key, file);
    if (!fh) throw notFound(key, this.description);
    try {
      if (!(await fh.stat()).isFile()) throw notFound(key, this.description);
      return await fh.readFile();
    } catch (err) {
      if (isLecternError(err)) throw err;
      throw this.#error('STORE_READ_FAILED', `cannot read "${key}" in ${this.description}`, err, key);
    } finally {
      await fh.close();
    }
  }

  async getToFile(key: string, localPath: string): Promise<void> {
    const file = this.#pathOf(key);
    const st = await fs.stat(file).catch((err: unknown) => {
      if (isMissing(err)) return undefined;
      throw this.#error('STORE_READ_FAILED', `cannot read "${key}" in ${this.description}`, err, key);
    });
    if (!st?.isFile()) throw notFound(key, this.description);
    // The local copy is replaced atomically too, so a crash never leaves a torn download.
    const dir = path.dirname(path.resolve(localPath));
    const tmp = tempPathFor(path.resolve(localPath));
    try {
      await fs.mkdir(dir, { recursive: true });
      await fs.copyFile(file, tmp, constants.COPYFILE_EXCL);
      await syncFile(tmp);
      await fs.rename(tmp, localPath);
      await syncDir(dir);
    } catch (err) {
      await fs.rm(tmp, { force: true }).catch(() => undefined);
      if (isMissing(err) && (await fs.stat(file).catch(() => undefined)) === undefined) throw notFound(key, this.description);
      throw this.#error('STORE_READ_FAILED', `cannot copy "${key}" from ${this.description} to ${localPath}`, err, key);
    }
  }

  async list(prefix: string, opts: ListOptions = {}): Promise<StoreObjectInfo[]> {
    const { dirSegments, partial } = assertValidPrefix(prefix);
    const limit = opts.limit;
    if (limit !== undefined && (!Number.isInteger(limit) || limit < 0)) {
      throw new LecternError('INTERNAL', `list limit must be a non-negative integer, got ${limit}`);
    }
    const keyBase = dirSegments.length > 0 ? `${dirSegments.join('/')}/` : '';
    const out: StoreObjectInfo[] = [];
    await this.#walk(path.join(this.#root, ...dirSegments), keyBase, partial, opts.startAfter, out);
    out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    return limit === undefined ? out : out.slice(0, limit);
  }

  async delete(key: string): Promise<void> {
    const file = this.#pathOf(key);
    this.#hashes.delete(key);
    try {
      await fs.unlink(file);
    } catch (err) {
      // A directory under the key is not an object (S3 has no directories), so it is "missing" too.
      if (isMissing(err) || errnoCode(err) === 'EISDIR' || errnoCode(err) === 'EPERM') return;
      throw this.#error('STORE_WRITE_FAILED', `cannot delete "${key}" in ${this.description}`, err, key);
    }
    try {
      await syncDir(path.dirname(file));
    } catch (err) {
      throw this.#error('STORE_WRITE_FAILED', `cannot delete "${key}" in ${this.description}`, err, key);
    }
  }

  #pathOf(key: string): string {
    return path.join(this.#root, ...assertValidKey(key));
  }

  /**
   * temp file -> `fill` -> mode, fsync, `check` -> rename -> fsync directory. `check` returns the
   * sha256 when it computed one, so head() need not hash the object again.
   */
  async #writeAtomically(
    key: string,
    target: string,
    fill: (tmpPath: string) => Promise<void>,
    check: (fh: FileHandle) => Promise<string | undefined>,
  ): Promise<void> {
    const dir = path.dirname(target);
    const tmp = tempPathFor(target);
    try {
      await this.#ensureDir(dir);
      await fill(tmp);
      const fh = await fs.open(tmp, 'r+');
      let sha256: string | undefined;
      let st: Stats;
      try {
        await fh.chmod(FILE_MODE);
        await fh.sync();
        sha256 = await check(fh);
        st = await fh.stat();
      } finally {
        await fh.close();
      }
      await fs.rename(tmp, target);
      await syncDir(dir);
      if (sha256 !== undefined) this.#remember(key, st, sha256);
      else this.#hashes.delete(key);
    } catch (err) {
      await fs.rm(tmp, { force: true }).catch(() => undefined);
      if (isLecternError(err)) throw err;
      throw this.#error('STORE_WRITE_FAILED', `cannot write "${key}" to ${this.description}`, err, key);
    }
  }

  /** Removes the object after a failed check, so a key never holds bytes that failed one. */
  async #discard(key: string, file: string): Promise<void> {
    this.#hashes.delete(key);
    await fs.rm(file, { force: true }).catch((err: unknown) => {
      this.#log.warn(`cannot remove "${key}" after a failed checksum; head() will still show its old content`, { error: errnoCode(err) });
    });
  }

  async #openForRead(key: string, file: string): Promise<FileHandle | undefined> {
    try {
      return await fs.open(file, 'r');
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw this.#error('STORE_READ_FAILED', `cannot read "${key}" in ${this.description}`, err, key);
    }
  }

  /** mkdir -p with the store's directory mode; each new directory's entry is fsynced into its parent. */
  async #ensureDir(dir: string): Promise<void> {
    const first = await fs.mkdir(dir, { recursive: true, mode: DIR_MODE });
    if (first === undefined) return;
    const created: string[] = [];
    const stopAt = path.dirname(first);
    for (let d = dir; d !== stopAt && d !== path.dirname(d); d = path.dirname(d)) created.push(d);
    for (const d of created.reverse()) {
      await fs.chmod(d, DIR_MODE);
      await syncDir(path.dirname(d));
    }
  }

  async #walk(dir: string, keyBase: string, namePrefix: string, startAfter: string | undefined, out: StoreObjectInfo[]): Promise<void> {
    let entries: Dirent[];
    try {
      entries = await fs.readdir(dir, { withFileTypes: true });
    } catch (err) {
      if (isMissing(err)) return;
      throw this.#error('STORE_READ_FAILED', `cannot list "${keyBase}" in ${this.description}`, err, keyBase);
    }
    for (const entry of entries) {
      if (!entry.name.startsWith(namePrefix)) continue;
      const key = keyBase + entry.name;
      // Temp files and names no key could have (put there by hand) are not objects.
      if (!isValidKey(key)) continue;
      if (entry.isDirectory()) {
        const sub = `${key}/`;
        // Every key under `sub` sorts below startAfter: skip the subtree (listing ready/ by day).
        if (startAfter !== undefined && startAfter > sub && !startAfter.startsWith(sub)) continue;
        await this.#walk(path.join(dir, entry.name), sub, '', startAfter, out);
      } else if (entry.isFile()) {
        if (startAfter !== undefined && key <= startAfter) continue;
        const st = await fs.stat(path.join(dir, entry.name)).catch((err: unknown) => {
          if (isMissing(err)) return undefined; // deleted while listing
          throw this.#error('STORE_READ_FAILED', `cannot list "${key}" in ${this.description}`, err, key);
        });
        if (st) out.push({ key, sizeBytes: st.size, modifiedMs: st.mtimeMs });
      }
    }
  }

  async #sweepTemp(dir: string, olderThanMs: number): Promise<number> {
    let removed = 0;
    let entries: Dirent[];
    try {
      entries = await fs.readdir(dir, { withFileTypes: true });
    } catch (err) {
      this.#log.warn(`cannot look for leftover temp files in ${dir}`, { error: errnoCode(err) });
      return 0;
    }
    for (const entry of entries) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) {
        removed += await this.#sweepTemp(full, olderThanMs);
      } else if (entry.isFile() && TEMP_NAME.test(entry.name)) {
        try {
          const st = await fs.stat(full);
          if (st.mtimeMs > olderThanMs) continue;
          await fs.unlink(full);
          removed++;
        } catch (err) {
          // Another agent sharing the folder may have finished or removed it; the sweep is best effort.
          if (!isMissing(err)) this.#log.warn(`cannot remove the leftover temp file ${full}`, { error: errnoCode(err) });
        }
      }
    }
    return removed;
  }

  #remember(key: string, st: Stats, sha256: string): void {
    this.#hashes.delete(key);
    if (this.#hashes.size >= HASH_CACHE_ENTRIES) {
      const oldest = this.#hashes.keys().next();
      if (!oldest.done) this.#hashes.delete(oldest.value);
    }
    this.#hashes.set(key, { ino: st.ino, sizeBytes: st.size, mtimeMs: st.mtimeMs, sha256 });
  }

  #error(code: WriteCode, message: string, err: unknown, key?: string): LecternError {
    const osCode = errnoCode(err) ?? 'unknown error';
    return new LecternError(code, `${message} (${osCode})`, { cause: err, details: { key, osCode, store: this.description } });
  }
}

function notFound(key: string, description: string): LecternError {
  return new LecternError('STORE_NOT_FOUND', `"${key}" does not exist in ${description}`, { details: { key } });
}

function tempPathFor(target: string): string {
  const base = path.basename(target).slice(0, TEMP_BASE_CHARS);
  return path.join(path.dirname(target), `.${base}.tmp-${randomBytes(6).toString('hex')}`);
}

async function hashHandle(fh: FileHandle): Promise<{ sha256: string; sizeBytes: number }> {
  const hash = createHash('sha256');
  let sizeBytes = 0;
  for await (const chunk of fh.createReadStream({ start: 0, autoClose: false })) {
    const buf = chunk as Buffer;
    sizeBytes += buf.length;
    hash.update(buf);
  }
  return { sha256: hash.digest('hex'), sizeBytes };
}

async function syncFile(file: string): Promise<void> {
  const fh = await fs.open(file, 'r+');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** fsync a directory so a rename or a new entry in it survives a power cut. */
async function syncDir(dir: string): Promise<void> {
  const fh = await fs.open(dir, 'r');
  try {
    await fh.sync();
  } catch (err) {
    // Some network and FUSE filesystems refuse fsync on a directory; they give no stronger
    // guarantee to ask for, so the write stands.
    if (errnoCode(err) !== 'EINVAL' && errnoCode(err) !== 'ENOTSUP') throw err;
  } finally {
    await fh.close();
  }
}

function errnoCode(err: unknown): string | undefined {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** ENOTDIR: a path segment of the key is a file, so the key cannot exist. */
function isMissing(err: unknown): boolean {
  const code = errnoCode(err);
  return code === 'ENOENT' || code === 'ENOTDIR';
}
