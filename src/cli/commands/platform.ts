import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import type { Config } from '../../config/index.js';
import { createLogger } from '../../log/logger.js';
import { lectureIdOfReadyKey, readyDayPrefix, readyKey, readyRootPrefix } from '../../storage/keys.js';
import { LocalLayout } from '../../storage/localLayout.js';
import { isValidKey, type Store } from '../../storage/store.js';
import { MANIFEST_FILE_NAME, parseManifest, type ReadyPointer } from '../../transcode/manifest.js';
import { describeError, isLecternError, LecternError } from '../../util/errors.js';
import { hashFile, sha256Hex } from '../../util/hash.js';
import { ULID_PATTERN, ulidTimeMs } from '../../util/ulid.js';
import { formatBytes } from '../../util/units.js';
import type { CliIo } from '../io.js';

/**
 * The central platform's side of the storage contract (DESIGN §3.1), usable by its staff and by
 * tests: `lectern platform ls` lists the lectures whose ready pointer exists — by day, with
 * StartAfter, never walking the lecture tree — and `lectern platform pull` downloads one and
 * checks every file against the sha256 in its lecture.json. Works on either kind of store, the
 * one in the configuration's `storage` section.
 */

const EXIT_MISMATCH = 1;
const EXIT_RUNTIME = 3;
const DAY_MS = 86_400_000;

export interface ReadyLecture extends ReadyPointer {
  readyKey: string;
}

/** Ready pointers under `prefix`, oldest day first; `sinceUtc` (YYYY-MM-DD) starts at that day. */
export async function listReadyLectures(store: Store, prefix: string, opts: { sinceUtc?: string } = {}): Promise<{ lectures: ReadyLecture[]; problems: string[] }> {
  const root = readyRootPrefix(prefix);
  // '…/ready/2026/11/28' sorts before every key of that day ('/' follows the end of the string).
  const startAfter = opts.sinceUtc !== undefined ? readyDayPrefix({ prefix, dateUtc: opts.sinceUtc }).slice(0, -1) : undefined;
  const objects = await store.list(root, startAfter !== undefined ? { startAfter } : {});
  const lectures: ReadyLecture[] = [];
  const problems: string[] = [];
  for (const object of objects) {
    if (lectureIdOfReadyKey(object.key) === undefined) continue;
    try {
      const pointer = JSON.parse((await store.getBytes(object.key)).toString('utf8')) as ReadyPointer;
      if (typeof pointer.lectureId !== 'string' || typeof pointer.manifestKey !== 'string') throw new Error('it lacks lectureId or manifestKey');
      lectures.push({ ...pointer, readyKey: object.key });
    } catch (err) {
      problems.push(`${object.key}: ${describeError(err)}`);
    }
  }
  return { lectures, problems };
}

/**
 * The ready pointer's key of a lecture. The pointer is filed under the lecture's start day, and
 * a lecture id (a ULID) is made at that start, so the id's own day (and its neighbours, for
 * clocks and time zones) finds it in one or three HEADs; a full listing is the fallback.
 */
export async function findReadyKey(store: Store, prefix: string, lectureId: string): Promise<string | undefined> {
  const idMs = ulidTimeMs(lectureId);
  for (const dayMs of [idMs, idMs - DAY_MS, idMs + DAY_MS]) {
    const key = readyKey({ prefix, startedAtMs: dayMs, lectureId });
    if (await store.head(key)) return key;
  }
  const all = await store.list(readyRootPrefix(prefix));
  return all.find((o) => lectureIdOfReadyKey(o.key) === lectureId)?.key;
}

export interface PullResult {
  lectureId: string;
  manifestKey: string;
  /** The tier of the lecture.json that was pulled (null when it could not be read). */
  tier: 1 | 2 | null;
  files: number;
  bytes: number;
  /** Files (or lecture.json) that are missing or do not match; empty when the lecture is intact. */
  problems: Array<{ path: string; reason: string }>;
}

// A lecture's tier 2 may be published while its tier 1 is being pulled; more rounds than that
// would only hide a store that keeps changing.
const PULL_ROUNDS = 3;

/**
 * Downloads the lecture into `dir` and verifies every file against lecture.json, which is itself
 * verified against the ready pointer. A file that fails is removed from `dir`; lecture.json is
 * written there last and only when everything matched, so its presence keeps meaning "complete".
 * Whichever tier is published is verified; when a pull fails while the ready pointer changed (a
 * tier 2 replaced tier 1's master.m3u8, lecture.json and pointer meanwhile), it is pulled again.
 */
export async function pullLecture(store: Store, prefix: string, lectureId: string, dir: string): Promise<PullResult> {
  if (!ULID_PATTERN.test(lectureId)) throw new LecternError('INVALID_NAME', `"${lectureId}" is not a lecture id (26 characters of Crockford base32)`);
  const pointerKey = await findReadyKey(store, prefix, lectureId);
  if (!pointerKey) throw new LecternError('STORE_NOT_FOUND', `lecture ${lectureId} has no ready pointer in ${store.description}: it is not published (yet)`, { details: { lectureId } });
  let pointerBytes = await store.getBytes(pointerKey);
  for (let round = 1; ; round++) {
    const result = await pullOnce(store, pointerKey, pointerBytes, lectureId, dir);
    if (result.problems.length === 0 || round === PULL_ROUNDS) return result;
    const now = await store.getBytes(pointerKey);
    if (now.equals(pointerBytes)) return result;
    pointerBytes = now;
  }
}

async function pullOnce(store: Store, pointerKey: string, pointerBytes: Buffer, lectureId: string, dir: string): Promise<PullResult> {
  const pointer = JSON.parse(pointerBytes.toString('utf8')) as ReadyPointer;
  const manifestKey = pointer.manifestKey;
  const result: PullResult = { lectureId, manifestKey, tier: null, files: 0, bytes: 0, problems: [] };
  if (typeof manifestKey !== 'string' || !isValidKey(manifestKey) || !manifestKey.endsWith(`/${MANIFEST_FILE_NAME}`)) {
    throw new LecternError('PACKAGE_INVALID', `the ready pointer ${pointerKey} names no valid lecture.json (${JSON.stringify(manifestKey)})`);
  }
  const manifestBytes = await store.getBytes(manifestKey);
  if (sha256Hex(manifestBytes) !== pointer.manifestSha256) {
    result.problems.push({ path: MANIFEST_FILE_NAME, reason: `sha256 ${sha256Hex(manifestBytes)}, the ready pointer says ${pointer.manifestSha256}` });
    return result;
  }
  const manifest = parseManifest(manifestBytes.toString('utf8'));
  result.tier = manifest.tier;
  if (manifest.lectureId !== lectureId) {
    result.problems.push({ path: MANIFEST_FILE_NAME, reason: `it describes lecture ${manifest.lectureId}` });
    return result;
  }
  const lectureDir = manifestKey.slice(0, -MANIFEST_FILE_NAME.length);
  const root = path.resolve(dir);
  await fs.mkdir(root, { recursive: true });
  for (const file of manifest.files) {
    const key = `${lectureDir}${file.path}`;
    // The manifest comes from the bucket: a path may not climb out of the target folder.
    const local = path.resolve(root, ...file.path.split('/'));
    if (!isValidKey(file.path) || !local.startsWith(`${root}${path.sep}`) || file.path === MANIFEST_FILE_NAME) {
      result.problems.push({ path: file.path, reason: 'not a safe relative path' });
      continue;
    }
    try {
      await store.getToFile(key, local);
      const got = await hashFile(local);
      if (got.sha256 !== file.sha256 || got.bytes !== file.bytes) {
        await fs.rm(local, { force: true });
        result.problems.push({ path: file.path, reason: `${got.bytes} bytes, sha256 ${got.sha256}; lecture.json says ${file.bytes} bytes, sha256 ${file.sha256}` });
        continue;
      }
      result.files++;
      result.bytes += got.bytes;
    } catch (err) {
      const reason = isLecternError(err, 'STORE_NOT_FOUND') ? 'missing from the store' : describeError(err);
      result.problems.push({ path: file.path, reason });
    }
  }
  if (result.problems.length === 0) await fs.writeFile(path.join(root, MANIFEST_FILE_NAME), manifestBytes);
  return result;
}

export function registerPlatformCommands(program: Command, io: CliIo, loadConfig: () => Config): void {
  const platform = program.command('platform').description("the central platform's side: list published lectures and pull one, verified");

  /** The configured store, started; warnings (retries) on stderr, nothing else. */
  const openStore = async (): Promise<{ store: Store; prefix: string }> => {
    const config = loadConfig();
    const logger = createLogger({ level: 'warn' });
    // Loaded here, not at the top: the S3 client is heavy and most commands never need it.
    const { createStore } = await import('../../agent/store.js');
    const store = await createStore(config, { logger, env: process.env, defaultRoot: new LocalLayout(config.agent.dataDir).storeDefaultRoot });
    await store.start();
    return { store, prefix: config.storage.prefix };
  };

  platform
    .command('ls')
    .description('list the lectures whose ready pointer exists (complete and published), oldest first')
    .option('--since <date>', 'only lectures that started on this UTC day (YYYY-MM-DD) or later')
    .option('--json', 'print JSON instead of a table')
    .action(async (opts: { since?: string; json?: boolean }) => {
      if (opts.since !== undefined && !/^\d{4}-\d{2}-\d{2}$/.test(opts.since)) {
        io.err(`--since must be a date in the form YYYY-MM-DD, got "${opts.since}"`);
        process.exitCode = 1;
        return;
      }
      const { store, prefix } = await openStore();
      try {
        const { lectures, problems } = await listReadyLectures(store, prefix, opts.since !== undefined ? { sinceUtc: opts.since } : {});
        io.out(opts.json ? JSON.stringify(lectures, null, 2) : formatLectures(lectures));
        for (const problem of problems) io.err(`unreadable ready pointer ${problem}`);
        if (problems.length > 0) process.exitCode = EXIT_RUNTIME;
      } finally {
        await store.stop();
      }
    });

  platform
    .command('pull')
    .description("download one lecture into a folder and verify every file's sha256 against its lecture.json")
    .argument('<lectureId>', 'the lecture id (as `platform ls` shows it)')
    .argument('<dir>', 'the folder to download into (created if needed)')
    .action(async (lectureId: string, dir: string) => {
      const { store, prefix } = await openStore();
      try {
        const result = await pullLecture(store, prefix, lectureId, dir);
        if (result.problems.length === 0) {
          io.out(`Pulled lecture ${lectureId}: ${result.files} files (${formatBytes(result.bytes)}), every sha256 verified, tier ${result.tier ?? '?'} -> ${path.resolve(dir)}`);
          return;
        }
        io.err(`Lecture ${lectureId} FAILED verification: ${result.problems.length} file(s) missing or not matching lecture.json (${result.files} verified):`);
        for (const p of result.problems) io.err(`  ${p.path}: ${p.reason}`);
        process.exitCode = EXIT_MISMATCH;
      } catch (err) {
        io.err(`cannot pull lecture ${lectureId}: ${describeError(err)}`);
        process.exitCode = isLecternError(err, 'STORE_NOT_FOUND') || isLecternError(err, 'INVALID_NAME') ? EXIT_MISMATCH : EXIT_RUNTIME;
      } finally {
        await store.stop();
      }
    });
}

export function formatLectures(lectures: readonly ReadyLecture[]): string {
  if (lectures.length === 0) return 'No published lectures.';
  const rows = lectures.map((l) => [
    l.lectureId,
    typeof l.startedAt === 'string' ? l.startedAt.replace('T', ' ').slice(0, 16) : '?',
    typeof l.durationSeconds === 'number' ? formatDuration(l.durationSeconds) : '?',
    `${l.site}/${l.room}`,
    String(l.tier),
    l.title ?? '',
  ]);
  const header = ['LECTURE', 'STARTED (UTC)', 'LENGTH', 'SITE/ROOM', 'TIER', 'TITLE'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

function formatDuration(seconds: number): string {
  const s = Math.round(seconds);
  return s >= 3600 ? `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m` : `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
}
