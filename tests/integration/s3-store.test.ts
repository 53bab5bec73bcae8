import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import { CreateBucketCommand, DeleteBucketCommand, DeleteObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMemoryLogger, silentLogger } from '../../src/log/logger.js';
import { MemoryMultipartState, MultipartUploader, planUpload, type MultipartState, type MultipartUpload, type UploadedPart } from '../../src/storage/s3Multipart.js';
import { S3Store, type S3StoreOptions } from '../../src/storage/s3Store.js';
import type { LectureManifest, ReadyPointer } from '../../src/transcode/manifest.js';
import { isLecternError } from '../../src/util/errors.js';
import { hashFile, sha256Hex } from '../../src/util/hash.js';
import { runCli } from '../helpers/cli.js';
import { awsCli, openMultipartUploads } from '../helpers/s3.js';
import { makeTmpDir } from '../helpers/tmp.js';
import { startRgw, type RgwPeer } from '../peers/rgw.js';
import { describeStoreContract, errorCodeOf } from './store-contract.js';
import { smallDemoConfig } from '../helpers/config.js';

/**
 * S3Store against a real S3 server: Ceph's RADOS Gateway from Debian (tests/peers/rgw.ts),
 * started once for this file. The AWS CLI from Debian (/usr/bin/aws) is the independent client
 * that checks what the bucket really holds. Nothing is mocked.
 */

// Debian's, not whatever `aws` comes first on PATH (a pyenv shim here).
const MIB = 1024 * 1024;

let rgw: RgwPeer;
let admin: S3Client;
let bucketSeq = 0;

beforeAll(async () => {
  // The SDK pin is exact; its notice about future releases needing Node 22 is noise here.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
  rgw = await startRgw();
  console.warn(`RGW started in ${rgw.startMs} ms at ${rgw.endpoint}`);
  admin = new S3Client({
    endpoint: rgw.endpoint,
    region: rgw.region,
    forcePathStyle: true,
    credentials: { accessKeyId: rgw.accessKeyId, secretAccessKey: rgw.secretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}, 120_000);

afterAll(async () => {
  admin?.destroy();
  await rgw?.stop();
});

async function newBucket(): Promise<string> {
  const name = `t${++bucketSeq}-${randomBytes(4).toString('hex')}`;
  await admin.send(new CreateBucketCommand({ Bucket: name }));
  return name;
}

async function removeBucket(bucket: string): Promise<void> {
  for (;;) {
    const page = await admin.send(new ListObjectsV2Command({ Bucket: bucket }));
    for (const o of page.Contents ?? []) await admin.send(new DeleteObjectCommand({ Bucket: bucket, Key: o.Key }));
    if (!page.IsTruncated) break;
  }
  await admin.send(new DeleteBucketCommand({ Bucket: bucket }));
}

function storeOptions(bucket: string, extra: Partial<S3StoreOptions> = {}): S3StoreOptions {
  return {
    endpoint: rgw.endpoint,
    region: rgw.region,
    bucket,
    forcePathStyle: true,
    credentials: { accessKeyId: rgw.accessKeyId, secretAccessKey: rgw.secretAccessKey },
    logger: silentLogger,
    ...extra,
  };
}

/** Debian's AWS CLI against the gateway: an independent client's view of the bucket. */
const aws = (args: string[]): Promise<unknown> => awsCli(rgw, args);

/** A loopback port nothing listens on: taken from the kernel and released again. */
function closedPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address !== null ? address.port : 9));
    });
  });
}

function multipartUploadsIn(bucket: string): Promise<string[]> {
  return openMultipartUploads(rgw, bucket);
}

describeStoreContract('S3Store on Ceph RGW', async () => {
  const bucket = await newBucket();
  const store = new S3Store(storeOptions(bucket));
  await store.start();
  return {
    store,
    cleanup: async () => {
      await store.stop();
      await removeBucket(bucket);
    },
  };
});

describe('S3Store on Ceph RGW', () => {
  const tmp = makeTmpDir();
  let bucket: string;

  beforeAll(async () => {
    bucket = await newBucket();
  });
  afterAll(() => tmp.cleanup());

  const localFile = (name: string, data: Uint8Array): string => {
    const file = path.join(tmp.dir, name);
    writeFileSync(file, data);
    return file;
  };

  it('describes itself by endpoint and bucket, without credentials', () => {
    const store = new S3Store(storeOptions(bucket));
    expect(store.description).toBe(`s3:${rgw.endpoint}/${bucket}`);
    expect(store.description).not.toContain(rgw.accessKeyId);
  });

  it('uploads a large file in parts, stores its sha256 as metadata, and reads it back intact', async () => {
    const data = randomBytes(20 * MIB + 123);
    const sha256 = sha256Hex(data);
    const file = localFile('big.bin', data);
    const { logger, lines } = createMemoryLogger('debug');
    const store = new S3Store(storeOptions(bucket, { logger, partSizeBytes: 5 * MIB }));
    await store.start();
    const started = performance.now();
    await store.putFile('lectures/x/source/big.ts', file, { sizeBytes: data.length, sha256 });
    const seconds = (performance.now() - started) / 1000;
    console.warn(`multipart putFile of ${(data.length / MIB).toFixed(1)} MiB (5 parts; hashing, HEAD, and the gateway creating its multipart pool on first use): ${seconds.toFixed(2)} s, ${(data.length / MIB / seconds).toFixed(1)} MiB/s`);
    expect(lines.some((l) => l.includes('in 5 parts'))).toBe(true);

    // The independent client sees one object of 5 parts with our metadata, and no upload left open.
    const head = (await aws(['s3api', 'head-object', '--bucket', bucket, '--key', 'lectures/x/source/big.ts'])) as { ContentLength: number; ETag: string; Metadata: Record<string, string> };
    expect(head.ContentLength).toBe(data.length);
    expect(head.ETag).toMatch(/-5"$/);
    expect(head.Metadata.sha256).toBe(sha256);
    expect(await multipartUploadsIn(bucket)).toEqual([]);

    const copy = path.join(tmp.dir, 'down', 'big.bin');
    await store.getToFile('lectures/x/source/big.ts', copy);
    expect(await hashFile(copy)).toEqual({ sha256, bytes: data.length });
    expect((await store.head('lectures/x/source/big.ts'))?.sha256).toBe(sha256);
    await store.stop();
  });

  it('aborts a multipart upload whose part fails, leaving no parts and no object on the server', async () => {
    const data = randomBytes(12 * MIB);
    const sha256 = sha256Hex(data);
    const file = localFile('changing.bin', data);
    const key = 'lectures/x/source/changing.ts';
    let seenOpen: string[] = [];
    // The state is the seam a later SQLite store plugs into; here it also changes the local file
    // after the first part, as a writer still busy with the file would. The second part's
    // Content-MD5 (computed before the upload) then no longer matches and the server refuses it.
    const inner = new MemoryMultipartState();
    const state: MultipartState = {
      find: (...a) => inner.find(...a),
      begin: (u) => inner.begin(u),
      parts: (id) => inner.parts(id),
      end: (id) => inner.end(id),
      forgetPart: (id, n) => inner.forgetPart(id, n),
      partDone: async (id, part) => {
        await inner.partDone(id, part);
        if (part.partNumber === 1) {
          seenOpen = await multipartUploadsIn(bucket);
          const changed = Buffer.from(data);
          changed[6 * MIB] = (changed[6 * MIB] ?? 0) ^ 0xff;
          writeFileSync(file, changed);
        }
      },
    };
    const store = new S3Store(storeOptions(bucket, { partSizeBytes: 5 * MIB, multipartThresholdBytes: 8 * MIB, multipartState: state }));
    const err = await store.putFile(key, file, { sizeBytes: data.length, sha256 }).catch((e: unknown) => e);
    expect(isLecternError(err, 'CHECKSUM_MISMATCH'), String(err)).toBe(true);
    expect((err as Error).message).toContain('changed while it was uploaded');
    // The upload was open on the server mid-way, and is gone after the failure.
    expect(seenOpen).toEqual([key]);
    expect(await multipartUploadsIn(bucket)).toEqual([]);
    expect(inner.openUploads).toBe(0);
    expect(await store.head(key)).toBeUndefined();
    await store.stop();
  });

  it('resumes an open multipart upload from the parts its state already holds', async () => {
    const data = randomBytes(16 * MIB + 1);
    const sha256 = sha256Hex(data);
    const file = localFile('resume.bin', data);
    const key = 'lectures/x/source/resume.ts';
    // A previous run (same state) created the upload and stored its first part, then stopped.
    const state = new MemoryMultipartState();
    const client = new S3Client({ endpoint: rgw.endpoint, region: rgw.region, forcePathStyle: true, credentials: { accessKeyId: rgw.accessKeyId, secretAccessKey: rgw.secretAccessKey }, requestChecksumCalculation: 'WHEN_REQUIRED' });
    const earlier = new MultipartUploader({ client, bucket, state, logger: silentLogger });
    const plan = await planUpload(file, 5 * MIB);
    const upload = await earlier.create(key, { sizeBytes: data.length, sha256, partSizeBytes: 5 * MIB, contentType: 'video/mp2t' });
    await earlier.uploadPart(upload, file, plan.parts[0] as (typeof plan.parts)[number]);
    client.destroy();

    const sent: number[] = [];
    const counting: MultipartState = {
      find: (...a) => state.find(...a),
      begin: (u: MultipartUpload) => state.begin(u),
      parts: (id) => state.parts(id),
      end: (id) => state.end(id),
      forgetPart: (id, n) => state.forgetPart(id, n),
      partDone: async (id, part: UploadedPart) => {
        sent.push(part.partNumber);
        await state.partDone(id, part);
      },
    };
    const { logger, lines } = createMemoryLogger();
    const store = new S3Store(storeOptions(bucket, { logger, partSizeBytes: 5 * MIB, multipartState: counting }));
    await store.putFile(key, file, { sizeBytes: data.length, sha256 });
    expect(sent).toEqual([2, 3, 4]);
    expect(lines.some((l) => l.includes('1 of 4 parts already stored'))).toBe(true);
    expect(sha256Hex(await store.getBytes(key))).toBe(sha256);
    expect(await multipartUploadsIn(bucket)).toEqual([]);
    await store.stop();
  });

  it('pages through more keys than one listing returns', async () => {
    const store = new S3Store(storeOptions(bucket));
    const keys = Array.from({ length: 1005 }, (_, i) => `many/k${String(i).padStart(5, '0')}`);
    for (let i = 0; i < keys.length; i += 50) await Promise.all(keys.slice(i, i + 50).map((k) => store.putBytes(k, 'x')));
    const all = await store.list('many/');
    expect(all.map((o) => o.key)).toEqual(keys);
    expect((await store.list('many/', { startAfter: 'many/k00999', limit: 3 })).map((o) => o.key)).toEqual(['many/k01000', 'many/k01001', 'many/k01002']);
    await store.stop();
  });

  it('refuses a wrong secret at start with an operator error that names the fix, never the secret', async () => {
    const wrongSecret = `Wrong${randomBytes(16).toString('hex')}`;
    const store = new S3Store(storeOptions(bucket, { credentials: { accessKeyId: rgw.accessKeyId, secretAccessKey: wrongSecret } }));
    const err = await store.start().catch((e: unknown) => e);
    expect(isLecternError(err, 'STORE_ACCESS_DENIED'), String(err)).toBe(true);
    const message = (err as Error).message;
    expect(message).toContain('SignatureDoesNotMatch');
    expect(message).toContain('secretAccessKeyFile');
    expect(message).not.toContain(wrongSecret);
    expect(message).not.toContain(rgw.secretAccessKey);
    expect(JSON.stringify((err as { details: unknown }).details)).not.toContain(wrongSecret);

    // Later operations fail the same way: an operator error naming the S3 code and the fix, without the secret.
    const put = await store.putBytes('x/y.json', '{}').catch((e: unknown) => e);
    expect(isLecternError(put, 'STORE_ACCESS_DENIED')).toBe(true);
    expect((put as Error).message).toMatch(/SignatureDoesNotMatch 403/);
    expect((put as Error).message).toContain('secretAccessKeyFile');
    expect((put as Error).message).not.toContain(wrongSecret);
    await store.stop();
  });

  it('refuses an unknown access key id at start', async () => {
    const store = new S3Store(storeOptions(bucket, { credentials: { accessKeyId: 'NOSUCHKEY0000000WXYZ', secretAccessKey: rgw.secretAccessKey } }));
    const err = await store.start().catch((e: unknown) => e);
    expect(isLecternError(err, 'STORE_ACCESS_DENIED'), String(err)).toBe(true);
    expect((err as Error).message).toContain('InvalidAccessKeyId');
    expect((err as Error).message).toContain('ending in "WXYZ"');
    expect((err as Error).message).not.toContain(rgw.secretAccessKey);
    await store.stop();
  });

  it('reports a missing bucket at start with a clear error', async () => {
    const store = new S3Store(storeOptions('no-such-bucket-here'));
    const err = await store.start().catch((e: unknown) => e);
    expect(isLecternError(err, 'STORE_BUCKET_MISSING'), String(err)).toBe(true);
    expect((err as Error).message).toContain('"no-such-bucket-here" does not exist');
    await store.stop();
  });

  it('only warns at start when the server cannot be reached, so recording still starts', async () => {
    const { logger, lines } = createMemoryLogger();
    // Few, quick retries: a refused connection is retryable, and the default schedule takes ~10 s.
    const store = new S3Store({ ...storeOptions(bucket), endpoint: `http://127.0.0.1:${await closedPort()}`, logger, retry: { maxAttempts: 2, backoff: { baseMs: 10, capMs: 10, jitter: 0 } } });
    await store.start();
    expect(lines.some((l) => l.includes('cannot reach the storage at start (ECONNREFUSED)'))).toBe(true);
    const err = await store.head('a/b').catch((e: unknown) => e);
    expect(isLecternError(err, 'STORE_READ_FAILED')).toBe(true);
    expect((err as Error).message).toContain('ECONNREFUSED');
    await store.stop();
  });

  it('detects an object changed behind its back when downloading', async () => {
    const store = new S3Store(storeOptions(bucket));
    await store.putBytes('tamper/a.json', '{"a":1}');
    // Someone else overwrites the object keeping our metadata (a copy with REPLACE would drop it).
    writeFileSync(path.join(tmp.dir, 'evil.json'), '{"a":2}');
    await aws(['s3api', 'put-object', '--bucket', bucket, '--key', 'tamper/a.json', '--body', path.join(tmp.dir, 'evil.json'), '--metadata', `sha256=${sha256Hex('{"a":1}')}`]);
    expect(await errorCodeOf(store.getBytes('tamper/a.json'))).toBe('CHECKSUM_MISMATCH');
    const target = path.join(tmp.dir, 'tampered.json');
    expect(await errorCodeOf(store.getToFile('tamper/a.json', target))).toBe('CHECKSUM_MISMATCH');
    expect(existsSync(target)).toBe(false);
    await store.stop();
  });
});

describe('lectern demo publishing to S3', () => {
  const tmp = makeTmpDir();
  afterAll(() => tmp.cleanup());

  it('records, packages and publishes a lecture that the AWS CLI finds complete in the bucket', async () => {
    const bucket = await newBucket();
    writeFileSync(path.join(tmp.dir, 's3-key-id'), `${rgw.accessKeyId}\n`);
    writeFileSync(path.join(tmp.dir, 's3-secret'), `${rgw.secretAccessKey}\n`);
    chmodSync(path.join(tmp.dir, 's3-key-id'), 0o600);
    chmodSync(path.join(tmp.dir, 's3-secret'), 0o600);
    const config = path.join(tmp.dir, 'lectern.yaml');
    writeFileSync(
      config,
      smallDemoConfig([
        'storage:',
        '  kind: s3',
        `  endpoint: ${rgw.endpoint}`,
        `  bucket: ${bucket}`,
        '  accessKeyIdFile: s3-key-id',
        '  secretAccessKeyFile: ./s3-secret',
        '  prefix: campus',
      ]),
    );
    // No AWS_* variables leak in from the test's own environment.
    const env = { LECTERN_CONFIG: '', AWS_ACCESS_KEY_ID: '', AWS_SECRET_ACCESS_KEY: '' };
    const run = await runCli(['--config', config, 'demo', '--seconds', '4'], { cwd: tmp.dir, env });
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).not.toMatch(/ERROR|Warning/);
    expect(`${run.stdout}${run.stderr}`).not.toContain(rgw.secretAccessKey);
    expect(run.stdout).toMatch(/Lecture [0-9A-Z]{26} published/);
    expect(run.stdout).toContain(`-> s3://${bucket}/campus/lectures/demo-site/demo-room/`);

    // What the platform would see, through an independent client.
    const listing = (await aws(['s3api', 'list-objects-v2', '--bucket', bucket])) as { Contents: Array<{ Key: string; Size: number }> };
    const keys = listing.Contents.map((o) => o.Key);
    const manifestKey = keys.find((k) => k.endsWith('/lecture.json'));
    const pointerKey = keys.find((k) => k.startsWith('campus/ready/'));
    expect(manifestKey).toMatch(/^campus\/lectures\/demo-site\/demo-room\/\d{4}\/\d{2}\/\d{2}\/[0-9A-Z]{26}\/lecture\.json$/);
    expect(pointerKey).toMatch(/^campus\/ready\/\d{4}\/\d{2}\/\d{2}\/[0-9A-Z]{26}\.json$/);

    const manifestFile = path.join(tmp.dir, 'lecture.json');
    await aws(['s3api', 'get-object', '--bucket', bucket, '--key', manifestKey as string, manifestFile]);
    const manifestText = readFileSync(manifestFile, 'utf8');
    const manifest = JSON.parse(manifestText) as LectureManifest;
    const pointerFile = path.join(tmp.dir, 'pointer.json');
    await aws(['s3api', 'get-object', '--bucket', bucket, '--key', pointerKey as string, pointerFile]);
    const pointer = JSON.parse(readFileSync(pointerFile, 'utf8')) as ReadyPointer;
    expect(pointer.manifestKey).toBe(manifestKey);
    expect(pointer.manifestSha256).toBe(sha256Hex(manifestText));

    // Every listed file is in the bucket with its size; one of them, downloaded, has its sha256.
    const lectureDir = (manifestKey as string).slice(0, -'lecture.json'.length);
    const sizes = new Map(listing.Contents.map((o) => [o.Key, o.Size]));
    for (const f of manifest.files) expect({ path: f.path, size: sizes.get(`${lectureDir}${f.path}`) }).toEqual({ path: f.path, size: f.bytes });
    expect(keys.filter((k) => k.startsWith(lectureDir)).length).toBe(manifest.files.length + 1);
    const segment = manifest.files.find((f) => f.path.endsWith('.m4s')) ?? manifest.files[0];
    if (!segment) throw new Error('the manifest lists no files');
    const segmentFile = path.join(tmp.dir, 'segment.bin');
    const got = (await aws(['s3api', 'get-object', '--bucket', bucket, '--key', `${lectureDir}${segment.path}`, segmentFile])) as { Metadata: Record<string, string> };
    expect((await hashFile(segmentFile)).sha256).toBe(segment.sha256);
    expect(got.Metadata.sha256).toBe(segment.sha256);

    // The platform's side, through the same CLI and configuration: listed, pulled, verified.
    const ls = await runCli(['--config', config, 'platform', 'ls', '--json'], { cwd: tmp.dir, env });
    expect(ls.code, ls.stderr).toBe(0);
    expect((JSON.parse(ls.stdout) as Array<{ lectureId: string; readyKey: string }>).map((l) => l.readyKey)).toEqual([pointerKey]);
    const pulled = path.join(tmp.dir, 'pulled');
    const pull = await runCli(['--config', config, 'platform', 'pull', manifest.lectureId, pulled], { cwd: tmp.dir, env });
    expect(pull.code, pull.stderr).toBe(0);
    expect(pull.stdout).toContain(`Pulled lecture ${manifest.lectureId}: ${manifest.files.length} files`);
    expect(readFileSync(path.join(pulled, 'lecture.json'), 'utf8')).toBe(manifestText);

    // Someone replaces a segment, keeping its sha256 metadata: the pull fails and names it.
    writeFileSync(path.join(tmp.dir, 'evil.m4s'), 'not the segment');
    await aws(['s3api', 'put-object', '--bucket', bucket, '--key', `${lectureDir}${segment.path}`, '--body', path.join(tmp.dir, 'evil.m4s'), '--metadata', `sha256=${segment.sha256}`]);
    const bad = await runCli(['--config', config, 'platform', 'pull', manifest.lectureId, path.join(tmp.dir, 'pulled-again')], { cwd: tmp.dir, env });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain(`FAILED verification: 1 file(s)`);
    expect(bad.stderr).toContain(`  ${segment.path}: CHECKSUM_MISMATCH`);
    expect(`${bad.stdout}${bad.stderr}`).not.toContain(rgw.secretAccessKey);
  });
});
