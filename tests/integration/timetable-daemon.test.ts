import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { LectureManifest } from '../../src/transcode/manifest.js';
import { waitFor } from '../../src/util/sleep.js';
import { startCli, type CliRun } from '../helpers/cli.js';
import { smallDemoConfig } from '../helpers/config.js';
import { makeTmpDir } from '../helpers/tmp.js';

/**
 * The room's timetable run by the real daemon (`lectern daemon`, real ffmpeg on the synthetic
 * camera, a folder store): the daemon starts 20 s into a 40-second slot and records the rest of
 * it, then the next slot, back to back, as a second lecture. The lectures' lengths show that each
 * started and stopped at its slot's boundaries, and their titles that each is its own lecture.
 */

const tmp = makeTmpDir('lectern-timetable-');
let daemon: CliRun | undefined;

afterAll(async () => {
  if (daemon && daemon.child.exitCode === null) {
    daemon.child.kill('SIGTERM');
    await daemon.exit;
  }
  tmp.cleanup();
});

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as { port: number }).port;
      server.close(() => resolve(port));
    });
  });
}

/** `2026-11-30 16:05:07` in UTC, the timetable's zone here. */
function wall(ms: number): string {
  return new Date(ms).toISOString().slice(0, 19).replace('T', ' ');
}

function manifests(storeDir: string): LectureManifest[] {
  const found: LectureManifest[] = [];
  for (const e of readdirSync(storeDir, { withFileTypes: true, recursive: true })) {
    if (e.isFile() && e.name === 'lecture.json') found.push(JSON.parse(readFileSync(path.join(e.parentPath, e.name), 'utf8')) as LectureManifest);
  }
  return found;
}

function readyPointers(storeDir: string): number {
  try {
    return readdirSync(path.join(storeDir, 'ready'), { recursive: true }).filter((f) => String(f).endsWith('.json')).length;
  } catch {
    return 0;
  }
}

// Slots of 40 s: long enough that starting 20 s late leaves a clear remainder, short enough for the suite.
const SLOT_MS = 40_000;

describe('the timetable in the daemon', () => {
  it('records the rest of a slot it started late, then the next slot back to back as a second lecture', async () => {
    const now = Date.now();
    // Whole seconds, as a timetable has them.
    const aStart = Math.floor(now / 1000) * 1000 - 20_000;
    const aEnd = aStart + SLOT_MS;
    const bEnd = aEnd + SLOT_MS;
    writeFileSync(
      path.join(tmp.dir, 'timetable.yaml'),
      [
        `- { course: CS101, title: Algorithms, start: "${wall(aStart)}", end: "${wall(aEnd)}" }`,
        `- { course: MA102, title: Linear maps, start: "${wall(aEnd)}", end: "${wall(bEnd)}" }`,
        '',
      ].join('\n'),
    );
    const port = await freePort();
    writeFileSync(
      path.join(tmp.dir, 'config.yaml'),
      smallDemoConfig(['schedule:', '  source: timetable.yaml', '  timeZone: UTC', 'api:', `  port: ${port}`]),
    );
    daemon = startCli(['--config', path.join(tmp.dir, 'config.yaml'), 'daemon'], { cwd: tmp.dir });
    const storeDir = path.join(tmp.dir, 'data', 'store');
    // Both slots end 60 s from now; packaging 40 s of 240p takes seconds.
    await waitFor(() => (readyPointers(storeDir) >= 2 ? true : undefined), { timeoutMs: 200_000, intervalMs: 1_000, what: 'two published lectures' });
    daemon.child.kill('SIGTERM');
    expect((await daemon.exit).code, daemon.stderr().slice(-3000)).toBe(0);

    const lectures = manifests(storeDir).sort((x, y) => x.startedAt.localeCompare(y.startedAt));
    expect(lectures.map((l) => [l.course, l.title])).toEqual([
      ['CS101', 'Algorithms'],
      ['MA102', 'Linear maps'],
    ]);
    const [a, b] = lectures as [LectureManifest, LectureManifest];
    expect(a.lectureId).not.toBe(b.lectureId);
    // A started when the daemon came up, 20 s into its slot: it holds the remaining ~20 s.
    const aStartedMs = Date.parse(a.startedAt);
    expect(aStartedMs).toBeGreaterThanOrEqual(aStart + 19_000);
    console.info(`timetable: lecture A ${a.durationSeconds.toFixed(1)} s (slot remainder ${((aEnd - aStartedMs) / 1000).toFixed(1)} s), lecture B ${b.durationSeconds.toFixed(1)} s (slot ${SLOT_MS / 1000} s)`);
    expect(a.durationSeconds).toBeGreaterThan((aEnd - aStartedMs) / 1000 - 5);
    expect(a.durationSeconds).toBeLessThan((SLOT_MS - 20_000) / 1000 + 5);
    // B started at A's end, not after A's packaging: a whole slot of media.
    expect(Date.parse(b.startedAt)).toBeLessThan(aEnd + 3_000);
    expect(b.durationSeconds).toBeGreaterThan(SLOT_MS / 1000 - 5);
    expect(b.durationSeconds).toBeLessThan(SLOT_MS / 1000 + 2);
    expect(daemon.stderr()).toMatch(/CS101/);
  }, 260_000);
});
