/**
 * Upload benchmark (issue 5). In one run, against a real Ceph RADOS Gateway on 127.0.0.1 (the
 * test peer, tests/peers/rgw.ts), the same files are uploaded by
 *   1. lectern's S3Store (uncapped: no throttle), with its multipart progress in a real SQLite
 *      state database as in the agent: sha256 + per-part MD5 read first, Content-MD5 on every
 *      request, HEAD check afterwards;
 *   2. @aws-sdk/lib-storage's Upload, the SDK's own managed upload, with the same part size and
 *      the same queue size (lectern sends one part at a time, so queueSize 1) and the same
 *      multipart threshold (below it, one PutObject, as lectern does);
 * in alternating order, round by round. Files go one after another in both, as the publish job
 * sends them. Prints the median throughput of each per set and the ratio lectern / SDK (target
 * >= 0.9 on the total).
 *
 * The set: one large file (a long lecture's single rendition file, or an imported recording) and
 * a lecture-like set of small files (HLS segments of ~4 s). Objects are deleted after each round
 * (the gateway keeps them in memory).
 *
 * Run: npm run bench:upload [-- --big-mb 200 --small-count 100 --small-kb 600 --rounds 3]
 */
import { randomBytes } from 'node:crypto';
import { createReadStream, mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DeleteObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { closeDatabase, openDatabase, UploadsRepo } from '../src/db/index.js';
import { silentLogger } from '../src/log/logger.js';
import { S3Store } from '../src/storage/s3Store.js';
import { hashFile } from '../src/util/hash.js';
import { startRgw, type RgwPeer } from '../tests/peers/rgw.js';
import { adminClient, createTestBucket } from '../tests/helpers/s3.js';

function numberArg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const value = i > 0 ? Number(process.argv[i + 1]) : fallback;
  if (!Number.isFinite(value) || value <= 0) throw new Error(`--${name} must be a positive number`);
  return value;
}

const BIG_MB = numberArg('big-mb', 200);
const SMALL_COUNT = Math.round(numberArg('small-count', 100));
// 4 s of a 1.2 Mbit/s rendition.
const SMALL_KB = numberArg('small-kb', 600);
const ROUNDS = Math.round(numberArg('rounds', 3));
// lectern's defaults (s3Store.ts): 8 MiB parts, multipart from 16 MiB, one part at a time.
const PART_SIZE_BYTES = 8 * 1024 * 1024;
const MULTIPART_THRESHOLD_BYTES = 16 * 1024 * 1024;
const QUEUE_SIZE = 1;
const MB = 1_000_000;

interface LocalFile {
  name: string;
  path: string;
  bytes: number;
  sha256: string;
}

type Uploader = (key: string, file: LocalFile) => Promise<void>;

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

async function timed(fn: () => Promise<void>): Promise<number> {
  const t0 = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

async function makeFiles(dir: string): Promise<{ big: LocalFile[]; small: LocalFile[] }> {
  const write = async (name: string, bytes: number): Promise<LocalFile> => {
    const file = path.join(dir, name);
    // Random bytes: nothing on the way can compress them.
    const chunk = 8 * 1024 * 1024;
    writeFileSync(file, '');
    for (let done = 0; done < bytes; done += chunk) writeFileSync(file, randomBytes(Math.min(chunk, bytes - done)), { flag: 'a' });
    const { sha256 } = await hashFile(file);
    return { name, path: file, bytes: statSync(file).size, sha256 };
  };
  mkdirSync(dir, { recursive: true });
  const big = [await write('big.bin', Math.round(BIG_MB * MB))];
  const small: LocalFile[] = [];
  for (let i = 0; i < SMALL_COUNT; i++) small.push(await write(`seg_${String(i).padStart(5, '0')}.m4s`, Math.round(SMALL_KB * 1000)));
  return { big, small };
}

function sdkUploader(client: S3Client, bucket: string): Uploader {
  return async (key, file) => {
    await new Upload({
      client,
      params: { Bucket: bucket, Key: key, Body: createReadStream(file.path, { highWaterMark: 1024 * 1024 }), ContentType: 'application/octet-stream' },
      partSize: PART_SIZE_BYTES,
      queueSize: QUEUE_SIZE,
      leavePartsOnError: false,
    }).done();
  };
}

function lecternUploader(store: S3Store): Uploader {
  return (key, file) => store.putFile(key, file.path, { sizeBytes: file.bytes, sha256: file.sha256, contentType: 'application/octet-stream' });
}

async function main(): Promise<void> {
  const work = path.join(os.tmpdir(), `lectern-bench-upload-${process.pid}`);
  mkdirSync(work, { recursive: true });
  let rgw: RgwPeer | undefined;
  try {
    console.log(
      `lectern upload benchmark: 1 x ${BIG_MB} MB + ${SMALL_COUNT} x ${SMALL_KB} kB, ${ROUNDS} rounds, ` +
        `part ${PART_SIZE_BYTES / 1024 / 1024} MiB, queue ${QUEUE_SIZE}, multipart from ${MULTIPART_THRESHOLD_BYTES / 1024 / 1024} MiB; ${os.cpus().length} cores`,
    );
    const files = await makeFiles(path.join(work, 'files'));
    rgw = await startRgw();
    console.log(`Ceph RGW up on ${rgw.endpoint} in ${(rgw.startMs / 1000).toFixed(1)} s (objects in memory)`);
    const admin = adminClient(rgw);
    const bucket = await createTestBucket(admin, 'bench-upload');
    // The SDK client for lib-storage: the same settings lectern's S3Store gives its own client.
    const sdkClient = new S3Client({
      endpoint: rgw.endpoint,
      region: rgw.region,
      forcePathStyle: true,
      credentials: { accessKeyId: rgw.accessKeyId, secretAccessKey: rgw.secretAccessKey },
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
    const db = openDatabase(path.join(work, 'state.db'), { logger: silentLogger });
    const store = new S3Store({
      endpoint: rgw.endpoint,
      region: rgw.region,
      bucket,
      forcePathStyle: true,
      credentials: { accessKeyId: rgw.accessKeyId, secretAccessKey: rgw.secretAccessKey },
      logger: silentLogger,
      partSizeBytes: PART_SIZE_BYTES,
      multipartThresholdBytes: MULTIPART_THRESHOLD_BYTES,
      multipartState: new UploadsRepo(db),
    });
    await store.start();
    const tools: Record<'lectern' | 'sdk', Uploader> = { lectern: lecternUploader(store), sdk: sdkUploader(sdkClient, bucket) };
    const seconds: Record<'lectern' | 'sdk', { big: number[]; small: number[] }> = { lectern: { big: [], small: [] }, sdk: { big: [], small: [] } };
    const bytesOf = (set: LocalFile[]): number => set.reduce((s, f) => s + f.bytes, 0);

    for (let round = 1; round <= ROUNDS; round++) {
      const order: Array<'lectern' | 'sdk'> = round % 2 === 1 ? ['lectern', 'sdk'] : ['sdk', 'lectern'];
      for (const tool of order) {
        for (const set of ['big', 'small'] as const) {
          const keys: string[] = [];
          const s = await timed(async () => {
            for (const file of files[set]) {
              const key = `bench/r${round}/${tool}/${file.name}`;
              keys.push(key);
              await tools[tool](key, file);
            }
          });
          seconds[tool][set].push(s);
          console.log(`  round ${round} ${tool.padEnd(7)} ${set.padEnd(5)} ${s.toFixed(2).padStart(7)} s  ${(bytesOf(files[set]) / MB / s).toFixed(1).padStart(6)} MB/s`);
          for (const key of keys) await admin.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
        }
      }
    }

    console.log('\nmedian throughput (MB/s, 10^6 bytes)      lectern S3Store   lib-storage Upload   ratio');
    const rows: Array<[string, number, number]> = [];
    for (const set of ['big', 'small'] as const) {
      const mbytes = bytesOf(files[set]) / MB;
      rows.push([set === 'big' ? `1 x ${BIG_MB} MB` : `${SMALL_COUNT} x ${SMALL_KB} kB`, mbytes / median(seconds.lectern[set]), mbytes / median(seconds.sdk[set])]);
    }
    const totalMb = (bytesOf(files.big) + bytesOf(files.small)) / MB;
    const totals = (tool: 'lectern' | 'sdk'): number[] => seconds[tool].big.map((b, i) => b + (seconds[tool].small[i] ?? NaN));
    rows.push(['total', totalMb / median(totals('lectern')), totalMb / median(totals('sdk'))]);
    for (const [label, lectern, sdk] of rows) {
      console.log(`  ${label.padEnd(38)} ${lectern.toFixed(1).padStart(15)} ${sdk.toFixed(1).padStart(20)} ${(lectern / sdk).toFixed(2).padStart(7)}`);
    }
    const ratio = (rows[2]?.[1] ?? NaN) / (rows[2]?.[2] ?? NaN);
    console.log(`\nthroughput ratio lectern / lib-storage (total): ${ratio.toFixed(2)} (target >= 0.90) ${ratio >= 0.9 ? 'PASS' : 'FAIL'}`);

    await store.stop();
    closeDatabase(db);
    sdkClient.destroy();
    admin.destroy();
  } finally {
    await rgw?.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
