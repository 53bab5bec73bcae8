import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { Logger } from '../log/logger.js';
import { assertValidKey, contentTypeFor, type Store } from '../storage/store.js';
import { LecternError } from '../util/errors.js';
import { sha256Hex } from '../util/hash.js';
import { formatBytes } from '../util/units.js';

/**
 * The publish protocol (DESIGN §3.1). The platform treats lecture.json as "complete" and the
 * ready pointer as "listable", so they go last, in this order:
 *
 *   1. media files (segments, init segments, images…), sorted by path
 *   2. rendition playlists, then the master playlist (a player opening it finds every rendition)
 *   3. lecture.json
 *   4. the ready pointer
 *
 * Each step starts only after the store confirmed the previous one, so a crash anywhere leaves
 * no manifest or pointer without every file before it. Every object is looked up first and
 * skipped when the store already holds it with the same size and sha256: a re-run after a crash
 * or for a rewritten tier-2 manifest re-sends only what is not confirmed.
 *
 * Once a lecture.json is in the store the platform may have pulled that lecture, so from then on
 * only the keys a later tier rewrites may change: the master playlists (the ladder grows),
 * lecture.json and the ready pointer. Any other file stored with different content means a
 * different package under the same lecture id: nothing is uploaded and PUBLISH_CONFLICT names it.
 * Before any lecture.json, a differing file is only a leftover of an unfinished publish and is replaced.
 */

/** One file of a package, as lecture.json lists it. */
export interface PackageFile {
  /** Path relative to the package dir, '/'-separated, e.g. 'hls/720p/seg_00001.m4s'. */
  path: string;
  bytes: number;
  sha256: string;
}

export interface PublishProgress {
  filesDone: number;
  filesTotal: number;
  bytesDone: number;
  bytesTotal: number;
}

export interface PublishInput {
  store: Store;
  logger: Logger;
  /** Local folder holding the files. */
  packageDir: string;
  /** Every file of the package except lecture.json. */
  files: readonly PackageFile[];
  /** From keys.lecturePrefix; ends with '/'. */
  lecturePrefix: string;
  /** lecture.json content, written after all files. */
  manifestJson: string;
  /** The ready pointer, written last. */
  readyKey: string;
  readyJson: string;
  /** Checked between files. */
  signal?: AbortSignal;
  /** Called after each package file (lecture.json and the pointer are not counted). */
  onProgress?: (p: PublishProgress) => void;
}

/** Counts include lecture.json and the ready pointer. */
export interface PublishResult {
  uploadedFiles: number;
  skippedFiles: number;
  uploadedBytes: number;
}

const MANIFEST_NAME = 'lecture.json';
const MASTER_PLAYLIST_NAME = 'master.m3u8';

export async function publishPackage(input: PublishInput): Promise<PublishResult> {
  const { store, signal } = input;
  const log = input.logger.child({ scope: 'publish' });
  const ordered = orderFiles(input.files);
  const keyOf = (file: PackageFile): string => `${input.lecturePrefix}${file.path}`;
  for (const file of ordered) assertValidKey(keyOf(file));
  assertValidKey(`${input.lecturePrefix}${MANIFEST_NAME}`);
  assertValidKey(input.readyKey);
  // Checked up front so a broken package publishes nothing at all rather than half of itself.
  for (const file of ordered) await checkLocalFile(input.packageDir, file);

  const bytesTotal = ordered.reduce((sum, f) => sum + f.bytes, 0);
  const result: PublishResult = { uploadedFiles: 0, skippedFiles: 0, uploadedBytes: 0 };
  const progress: PublishProgress = { filesDone: 0, filesTotal: ordered.length, bytesDone: 0, bytesTotal };
  log.info(`publishing ${ordered.length} files (${formatBytes(bytesTotal)}) to ${store.description}`, { prefix: input.lecturePrefix });

  // Every key is looked up before anything is sent, so a conflict publishes nothing at all.
  const published = (await store.head(`${input.lecturePrefix}${MANIFEST_NAME}`)) !== undefined;
  const stored = new Map<string, Awaited<ReturnType<Store['head']>>>();
  const conflicts: string[] = [];
  for (const file of ordered) {
    signal?.throwIfAborted();
    const there = await store.head(keyOf(file));
    stored.set(file.path, there);
    const same = there !== undefined && there.sizeBytes === file.bytes && there.sha256 === file.sha256;
    if (there && !same && published && !isRewritable(file.path)) conflicts.push(file.path);
  }
  if (conflicts.length > 0) {
    throw new LecternError(
      'PUBLISH_CONFLICT',
      `the store already holds a published lecture at ${input.lecturePrefix} whose ${conflicts.slice(0, 3).join(', ')}${conflicts.length > 3 ? ` (and ${conflicts.length - 3} more)` : ''} differ from this package; nothing was published`,
      { details: { prefix: input.lecturePrefix, paths: conflicts } },
    );
  }

  for (const file of ordered) {
    signal?.throwIfAborted();
    const key = keyOf(file);
    const there = stored.get(file.path);
    if (there && there.sizeBytes === file.bytes && there.sha256 === file.sha256) {
      result.skippedFiles++;
    } else {
      await store.putFile(key, localPathOf(input.packageDir, file.path), { sizeBytes: file.bytes, sha256: file.sha256, contentType: contentTypeFor(key) });
      result.uploadedFiles++;
      result.uploadedBytes += file.bytes;
      log.debug(`uploaded ${file.path}`, { bytes: file.bytes });
    }
    progress.filesDone++;
    progress.bytesDone += file.bytes;
    input.onProgress?.({ ...progress });
  }

  signal?.throwIfAborted();
  await putJsonOnce(store, `${input.lecturePrefix}${MANIFEST_NAME}`, input.manifestJson, result);
  signal?.throwIfAborted();
  await putJsonOnce(store, input.readyKey, input.readyJson, result);

  log.info(`published: ${result.uploadedFiles} uploaded (${formatBytes(result.uploadedBytes)}), ${result.skippedFiles} already in the store`, {
    prefix: input.lecturePrefix,
    readyKey: input.readyKey,
  });
  return result;
}

/** The files a later tier rewrites under the same lecture id: the master playlists. */
export function isRewritable(packagePath: string): boolean {
  return path.posix.basename(packagePath) === MASTER_PLAYLIST_NAME;
}

/** Media by path, then rendition playlists by path, then master playlists. */
function orderFiles(files: readonly PackageFile[]): PackageFile[] {
  const seen = new Set<string>();
  for (const file of files) {
    assertRelativePath(file.path);
    if (file.path === MANIFEST_NAME) {
      throw new LecternError('PACKAGE_INVALID', `${MANIFEST_NAME} must not be among the package files: it is written after them`);
    }
    if (seen.has(file.path)) throw new LecternError('PACKAGE_INVALID', `the package lists "${file.path}" twice`);
    seen.add(file.path);
  }
  const rank = (p: string): number => (!p.endsWith('.m3u8') ? 0 : path.posix.basename(p) === MASTER_PLAYLIST_NAME ? 2 : 1);
  return [...files].sort((a, b) => rank(a.path) - rank(b.path) || (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

function assertRelativePath(p: string): void {
  const segments = p.split('/');
  if (p === '' || p.startsWith('/') || p.includes('\\') || p.includes('\0') || segments.some((s) => s === '' || s === '.' || s === '..')) {
    throw new LecternError('INVALID_NAME', `package file path ${JSON.stringify(p)} must be relative, '/'-separated, without empty, '.' or '..' segments`);
  }
}

function localPathOf(packageDir: string, relative: string): string {
  return path.join(packageDir, ...relative.split('/'));
}

async function checkLocalFile(packageDir: string, file: PackageFile): Promise<void> {
  const local = localPathOf(packageDir, file.path);
  const st = await fs.stat(local).catch((err: unknown) => {
    const code = (err as NodeJS.ErrnoException | null)?.code ?? 'unknown error';
    throw new LecternError('PACKAGE_INVALID', `package file "${file.path}" cannot be read from ${packageDir} (${code}); nothing was published`, {
      cause: err,
      details: { path: file.path, packageDir },
    });
  });
  if (!st.isFile()) {
    throw new LecternError('PACKAGE_INVALID', `package file "${file.path}" in ${packageDir} is not a regular file; nothing was published`, {
      details: { path: file.path, packageDir },
    });
  }
  if (st.size !== file.bytes) {
    throw new LecternError('CHECKSUM_MISMATCH', `package file "${file.path}" has ${st.size} bytes, the manifest says ${file.bytes}; nothing was published`, {
      details: { path: file.path, packageDir, sizeBytes: st.size, expectedBytes: file.bytes },
    });
  }
}

async function putJsonOnce(store: Store, key: string, json: string, result: PublishResult): Promise<void> {
  const bytes = Buffer.byteLength(json, 'utf8');
  const there = await store.head(key);
  if (there && there.sizeBytes === bytes && there.sha256 === sha256Hex(json)) {
    result.skippedFiles++;
    return;
  }
  await store.putBytes(key, json, { contentType: contentTypeFor(key) });
  result.uploadedFiles++;
  result.uploadedBytes += bytes;
}
