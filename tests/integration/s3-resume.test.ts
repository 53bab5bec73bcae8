import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeDatabase, openDatabase, UploadsRepo } from '../../src/db/index.js';
import { silentLogger } from '../../src/log/logger.js';
import { hashFile, sha256Hex } from '../../src/util/hash.js';
import type { UploadAck } from '../fixtures/s3-upload-child.js';
import { adminClient, awsCli, bucketKeys, createTestBucket, openMultipartUploads } from '../helpers/s3.js';
import { makeTmpDir } from '../helpers/tmp.js';
import { startFaultProxy, type FaultProxy, type ProxiedRequest } from '../peers/faultProxy.js';
import { startRgw, type RgwPeer } from '../peers/rgw.js';

/**
 * `kill -9` of the uploader at 10 seeded-random points across a multi-part upload: a child
 * process uploads a 40 MiB file in 5 MiB parts to a real RADOS Gateway with its progress in a
 * SQLite file, and is SIGKILLed — mid-part, right after the server confirmed a part (before the
 * child heard), right after the server created the upload, and right after the server completed
 * the object — then started again. Our own proxy sits between them in pass-through mode, counts
 * every body byte the child sends, and is where the kills are triggered, so they land at exact
 * points of the exchange. Nothing is mocked.
 */

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const MIB = 1024 * 1024;
const PART_BYTES = 5 * MIB;
const FILE_BYTES = 40 * MIB + 12_345; // 9 parts, the last one small
const KILLS = 10;
const SEED = 0x1ec7e5;

type KillPoint =
  /** while the body of a part is on its way: global position in the file */
  | { at: 'body'; position: number }
  /** the server stored this part (or a later one); the child never hears */
  | { at: 'partReply'; partNumber: number }
  /** the server created the upload; the child never records its id */
  | { at: 'createReply' }
  /** the server completed the object; the child never hears */
  | { at: 'completeReply' };

/** mulberry32: a small seeded PRNG, so a failing run can be replayed exactly. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** First the upload's creation, last its completion, and 8 points across the parts in between. */
function killPoints(seed: number): KillPoint[] {
  const random = prng(seed);
  const positions = Array.from({ length: KILLS - 2 }, () => Math.floor(random() * FILE_BYTES)).sort((a, b) => a - b);
  const middle = positions.map((position): KillPoint => (random() < 0.25 ? { at: 'partReply', partNumber: Math.floor(position / PART_BYTES) + 1 } : { at: 'body', position }));
  return [{ at: 'createReply' }, ...middle, { at: 'completeReply' }];
}

let rgw: RgwPeer;
let admin: S3Client;
let proxy: FaultProxy;
let buildDir: string;
let childJs: string;
const children = new Set<ChildProcess>();

/*
 * Compiled like tests/integration/queue-kill.test.ts does it (Node 20 cannot run TypeScript):
 * exactly the child's import graph, from the current sources, into node_modules/.cache.
 */
async function compileChild(): Promise<void> {
  const cacheDir = path.join(REPO, 'node_modules', '.cache');
  fs.mkdirSync(cacheDir, { recursive: true });
  buildDir = fs.mkdtempSync(path.join(cacheDir, 'lectern-s3-resume-'));
  const tsconfig = path.join(buildDir, 'tsconfig.json');
  fs.writeFileSync(
    tsconfig,
    JSON.stringify({
      extends: path.join(REPO, 'tsconfig.json'),
      compilerOptions: { rootDir: REPO, outDir: buildDir, noEmit: false, incremental: false, sourceMap: false, declaration: false },
      files: [path.join(REPO, 'tests', 'fixtures', 's3-upload-child.ts')],
      include: [],
    }),
  );
  fs.writeFileSync(path.join(buildDir, 'package.json'), '{ "type": "module" }\n');
  // Asynchronously, so the gateway's start (also async) goes on meanwhile.
  const tsc = spawn(process.execPath, [path.join(REPO, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', tsconfig], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  tsc.stdout.on('data', (d: Buffer) => (output += d.toString()));
  tsc.stderr.on('data', (d: Buffer) => (output += d.toString()));
  await new Promise((resolve) => tsc.once('close', resolve));
  childJs = path.join(buildDir, 'tests', 'fixtures', 's3-upload-child.js');
  // tsc emits despite type errors; only a missing output is fatal here (typecheck is its own step).
  if (!fs.existsSync(childJs)) throw new Error(`could not compile the upload child:\n${output}`);
}

beforeAll(async () => {
  // Compile while the gateway starts: both take seconds.
  const [peer] = await Promise.all([startRgw(), compileChild()]);
  rgw = peer;
  admin = adminClient(rgw);
  proxy = await startFaultProxy(rgw.endpoint);
}, 150_000);

afterAll(async () => {
  for (const child of children) child.kill('SIGKILL');
  await proxy?.close();
  admin?.destroy();
  await rgw?.stop();
  if (buildDir) fs.rmSync(buildDir, { recursive: true, force: true });
});

interface Run {
  proc: ChildProcess;
  acks: UploadAck[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>;
}

function startChild(args: string[]): Run {
  const proc = spawn(process.execPath, [childJs, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, LECTERN_TEST_S3_KEY_ID: rgw.accessKeyId, LECTERN_TEST_S3_SECRET: rgw.secretAccessKey },
  });
  children.add(proc);
  const acks: UploadAck[] = [];
  let pending = '';
  let stderr = '';
  proc.stdout?.on('data', (d: Buffer) => {
    pending += d.toString();
    let nl: number;
    while ((nl = pending.indexOf('\n')) >= 0) {
      acks.push(JSON.parse(pending.slice(0, nl)) as UploadAck);
      pending = pending.slice(nl + 1);
    }
  });
  proc.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((resolve) =>
    proc.once('close', (code, signal) => {
      children.delete(proc);
      resolve({ code, signal, stderr });
    }),
  );
  return { proc, acks, exited };
}

describe('S3 multipart upload killed with SIGKILL at 10 points', () => {
  const tmp = makeTmpDir();
  afterAll(() => tmp.cleanup());

  it('resumes after every kill, re-sends at most one part per kill, and leaves one verified object and no open uploads', async () => {
    const started = Date.now();
    const bucket = await createTestBucket(admin, 'resume');
    const key = 'lectures/site/room/2026/11/28/01JDQ8ZK4R6W1V7X9Y2B3C4D5E/source/cam.ts';
    const file = path.join(tmp.dir, 'cam.ts');
    const data = randomBytes(FILE_BYTES);
    fs.writeFileSync(file, data);
    const sha256 = sha256Hex(data);
    const dbPath = path.join(tmp.dir, 'state.db');
    const args = [dbPath, proxy.endpoint, bucket, key, file, sha256, String(FILE_BYTES), String(PART_BYTES)];

    const points = killPoints(SEED);
    let point: KillPoint | undefined;
    let victim: ChildProcess | undefined;
    let run = 0;
    const runOf = new Map<ProxiedRequest, number>();
    const kill = (): 'drop' => {
      victim?.kill('SIGKILL');
      point = undefined;
      return 'drop';
    };
    // Parts are sent in order, so a point past the last part still fires at Complete.
    proxy.onRequestBody = (r) => {
      runOf.set(r, run);
      if (!point) return undefined;
      if (r.op === 'CompleteMultipartUpload' && (point.at === 'body' || point.at === 'partReply')) return kill();
      if (point.at === 'body' && r.op === 'UploadPart' && ((r.partNumber ?? 1) - 1) * PART_BYTES + r.forwardedBytes >= point.position) return kill();
      return undefined;
    };
    proxy.beforeReply = (r, status) => {
      runOf.set(r, run);
      if (!point || status !== 200) return undefined;
      if (point.at === 'partReply' && r.op === 'UploadPart' && (r.partNumber ?? 0) >= point.partNumber) return kill();
      if (point.at === 'createReply' && r.op === 'CreateMultipartUpload') return kill();
      if (point.at === 'completeReply' && r.op === 'CompleteMultipartUpload') return kill();
      return undefined;
    };

    const fired: string[] = [];
    const logs: string[] = [];
    const runMs: number[] = [];
    for (const p of points) {
      run++;
      point = p;
      const runStarted = Date.now();
      const child = startChild(args);
      victim = child.proc;
      const exit = await child.exited;
      runMs.push(Date.now() - runStarted);
      expect(exit.signal, `run ${run} (${JSON.stringify(p)}) was not killed: ${JSON.stringify(child.acks)}\n${exit.stderr}`).toBe('SIGKILL');
      logs.push(exit.stderr);
      fired.push(p.at === 'body' ? `body@${(p.position / MIB).toFixed(1)}MiB` : p.at === 'partReply' ? `partReply#${p.partNumber}` : p.at);
    }

    // The last start runs to the end.
    run++;
    const last = startChild(args);
    const lastExit = await last.exited;
    expect(last.acks.at(-1), `${JSON.stringify(last.acks)}\n${lastExit.stderr}`).toEqual(expect.objectContaining({ op: 'done' }));
    expect(lastExit.code).toBe(0);
    // The object was completed by the run killed at 'completeReply': the last one only checked it.
    expect(lastExit.stderr).toContain('was completed before the last restart');

    // What the bucket holds, through an independent client: the object once, intact, nothing open.
    expect(await bucketKeys(rgw, bucket)).toEqual([key]);
    expect(await openMultipartUploads(rgw, bucket)).toEqual([]);
    const copy = path.join(tmp.dir, 'copy.ts');
    const got = (await awsCli(rgw, ['s3api', 'get-object', '--bucket', bucket, '--key', key, copy])) as { Metadata: Record<string, string> };
    expect(await hashFile(copy)).toEqual({ sha256, bytes: FILE_BYTES });
    expect(got.Metadata.sha256).toBe(sha256);

    // Nothing left in the state database either.
    const db = openDatabase(dbPath, { logger: silentLogger });
    expect(new UploadsRepo(db).list()).toEqual([]);
    closeDatabase(db);

    // Re-sent bytes: part bytes a run sends for a part some earlier run had already sent bytes of.
    const partRequests = proxy.requests.filter((r) => r.op === 'UploadPart' && runOf.has(r));
    const resentAfterKill = Array.from({ length: KILLS }, () => 0);
    const sentBefore = new Set<number>();
    for (let r = 1; r <= KILLS + 1; r++) {
      const mine = partRequests.filter((q) => runOf.get(q) === r);
      for (const q of mine) if (sentBefore.has(q.partNumber ?? 0) && r >= 2) resentAfterKill[r - 2] = (resentAfterKill[r - 2] ?? 0) + q.forwardedBytes;
      for (const q of mine) if (q.forwardedBytes > 0) sentBefore.add(q.partNumber ?? 0);
    }
    const totalSent = proxy.forwardedBytes('UploadPart');
    console.warn(
      `kill points: ${fired.join(', ')}\n` +
        `re-sent MiB per kill: ${resentAfterKill.map((b) => (b / MIB).toFixed(2)).join(', ')}; ` +
        `run times ${runMs.map((ms) => (ms / 1000).toFixed(1)).join(', ')} s; part bytes sent ${(totalSent / MIB).toFixed(2)} MiB for a ${(FILE_BYTES / MIB).toFixed(2)} MiB file; ${((Date.now() - started) / 1000).toFixed(1)} s`,
    );
    for (const [i, bytes] of resentAfterKill.entries()) expect({ kill: i + 1, bytes }).toEqual({ kill: i + 1, bytes: Math.min(bytes, PART_BYTES) });
    expect(totalSent).toBeGreaterThanOrEqual(FILE_BYTES);
    expect(totalSent).toBeLessThanOrEqual(FILE_BYTES + KILLS * PART_BYTES);
    // The upload the server created for the first run, which never recorded it, was aborted by the second.
    expect(logs[1]).toContain('aborted 1 stale multipart upload(s)');
    // A part confirmed by the server but never heard of by the child was found by ListParts, not sent again.
    expect(points.some((p) => p.at === 'partReply')).toBe(true);
    expect(logs.join('\n')).toMatch(/parts already stored \(\d+ found on the server/);
  }, 120_000);
});
