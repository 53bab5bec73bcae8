import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/log/logger.js';
import { FileStore } from '../../src/storage/fileStore.js';
import { lecturePrefix, readyKey } from '../../src/storage/keys.js';
import { MANIFEST_FILE_NAME, serializeJson, type ReadyPointer } from '../../src/transcode/manifest.js';
import { publishPackage, type PackageFile } from '../../src/upload/publish.js';
import { sha256Hex } from '../../src/util/hash.js';
import { ulid } from '../../src/util/ulid.js';
import { runCli } from '../helpers/cli.js';
import { makeTmpDir } from '../helpers/tmp.js';

/**
 * `lectern platform ls|pull` through the real CLI (dist/, as a person runs it) against a
 * FileStore folder holding lectures published with the real publish protocol. The S3 side of the
 * same commands runs in tests/integration/s3-store.test.ts, after a real demo lecture.
 */

const PREFIX = 'campus';
const tmp = makeTmpDir();
let config: string;
let storeRoot: string;

interface Published {
  lectureId: string;
  lectureDir: string;
  files: PackageFile[];
}

async function publishLecture(opts: { startedAt: string; idTimeMs: number; title: string }): Promise<Published> {
  const lectureId = ulid(opts.idTimeMs);
  const startedAtMs = Date.parse(opts.startedAt);
  const packageDir = path.join(tmp.dir, 'packages', lectureId);
  const sizes: Record<string, number> = { 'hls/master.m3u8': 200, 'hls/144p/index.m3u8': 300, 'hls/144p/init.mp4': 800, 'hls/144p/seg_00001.m4s': 40_000, 'hls/audio/seg_00001.m4s': 9_000, 'poster.jpg': 5_000 };
  const files: PackageFile[] = [];
  for (const [rel, bytes] of Object.entries(sizes)) {
    const data = randomBytes(bytes);
    fs.mkdirSync(path.dirname(path.join(packageDir, rel)), { recursive: true });
    fs.writeFileSync(path.join(packageDir, rel), data);
    files.push({ path: rel, bytes, sha256: sha256Hex(data) });
  }
  const prefix = lecturePrefix({ prefix: PREFIX, site: 'north', room: 'R101', startedAtMs, lectureId });
  const manifestJson = serializeJson({ schemaVersion: 1, lectureId, tier: 2, site: 'north', room: 'R101', title: opts.title, startedAt: opts.startedAt, durationSeconds: 3000, files });
  const pointer: ReadyPointer = {
    schemaVersion: 1,
    lectureId,
    manifestKey: `${prefix}${MANIFEST_FILE_NAME}`,
    manifestSha256: sha256Hex(manifestJson),
    site: 'north',
    room: 'R101',
    title: opts.title,
    startedAt: opts.startedAt,
    durationSeconds: 3000,
    tier: 2,
    packagedAt: opts.startedAt,
  };
  const store = new FileStore({ root: storeRoot, logger: silentLogger });
  await store.start();
  await publishPackage({
    store,
    logger: silentLogger,
    packageDir,
    files,
    lecturePrefix: prefix,
    manifestJson,
    readyKey: readyKey({ prefix: PREFIX, startedAtMs, lectureId }),
    readyJson: serializeJson(pointer),
  });
  await store.stop();
  return { lectureId, lectureDir: path.join(storeRoot, ...prefix.split('/')), files };
}

let first: Published;
let second: Published;

beforeAll(async () => {
  storeRoot = path.join(tmp.dir, 'store');
  config = path.join(tmp.dir, 'lectern.yaml');
  fs.writeFileSync(config, ['storage:', '  kind: file', `  root: ${storeRoot}`, `  prefix: ${PREFIX}`, ''].join('\n'));
  first = await publishLecture({ startedAt: '2026-11-28T09:00:00.000Z', idTimeMs: Date.parse('2026-11-28T09:00:00.000Z'), title: 'Thermodynamics 1' });
  // An id made days before the lecture started (a lecture created ahead in a timetable): pull must still find it.
  second = await publishLecture({ startedAt: '2026-11-30T13:30:00.000Z', idTimeMs: Date.parse('2026-11-20T08:00:00.000Z'), title: 'Thermodynamics 2' });
  // Half a lecture (its files, no lecture.json and no pointer) must not be listed.
  fs.mkdirSync(path.join(storeRoot, PREFIX, 'lectures', 'north', 'R101', '2026', '11', '29', 'HALF'), { recursive: true });
});

afterAll(() => tmp.cleanup());

const env = { LECTERN_CONFIG: '' };

describe('lectern platform ls', () => {
  it('lists the ready lectures, oldest first, as a table and as JSON', async () => {
    const table = await runCli(['--config', config, 'platform', 'ls'], { env });
    expect(table.code, table.stderr).toBe(0);
    const lines = table.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^LECTURE\s+STARTED \(UTC\)\s+LENGTH\s+SITE\/ROOM\s+TIER\s+TITLE$/);
    expect(lines.slice(1).map((l) => l.split(/\s{2,}/)[0])).toEqual([first.lectureId, second.lectureId]);
    expect(lines[1]).toContain('2026-11-28 09:00');
    expect(lines[1]).toContain('50m00s');
    expect(lines[1]).toContain('Thermodynamics 1');

    const json = await runCli(['--config', config, 'platform', 'ls', '--json'], { env });
    const listed = JSON.parse(json.stdout) as Array<ReadyPointer & { readyKey: string }>;
    expect(listed.map((l) => [l.lectureId, l.readyKey])).toEqual([
      [first.lectureId, `${PREFIX}/ready/2026/11/28/${first.lectureId}.json`],
      [second.lectureId, `${PREFIX}/ready/2026/11/30/${second.lectureId}.json`],
    ]);
  });

  it('--since starts at that UTC day', async () => {
    const run = await runCli(['--config', config, 'platform', 'ls', '--json', '--since', '2026-11-29'], { env });
    expect(run.code, run.stderr).toBe(0);
    expect((JSON.parse(run.stdout) as ReadyPointer[]).map((l) => l.lectureId)).toEqual([second.lectureId]);
    const sameDay = await runCli(['--config', config, 'platform', 'ls', '--json', '--since', '2026-11-28'], { env });
    expect((JSON.parse(sameDay.stdout) as ReadyPointer[]).map((l) => l.lectureId)).toEqual([first.lectureId, second.lectureId]);
    const bad = await runCli(['--config', config, 'platform', 'ls', '--since', '28.11.2026'], { env });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('--since must be a date in the form YYYY-MM-DD');
  });
});

describe('lectern platform pull', () => {
  it('downloads a lecture and verifies every file, also when its id is from another day', async () => {
    for (const lecture of [first, second]) {
      const dir = path.join(tmp.dir, 'pulled', lecture.lectureId);
      const run = await runCli(['--config', config, 'platform', 'pull', lecture.lectureId, dir], { env });
      expect(run.code, run.stderr).toBe(0);
      expect(run.stdout).toContain(`Pulled lecture ${lecture.lectureId}: 6 files`);
      expect(run.stdout).toContain('every sha256 verified');
      for (const f of lecture.files) expect(sha256Hex(fs.readFileSync(path.join(dir, ...f.path.split('/'))))).toBe(f.sha256);
      expect(fs.existsSync(path.join(dir, MANIFEST_FILE_NAME))).toBe(true);
    }
  });

  it('fails with a non-zero exit naming the tampered file, keeps it out of the folder and writes no lecture.json', async () => {
    const victim = 'hls/144p/seg_00001.m4s';
    const stored = path.join(first.lectureDir, ...victim.split('/'));
    const original = fs.readFileSync(stored);
    const tampered = Buffer.from(original);
    tampered[100] = (tampered[100] ?? 0) ^ 0x01; // one bit, same size
    fs.writeFileSync(stored, tampered);
    try {
      const dir = path.join(tmp.dir, 'pulled-tampered');
      const run = await runCli(['--config', config, 'platform', 'pull', first.lectureId, dir], { env });
      expect(run.code).toBe(1);
      expect(run.stderr).toContain(`Lecture ${first.lectureId} FAILED verification: 1 file(s)`);
      expect(run.stderr).toMatch(new RegExp(`^  ${victim.replace(/[/.]/g, '\\$&')}: ${original.length} bytes, sha256 [0-9a-f]{64}; lecture.json says`, 'm'));
      // Every other file is there and verified; the bad one and lecture.json are not.
      expect(fs.existsSync(path.join(dir, ...victim.split('/')))).toBe(false);
      expect(fs.existsSync(path.join(dir, 'poster.jpg'))).toBe(true);
      expect(fs.existsSync(path.join(dir, MANIFEST_FILE_NAME))).toBe(false);
    } finally {
      fs.writeFileSync(stored, original);
    }
  });

  it('names a missing file, and a tampered lecture.json', async () => {
    const missing = path.join(second.lectureDir, 'poster.jpg');
    const poster = fs.readFileSync(missing);
    fs.rmSync(missing);
    const run = await runCli(['--config', config, 'platform', 'pull', second.lectureId, path.join(tmp.dir, 'pulled-missing')], { env });
    fs.writeFileSync(missing, poster);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('  poster.jpg: missing from the store');

    const manifest = path.join(second.lectureDir, MANIFEST_FILE_NAME);
    const text = fs.readFileSync(manifest, 'utf8');
    fs.writeFileSync(manifest, text.replace('Thermodynamics 2', 'Thermodynamics 3'));
    const bad = await runCli(['--config', config, 'platform', 'pull', second.lectureId, path.join(tmp.dir, 'pulled-bad-manifest')], { env });
    fs.writeFileSync(manifest, text);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/ {2}lecture\.json: sha256 [0-9a-f]{64}, the ready pointer says/);
  });

  it('says so when a lecture is not published', async () => {
    const id = ulid(Date.parse('2026-11-28T10:00:00.000Z'));
    const run = await runCli(['--config', config, 'platform', 'pull', id, path.join(tmp.dir, 'none')], { env });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(`lecture ${id} has no ready pointer`);
  });
});
