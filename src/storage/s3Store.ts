import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, promises as fs, type Stats } from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
  type GetObjectCommandOutput,
} from '@aws-sdk/client-s3';
import type { Logger } from '../log/logger.js';
import { backoffDelayMs, type BackoffPolicy } from '../util/backoff.js';
import { isLecternError, LecternError, type ErrorCode } from '../util/errors.js';
import { redactSecrets, redactUrl } from '../util/redact.js';
import { sleep } from '../util/sleep.js';
import { classifyS3Error, describeSkew, errorName } from './s3Errors.js';
import {
  choosePartSize,
  bareEtag,
  MemoryMultipartState,
  MIN_PART_BYTES,
  MultipartUploader,
  planBytes,
  planUpload,
  UPLOAD_READ_CHUNK_BYTES,
  sendThrottled,
  type BodyThrottle,
  type MultipartState,
  type MultipartUpload,
  type UploadPlan,
} from './s3Multipart.js';
import { assertValidKey, assertValidPrefix, contentTypeFor, isValidKey, type ListOptions, type PutFileOptions, type Store, type StoreObjectInfo } from './store.js';

/**
 * The Store port over an S3-compatible bucket (AWS S3, Ceph RGW, MinIO...).
 *
 * Every object carries its sha256 as metadata (x-amz-meta-sha256), so head() answers the
 * publish protocol's "is this exact file already there?" without downloading it, and downloads
 * are checked against it. putFile checks the local file's sha256 before sending anything, sends
 * each request body with Content-MD5 (the server refuses bytes that changed since that check),
 * and reads the object back with HEAD afterwards; on any difference the key is deleted, so a bad
 * object never stays under its name.
 *
 * Checksums are sent only when an operation requires them ('WHEN_REQUIRED'): the SDK's default
 * streaming trailer checksums (aws-chunked) are refused by Ceph RGW (411) and several other
 * S3-compatible servers. Our own Content-MD5 replaces them.
 *
 * Failures are sorted by s3Errors.classifyS3Error. Retryable ones (5xx, SlowDown, resets,
 * timeouts) are retried here, request by request, with capped backoff; the SDK's own retries are
 * off, because it cannot retry a streamed body anyway and two retry layers multiply. Operator
 * errors (AccessDenied, NoSuchBucket, InvalidAccessKeyId, SignatureDoesNotMatch) are thrown at
 * once as STORE_ACCESS_DENIED / STORE_BUCKET_MISSING, and a skewed clock as STORE_CLOCK_SKEW with
 * the measured skew; every LecternError thrown carries `details.errorClass`.
 *
 * Large files go up in parts whose progress is kept in the injected MultipartState (SQLite in
 * the agent): a failed upload is kept open when the failure is transient, so the next attempt —
 * in this process or after a restart — sends only the parts the server does not hold. An upload
 * that can never succeed (the local bytes changed, the server refused the part list) is aborted.
 */

export interface S3StoreOptions {
  /** e.g. https://s3.example.edu; absent for AWS itself. */
  endpoint?: string;
  region: string;
  bucket: string;
  /** true: http://host/bucket/key (Ceph, MinIO, IP addresses); false: http://bucket.host/key. */
  forcePathStyle: boolean;
  credentials: { accessKeyId: string; secretAccessKey: string };
  logger: Logger;
  /**
   * A request fails when its connection stays idle this long. Not a limit on the whole request:
   * an 8 MiB part takes half a minute on a 2 Mbit/s classroom uplink, and that is fine.
   */
  requestTimeoutMs?: number;
  /** Files larger than this go up in parts. */
  multipartThresholdBytes?: number;
  partSizeBytes?: number;
  /** Progress of multipart uploads (in memory unless given). */
  multipartState?: MultipartState;
  /** Retries of retryable failures, per request. */
  retry?: { maxAttempts?: number; backoff?: BackoffPolicy };
  /** Paces every body sent (the bandwidth policy); absent: full speed. */
  throttle?: BodyThrottle;
}

const DEFAULT_REQUEST_TIMEOUT_MS = 60_000;
const CONNECT_TIMEOUT_MS = 10_000;
const DEFAULT_MULTIPART_THRESHOLD_BYTES = 16 * 1024 * 1024;
const DEFAULT_PART_SIZE_BYTES = 8 * 1024 * 1024;
/**
 * Single-part files up to this size are read into memory once: an HLS segment (4–6 s of the top
 * rendition) fits, and the daemon never holds more than this per upload.
 */
const IN_MEMORY_MAX_BYTES = 2 * 1024 * 1024;
const LIST_PAGE_KEYS = 1000;
const SHA256_HEX = /^[0-9a-f]{64}$/;
// Six tries over about half a minute ride out a gateway restart or a burst of SlowDown; longer
// outages are the queue's business (the job retries later and resumes from the confirmed parts).
const DEFAULT_RETRY_ATTEMPTS = 6;
const DEFAULT_RETRY_BACKOFF: BackoffPolicy = { baseMs: 500, capMs: 15_000, jitter: 0.5 };
// A NoSuchUpload mid-upload means the server dropped it (expired, aborted by someone); start over,
// but not forever.
const MAX_UPLOAD_RESTARTS = 2;

export class S3Store implements Store {
  readonly description: string;
  readonly #o: S3StoreOptions;
  readonly #log: Logger;
  readonly #client: S3Client;
  readonly #bucket: string;
  readonly #threshold: number;
  readonly #partSize: number;
  readonly #multipart: MultipartUploader;
  readonly #retryAttempts: number;
  readonly #backoff: BackoffPolicy;

  constructor(options: S3StoreOptions) {
    this.#o = options;
    this.#bucket = options.bucket;
    this.#threshold = options.multipartThresholdBytes ?? DEFAULT_MULTIPART_THRESHOLD_BYTES;
    this.#partSize = options.partSizeBytes ?? DEFAULT_PART_SIZE_BYTES;
    this.#retryAttempts = Math.max(1, options.retry?.maxAttempts ?? DEFAULT_RETRY_ATTEMPTS);
    this.#backoff = options.retry?.backoff ?? DEFAULT_RETRY_BACKOFF;
    if (this.#partSize < MIN_PART_BYTES) throw new LecternError('INTERNAL', `S3 parts must be at least ${MIN_PART_BYTES} bytes, got ${this.#partSize}`);
    const where = options.endpoint ? redactUrl(options.endpoint).replace(/\/+$/, '') : `aws:${options.region}`;
    this.description = `s3:${where}/${options.bucket}`;
    this.#log = options.logger.child({ scope: 's3-store' });
    // The SDK pin is exact, so its notice that releases after January 2027 need Node 22 is for
    // whoever bumps it (DESIGN), not for the operator reading the journal.
    process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
    const sdkLog = this.#log.child({ scope: 'aws-sdk' });
    this.#client = new S3Client({
      region: options.region,
      ...(options.endpoint ? { endpoint: options.endpoint } : {}),
      forcePathStyle: options.forcePathStyle,
      credentials: { accessKeyId: options.credentials.accessKeyId, secretAccessKey: options.credentials.secretAccessKey },
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      // Our own retries (#retrying), which recreate streamed bodies and know the error classes.
      maxAttempts: 1,
      requestHandler: { connectionTimeout: CONNECT_TIMEOUT_MS, socketTimeout: options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS },
      // The SDK's own warnings (e.g. "a streaming request cannot be retried") go to our log, not to the console.
      logger: { trace: () => undefined, debug: () => undefined, info: () => undefined, warn: (...m: unknown[]) => sdkLog.debug(m.map(String).join(' ')), error: (...m: unknown[]) => sdkLog.debug(m.map(String).join(' ')) },
    });
    this.#multipart = new MultipartUploader({ client: this.#client, bucket: this.#bucket, state: options.multipartState ?? new MemoryMultipartState(), logger: options.logger, throttle: options.throttle });
  }

  /**
   * Checks that the bucket exists and the credentials may use it, so a wrong key or bucket
   * name is an operator error at start, not a failure at the first upload hours later. An
   * unreachable server is only a warning: the room must still record while the uplink is down,
   * and publish jobs retry until it is back.
   */
  async start(): Promise<void> {
    try {
      await this.#client.send(new HeadBucketCommand({ Bucket: this.#bucket }));
      return;
    } catch (err) {
      if (!(err instanceof S3ServiceException)) {
        this.#log.warn(`cannot reach the storage at start (${this.#safe(errorName(err))}); lectures are published once it answers`, { store: this.description });
        return;
      }
      throw await this.#startError(err);
    }
  }

  async stop(): Promise<void> {
    this.#client.destroy();
  }

  async putFile(key: string, localPath: string, opts: PutFileOptions): Promise<void> {
    assertValidKey(key);
    let local: Stats;
    try {
      local = await fs.stat(localPath);
    } catch (err) {
      throw this.#error('STORE_WRITE_FAILED', `cannot read the local file ${localPath} to store as "${key}"`, err, key);
    }
    if (local.size !== opts.sizeBytes) {
      await this.#discard(key);
      throw new LecternError('CHECKSUM_MISMATCH', `the local file ${localPath} has ${local.size} bytes, expected ${opts.sizeBytes}; "${key}" was not stored`, {
        details: { key, localPath, sizeBytes: local.size, expectedBytes: opts.sizeBytes, errorClass: 'content' },
      });
    }
    const multipart = local.size > this.#threshold;
    const partSize = multipart ? choosePartSize(local.size, this.#partSize) : Infinity;
    let plan: UploadPlan;
    // Small files (HLS segments, playlists) are read once and sent from memory: one read instead
    // of two, and the bytes checked are the bytes sent. Large ones stream, part by part.
    let bytes: Buffer | undefined;
    try {
      if (!multipart && local.size <= IN_MEMORY_MAX_BYTES) {
        bytes = await fs.readFile(localPath);
        plan = planBytes(bytes);
      } else {
        plan = await planUpload(localPath, partSize);
      }
    } catch (err) {
      throw this.#error('STORE_WRITE_FAILED', `cannot read the local file ${localPath} to store as "${key}"`, err, key);
    }
    // Checked before anything is sent: a bad local file never reaches the bucket.
    if (plan.sizeBytes !== opts.sizeBytes || plan.sha256 !== opts.sha256) {
      await this.#discard(key);
      throw new LecternError('CHECKSUM_MISMATCH', `the local file ${localPath} has sha256 ${plan.sha256} (${plan.sizeBytes} bytes), expected ${opts.sha256} (${opts.sizeBytes} bytes); "${key}" was not stored`, {
        details: { key, localPath, sha256: plan.sha256, expectedSha256: opts.sha256, errorClass: 'content' },
      });
    }
    const contentType = opts.contentType ?? contentTypeFor(key);
    let provenByReply = false;
    try {
      if (multipart) await this.#putMultipart(key, localPath, plan, partSize, contentType);
      else provenByReply = await this.#retrying(`PutObject "${key}"`, () => this.#putSingle(key, bytes ?? localPath, plan, contentType));
    } catch (err) {
      if (errorName(err) === 'BadDigest') {
        await this.#discard(key);
        throw new LecternError('CHECKSUM_MISMATCH', `the local file ${localPath} changed while it was uploaded as "${key}" (the storage answered BadDigest); "${key}" was not stored`, {
          cause: err,
          details: { key, localPath, errorClass: 'content' },
        });
      }
      throw this.#error('STORE_WRITE_FAILED', `cannot upload ${localPath} as "${key}" to ${this.description}`, err, key);
    }
    if (!provenByReply) await this.#verify(key, localPath, opts);
  }

  async putBytes(key: string, data: Uint8Array | string, opts?: { contentType?: string }): Promise<void> {
    assertValidKey(key);
    const body = typeof data === 'string' ? Buffer.from(data, 'utf8') : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    const md5 = createHash('md5').update(body).digest('base64');
    const sha256 = createHash('sha256').update(body).digest('hex');
    try {
      await this.#retrying(`PutObject "${key}"`, async () => {
        // Counted against the rate, never paused: these are small (manifests, pointers, heartbeats).
        await this.#o.throttle?.charge(body.length);
        return this.#client.send(
          new PutObjectCommand({
            Bucket: this.#bucket,
            Key: key,
            Body: body,
            ContentLength: body.length,
            ContentMD5: md5,
            ContentType: opts?.contentType ?? contentTypeFor(key),
            Metadata: { sha256 },
          }),
        );
      });
    } catch (err) {
      throw this.#error('STORE_WRITE_FAILED', `cannot write "${key}" to ${this.description}`, err, key);
    }
  }

  async head(key: string): Promise<StoreObjectInfo | undefined> {
    assertValidKey(key);
    try {
      return await this.#retrying(`HeadObject "${key}"`, async () => {
        try {
          const res = await this.#client.send(new HeadObjectCommand({ Bucket: this.#bucket, Key: key }));
          const sha256 = res.Metadata?.sha256;
          return {
            key,
            sizeBytes: res.ContentLength ?? 0,
            ...(sha256 !== undefined && SHA256_HEX.test(sha256) ? { sha256 } : {}),
            ...(res.LastModified ? { modifiedMs: res.LastModified.getTime() } : {}),
          };
        } catch (err) {
          if (isNotFound(err)) return undefined;
          throw err;
        }
      });
    } catch (err) {
      throw this.#error('STORE_READ_FAILED', `cannot look up "${key}" in ${this.description}`, err, key);
    }
  }

  async getBytes(key: string): Promise<Buffer> {
    assertValidKey(key);
    const { res, data } = await this.#retrying(`GetObject "${key}"`, async () => {
      const res = await this.#get(key);
      return { res, data: Buffer.from(await bodyOf(res).transformToByteArray()) };
    }).catch((err: unknown) => {
      throw this.#error('STORE_READ_FAILED', `cannot read "${key}" from ${this.description}`, err, key);
    });
    this.#checkDownload(key, res, data.length, createHash('sha256').update(data).digest('hex'));
    return data;
  }

  async getToFile(key: string, localPath: string): Promise<void> {
    assertValidKey(key);
    const target = path.resolve(localPath);
    const dir = path.dirname(target);
    // Written beside the target and renamed over it, so a crash never leaves a torn download.
    const tmp = path.join(dir, `.${path.basename(target).slice(0, 200)}.tmp-${randomBytes(6).toString('hex')}`);
    try {
      await fs.mkdir(dir, { recursive: true });
      const { res, bytes, sha256 } = await this.#retrying(`GetObject "${key}"`, async () => {
        const res = await this.#get(key);
        const hash = createHash('sha256');
        let bytes = 0;
        await pipeline(
          bodyOf(res) as unknown as Readable,
          async function* (source: AsyncIterable<Buffer>) {
            for await (const chunk of source) {
              hash.update(chunk);
              bytes += chunk.length;
              yield chunk;
            }
          },
          // 'w': a retry after a body cut short starts the temp file afresh.
          createWriteStream(tmp, { flags: 'w' }),
        );
        return { res, bytes, sha256: hash.digest('hex') };
      });
      this.#checkDownload(key, res, bytes, sha256);
      const fh = await fs.open(tmp, 'r');
      try {
        await fh.sync();
      } finally {
        await fh.close();
      }
      await fs.rename(tmp, target);
      await syncDir(dir);
    } catch (err) {
      await fs.rm(tmp, { force: true }).catch(() => undefined);
      throw this.#error('STORE_READ_FAILED', `cannot copy "${key}" from ${this.description} to ${localPath}`, err, key);
    }
  }

  async list(prefix: string, opts: ListOptions = {}): Promise<StoreObjectInfo[]> {
    assertValidPrefix(prefix);
    const limit = opts.limit;
    if (limit !== undefined && (!Number.isInteger(limit) || limit < 0)) {
      throw new LecternError('INTERNAL', `list limit must be a non-negative integer, got ${limit}`);
    }
    const out: StoreObjectInfo[] = [];
    let token: string | undefined;
    // S3 lists in UTF-8 byte order, which for the ASCII-only keys we allow is plain string order.
    while (limit === undefined || out.length < limit) {
      let page;
      try {
        const maxKeys = limit === undefined ? LIST_PAGE_KEYS : Math.min(LIST_PAGE_KEYS, limit - out.length);
        const from = token;
        page = await this.#retrying(`ListObjectsV2 "${prefix}"`, () =>
          this.#client.send(
            new ListObjectsV2Command({
              Bucket: this.#bucket,
              Prefix: prefix,
              MaxKeys: maxKeys,
              ...(from ? { ContinuationToken: from } : opts.startAfter !== undefined ? { StartAfter: opts.startAfter } : {}),
            }),
          ),
        );
      } catch (err) {
        throw this.#error('STORE_READ_FAILED', `cannot list "${prefix}" in ${this.description}`, err);
      }
      for (const object of page.Contents ?? []) {
        // Objects someone else put there under names no key can have are not ours to address.
        if (!object.Key || !isValidKey(object.Key)) continue;
        out.push({ key: object.Key, sizeBytes: object.Size ?? 0, ...(object.LastModified ? { modifiedMs: object.LastModified.getTime() } : {}) });
      }
      if (!page.IsTruncated || !page.NextContinuationToken) break;
      token = page.NextContinuationToken;
    }
    return limit === undefined ? out : out.slice(0, limit);
  }

  async delete(key: string): Promise<void> {
    assertValidKey(key);
    try {
      // One key at a time: DeleteObjects needs a checksum header some servers refuse (SDK #6819).
      await this.#retrying(`DeleteObject "${key}"`, async () => {
        try {
          await this.#client.send(new DeleteObjectCommand({ Bucket: this.#bucket, Key: key }));
        } catch (err) {
          if (!isNotFound(err)) throw err;
        }
      });
    } catch (err) {
      throw this.#error('STORE_WRITE_FAILED', `cannot delete "${key}" in ${this.description}`, err, key);
    }
  }

  async abortUploads(prefix: string): Promise<number> {
    assertValidPrefix(prefix);
    let aborted: number;
    try {
      aborted = await this.#retrying(`ListMultipartUploads "${prefix}"`, () => this.#multipart.abortUnder(prefix));
    } catch (err) {
      throw this.#error('STORE_WRITE_FAILED', `cannot abort the unfinished uploads under "${prefix}" in ${this.description}`, err);
    }
    if (aborted > 0) this.#log.info(`aborted ${aborted} unfinished multipart upload(s) under "${prefix}"`);
    return aborted;
  }

  /**
   * Runs one request (`send` must build it afresh: a streamed body can be read only once) and
   * retries it while it fails retryably, with capped backoff. Anything else is thrown at once:
   * an operator error retried would only hammer the server.
   */
  async #retrying<T>(what: string, send: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await send();
      } catch (err) {
        const info = classifyS3Error(err);
        if (info.cls !== 'retryable' || attempt >= this.#retryAttempts) {
          if (info.cls === 'retryable') (err as { lecternAttempts?: number }).lecternAttempts = attempt;
          throw err;
        }
        const delayMs = backoffDelayMs(attempt, this.#backoff);
        this.#log.info(`${what} failed (${this.#safe(info.name)}${info.httpStatus ? ` ${info.httpStatus}` : ''}); retrying in ${delayMs} ms (attempt ${attempt + 1} of ${this.#retryAttempts})`);
        await sleep(delayMs);
      }
    }
  }

  /**
   * One PutObject. True when the reply proves what was stored: the ETag of a single-part object
   * is the MD5 of its bytes, which the server has checked against our Content-MD5; the object's
   * metadata came in the same request. Anything else (no ETag, a server that computes it another
   * way, a 200 whose body was an error) leaves the proof to a HEAD, as for multipart objects.
   * Measured: the HEAD was the one request lectern sent per small file beyond the SDK's uploader.
   */
  async #putSingle(key: string, content: Buffer | string, plan: UploadPlan, contentType: string): Promise<boolean> {
    const part = plan.parts[0];
    if (!part) throw new LecternError('INTERNAL', `no upload plan for "${key}"`);
    const put = (body: Readable | Buffer, abortSignal?: AbortSignal) =>
      this.#client.send(
        new PutObjectCommand({
          Bucket: this.#bucket,
          Key: key,
          // A stream with its length goes as a plain body; the bytes past the checked size are never sent.
          Body: body,
          ContentLength: plan.sizeBytes,
          ContentMD5: part.md5Base64,
          ContentType: contentType,
          Metadata: { sha256: plan.sha256 },
        }),
        abortSignal ? { abortSignal } : {},
      );
    const reply =
      plan.sizeBytes === 0
        ? await put(Buffer.alloc(0))
        : await sendThrottled(
            this.#o.throttle,
            { key, sizeBytes: plan.sizeBytes },
            () => (typeof content === 'string' ? createReadStream(content, { start: 0, end: plan.sizeBytes - 1, highWaterMark: UPLOAD_READ_CHUNK_BYTES }) : content),
            put,
          );
    const md5Hex = Buffer.from(part.md5Base64, 'base64').toString('hex');
    return typeof reply.ETag === 'string' && bareEtag(reply.ETag) === md5Hex;
  }

  /**
   * Resumes the open upload of this content (the server's part list decides which parts are
   * done) or starts one, sends the missing parts and completes it. A NoSuchUpload means the
   * server no longer has the upload: if the object is already there with our size and sha256, an
   * earlier Complete did succeed; otherwise the upload starts over.
   */
  async #putMultipart(key: string, localPath: string, plan: UploadPlan, partSizeBytes: number, contentType: string): Promise<void> {
    const started = Date.now();
    for (let restarts = 0; ; restarts++) {
      const resumed = await this.#retrying(`ListParts "${key}"`, () => this.#multipart.resume(key, plan, partSizeBytes));
      if (resumed.kind === 'gone' && (await this.#holds(key, plan))) {
        this.#log.info(`"${key}" was completed before the last restart; nothing to send`, { uploadId: resumed.uploadId });
        return;
      }
      let upload: MultipartUpload;
      const done = new Set<number>();
      if (resumed.kind === 'resumed') {
        upload = resumed.upload;
        for (const p of resumed.confirmed) done.add(p.partNumber);
        const notes = [resumed.adopted > 0 ? `${resumed.adopted} found on the server` : '', resumed.dropped > 0 ? `${resumed.dropped} missing there, sent again` : ''].filter(Boolean);
        this.#log.info(`resuming the upload of "${key}": ${done.size} of ${plan.parts.length} parts already stored${notes.length > 0 ? ` (${notes.join(', ')})` : ''}`, { uploadId: upload.uploadId });
      } else {
        upload = await this.#retrying(`CreateMultipartUpload "${key}"`, () => this.#multipart.create(key, { sizeBytes: plan.sizeBytes, sha256: plan.sha256, partSizeBytes, contentType }));
      }
      try {
        for (const part of plan.parts) {
          if (done.has(part.partNumber)) continue;
          await this.#retrying(`UploadPart ${part.partNumber} of "${key}"`, () => this.#multipart.uploadPart(upload, localPath, part));
        }
        await this.#complete(upload, plan);
      } catch (err) {
        const cls = classifyS3Error(err).cls;
        if (cls === 'noSuchUpload' && restarts < MAX_UPLOAD_RESTARTS) {
          this.#log.warn(`the storage no longer knows the multipart upload of "${key}" (NoSuchUpload); starting it over`, { uploadId: upload.uploadId });
          await this.#multipart.finish(upload);
          continue;
        }
        // A transient failure keeps the upload and its parts for the next attempt; one that can
        // never succeed must not leave parts on the server, where they are billed and invisible.
        if (cls !== 'retryable' && cls !== 'clock') await this.#multipart.abort(upload);
        throw err;
      }
      const seconds = (Date.now() - started) / 1000;
      this.#log.debug(`uploaded "${key}" in ${plan.parts.length} parts`, { bytes: plan.sizeBytes, seconds: seconds.toFixed(2) });
      return;
    }
  }

  /**
   * CompleteMultipartUpload, believed only when HEAD shows the object with our size and sha256:
   * a 200 reply may carry an error the SDK does not recognise, and a NoSuchUpload on a retried
   * Complete may mean the first one succeeded and only its reply was lost.
   */
  async #complete(upload: MultipartUpload, plan: UploadPlan): Promise<void> {
    const key = upload.key;
    for (let attempt = 1; ; attempt++) {
      let failure: unknown;
      try {
        await this.#multipart.complete(upload, plan.parts.length);
      } catch (err) {
        failure = err;
      }
      const cls = failure === undefined ? undefined : classifyS3Error(failure).cls;
      if (cls !== undefined && cls !== 'retryable' && cls !== 'noSuchUpload') throw failure;
      if (cls === undefined || cls === 'noSuchUpload') {
        if (await this.#holds(key, plan)) {
          if (cls === 'noSuchUpload') this.#log.info(`CompleteMultipartUpload of "${key}" answered NoSuchUpload, but the object is there with its sha256: an earlier Complete succeeded`);
          await this.#multipart.finish(upload);
          return;
        }
        if (cls === 'noSuchUpload') throw failure;
        failure = new LecternError('STORE_WRITE_FAILED', `CompleteMultipartUpload of "${key}" answered success, but the object is not there with its size and sha256`, {
          details: { key, errorClass: 'retryable' },
        });
        this.#log.warn(`${(failure as Error).message}; trying again`, { uploadId: upload.uploadId });
      }
      if (attempt >= this.#retryAttempts) throw failure;
      const delayMs = backoffDelayMs(attempt, this.#backoff);
      this.#log.info(`CompleteMultipartUpload of "${key}" failed (${this.#safe(errorName(failure))}); retrying in ${delayMs} ms (attempt ${attempt + 1} of ${this.#retryAttempts})`);
      await sleep(delayMs);
    }
  }

  /** Whether the store holds `key` with exactly the planned size and sha256. */
  async #holds(key: string, plan: UploadPlan): Promise<boolean> {
    const there = await this.head(key);
    return there !== undefined && there.sizeBytes === plan.sizeBytes && there.sha256 === plan.sha256;
  }

  /** Reads the object back: size and the sha256 in its metadata must be what the caller asked for. */
  async #verify(key: string, localPath: string, opts: PutFileOptions): Promise<void> {
    const stored = await this.head(key);
    if (stored && stored.sizeBytes === opts.sizeBytes && stored.sha256 === opts.sha256) return;
    await this.#discard(key);
    const got = stored ? `${stored.sizeBytes} bytes, sha256 ${stored.sha256 ?? '(none)'}` : 'no object';
    throw new LecternError('CHECKSUM_MISMATCH', `after uploading ${localPath}, ${this.description} holds ${got} under "${key}", expected ${opts.sizeBytes} bytes, sha256 ${opts.sha256}; removed it`, {
      details: { key, localPath, expectedSha256: opts.sha256, errorClass: 'content' },
    });
  }

  /** Deletes a key after a failed put; a failure to delete is logged, the put's error matters more. */
  async #discard(key: string): Promise<void> {
    try {
      await this.delete(key);
    } catch (err) {
      this.#log.warn(`could not remove "${key}" after a failed upload: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  /** GetObject; a missing key becomes STORE_NOT_FOUND (not retried), anything else is thrown as is. */
  async #get(key: string): Promise<GetObjectCommandOutput> {
    try {
      return await this.#client.send(new GetObjectCommand({ Bucket: this.#bucket, Key: key }));
    } catch (err) {
      if (isNotFound(err)) throw new LecternError('STORE_NOT_FOUND', `"${key}" does not exist in ${this.description}`, { details: { key, errorClass: 'notFound' } });
      throw err;
    }
  }

  #checkDownload(key: string, res: GetObjectCommandOutput, bytes: number, sha256: string): void {
    const expected = res.Metadata?.sha256;
    const sizeOk = res.ContentLength === undefined || res.ContentLength === bytes;
    if (sizeOk && (expected === undefined || !SHA256_HEX.test(expected) || expected === sha256)) return;
    throw new LecternError('CHECKSUM_MISMATCH', `"${key}" downloaded from ${this.description} has ${bytes} bytes, sha256 ${sha256}; the storage said ${res.ContentLength ?? '?'} bytes, sha256 ${expected ?? '?'}`, {
      details: { key, sha256, expectedSha256: expected, errorClass: 'content' },
    });
  }

  async #startError(err: S3ServiceException): Promise<LecternError> {
    // HEAD replies have no body, so the SDK knows only the status (403 "Forbidden"). A listing
    // with a body tells which: an unknown key id, a wrong secret, a skewed clock, or no rights.
    let cause: unknown = err;
    if (!isNotFound(err)) {
      try {
        await this.#client.send(new ListObjectsV2Command({ Bucket: this.#bucket, MaxKeys: 1 }));
      } catch (probe) {
        if (probe instanceof S3ServiceException) cause = probe;
      }
    }
    const what = `cannot use the bucket "${this.#bucket}" at ${this.description}`;
    if (classifyS3Error(cause).name === 'NotFound') {
      // HEAD's bodiless 404 on a bucket: the bucket is missing.
      return new LecternError('STORE_BUCKET_MISSING', `${what}: NotFound: the bucket "${this.#bucket}" does not exist at ${this.description.replace(/\/[^/]*$/, '')}; create it or fix storage.bucket`, {
        cause,
        details: { bucket: this.#bucket, s3Code: 'NotFound', httpStatus: 404, errorClass: 'operator' },
      });
    }
    return this.#error('STORE_READ_FAILED', what, cause);
  }

  /**
   * A LecternError naming the S3 error code and HTTP status (or the network error), never the
   * secret. Operator errors and a skewed clock get their own codes and say what to fix, whatever
   * the operation; `code` is for the rest. `details.errorClass` tells callers which kind it was.
   */
  #error(code: ErrorCode, what: string, err: unknown, key?: string): LecternError {
    if (isLecternError(err)) return err;
    const info = classifyS3Error(err);
    const status = info.httpStatus;
    const name = info.name;
    const attempts = (err as { lecternAttempts?: unknown } | null)?.lecternAttempts;
    const details = {
      ...(key ? { key } : {}),
      s3Code: name,
      ...(status ? { httpStatus: status } : {}),
      errorClass: info.cls,
      ...(typeof attempts === 'number' ? { attempts } : {}),
    };
    const s3Detail = err instanceof S3ServiceException || status !== undefined ? `${name}${status ? ` ${status}` : ''}` : name;
    const keyHint = `access key id ending in "${this.#o.credentials.accessKeyId.slice(-4)}"`;
    const fix = 'check storage.accessKeyIdFile/accessKeyIdEnv and storage.secretAccessKeyFile/secretAccessKeyEnv (or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)';
    const safe = (c: ErrorCode, text: string, extra: Record<string, unknown> = {}): LecternError =>
      new LecternError(c, this.#safe(text), { cause: err, details: { ...details, ...extra } });
    if (info.cls === 'clock') {
      const skew = info.skewMs !== undefined ? `; this PC's clock is ${describeSkew(info.skewMs)}` : '';
      return safe('STORE_CLOCK_SKEW', `${what}: ${s3Detail}: the storage refused the request because this PC's clock is too far off${skew}; set the clock (NTP) — nothing is retried until it is right`, {
        ...(info.skewMs !== undefined ? { skewMs: info.skewMs } : {}),
      });
    }
    if (info.cls === 'operator') {
      switch (name) {
        case 'NoSuchBucket':
          return safe('STORE_BUCKET_MISSING', `${what}: ${s3Detail}: the bucket "${this.#bucket}" does not exist at ${this.description.replace(/\/[^/]*$/, '')}; create it or fix storage.bucket`);
        case 'InvalidAccessKeyId':
          return safe('STORE_ACCESS_DENIED', `${what}: ${s3Detail}: ${this.description} does not know the ${keyHint}; ${fix}`);
        case 'SignatureDoesNotMatch':
          return safe('STORE_ACCESS_DENIED', `${what}: ${s3Detail}: ${this.description} rejected the secret access key for the ${keyHint}: the secret is wrong; ${fix}`);
        case 'AccessDenied':
        case 'Forbidden':
        case 'AllAccessDisabled':
        case 'AccountProblem':
        case 'InvalidToken':
        case 'ExpiredToken':
        case 'TokenRefreshRequired':
          return safe(
            'STORE_ACCESS_DENIED',
            `${what}: ${s3Detail}: the ${keyHint} may not do this in the bucket "${this.#bucket}"; grant it s3:ListBucket, s3:GetObject, s3:PutObject, s3:DeleteObject and multipart uploads on the bucket, or ${fix}`,
          );
        default:
          if (status === 403) {
            return safe('STORE_ACCESS_DENIED', `${what}: ${s3Detail}: the storage refused the ${keyHint} or its rights in the bucket "${this.#bucket}"; ${fix}`);
          }
          return safe(code, `${what}: ${s3Detail}: the storage refused this request in a way a retry cannot fix (check storage.endpoint, storage.region and storage.forcePathStyle)`);
      }
    }
    if (info.cls === 'retryable' && typeof attempts === 'number') {
      return safe(code, `${what}: ${s3Detail} (still failing after ${attempts} tries; it will be tried again later)`);
    }
    return safe(code, `${what}: ${s3Detail}`);
  }

  #safe(text: string): string {
    return redactSecrets(text, [this.#o.credentials.secretAccessKey]);
  }
}

/** A missing object (a missing bucket is not: it is a configuration problem). */
function isNotFound(err: unknown): boolean {
  if (!(err instanceof S3ServiceException) || err.name === 'NoSuchBucket') return false;
  return err.name === 'NoSuchKey' || err.name === 'NotFound' || err.$metadata.httpStatusCode === 404;
}

function bodyOf(res: GetObjectCommandOutput): NonNullable<GetObjectCommandOutput['Body']> {
  if (!res.Body) throw new LecternError('STORE_READ_FAILED', 'the storage sent no body');
  return res.Body;
}

async function syncDir(dir: string): Promise<void> {
  const fh = await fs.open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
