import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { afterAll, describe, expect, it } from 'vitest';
import { closeDatabase, integrityCheck, openDatabase } from '../../src/db/index.js';
import { decodeCheck, probeMedia } from '../../src/ffmpeg/ffprobe.js';
import { findFfmpegProcesses } from '../../src/ffmpeg/orphans.js';
import { silentLogger } from '../../src/log/logger.js';
import type { LectureManifest, ReadyPointer } from '../../src/transcode/manifest.js';
import { hashFile, sha256Hex } from '../../src/util/hash.js';
import { waitFor } from '../../src/util/sleep.js';
import { killGroup, ROOT, runCli, startCli } from '../helpers/cli.js';
import { jobStates, jobStatesWhileStarting } from '../helpers/jobs.js';
import { makeTmpDir } from '../helpers/tmp.js';
import { smallDemoConfig } from '../helpers/config.js';

/**
 * The main job end to end, as a person runs it: the built CLI records from the synthetic camera,
 * packages and publishes into a FileStore. Then the crash cases: kill -9 of the whole process
 * group during packaging and during publishing, and a second run that must finish the same
 * lecture exactly once.
 */

const schema = JSON.parse(readFileSync(path.join(ROOT, 'schemas/lecture.schema.json'), 'utf8')) as object;
const ajv = new Ajv2020({ allErrors: true });
addFormats.default(ajv);
const validateManifest = ajv.compile(schema);

function findFiles(dir: string, name: RegExp): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile() && name.test(entry.name)) out.push(path.join(entry.parentPath, entry.name));
  }
  return out.sort();
}

/** Checks a published lecture the way the platform would, and returns its manifest. */
async function verifyPublishedLecture(storeRoot: string, recordedSeconds?: number): Promise<LectureManifest> {
  const manifests = findFiles(path.join(storeRoot, 'lectures'), /^lecture\.json$/);
  expect(manifests).toHaveLength(1);
  const manifestPath = manifests[0] as string;
  const manifestText = readFileSync(manifestPath, 'utf8');
  const manifest = JSON.parse(manifestText) as LectureManifest;
  expect(validateManifest(manifest), JSON.stringify(validateManifest.errors)).toBe(true);
  const lectureDir = path.dirname(manifestPath);

  // Every file listed is there with its size and sha256; nothing unlisted is there.
  for (const file of manifest.files) {
    expect(await hashFile(path.join(lectureDir, file.path))).toEqual({ sha256: file.sha256, bytes: file.bytes });
  }
  const present = findFiles(lectureDir, /.*/).map((f) => path.relative(lectureDir, f)).filter((f) => f !== 'lecture.json');
  expect(present.sort()).toEqual(manifest.files.map((f) => f.path).sort());

  // The ready pointer names this manifest by key and sha256.
  const pointers = findFiles(path.join(storeRoot, 'ready'), /\.json$/);
  expect(pointers).toHaveLength(1);
  const pointer = JSON.parse(readFileSync(pointers[0] as string, 'utf8')) as ReadyPointer;
  expect(pointer.lectureId).toBe(manifest.lectureId);
  expect(pointer.manifestSha256).toBe(sha256Hex(manifestText));
  expect(path.join(storeRoot, pointer.manifestKey)).toBe(manifestPath);

  // The master playlist and every rendition decode; durations agree with the recording.
  const master = path.join(lectureDir, manifest.master);
  const masterProbe = await probeMedia(master, { timeoutMs: 60_000 });
  expect(masterProbe.streams.some((s) => s.codecType === 'video')).toBe(true);
  expect(manifest.renditions.filter((r) => r.kind === 'video').length).toBeGreaterThanOrEqual(2);
  expect(manifest.renditions.some((r) => r.kind === 'audio')).toBe(true);
  const recorded = recordedSeconds ?? manifest.source.recordedSeconds;
  for (const rendition of manifest.renditions) {
    const playlist = path.join(lectureDir, rendition.playlist);
    expect(await decodeCheck(playlist, { timeoutMs: 120_000 })).toEqual([]);
    const probe = await probeMedia(playlist, { timeoutMs: 60_000 });
    expect(Math.abs((probe.durationSeconds ?? 0) - recorded)).toBeLessThanOrEqual(0.5);
  }
  return manifest;
}

function writeSmallConfig(dir: string): string {
  const file = path.join(dir, 'lectern.yaml');
  writeFileSync(file, smallDemoConfig(['queue:', '  backoffBaseMs: 500']));
  return file;
}

describe('lectern demo on the built-in defaults', () => {
  const tmp = makeTmpDir();
  afterAll(() => tmp.cleanup());

  it('records, packages and publishes one verifiable lecture with no configuration file', async () => {
    const run = await runCli(['demo', '--seconds', '8'], { cwd: tmp.dir, env: { LECTERN_CONFIG: '' } });
    expect(run.stderr).not.toMatch(/ERROR/);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/Lecture [0-9A-Z]{26} published/);
    const storeRoot = path.join(tmp.dir, 'lectern-data', 'store');
    const manifest = await verifyPublishedLecture(storeRoot);
    expect(manifest.renditions.map((r) => r.name)).toEqual(['720p', '360p', 'audio']);
    expect(manifest.site).toBe('demo-site');
    expect(run.stdout).toContain(path.join(storeRoot, 'lectures', 'demo-site', 'demo-room'));

    const ls = await runCli(['queue', 'ls'], { cwd: tmp.dir, env: { LECTERN_CONFIG: '' } });
    expect(ls.code).toBe(0);
    expect(ls.stdout).toMatch(new RegExp(`transcode\\s+${manifest.lectureId}\\s+done`));
    expect(ls.stdout).toMatch(new RegExp(`publish\\s+${manifest.lectureId}\\s+done`));
  });
});

describe('lectern demo after kill -9', () => {
  let tmp: ReturnType<typeof makeTmpDir>;
  let config: string;
  let dataDir: string;

  const setup = (): void => {
    tmp = makeTmpDir();
    config = writeSmallConfig(tmp.dir);
    dataDir = path.join(tmp.dir, 'data');
  };

  async function killWhen(failpoints: string, ready: () => boolean, seconds = 5): Promise<void> {
    const run = startCli(['--config', config, 'demo', '--seconds', String(seconds)], { env: { LECTERN_FAILPOINTS: failpoints } });
    try {
      await waitFor(() => (ready() ? true : undefined), { timeoutMs: 60_000, intervalMs: 100, what: 'the kill point' });
    } finally {
      killGroup(run);
    }
    const exit = await run.exit;
    expect(exit.signal).toBe('SIGKILL');
  }

  async function resumeAndVerify(resuming = /Resuming 1 unfinished lecture/): Promise<LectureManifest> {
    const rerun = await runCli(['--config', config, 'demo', '--seconds', '5']);
    expect(rerun.code, rerun.stderr).toBe(0);
    expect(rerun.stdout).toMatch(resuming);
    const manifest = await verifyPublishedLecture(path.join(dataDir, 'store'));
    const jobs = jobStates(dataDir);
    // Tiers (transcode.tiers, on by default): each tier's packaging and publish is a job of its own.
    expect(jobs.map((j) => `${j.kind}:${j.state}`).sort()).toEqual(['publish-tier1:done', 'publish:done', 'transcode-tier2:done', 'transcode:done']);
    const db = openDatabase(path.join(dataDir, 'state.db'), { logger: silentLogger, readonly: true });
    try {
      expect(integrityCheck(db)).toEqual([]);
    } finally {
      closeDatabase(db);
    }
    return manifest;
  }

  it('resumes packaging interrupted mid-transcode and publishes the lecture once', async () => {
    setup();
    try {
      await killWhen('transcode.start=4000', () =>
        jobStatesWhileStarting(dataDir).some((j) => j.kind === 'transcode' && j.state === 'running'),
      );
      expect(findFiles(path.join(dataDir, 'store', 'lectures'), /^lecture\.json$/)).toEqual([]);
      await resumeAndVerify();
    } finally {
      tmp.cleanup();
    }
  });

  it('continues a recording cut by a power failure as the same lecture until its planned end, and publishes it with the gap', async () => {
    setup();
    try {
      const startedAtMs = Date.now();
      await killWhen('', () => findFiles(path.join(dataDir, 'recordings'), /\.ts$/).length >= 2, 12);
      // The capture ffmpeg runs in its own process group and outlives the agent, as it would outside systemd.
      expect((await findFfmpegProcesses(dataDir)).length).toBe(1);
      const manifest = await resumeAndVerify(/Resuming lecture [0-9A-Z]{26}, interrupted while recording: recording until its planned end in \d+ s/);
      // The rerun recorded on until the 12 s the first run had planned.
      expect(Date.now() - startedAtMs).toBeGreaterThan(12_000);
      expect(manifest.source.recordedSeconds).toBeGreaterThan(6);
      expect(manifest.gaps).toHaveLength(1);
      expect(manifest.gaps[0]?.reason).toBe('interrupted by a restart');
      const lost = manifest.alerts.filter((a) => a.kind === 'source_lost');
      expect(lost).toHaveLength(1);
      expect(lost[0]?.message).toMatch(/the agent restarted/);
      expect(lost[0]?.endedAt).not.toBeNull();
      expect(await findFfmpegProcesses(dataDir)).toEqual([]);
    } finally {
      tmp.cleanup();
    }
  });

  it('resumes publishing interrupted between two files without a duplicate or an early manifest', async () => {
    setup();
    try {
      const lectures = path.join(dataDir, 'store', 'lectures');
      // 11 s: three 5 s segments per rendition, so the kill at the third file lands inside tier 1.
      await killWhen('publish.file=150', () => findFiles(lectures, /\.m4s$/).length >= 3, 11);
      // Killed mid-publish: media is partly there, but no manifest and no ready pointer yet.
      expect(findFiles(lectures, /^lecture\.json$/)).toEqual([]);
      expect(findFiles(path.join(dataDir, 'store', 'ready'), /\.json$/)).toEqual([]);
      await resumeAndVerify();
    } finally {
      tmp.cleanup();
    }
  });
});
