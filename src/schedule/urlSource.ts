import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '../log/logger.js';
import { LecternError, describeError, isLecternError } from '../util/errors.js';
import { sha256Hex } from '../util/hash.js';
import type { TimetableSource } from './fileSource.js';
import { parseIcs } from './ics.js';
import type { Timetable } from './timetable.js';

/**
 * An ICS timetable fetched over HTTP(S) and kept on disk, so the room records from the last good
 * copy while the network or the calendar server is down, including after a restart.
 *
 * - Each load asks with If-None-Match (and If-Modified-Since); 304 keeps the cached copy.
 * - The cache is replaced only by a body that parses: a broken download leaves the last good
 *   timetable in force (and its ETag, so the server sends the fixed file once there is one).
 * - A network error, a timeout or an HTTP error uses the cache and says so (`problem`); with no
 *   cache it is SCHEDULE_UNAVAILABLE.
 * - Timetable URLs of calendar services often carry a secret token in the path or query, so only
 *   the origin appears in logs and errors.
 */

export interface UrlSourceOptions {
  url: string;
  cacheDir: string;
  /** The zone of floating times. */
  timeZone: string;
  logger: Logger;
  timeoutMs?: number;
  /** A timetable bigger than this is refused (a misconfigured URL pointing at a video...). */
  maxBytes?: number;
  fetch?: typeof fetch;
}

interface CacheFile {
  /** sha256 of the URL: a cache written for another URL is never used. */
  urlHash: string;
  etag: string | null;
  lastModified: string | null;
  fetchedAtMs: number;
  body: string;
}

const DEFAULT_TIMEOUT_MS = 30_000;
const DEFAULT_MAX_BYTES = 20 * 1024 * 1024;

export class UrlTimetableSource implements TimetableSource {
  readonly description: string;
  readonly #o: UrlSourceOptions;
  readonly #log: Logger;
  readonly #urlHash: string;
  readonly #cachePath: string;
  /** The parsed cache, so a 304 does not parse the same text again. */
  #parsed: { body: string; timetable: Timetable } | undefined;

  constructor(options: UrlSourceOptions) {
    const url = new URL(options.url);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new LecternError('SCHEDULE_UNREADABLE', `the timetable URL must be http:// or https://, got ${url.protocol}`);
    this.#o = options;
    this.description = `${url.origin}/…`;
    this.#log = options.logger.child({ scope: 'schedule' });
    this.#urlHash = sha256Hex(options.url);
    this.#cachePath = path.join(options.cacheDir, `timetable-${this.#urlHash.slice(0, 16)}.json`);
  }

  /** Where the cached copy lives (for status and tests). */
  get cachePath(): string {
    return this.#cachePath;
  }

  async load(signal?: AbortSignal): Promise<{ timetable: Timetable; problem?: LecternError }> {
    const cache = await this.#readCache();
    let response: Response;
    try {
      const headers: Record<string, string> = { accept: 'text/calendar, */*;q=0.5' };
      if (cache?.etag) headers['if-none-match'] = cache.etag;
      if (cache?.lastModified) headers['if-modified-since'] = cache.lastModified;
      const timeout = AbortSignal.timeout(this.#o.timeoutMs ?? DEFAULT_TIMEOUT_MS);
      response = await (this.#o.fetch ?? fetch)(this.#o.url, { headers, signal: signal ? AbortSignal.any([signal, timeout]) : timeout, redirect: 'follow' });
    } catch (err) {
      return this.#fromCache(cache, `cannot reach ${this.description} (${describeCause(err)})`, err);
    }

    if (response.status === 304 && cache) {
      await response.body?.cancel();
      this.#log.debug(`timetable ${this.description} not modified (304); using the cached copy`);
      return { timetable: this.#parse(cache.body) };
    }
    if (response.status !== 200) {
      await response.body?.cancel();
      return this.#fromCache(cache, `${this.description} answered HTTP ${response.status}`);
    }
    let body: string;
    try {
      body = await readLimited(response, this.#o.maxBytes ?? DEFAULT_MAX_BYTES);
    } catch (err) {
      return this.#fromCache(cache, `the download from ${this.description} failed (${describeCause(err)})`, err);
    }
    let timetable: Timetable;
    try {
      timetable = this.#parse(body);
    } catch (err) {
      // The server's new file is broken: the last good copy stays in force.
      if (!cache || !isLecternError(err)) throw err;
      return { timetable: this.#parse(cache.body), problem: err };
    }
    await this.#writeCache({
      urlHash: this.#urlHash,
      etag: response.headers.get('etag'),
      lastModified: response.headers.get('last-modified'),
      fetchedAtMs: Date.now(),
      body,
    });
    return { timetable };
  }

  #parse(body: string): Timetable {
    if (this.#parsed?.body === body) return this.#parsed.timetable;
    const timetable = parseIcs(body, { timeZone: this.#o.timeZone, source: this.description });
    this.#parsed = { body, timetable };
    return timetable;
  }

  #fromCache(cache: CacheFile | undefined, what: string, cause?: unknown): { timetable: Timetable; problem: LecternError } {
    if (!cache) {
      throw new LecternError('SCHEDULE_UNAVAILABLE', `${what}, and there is no cached copy of the timetable yet`, { cause, details: { source: this.description } });
    }
    const age = new Date(cache.fetchedAtMs).toISOString();
    const problem = new LecternError('SCHEDULE_UNAVAILABLE', `${what}; recording from the cached timetable fetched at ${age}`, { cause, details: { source: this.description, cachedAtMs: cache.fetchedAtMs } });
    return { timetable: this.#parse(cache.body), problem };
  }

  async #readCache(): Promise<CacheFile | undefined> {
    let text: string;
    try {
      text = await readFile(this.#cachePath, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.#log.warn(`cannot read the timetable cache ${this.#cachePath}: ${describeError(err)}`);
      return undefined;
    }
    try {
      const c = JSON.parse(text) as Partial<CacheFile>;
      if (c.urlHash !== this.#urlHash || typeof c.body !== 'string' || typeof c.fetchedAtMs !== 'number') return undefined;
      return { urlHash: c.urlHash, etag: c.etag ?? null, lastModified: c.lastModified ?? null, fetchedAtMs: c.fetchedAtMs, body: c.body };
    } catch {
      this.#log.warn(`the timetable cache ${this.#cachePath} is damaged; fetching it again`);
      return undefined;
    }
  }

  async #writeCache(cache: CacheFile): Promise<void> {
    try {
      await mkdir(this.#o.cacheDir, { recursive: true });
      // Body and ETag in one file renamed into place: they always belong together.
      const tmp = `${this.#cachePath}.tmp`;
      await writeFile(tmp, JSON.stringify(cache));
      await rename(tmp, this.#cachePath);
    } catch (err) {
      this.#log.warn(`cannot write the timetable cache ${this.#cachePath}: ${describeError(err)}; the timetable is used, but not kept for offline use`);
    }
  }
}

async function readLimited(response: Response, maxBytes: number): Promise<string> {
  const declared = Number(response.headers.get('content-length') ?? 0);
  if (declared > maxBytes) throw new Error(`the timetable is ${declared} bytes, more than the ${maxBytes} allowed`);
  const chunks: Uint8Array[] = [];
  let bytes = 0;
  if (!response.body) return '';
  const reader = response.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    bytes += value.byteLength;
    if (bytes > maxBytes) {
      await reader.cancel();
      throw new Error(`the timetable is more than the ${maxBytes} bytes allowed`);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** fetch() wraps the real reason (ECONNREFUSED, a timeout) in a generic "fetch failed". */
function describeCause(err: unknown): string {
  const cause = (err as { cause?: unknown }).cause;
  const code = (cause as { code?: unknown } | undefined)?.code;
  if (typeof code === 'string') return code;
  if (err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError')) return err.name === 'TimeoutError' ? 'timed out' : 'aborted';
  return err instanceof Error ? err.message : String(err);
}
