import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '../log/logger.js';
import type { JobHandler } from '../queue/types.js';
import { lecturePrefix, readyKey } from '../storage/keys.js';
import { storeErrorClass, type Store } from '../storage/store.js';
import { MANIFEST_FILE_NAME, parseManifest, serializeJson, type ReadyPointer } from '../transcode/manifest.js';
import { describeError, LecternError } from '../util/errors.js';
import { failpointDelayMs } from '../util/failpoints.js';
import { sha256Hex } from '../util/hash.js';
import { sleep } from '../util/sleep.js';
import { ULID_PATTERN } from '../util/ulid.js';
import { publishPackage, type PublishProgress } from './publish.js';

/**
 * The `publish` job: a built package -> the store, in the order of the publish protocol
 * (media, playlists, lecture.json, ready pointer). Re-running it after a crash re-sends only
 * what the store does not already hold with the same sha256.
 */

export const PUBLISH_JOB = 'publish';

/**
 * A tiered lecture's first publish (DESIGN §3.1): whatever tier the package holds when it runs,
 * usually tier 1. The lecture's `publish` job comes after tier 2 and is its final one; the same
 * protocol makes the second publish send only the new files, master.m3u8, lecture.json and the pointer.
 */
export const PUBLISH_TIER1_JOB = 'publish-tier1';

/**
 * After an operator error (wrong credentials or rights, a missing bucket) or a skewed clock the job
 * waits this long without spending an attempt: nothing changes until a person fixes it, so
 * retrying sooner only hammers the server; giving up would lose the lecture.
 */
export const OPERATOR_RETRY_MS = 10 * 60_000;

/** How long a publish waits after the store's own retries gave up on a transient failure. */
export const OUTAGE_RETRY_MS = 60_000;

export interface PublishPayload {
  lectureId: string;
}

export interface PublishHandlerDeps {
  store: Store;
  storePrefix: string;
  packageDir(lectureId: string): string;
  /** After each confirmed file; `lectern uploads` reads what the agent stores from it. */
  onProgress?(lectureId: string, progress: PublishProgress): void;
  /** True while the bandwidth policy holds uploads (a recording runs, a paused window). */
  uploadsPaused?(): boolean;
}

/** How long a publish steps aside while uploads are paused, without spending an attempt. */
export const PAUSED_RETRY_MS = 60_000;

export interface PublishJobResult {
  /** The tier the published lecture.json says. */
  tier: 1 | 2;
  lecturePrefix: string;
  readyKey: string;
  uploadedFiles: number;
  skippedFiles: number;
  uploadedBytes: number;
}

export function parsePublishPayload(payload: unknown): PublishPayload {
  const p = payload as Partial<PublishPayload> | null;
  if (!p || typeof p.lectureId !== 'string' || !ULID_PATTERN.test(p.lectureId)) {
    throw new LecternError('INTERNAL', `publish job payload is malformed: ${JSON.stringify(payload)}`);
  }
  return { lectureId: p.lectureId };
}

export function createPublishHandler(deps: PublishHandlerDeps): JobHandler<PublishPayload> {
  return {
    kind: PUBLISH_JOB,
    parse: parsePublishPayload,
    async run({ lectureId }, ctx) {
      // The worker runs one job at a time: a publish that could only wait would hold up packaging.
      if (deps.uploadsPaused?.()) return { type: 'retryAfter', delayMs: PAUSED_RETRY_MS, reason: 'uploads wait (a recording runs, or a paused window)' };
      const dir = deps.packageDir(lectureId);
      let manifestJson: string;
      try {
        manifestJson = await readFile(path.join(dir, MANIFEST_FILE_NAME), 'utf8');
      } catch (err) {
        throw new LecternError('PACKAGE_INVALID', `the package of lecture ${lectureId} has no readable lecture.json`, { cause: err });
      }
      const manifest = parseManifest(manifestJson);
      const startedAtMs = Date.parse(manifest.startedAt);
      const prefix = lecturePrefix({ prefix: deps.storePrefix, site: manifest.site, room: manifest.room, startedAtMs, lectureId });
      const pointerKey = readyKey({ prefix: deps.storePrefix, startedAtMs, lectureId });
      const pointer: ReadyPointer = {
        schemaVersion: manifest.schemaVersion,
        lectureId,
        manifestKey: `${prefix}${MANIFEST_FILE_NAME}`,
        manifestSha256: sha256Hex(manifestJson),
        site: manifest.site,
        room: manifest.room,
        title: manifest.title,
        startedAt: manifest.startedAt,
        durationSeconds: manifest.durationSeconds,
        tier: manifest.tier,
        packagedAt: manifest.createdAt,
      };
      let result;
      try {
        result = await publishPackage({
          store: withFailpoint(deps.store),
          logger: ctx.logger,
          packageDir: dir,
          files: manifest.files,
          lecturePrefix: prefix,
          manifestJson,
          readyKey: pointerKey,
          readyJson: serializeJson(pointer),
          ...(deps.onProgress ? { onProgress: (p: PublishProgress) => deps.onProgress?.(lectureId, p) } : {}),
          signal: ctx.signal,
        });
      } catch (err) {
        const cls = storeErrorClass(err);
        if (cls === 'operator' || cls === 'clock') return { type: 'retryAfter', delayMs: OPERATOR_RETRY_MS, reason: describeError(err) };
        // The link is down or the server is struggling for longer than the store's own retries
        // cover: on a classroom uplink that can last hours. Waiting spends no attempt, so a long
        // outage never sends a lecture to the dead letter; what was confirmed stays confirmed.
        if (cls === 'retryable') return { type: 'retryAfter', delayMs: OUTAGE_RETRY_MS, reason: describeError(err) };
        throw err;
      }
      const out: PublishJobResult = { tier: manifest.tier, lecturePrefix: prefix, readyKey: pointerKey, ...result };
      return { type: 'done', result: out };
    },
    // A publish that failed for good may have left a multipart upload open (a transient failure
    // keeps it for the next attempt): abort it, so no orphan parts stay on the server.
    async onDeadLetter({ lectureId }, ctx) {
      await abortLectureUploads({ store: deps.store, storePrefix: deps.storePrefix, packageDir: deps.packageDir(lectureId), lectureId, logger: ctx.logger });
    },
  };
}

/**
 * A publish was given up (dead letter, or `lectern queue cancel`): aborts every unfinished
 * multipart upload under the lecture's prefix in the store. The prefix comes from the package's
 * lecture.json (site, room, start). Returns how many uploads were aborted; 0 for a store without
 * multipart uploads. Throws when the store cannot be reached.
 */
export async function abortLectureUploads(opts: { store: Store; storePrefix: string; packageDir: string; lectureId: string; logger: Logger }): Promise<number> {
  const { store } = opts;
  if (!store.abortUploads) return 0;
  let manifestJson: string;
  try {
    manifestJson = await readFile(path.join(opts.packageDir, MANIFEST_FILE_NAME), 'utf8');
  } catch {
    // Never packaged (or deleted): nothing of it was ever uploaded under its prefix.
    opts.logger.debug(`lecture ${opts.lectureId} has no package; no uploads to abort`);
    return 0;
  }
  const manifest = parseManifest(manifestJson);
  const prefix = lecturePrefix({ prefix: opts.storePrefix, site: manifest.site, room: manifest.room, startedAtMs: Date.parse(manifest.startedAt), lectureId: opts.lectureId });
  const aborted = await store.abortUploads(prefix);
  if (aborted > 0) opts.logger.info(`the publish of lecture ${opts.lectureId} was given up: aborted ${aborted} unfinished upload(s) in ${store.description}`);
  return aborted;
}

/** The same handler under the tier-1 publish's own job kind (its own idempotency keys). */
export function createTier1PublishHandler(deps: PublishHandlerDeps): JobHandler<PublishPayload> {
  return { ...createPublishHandler(deps), kind: PUBLISH_TIER1_JOB };
}

/** Under the `publish.file` failpoint every file upload is delayed, so crash tests can land between two files. */
function withFailpoint(store: Store): Store {
  const delayMs = failpointDelayMs('publish.file');
  if (delayMs === 0) return store;
  return new Proxy(store, {
    get(target, prop, receiver) {
      if (prop === 'putFile') {
        return async (...args: Parameters<Store['putFile']>) => {
          await sleep(delayMs);
          return target.putFile(...args);
        };
      }
      const value: unknown = Reflect.get(target, prop, receiver);
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}
