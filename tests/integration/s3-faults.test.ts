import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { GetObjectCommand, ListMultipartUploadsCommand, type S3Client } from '@aws-sdk/client-s3';
import { Command } from 'commander';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { registerQueueCommands } from '../../src/cli/commands/queue.js';
import { configSchema } from '../../src/config/index.js';
import { closeDatabase, openDatabase, UploadsRepo, type Db } from '../../src/db/index.js';
import { createMemoryLogger, silentLogger } from '../../src/log/logger.js';
import { JobQueue } from '../../src/queue/queue.js';
import { Worker } from '../../src/queue/worker.js';
import { LocalLayout } from '../../src/storage/localLayout.js';
import { MemoryMultipartState } from '../../src/storage/s3Multipart.js';
import { S3Store, type S3StoreOptions } from '../../src/storage/s3Store.js';
import { storeErrorClass } from '../../src/storage/store.js';
import { isLecternError, type LecternError } from '../../src/util/errors.js';
import type { JobContext } from '../../src/queue/types.js';
import { createPublishHandler, OPERATOR_RETRY_MS, PUBLISH_JOB } from '../../src/upload/publishHandler.js';
import { sha256Hex } from '../../src/util/hash.js';
import { waitFor } from '../../src/util/sleep.js';
import { ulid } from '../../src/util/ulid.js';
import { adminClient, createTestBucket } from '../helpers/s3.js';
import { makeTmpDir } from '../helpers/tmp.js';
import { startFaultProxy, type FaultProxy, type S3Op } from '../peers/faultProxy.js';
import { startRgw, type RgwPeer } from '../peers/rgw.js';

/**
 * S3Store against a real RADOS Gateway behind our own fault-injecting proxy: every rare reply
 * the proxy makes up must end in the right class of behaviour — retried and then fine, resumed,
 * started over, or an operator/clock error that is not retried — and nothing may be lost: the
 * object has its sha256 (read back through an independent client) and no multipart upload stays open.
 * A publish the queue gives up (dead letter, `lectern queue cancel`) aborts the uploads it left open.
 */

const MIB = 1024 * 1024;
const PART_BYTES = 5 * MIB;
// Two parts (5 MiB, the smallest S3 allows, and a short last one): the machine is shared, keep uploads small.
const TWO_PARTS = PART_BYTES + 100_000;

let rgw: RgwPeer;
let admin: S3Client;
let proxy: FaultProxy;
let bucket: string;
const tmp = makeTmpDir();
let seq = 0;

beforeAll(async () => {
  rgw = await startRgw();
  admin = adminClient(rgw);
  proxy = await startFaultProxy(rgw.endpoint);
  bucket = await createTestBucket(admin, 'faults');
}, 150_000);

afterAll(async () => {
  await proxy?.close();
  admin?.destroy();
  await rgw?.stop();
  tmp.cleanup();
});

afterEach(() => {
  proxy.clearRules();
});

function makeStore(extra: Partial<S3StoreOptions> = {}): { store: S3Store; lines: string[] } {
  const { logger, lines } = createMemoryLogger('debug');
  const store = new S3Store({
    endpoint: proxy.endpoint,
    region: rgw.region,
    bucket,
    forcePathStyle: true,
    credentials: { accessKeyId: rgw.accessKeyId, secretAccessKey: rgw.secretAccessKey },
    logger,
    partSizeBytes: PART_BYTES,
    multipartThresholdBytes: PART_BYTES,
    retry: { maxAttempts: 4, backoff: { baseMs: 20, capMs: 100, jitter: 0 } },
    ...extra,
  });
  return { store, lines };
}

function localFile(bytes: number): { file: string; sha256: string; sizeBytes: number } {
  const data = randomBytes(bytes);
  const file = path.join(tmp.dir, `f${++seq}.bin`);
  writeFileSync(file, data);
  return { file, sha256: sha256Hex(data), sizeBytes: bytes };
}

/** Requests of `op` the proxy saw since `from` (an index into proxy.requests). */
function seen(op: S3Op, from: number): number {
  return proxy.requests.slice(from).filter((r) => r.op === op).length;
}

/**
 * The object in the bucket has exactly this content and nothing is left open, read directly from
 * the gateway (not through the proxy) by a plain SDK client, not by S3Store. (The AWS CLI would be
 * more independent still, but takes seconds per call on a busy 2-core machine; s3-resume uses it.)
 */
async function expectIntact(key: string, sha256: string, sizeBytes: number): Promise<void> {
  const got = await admin.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  const data = Buffer.from(await (got.Body as NonNullable<typeof got.Body>).transformToByteArray());
  expect({ sha256: sha256Hex(data), bytes: data.length }).toEqual({ sha256, bytes: sizeBytes });
  expect(got.Metadata?.sha256).toBe(sha256);
  expect(await openUploads()).toEqual([]);
}

async function openUploads(): Promise<string[]> {
  const page = await admin.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
  return (page.Uploads ?? []).map((u) => u.Key ?? '');
}

async function rejection(promise: Promise<unknown>): Promise<LecternError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!isLecternError(err)) throw new Error(`expected a LecternError, got ${String(err)}`);
  return err;
}

describe('retryable faults: retried with backoff, then the object is intact', () => {
  it('500 InternalError twice on a part', async () => {
    const { store, lines } = makeStore();
    const f = localFile(TWO_PARTS);
    const from = proxy.requests.length;
    proxy.addRule({ op: 'UploadPart', match: (r) => r.partNumber === 2, fault: { kind: 'status', status: 500, code: 'InternalError' }, times: 2 });
    await store.putFile('r/500.bin', f.file, f);
    expect(proxy.pendingRules()).toBe(0);
    expect(seen('UploadPart', from)).toBe(2 + 2);
    expect(lines.filter((l) => l.includes('UploadPart 2 of "r/500.bin" failed (InternalError 500); retrying'))).toHaveLength(2);
    await expectIntact('r/500.bin', f.sha256, f.sizeBytes);
    await store.stop();
  });

  it('503 SlowDown on a single PutObject', async () => {
    const { store, lines } = makeStore();
    const f = localFile(300_000);
    const from = proxy.requests.length;
    proxy.addRule({ op: 'PutObject', fault: { kind: 'status', status: 503, code: 'SlowDown', message: 'Please reduce your request rate.' }, times: 3 });
    await store.putFile('r/slowdown.bin', f.file, f);
    expect(seen('PutObject', from)).toBe(4);
    expect(lines.some((l) => l.includes('(SlowDown 503); retrying'))).toBe(true);
    await expectIntact('r/slowdown.bin', f.sha256, f.sizeBytes);
    await store.stop();
  });

  it('a connection reset in the middle of a part body', async () => {
    const { store, lines } = makeStore();
    const f = localFile(TWO_PARTS);
    const from = proxy.requests.length;
    proxy.addRule({ op: 'UploadPart', match: (r) => r.partNumber === 1, fault: { kind: 'reset', afterBodyBytes: 2 * MIB } });
    await store.putFile('r/reset.bin', f.file, f);
    expect(lines.some((l) => /UploadPart 1 of "r\/reset.bin" failed \((ECONNRESET|EPIPE)\); retrying/.test(l)), lines.join('\n')).toBe(true);
    // The cut part went again, whole; nothing else did.
    const sent = proxy.requests.slice(from).filter((r) => r.op === 'UploadPart').reduce((sum, r) => sum + r.forwardedBytes, 0);
    expect(sent).toBe(f.sizeBytes + 2 * MIB);
    await expectIntact('r/reset.bin', f.sha256, f.sizeBytes);
    await store.stop();
  });

  it('a reply held back past the idle timeout, and a download body that trickles past it', async () => {
    // Short enough to wait out here; the gateway's first multipart write can take longer, so only this store has it.
    const { store, lines } = makeStore({ requestTimeoutMs: 1_000 });
    await store.putBytes('r/slow.json', '{"slow":true}');
    proxy.addRule({ op: 'HeadObject', fault: { kind: 'stall', ms: 2_500 } });
    expect((await store.head('r/slow.json'))?.sha256).toBe(sha256Hex('{"slow":true}'));
    expect(lines.some((l) => l.includes('HeadObject "r/slow.json" failed (TimeoutError); retrying'))).toBe(true);

    const f = localFile(64 * 1024);
    await store.putFile('r/trickle.bin', f.file, f);
    proxy.addRule({ op: 'GetObject', fault: { kind: 'slowBody', chunkBytes: 16 * 1024, pauseMs: 2_000 } });
    const data = await store.getBytes('r/trickle.bin');
    expect(sha256Hex(data)).toBe(f.sha256);
    expect(lines.some((l) => l.includes('GetObject "r/trickle.bin" failed (TimeoutError); retrying'))).toBe(true);
    await store.stop();
  });

  it('a fault that outlasts the retries: a retryable error, the upload kept open, and the next attempt resumes it', async () => {
    const state = new MemoryMultipartState();
    const { store, lines } = makeStore({ multipartState: state });
    const f = localFile(2 * PART_BYTES + 100_000);
    proxy.addRule({ op: 'UploadPart', match: (r) => r.partNumber === 3, fault: { kind: 'status', status: 503, code: 'ServiceUnavailable' }, times: 100 });
    const err = await rejection(store.putFile('r/outage.bin', f.file, f));
    expect(err.code).toBe('STORE_WRITE_FAILED');
    expect(storeErrorClass(err)).toBe('retryable');
    expect(err.details.attempts).toBe(4);
    expect(err.message).toContain('still failing after 4 tries');
    // Kept for the next attempt: parts 1 and 2 stay on the server.
    expect(await openUploads()).toEqual(['r/outage.bin']);
    expect(state.openUploads).toBe(1);

    proxy.clearRules();
    const from = proxy.requests.length;
    await store.putFile('r/outage.bin', f.file, f);
    expect(lines.some((l) => l.includes('resuming the upload of "r/outage.bin": 2 of 3 parts already stored'))).toBe(true);
    expect(proxy.requests.slice(from).filter((r) => r.op === 'UploadPart').map((r) => r.partNumber)).toEqual([3]);
    expect(state.openUploads).toBe(0);
    await expectIntact('r/outage.bin', f.sha256, f.sizeBytes);
    await store.stop();
  });
});

describe('CompleteMultipartUpload replies that lie', () => {
  it('200 OK whose body is an <Error>: counted as a failure and completed again', async () => {
    const { store, lines } = makeStore();
    const f = localFile(TWO_PARTS);
    const from = proxy.requests.length;
    proxy.addRule({ op: 'CompleteMultipartUpload', fault: { kind: 'completeErrorBody', code: 'InternalError' } });
    await store.putFile('c/error-body.bin', f.file, f);
    expect(seen('CompleteMultipartUpload', from)).toBe(2);
    // The SDK turns this form into a 503 InternalError itself.
    expect(lines.some((l) => l.includes('CompleteMultipartUpload of "c/error-body.bin" failed (InternalError)'))).toBe(true);
    await expectIntact('c/error-body.bin', f.sha256, f.sizeBytes);
    await store.stop();
  });

  it('200 OK with an <Error> body followed by whitespace, which the SDK takes for success: HEAD finds no object, so Complete is sent again', async () => {
    const { store, lines } = makeStore();
    const f = localFile(TWO_PARTS);
    const from = proxy.requests.length;
    proxy.addRule({ op: 'CompleteMultipartUpload', fault: { kind: 'completeErrorBody', code: 'InternalError', trailing: '\n  \n' } });
    await store.putFile('c/error-body-ws.bin', f.file, f);
    expect(seen('CompleteMultipartUpload', from)).toBe(2);
    expect(lines.some((l) => l.includes('answered success, but the object is not there'))).toBe(true);
    await expectIntact('c/error-body-ws.bin', f.sha256, f.sizeBytes);
    await store.stop();
  });

  it('NoSuchUpload on a retried Complete after the first one succeeded but its reply was lost: HEAD confirms, nothing is sent again', async () => {
    const { store, lines } = makeStore();
    const f = localFile(TWO_PARTS);
    const from = proxy.requests.length;
    proxy.addRule({ op: 'CompleteMultipartUpload', fault: { kind: 'forwardThenFail', status: 500, code: 'InternalError' } });
    proxy.addRule({ op: 'CompleteMultipartUpload', fault: { kind: 'status', status: 404, code: 'NoSuchUpload', message: 'The specified upload does not exist.' } });
    await store.putFile('c/lost-reply.bin', f.file, f);
    expect(proxy.pendingRules()).toBe(0);
    expect(seen('CompleteMultipartUpload', from)).toBe(2);
    expect(seen('CreateMultipartUpload', from)).toBe(1);
    expect(proxy.requests.slice(from).filter((r) => r.op === 'UploadPart').reduce((s, r) => s + r.forwardedBytes, 0)).toBe(f.sizeBytes);
    expect(lines.some((l) => l.includes('answered NoSuchUpload, but the object is there with its sha256'))).toBe(true);
    await expectIntact('c/lost-reply.bin', f.sha256, f.sizeBytes);
    await store.stop();
  });

  it('NoSuchUpload on a part (the server dropped the upload): starts over with a new upload and leaves none open', async () => {
    const { store, lines } = makeStore();
    const f = localFile(TWO_PARTS);
    const from = proxy.requests.length;
    proxy.addRule({ op: 'UploadPart', match: (r) => r.partNumber === 2, fault: { kind: 'status', status: 404, code: 'NoSuchUpload' } });
    await store.putFile('c/dropped.bin', f.file, f);
    expect(seen('CreateMultipartUpload', from)).toBe(2);
    expect(lines.some((l) => l.includes('no longer knows the multipart upload of "c/dropped.bin" (NoSuchUpload); starting it over'))).toBe(true);
    // The first upload (still open on the real server: only the proxy said it was gone) was aborted.
    expect(seen('AbortMultipartUpload', from)).toBe(1);
    await expectIntact('c/dropped.bin', f.sha256, f.sizeBytes);
    await store.stop();
  });
});

describe('operator errors: a stable code, one request, no retries', () => {
  const cases = [
    { code: 'AccessDenied', status: 403, expected: 'STORE_ACCESS_DENIED', hint: 'grant it s3:ListBucket' },
    { code: 'InvalidAccessKeyId', status: 403, expected: 'STORE_ACCESS_DENIED', hint: 'does not know the access key id ending in' },
    { code: 'SignatureDoesNotMatch', status: 403, expected: 'STORE_ACCESS_DENIED', hint: 'the secret is wrong' },
    { code: 'NoSuchBucket', status: 404, expected: 'STORE_BUCKET_MISSING', hint: 'create it or fix storage.bucket' },
  ] as const;

  for (const c of cases) {
    it(`${c.code} on PutObject -> ${c.expected}`, async () => {
      const { store } = makeStore();
      const from = proxy.requests.length;
      proxy.addRule({ op: 'PutObject', fault: { kind: 'status', status: c.status, code: c.code }, times: 100 });
      const err = await rejection(store.putBytes('o/x.json', '{}'));
      expect(err.code).toBe(c.expected);
      expect(storeErrorClass(err)).toBe('operator');
      expect(err.message).toContain(c.hint);
      expect(err.message).not.toContain(rgw.secretAccessKey);
      expect(seen('PutObject', from)).toBe(1);
      await store.stop();
    });
  }

  it('AccessDenied on a part: not retried, and the upload is aborted so no parts stay on the server', async () => {
    const { store } = makeStore();
    const f = localFile(TWO_PARTS);
    const from = proxy.requests.length;
    proxy.addRule({ op: 'UploadPart', match: (r) => r.partNumber === 2, fault: { kind: 'status', status: 403, code: 'AccessDenied' }, times: 100 });
    const err = await rejection(store.putFile('o/denied.bin', f.file, f));
    expect(err.code).toBe('STORE_ACCESS_DENIED');
    expect(proxy.requests.slice(from).filter((r) => r.op === 'UploadPart').map((r) => r.partNumber)).toEqual([1, 2]);
    expect(seen('AbortMultipartUpload', from)).toBe(1);
    expect(await openUploads()).toEqual([]);
    expect(await store.head('o/denied.bin')).toBeUndefined();
    await store.stop();
  });

  it('AccessDenied while publishing: the publish job waits without spending an attempt instead of failing', async () => {
    const { store } = makeStore();
    const lectureId = ulid(Date.parse('2026-11-28T09:00:00.000Z'));
    const packageDir = path.join(tmp.dir, 'pkg', lectureId);
    mkdirSync(packageDir, { recursive: true });
    writeFileSync(path.join(packageDir, 'poster.jpg'), 'jpeg');
    writeFileSync(
      path.join(packageDir, 'lecture.json'),
      JSON.stringify({ schemaVersion: 1, lectureId, tier: 2, site: 'north', room: 'R1', title: 't', startedAt: '2026-11-28T09:00:00.000Z', durationSeconds: 1, files: [{ path: 'poster.jpg', bytes: 4, sha256: sha256Hex('jpeg') }] }),
    );
    const handler = createPublishHandler({ store, storePrefix: 'p', packageDir: () => packageDir });
    const from = proxy.requests.length;
    // HEAD replies have no body: the SDK knows only "403 Forbidden", which is an operator error too.
    proxy.addRule({ op: 'HeadObject', fault: { kind: 'status', status: 403, code: 'AccessDenied' }, times: 100 });
    const { logger } = createMemoryLogger();
    const ctx = { job: { id: 1 }, signal: new AbortController().signal, logger, extendLease: () => undefined } as unknown as JobContext;
    const outcome = await handler.run({ lectureId }, ctx);
    expect(outcome).toMatchObject({ type: 'retryAfter', delayMs: OPERATOR_RETRY_MS });
    expect((outcome as { reason: string }).reason).toMatch(/^STORE_ACCESS_DENIED: .*Forbidden 403/);
    expect(seen('HeadObject', from)).toBe(1);
    expect(seen('PutObject', from)).toBe(0);
    await store.stop();
  });

  it('RequestTimeTooSkewed -> STORE_CLOCK_SKEW with the skew measured from the reply, not retried', async () => {
    const { store } = makeStore();
    const from = proxy.requests.length;
    const serverNow = new Date(Date.now() + 20 * 60_000);
    proxy.addRule({
      op: 'PutObject',
      fault: {
        kind: 'status',
        status: 403,
        code: 'RequestTimeTooSkewed',
        message: 'The difference between the request time and the current time is too large.',
        headers: { date: serverNow.toUTCString() },
        extraXml: `<RequestTime>${new Date().toISOString()}</RequestTime><ServerTime>${serverNow.toISOString()}</ServerTime><MaxAllowedSkewMilliseconds>900000</MaxAllowedSkewMilliseconds>`,
      },
      times: 100,
    });
    const err = await rejection(store.putBytes('o/clock.json', '{}'));
    expect(err.code).toBe('STORE_CLOCK_SKEW');
    expect(storeErrorClass(err)).toBe('clock');
    const skewMs = err.details.skewMs as number;
    expect(Math.abs(skewMs - 20 * 60_000)).toBeLessThan(5_000);
    // The Date header has whole seconds.
    expect(err.message).toMatch(/this PC's clock is (20 min \d|19 min 5\d) s behind the storage's clock/);
    expect(seen('PutObject', from)).toBe(1);
    await store.stop();
  });
});

/**
 * A publish that is given up aborts the lecture's unfinished multipart uploads (issue 5: "a
 * given-up upload is aborted so no orphan parts stay on the server"): when the queue moves it to
 * the dead letter (its last attempt failed, or crashed workers abandoned it too often) and when
 * an operator cancels it (`lectern queue cancel`). The fault proxy fails a part so that an upload
 * stays open the way a transient failure leaves it; the state database is a real SQLite file.
 * What the bucket holds is read from the gateway directly, not through the store.
 */

interface AbandonRig {
  bucket: string;
  db: Db;
  uploads: UploadsRepo;
  store: S3Store;
  layout: LocalLayout;
  lectureId: string;
  /** The lecture's big file: two parts, the second of which the proxy fails once. */
  bigKey: string;
  smallPath: string;
}

async function abandonRig(): Promise<AbandonRig> {
  const bucket = await createTestBucket(admin, 'abandon');
  const layout = new LocalLayout(path.join(tmp.dir, `data-${++seq}`));
  mkdirSync(layout.dataDir, { recursive: true });
  const db = openDatabase(layout.dbPath, { logger: silentLogger });
  const uploads = new UploadsRepo(db);
  const store = new S3Store({
    endpoint: proxy.endpoint,
    region: rgw.region,
    bucket,
    forcePathStyle: true,
    credentials: { accessKeyId: rgw.accessKeyId, secretAccessKey: rgw.secretAccessKey },
    logger: silentLogger,
    partSizeBytes: PART_BYTES,
    multipartThresholdBytes: PART_BYTES,
    multipartState: uploads,
    // No retries in the store: one failed part is a transient failure handed to the queue.
    retry: { maxAttempts: 1 },
  });
  const lectureId = ulid();
  const dir = layout.packageDir(lectureId);
  const files = [
    { path: 'hls/720p/seg_00001.m4s', data: randomBytes(PART_BYTES + 100_000) },
    { path: 'hls/720p/seg_00002.m4s', data: randomBytes(10_000) },
  ];
  for (const f of files) {
    mkdirSync(path.dirname(path.join(dir, f.path)), { recursive: true });
    writeFileSync(path.join(dir, f.path), f.data);
  }
  const startedAt = '2026-03-02T08:15:00.000Z';
  const manifest = {
    schemaVersion: 1,
    lectureId,
    tier: 2,
    site: 'main',
    room: 'r101',
    title: 'Abandoned',
    startedAt,
    durationSeconds: 60,
    createdAt: startedAt,
    files: files.map((f) => ({ path: f.path, bytes: f.data.length, sha256: sha256Hex(f.data) })),
  };
  writeFileSync(path.join(dir, 'lecture.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  const bigKey = `campus/lectures/main/r101/2026/03/02/${lectureId}/hls/720p/seg_00001.m4s`;
  return { bucket, db, uploads, store, layout, lectureId, bigKey, smallPath: path.join(dir, files[1]?.path ?? '') };
}

async function openUploadIds(bucket: string): Promise<string[]> {
  const page = await admin.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
  return (page.Uploads ?? []).map((u) => u.UploadId ?? '');
}

function publishHandler(s: AbandonRig) {
  return createPublishHandler({ store: s.store, storePrefix: 'campus', packageDir: (id) => s.layout.packageDir(id) });
}

/** Runs the publish once with part 2 failing (500): the job waits for a retry with the upload open. */
async function leaveUploadOpen(s: AbandonRig, queue: JobQueue, worker: Worker): Promise<string> {
  proxy.addRule({ op: 'UploadPart', match: (r) => r.partNumber === 2, fault: { kind: 'status', status: 500, code: 'InternalError' } });
  queue.enqueue(PUBLISH_JOB, { lectureId: s.lectureId }, { key: s.lectureId, maxAttempts: 1 });
  worker.kick();
  await waitForState(queue, s.lectureId, (j) => j.state === 'queued' && j.lastError !== null);
  const [open] = s.uploads.list();
  expect(open?.key).toBe(s.bigKey);
  const uploadId = open?.uploadId ?? '';
  expect(await openUploadIds(s.bucket)).toEqual([uploadId]);
  return uploadId;
}

async function waitForState(queue: JobQueue, key: string, ok: (job: NonNullable<ReturnType<JobQueue['findByKey']>>) => boolean): Promise<void> {
  await waitFor(() => {
    const job = queue.findByKey(PUBLISH_JOB, key);
    return job && ok(job) ? true : undefined;
  }, { timeoutMs: 30_000, intervalMs: 20, what: `the publish job of ${key}` });
}

function aborted(uploadId: string): number {
  return proxy.requests.filter((r) => r.op === 'AbortMultipartUpload' && r.query.get('uploadId') === uploadId && r.status === 204).length;
}

describe('a publish given up aborts its open multipart uploads', () => {
  it('when its last attempt fails, the dead-letter hook aborts the upload it left open and forgets it', async () => {
    const s = await abandonRig();
    // The retry after a transient failure is a minute away: the queue's clock is the test's.
    let clockMs = Date.now();
    const queue = new JobQueue({ db: s.db, logger: silentLogger, now: () => clockMs });
    const worker = new Worker({ queue, logger: silentLogger, owner: 'test:dead', pollIntervalMs: 20 }).register(publishHandler(s));
    await worker.start();
    try {
      const uploadId = await leaveUploadOpen(s, queue, worker);
      // The package is damaged before the retry (a file changed on disk): that attempt fails for
      // good and was the job's last.
      writeFileSync(s.smallPath, randomBytes(10_001));
      clockMs += 61 * 60_000;
      worker.kick();
      await worker.runUntilIdle({ timeoutMs: 30_000 });
      expect(queue.findByKey(PUBLISH_JOB, s.lectureId)?.state).toBe('dead');
      expect(aborted(uploadId)).toBe(1);
      expect(await openUploadIds(s.bucket)).toEqual([]);
      expect(s.uploads.list()).toEqual([]);
    } finally {
      await worker.stop();
      await s.store.stop();
      closeDatabase(s.db);
    }
  });

  it('when crashed workers used up its attempts, the worker that reclaims it aborts the upload', async () => {
    const s = await abandonRig();
    let clockMs = Date.now();
    const queue = new JobQueue({ db: s.db, logger: silentLogger, now: () => clockMs });
    const first = new Worker({ queue, logger: silentLogger, owner: 'test:first', pollIntervalMs: 20 }).register(publishHandler(s));
    await first.start();
    const uploadId = await leaveUploadOpen(s, queue, first);
    await first.stop();
    // The next attempt is claimed by a worker that then dies (kill -9): its lease is all that is left.
    clockMs += 61 * 60_000;
    expect(queue.claim([PUBLISH_JOB], 'test:crashed')?.attempts).toBe(1);
    const second = new Worker({ queue, logger: silentLogger, owner: 'test:second', pollIntervalMs: 20, reclaimAllOnStart: true }).register(publishHandler(s));
    await second.start();
    try {
      await second.runUntilIdle({ timeoutMs: 30_000 });
      expect(queue.findByKey(PUBLISH_JOB, s.lectureId)?.state).toBe('dead');
      expect(aborted(uploadId)).toBe(1);
      expect(await openUploadIds(s.bucket)).toEqual([]);
      expect(s.uploads.list()).toEqual([]);
    } finally {
      await second.stop();
      await s.store.stop();
      closeDatabase(s.db);
    }
  });

  it('`lectern queue cancel` of a waiting publish aborts its upload, with the recorded UploadId', async () => {
    const s = await abandonRig();
    const queue = new JobQueue({ db: s.db, logger: silentLogger });
    const worker = new Worker({ queue, logger: silentLogger, owner: 'test:cancel', pollIntervalMs: 20 }).register(publishHandler(s));
    await worker.start();
    let uploadId: string;
    try {
      uploadId = await leaveUploadOpen(s, queue, worker);
    } finally {
      // The daemon may run meanwhile; stopped here only so it cannot pick the job up again.
      await worker.stop();
      await s.store.stop();
    }
    const secret = (name: string, value: string): string => {
      const file = path.join(tmp.dir, `${name}-${seq}`);
      writeFileSync(file, value, { mode: 0o600 });
      return file;
    };
    const config = configSchema.parse({
      agent: { dataDir: s.layout.dataDir },
      storage: {
        kind: 's3',
        endpoint: proxy.endpoint,
        bucket: s.bucket,
        prefix: 'campus',
        accessKeyIdFile: secret('key', rgw.accessKeyId),
        secretAccessKeyFile: secret('secret', rgw.secretAccessKey),
      },
    });
    const out: string[] = [];
    const err: string[] = [];
    const program = new Command('lectern').exitOverride();
    registerQueueCommands(program, { out: (t) => out.push(t), err: (t) => err.push(t) }, () => config);
    const jobId = queue.findByKey(PUBLISH_JOB, s.lectureId)?.id ?? 0;
    try {
      await program.parseAsync(['node', 'lectern', 'queue', 'cancel', String(jobId)]);
      expect(err).toEqual([]);
      expect(out.join('\n')).toContain('Aborted 1 unfinished upload of the lecture');
      expect(queue.get(jobId)?.state).toBe('cancelled');
      expect(aborted(uploadId)).toBe(1);
      expect(await openUploadIds(s.bucket)).toEqual([]);
      expect(s.uploads.list()).toEqual([]);
    } finally {
      process.exitCode = undefined;
      closeDatabase(s.db);
    }
  });
});
