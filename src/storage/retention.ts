import { promises as fs, type Dirent } from 'node:fs';
import path from 'node:path';
import type { Logger } from '../log/logger.js';
import { describeError } from '../util/errors.js';
import { sha256Hex } from '../util/hash.js';
import { formatBytes } from '../util/units.js';
import { freeDiskBytes, type StatfsFn } from './diskSpace.js';
import type { LocalLayout } from './localLayout.js';
import type { Store } from './store.js';

/**
 * Deletes the local files of published lectures: the raw recording (recordings/<id>/), the
 * imported copy it was made from (imports/<sha256>.<ext>, when no other lecture lists it) and
 * the package (packages/<id>/).
 *
 * A lecture's files go only when
 *   - it is not live and none of its jobs is queued or running (checked again just before deleting),
 *   - its local lecture.json is tier 2 (a tier-1 publish still needs the recording for tier 2),
 *   - the store holds lecture.json, every file it lists and the ready pointer with the same size
 *     and sha256 (HEAD: x-amz-meta-sha256 on S3, the file's own hash in a FileStore), and
 *   - keepDays have passed since the publish finished, or free disk is below the capture
 *     threshold and purgeWhenLowDisk is on (then confirmed lectures go oldest first, only until
 *     there is enough space again).
 * The store is asked only when a lecture is due, so the periodic run costs one query otherwise.
 * A lecture that fails the check keeps every file and is logged; it is checked again next run.
 *
 * The package goes last: after a crash mid-delete its lecture.json is still there to re-check
 * the rest against, and a lecture with nothing left locally is simply recorded as purged.
 */

/** A lecture whose publish job finished. */
export interface RetentionLecture {
  lectureId: string;
  /** When the publish job finished (epoch ms). */
  publishedAtMs: number;
  /** Where it was published (from the publish job's result); ends with '/'. */
  lecturePrefix: string;
  readyKey: string;
}

export type PurgeReason = 'kept' | 'low_disk';

/** The state database's side (db/retention.ts implements it). */
export interface RetentionCatalog {
  /** Published lectures not purged yet, oldest publication first. */
  published(): RetentionLecture[];
  /** Live, or any of its jobs queued or running. */
  isBusy(lectureId: string): boolean;
  /** Segment files of the lecture's recording, relative to the data directory. */
  segmentPaths(lectureId: string): string[];
  /** Whether another lecture, not purged, lists the same segment file. */
  isPathShared(relativePath: string, lectureId: string): boolean;
  markPurged(rec: { lectureId: string; reason: PurgeReason; publishedAtMs: number; purgedAtMs: number; freedBytes: number }): void;
}

export interface RetentionOptions {
  store: Store;
  layout: LocalLayout;
  catalog: RetentionCatalog;
  logger: Logger;
  keepDays: number;
  intervalMs: number;
  purgeWhenLowDisk: boolean;
  /** Below this many free bytes the guard purges early (config capture.minFreeDiskBytes). */
  minFreeDiskBytes: number;
  /** Epoch ms; injectable so tests move past the keep time. */
  now?: () => number;
  /** statfs(2) of the data directory's filesystem; injectable so tests can fake a full disk. */
  statfs?: StatfsFn;
}

export interface RetentionRunReport {
  purged: Array<{ lectureId: string; reason: PurgeReason; freedBytes: number }>;
  /** Due lectures the store did not confirm, with what was wrong. */
  unconfirmed: Array<{ lectureId: string; problem: string }>;
  /** Due lectures skipped because they are live or have work queued. */
  busy: string[];
}

const DAY_MS = 86_400_000;
const MANIFEST_NAME = 'lecture.json';
const SHA256_HEX = /^[0-9a-f]{64}$/;

interface LocalManifest {
  json: string;
  tier: number;
  files: Array<{ path: string; bytes: number; sha256: string }>;
}

export class Retention {
  readonly #o: RetentionOptions;
  readonly #log: Logger;
  readonly #now: () => number;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<RetentionRunReport> | undefined;
  #stopped = true;

  constructor(options: RetentionOptions) {
    this.#o = options;
    this.#log = options.logger.child({ scope: 'retention' });
    this.#now = options.now ?? (() => Date.now());
  }

  /** Runs now and then every intervalMs; a failed run is logged and the next one still comes. */
  async start(): Promise<void> {
    this.#stopped = false;
    this.#schedule(0);
  }

  /** Waits for a run in progress, so no delete is cut off by the database closing. */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#running?.catch(() => undefined);
  }

  /** One pass; concurrent calls share the pass in progress. */
  runOnce(): Promise<RetentionRunReport> {
    this.#running ??= this.#run().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  #schedule(delayMs: number): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.runOnce()
        .catch((err: unknown) => this.#log.warn(`retention run failed; trying again in ${this.#o.intervalMs} ms: ${describeError(err)}`))
        .finally(() => this.#schedule(this.#o.intervalMs));
    }, delayMs);
    this.#timer.unref();
  }

  async #run(): Promise<RetentionRunReport> {
    const report: RetentionRunReport = { purged: [], unconfirmed: [], busy: [] };
    const now = this.#now();
    const keepMs = this.#o.keepDays * DAY_MS;
    const lectures = this.#o.catalog.published();
    const early: RetentionLecture[] = [];
    for (const lecture of lectures) {
      if (now - lecture.publishedAtMs >= keepMs) await this.#tryPurge(lecture, 'kept', report);
      else early.push(lecture);
    }
    if (this.#o.purgeWhenLowDisk && early.length > 0) {
      // Oldest publication first, re-measuring after each: only as much as the threshold needs.
      for (const lecture of early) {
        const free = await this.#freeBytes();
        if (free === undefined || free >= this.#o.minFreeDiskBytes) break;
        this.#log.warn(`only ${formatBytes(free)} free, below ${formatBytes(this.#o.minFreeDiskBytes)}: deleting published lecture ${lecture.lectureId} early`);
        await this.#tryPurge(lecture, 'low_disk', report);
      }
    }
    return report;
  }

  async #freeBytes(): Promise<number | undefined> {
    try {
      return await freeDiskBytes(this.#o.layout.dataDir, this.#o.statfs);
    } catch (err) {
      // Not knowing is no reason to delete anything early.
      this.#log.warn(`cannot measure free space on ${this.#o.layout.dataDir}: ${describeError(err)}`);
      return undefined;
    }
  }

  async #tryPurge(lecture: RetentionLecture, reason: PurgeReason, report: RetentionRunReport): Promise<void> {
    const { lectureId } = lecture;
    if (this.#o.catalog.isBusy(lectureId)) {
      report.busy.push(lectureId);
      return;
    }
    const { layout } = this.#o;
    const packageDir = layout.packageDir(lectureId);
    const manifest = await readLocalManifest(packageDir);
    if (manifest === undefined) {
      // The package is gone: either an earlier purge finished its last step and crashed before
      // recording it, or someone removed it. With nothing of the lecture left locally there is
      // nothing to protect; otherwise nothing can be checked, so nothing is deleted.
      const leftovers = await this.#localFiles(lectureId);
      if (leftovers.length === 0) {
        this.#o.catalog.markPurged({ lectureId, reason, publishedAtMs: lecture.publishedAtMs, purgedAtMs: this.#now(), freedBytes: 0 });
        report.purged.push({ lectureId, reason, freedBytes: 0 });
      } else {
        report.unconfirmed.push({ lectureId, problem: `its package has no readable ${MANIFEST_NAME} in ${packageDir}` });
        this.#log.warn(`keeping lecture ${lectureId}: its package has no readable ${MANIFEST_NAME}, so the store's copy cannot be checked`);
      }
      return;
    }
    const problem = await this.#confirm(lecture, manifest);
    if (problem !== undefined) {
      report.unconfirmed.push({ lectureId, problem });
      this.#log.warn(`keeping lecture ${lectureId}: ${problem}`, { store: this.#o.store.description });
      return;
    }
    // The store checks took time: a re-publish or re-package may have been queued meanwhile.
    if (this.#o.catalog.isBusy(lectureId)) {
      report.busy.push(lectureId);
      return;
    }
    const freedBytes = await this.#delete(lectureId, packageDir);
    this.#o.catalog.markPurged({ lectureId, reason, publishedAtMs: lecture.publishedAtMs, purgedAtMs: this.#now(), freedBytes });
    report.purged.push({ lectureId, reason, freedBytes });
    this.#log.info(`deleted the local files of lecture ${lectureId} (${formatBytes(freedBytes)}; ${reason === 'kept' ? `published ${this.#o.keepDays} or more days ago` : 'free disk was low'})`);
  }

  /** undefined when the store holds everything exactly; else what is wrong. */
  async #confirm(lecture: RetentionLecture, manifest: LocalManifest): Promise<string | undefined> {
    const { store } = this.#o;
    if (manifest.tier !== 2) return `its package is tier ${manifest.tier}; the recording is still needed for the full package`;
    const expected = [
      ...manifest.files.map((f) => ({ key: `${lecture.lecturePrefix}${f.path}`, bytes: f.bytes, sha256: f.sha256 })),
      { key: `${lecture.lecturePrefix}${MANIFEST_NAME}`, bytes: Buffer.byteLength(manifest.json), sha256: sha256Hex(manifest.json) },
    ];
    for (const want of expected) {
      const there = await store.head(want.key);
      if (!there) return `"${want.key}" is missing in ${store.description}`;
      if (there.sizeBytes !== want.bytes || there.sha256 !== want.sha256) {
        return `"${want.key}" in ${store.description} has ${there.sizeBytes} bytes, sha256 ${there.sha256 ?? '(unknown)'}; expected ${want.bytes} bytes, sha256 ${want.sha256}`;
      }
    }
    // The pointer is what makes the lecture visible to the platform; it must name this lecture.json.
    let pointer: unknown;
    try {
      pointer = JSON.parse((await store.getBytes(lecture.readyKey)).toString('utf8'));
    } catch (err) {
      return `its ready pointer "${lecture.readyKey}" cannot be read from ${store.description}: ${describeError(err)}`;
    }
    const manifestSha256 = (pointer as { manifestSha256?: unknown } | null)?.manifestSha256;
    if (manifestSha256 !== sha256Hex(manifest.json)) return `its ready pointer "${lecture.readyKey}" names another ${MANIFEST_NAME}`;
    return undefined;
  }

  /** Files and folders of the lecture on this PC, safe to delete (inside the data directory). */
  async #localFiles(lectureId: string): Promise<string[]> {
    const { layout, catalog } = this.#o;
    const out: string[] = [];
    const importsDir = path.join(layout.dataDir, 'imports');
    for (const rel of catalog.segmentPaths(lectureId)) {
      const abs = path.resolve(layout.dataDir, rel);
      // Only content-addressed import copies are deleted one by one; capture segments go with
      // their recording folder. Anything else a path might point at is left alone.
      if (path.dirname(abs) !== importsDir || catalog.isPathShared(rel, lectureId)) continue;
      if (await exists(abs)) out.push(abs);
    }
    for (const dir of [layout.recordingDir(lectureId), layout.packageStagingDir(lectureId), layout.packageDir(lectureId)]) {
      if (await exists(dir)) out.push(dir);
    }
    return out;
  }

  async #delete(lectureId: string, packageDir: string): Promise<number> {
    const targets = (await this.#localFiles(lectureId)).filter((t) => t !== packageDir);
    let freed = 0;
    for (const target of [...targets, packageDir]) {
      freed += await sizeOf(target);
      await fs.rm(target, { recursive: true, force: true });
    }
    return freed;
  }
}

async function readLocalManifest(packageDir: string): Promise<LocalManifest | undefined> {
  let json: string;
  try {
    json = await fs.readFile(path.join(packageDir, MANIFEST_NAME), 'utf8');
  } catch {
    return undefined;
  }
  // storage/ may not import transcode/'s parser; this reads only the fields the check needs, strictly.
  let parsed: { tier?: unknown; files?: unknown };
  try {
    parsed = JSON.parse(json) as { tier?: unknown; files?: unknown };
  } catch {
    return undefined;
  }
  if (typeof parsed.tier !== 'number' || !Array.isArray(parsed.files)) return undefined;
  const files: LocalManifest['files'] = [];
  for (const f of parsed.files as Array<{ path?: unknown; bytes?: unknown; sha256?: unknown } | null>) {
    if (!f || typeof f.path !== 'string' || typeof f.bytes !== 'number' || typeof f.sha256 !== 'string' || !SHA256_HEX.test(f.sha256)) return undefined;
    files.push({ path: f.path, bytes: f.bytes, sha256: f.sha256 });
  }
  return { json, tier: parsed.tier, files };
}

async function exists(p: string): Promise<boolean> {
  return fs.lstat(p).then(
    () => true,
    () => false,
  );
}

/** Bytes of a file, or of every file under a folder (symlinks counted as themselves). */
async function sizeOf(target: string): Promise<number> {
  const st = await fs.lstat(target).catch(() => undefined);
  if (!st) return 0;
  if (!st.isDirectory()) return st.size;
  let total = 0;
  let entries: Dirent[];
  try {
    entries = await fs.readdir(target, { withFileTypes: true });
  } catch {
    return 0;
  }
  for (const e of entries) total += await sizeOf(path.join(target, e.name));
  return total;
}
