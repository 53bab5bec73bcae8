import { isLecternError, LecternError } from '../util/errors.js';

/**
 * The remote storage port. FileStore (a local or mounted folder) and S3Store implement it, and
 * both must pass tests/integration/store-contract.ts. Keys are S3-style: '/'-separated, no
 * directories of their own, listed in plain string order.
 */

/** What the store knows about one object. */
export interface StoreObjectInfo {
  key: string;
  sizeBytes: number;
  /** Hex, when the store knows it. */
  sha256?: string;
  modifiedMs?: number;
}

export interface PutFileOptions {
  /** The size the caller expects the stored object to have. */
  sizeBytes: number;
  /** The sha256 (hex) the caller expects the stored object to have. */
  sha256: string;
  contentType?: string;
}

export interface ListOptions {
  /** Only keys strictly greater than this one (plain string comparison), as S3's StartAfter. */
  startAfter?: string;
  /** At most this many keys. */
  limit?: number;
}

export interface Store {
  /** A description for logs and status, never containing credentials, e.g. "file:/var/lib/lectern/store". */
  readonly description: string;
  /**
   * Uploads a local file and verifies size and sha256 of what the store holds afterwards. On a
   * difference it throws CHECKSUM_MISMATCH and the key is absent afterwards.
   */
  putFile(key: string, localPath: string, opts: PutFileOptions): Promise<void>;
  putBytes(key: string, data: Uint8Array | string, opts?: { contentType?: string }): Promise<void>;
  /** undefined when the key does not exist. */
  head(key: string): Promise<StoreObjectInfo | undefined>;
  /** Throws STORE_NOT_FOUND when the key does not exist. */
  getBytes(key: string): Promise<Buffer>;
  /** Throws STORE_NOT_FOUND when the key does not exist. */
  getToFile(key: string, localPath: string): Promise<void>;
  /** Keys under `prefix` (which may end mid-segment), sorted ascending, only those > startAfter; at most `limit`. */
  list(prefix: string, opts?: ListOptions): Promise<StoreObjectInfo[]>;
  /** A missing key is not an error. */
  delete(key: string): Promise<void>;
  /**
   * Given up on the uploads under `prefix` (a lecture's): aborts every unfinished multipart upload
   * there, so no orphan parts stay on the server, and forgets its progress. Returns how many were
   * aborted. Stores without multipart uploads have no such method.
   */
  abortUploads?(prefix: string): Promise<number>;
  start(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * What kind of failure a store error is (S3Store records it as `details.errorClass`): 'retryable'
 * (try again later; uploads resume), 'operator' (credentials, rights or bucket: a person must fix
 * the configuration), 'clock' (this PC's clock is off), 'content', 'notFound', 'noSuchUpload', 'fatal'.
 */
export type StoreErrorClass = 'retryable' | 'operator' | 'clock' | 'noSuchUpload' | 'notFound' | 'content' | 'fatal';

/** The class recorded on a LecternError from a store; undefined when it has none. */
export function storeErrorClass(err: unknown): StoreErrorClass | undefined {
  if (!isLecternError(err)) return undefined;
  const cls = err.details.errorClass;
  return typeof cls === 'string' ? (cls as StoreErrorClass) : undefined;
}

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  m3u8: 'application/vnd.apple.mpegurl',
  m4s: 'video/iso.segment',
  mp4: 'video/mp4',
  json: 'application/json',
  jpg: 'image/jpeg',
  vtt: 'text/vtt',
  aac: 'audio/mp4',
  m4a: 'audio/mp4',
};

/** The Content-Type a player expects for a package file, by its extension. */
export function contentTypeFor(key: string): string {
  const name = key.slice(key.lastIndexOf('/') + 1);
  const dot = name.lastIndexOf('.');
  if (dot < 0) return 'application/octet-stream';
  return CONTENT_TYPES[name.slice(dot + 1).toLowerCase()] ?? 'application/octet-stream';
}

// Stricter than S3 on purpose: every key must also be a safe relative path on a filesystem, so
// the same keys work for FileStore and S3Store and none can climb out of a FileStore's root.
const SEGMENT = /^[A-Za-z0-9._-]{1,255}$/;
const PARTIAL_SEGMENT = /^[A-Za-z0-9._-]{0,255}$/;

/** Names FileStore gives its in-flight temp files; no key may look like one. */
export const TEMP_NAME = /^\..*\.tmp-[A-Za-z0-9]+$/;

function segmentProblem(segment: string): string | undefined {
  if (segment === '') return 'has an empty segment';
  if (segment === '.' || segment === '..') return `has a "${segment}" segment`;
  if (!SEGMENT.test(segment)) return 'has a segment with characters other than letters, digits, ".", "_" and "-", or longer than 255';
  if (TEMP_NAME.test(segment)) return 'has a segment that looks like a temp file name';
  return undefined;
}

function keyProblem(key: string): string | undefined {
  if (key === '') return 'is empty';
  if (key.startsWith('/')) return 'starts with "/"';
  if (key.includes('\\')) return 'contains a backslash';
  if (key.includes('\0')) return 'contains a NUL character';
  for (const segment of key.split('/')) {
    const problem = segmentProblem(segment);
    if (problem) return problem;
  }
  return undefined;
}

export function isValidKey(key: string): boolean {
  return keyProblem(key) === undefined;
}

/** Throws INVALID_NAME unless `key` is a valid store key; returns its segments. */
export function assertValidKey(key: string): string[] {
  const problem = keyProblem(key);
  if (problem) throw new LecternError('INVALID_NAME', `storage key ${JSON.stringify(key)} ${problem}`, { details: { key } });
  return key.split('/');
}

/**
 * Throws INVALID_NAME unless `prefix` is '' or complete key segments followed by '/' and an
 * optional partial last segment (S3 prefixes may end mid-segment). Returns the complete
 * segments and the partial one.
 */
export function assertValidPrefix(prefix: string): { dirSegments: string[]; partial: string } {
  const slash = prefix.lastIndexOf('/');
  const dir = slash < 0 ? '' : prefix.slice(0, slash);
  const partial = prefix.slice(slash + 1);
  const problem =
    (slash >= 0 ? keyProblem(dir) : undefined) ??
    (PARTIAL_SEGMENT.test(partial) ? undefined : 'ends with an invalid partial segment');
  if (problem) throw new LecternError('INVALID_NAME', `storage prefix ${JSON.stringify(prefix)} ${problem}`, { details: { prefix } });
  return { dirSegments: slash < 0 ? [] : dir.split('/'), partial };
}
