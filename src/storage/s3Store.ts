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
import { isLecternError, LecternError, type ErrorCode } from '../util/errors.js';
import { redactSecrets, redactUrl } from '../util/redact.js';
import {
  choosePartSize,
  MemoryMultipartState,
  MIN_PART_BYTES,
  MultipartUploader,
  planUpload,
  UPLOAD_READ_CHUNK_BYTES,
  type MultipartState,
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
}

const DEFAULT_REQUEST_TIMEOUT_MS = 60_000;
const CONNECT_TIMEOUT_MS = 10_000;
const DEFAULT_MULTIPART_THRESHOLD_BYTES = 16 * 1024 * 1024;
const DEFAULT_PART_SIZE_BYTES = 8 * 1024 * 1024;
const LIST_PAGE_KEYS = 1000;
const SHA256_HEX = /^[0-9a-f]{64}$/;

/** S3 error codes that mean the credentials or their rights are wrong, not the request. */
const ACCESS_CODES = new Set(['AccessDenied', 'InvalidAccessKeyId', 'SignatureDoesNotMatch', 'RequestTimeTooSkewed', 'Forbidden', 'InvalidToken', 'ExpiredToken']);

export class S3Store implements Store {
  readonly description: string;
  readonly #o: S3StoreOptions;
  readonly #log: Logger;
  readonly #client: S3Client;
  readonly #bucket: string;
  readonly #threshold: number;
  readonly #partSize: number;
  readonly #multipart: MultipartUploader;

  constructor(options: S3StoreOptions) {
    this.#o = options;
    this.#bucket = options.bucket;
    this.#threshold = options.multipartThresholdBytes ?? DEFAULT_MULTIPART_THRESHOLD_BYTES;
    this.#partSize = options.partSizeBytes ?? DEFAULT_PART_SIZE_BYTES;
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
      requestHandler: { connectionTimeout: CONNECT_TIMEOUT_MS, socketTimeout: options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS },
      // The SDK's own warnings (e.g. "a streaming request cannot be retried") go to our log, not to the console.
      logger: { trace: () => undefined, debug: () => undefined, info: () => undefined, warn: (...m: unknown[]) => sdkLog.debug(m.map(String).join(' ')), error: (...m: unknown[]) => sdkLog.debug(m.map(String).join(' ')) },
    });
    this.#multipart = new MultipartUploader({ client: this.#client, bucket: this.#bucket, state: options.multipartState ?? new MemoryMultipartState(), logger: options.logger });
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
        details: { key, localPath, sizeBytes: local.size, expectedBytes: opts.sizeBytes },
      });
    }
    const multipart = local.size > this.#threshold;
    const partSize = multipart ? choosePartSize(local.size, this.#partSize) : Infinity;
    let plan: UploadPlan;
    try {
      plan = await planUpload(localPath, partSize);
    } catch (err) {
      throw this.#error('STORE_WRITE_FAILED', `cannot read the local file ${localPath} to store as "${key}"`, err, key);
    }
    // Checked before anything is sent: a bad local file never reaches the bucket.
    if (plan.sizeBytes !== opts.sizeBytes || plan.sha256 !== opts.sha256) {
      await this.#discard(key);
      throw new LecternError('CHECKSUM_MISMATCH', `the local file ${localPath} has sha256 ${plan.sha256} (${plan.sizeBytes} bytes), expected ${opts.sha256} (${opts.sizeBytes} bytes); "${key}" was not stored`, {
        details: { key, localPath, sha256: plan.sha256, expectedSha256: opts.sha256 },
      });
    }
    const contentType = opts.contentType ?? contentTypeFor(key);
    try {
      if (multipart) await this.#putMultipart(key, localPath, plan, partSize, contentType);
      else await this.#putSingle(key, localPath, plan, contentType);
    } catch (err) {
      if (errorName(err) === 'BadDigest') {
        await this.#discard(key);
        throw new LecternError('CHECKSUM_MISMATCH', `the local file ${localPath} changed while it was uploaded as "${key}" (the storage answered BadDigest); "${key}" was not stored`, {
          cause: err,
          details: { key, localPath },
        });
      }
      throw this.#error('STORE_WRITE_FAILED', `cannot upload ${localPath} as "${key}" to ${this.description}`, err, key);
    }
    await this.#verify(key, localPath, opts);
  }

  async putBytes(key: string, data: Uint8Array | string, opts?: { contentType?: string }): Promise<void> {
    assertValidKey(key);
    const body = typeof data === 'string' ? Buffer.from(data, 'utf8') : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    try {
      await this.#client.send(
        new PutObjectCommand({
          Bucket: this.#bucket,
          Key: key,
          Body: body,
          ContentLength: body.length,
          ContentMD5: createHash('md5').update(body).digest('base64'),
          ContentType: opts?.contentType ?? contentTypeFor(key),
          Metadata: { sha256: createHash('sha256').update(body).digest('hex') },
        }),
      );
    } catch (err) {
      throw this.#error('STORE_WRITE_FAILED', `cannot write "${key}" to ${this.description}`, err, key);
    }
  }

  async head(key: string): Promise<StoreObjectInfo | undefined> {
    assertValidKey(key);
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
      throw this.#error('STORE_READ_FAILED', `cannot look up "${key}" in ${this.description}`, err, key);
    }
  }

  async getBytes(key: string): Promise<Buffer> {
    assertValidKey(key);
    const res = await this.#get(key);
    let data: Buffer;
    try {
      data = Buffer.from(await bodyOf(res).transformToByteArray());
    } catch (err) {
      throw this.#error('STORE_READ_FAILED', `cannot read "${key}" from ${this.description}`, err, key);
    }
    this.#checkDownload(key, res, data.length, createHash('sha256').update(data).digest('hex'));
    return data;
  }

  async getToFile(key: string, localPath: string): Promise<void> {
    assertValidKey(key);
    const res = await this.#get(key);
    const target = path.resolve(localPath);
    const dir = path.dirname(target);
    // Written beside the target and renamed over it, so a crash never leaves a torn download.
    const tmp = path.join(dir, `.${path.basename(target).slice(0, 200)}.tmp-${randomBytes(6).toString('hex')}`);
    const hash = createHash('sha256');
    let bytes = 0;
    try {
      await fs.mkdir(dir, { recursive: true });
      await pipeline(
        bodyOf(res) as unknown as Readable,
        async function* (source: AsyncIterable<Buffer>) {
          for await (const chunk of source) {
            hash.update(chunk);
            bytes += chunk.length;
            yield chunk;
          }
        },
        createWriteStream(tmp, { flags: 'wx' }),
      );
      this.#checkDownload(key, res, bytes, hash.digest('hex'));
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
      if (isLecternError(err)) throw err;
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
        page = await this.#client.send(
          new ListObjectsV2Command({
            Bucket: this.#bucket,
            Prefix: prefix,
            MaxKeys: limit === undefined ? LIST_PAGE_KEYS : Math.min(LIST_PAGE_KEYS, limit - out.length),
            ...(token ? { ContinuationToken: token } : opts.startAfter !== undefined ? { StartAfter: opts.startAfter } : {}),
          }),
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
      await this.#client.send(new DeleteObjectCommand({ Bucket: this.#bucket, Key: key }));
    } catch (err) {
      if (isNotFound(err)) return;
      throw this.#error('STORE_WRITE_FAILED', `cannot delete "${key}" in ${this.description}`, err, key);
    }
  }

  async #putSingle(key: string, localPath: string, plan: UploadPlan, contentType: string): Promise<void> {
    const part = plan.parts[0];
    if (!part) throw new LecternError('INTERNAL', `no upload plan for "${key}"`);
    await this.#client.send(
      new PutObjectCommand({
        Bucket: this.#bucket,
        Key: key,
        // A stream with its length goes as a plain body; the bytes past the checked size are never sent.
        Body: plan.sizeBytes === 0 ? Buffer.alloc(0) : createReadStream(localPath, { start: 0, end: plan.sizeBytes - 1, highWaterMark: UPLOAD_READ_CHUNK_BYTES }),
        ContentLength: plan.sizeBytes,
        ContentMD5: part.md5Base64,
        ContentType: contentType,
        Metadata: { sha256: plan.sha256 },
      }),
    );
  }

  async #putMultipart(key: string, localPath: string, plan: UploadPlan, partSizeBytes: number, contentType: string): Promise<void> {
    const started = Date.now();
    const { upload, doneParts } = await this.#multipart.begin(key, { sizeBytes: plan.sizeBytes, sha256: plan.sha256, partSizeBytes, contentType });
    try {
      const done = new Map(doneParts.map((p) => [p.partNumber, p.sizeBytes]));
      if (done.size > 0) this.#log.info(`resuming the upload of "${key}": ${done.size} of ${plan.parts.length} parts already stored`, { uploadId: upload.uploadId });
      for (const part of plan.parts) {
        if (done.get(part.partNumber) === part.end - part.start) continue;
        await this.#multipart.uploadPart(upload, localPath, part);
      }
      await this.#multipart.complete(upload, plan.parts.length);
    } catch (err) {
      // Nothing of a failed upload may stay on the server, where parts are billed and invisible.
      await this.#multipart.abort(upload);
      throw err;
    }
    const seconds = (Date.now() - started) / 1000;
    this.#log.debug(`uploaded "${key}" in ${plan.parts.length} parts`, { bytes: plan.sizeBytes, seconds: seconds.toFixed(2) });
  }

  /** Reads the object back: size and the sha256 in its metadata must be what the caller asked for. */
  async #verify(key: string, localPath: string, opts: PutFileOptions): Promise<void> {
    const stored = await this.head(key);
    if (stored && stored.sizeBytes === opts.sizeBytes && stored.sha256 === opts.sha256) return;
    await this.#discard(key);
    const got = stored ? `${stored.sizeBytes} bytes, sha256 ${stored.sha256 ?? '(none)'}` : 'no object';
    throw new LecternError('CHECKSUM_MISMATCH', `after uploading ${localPath}, ${this.description} holds ${got} under "${key}", expected ${opts.sizeBytes} bytes, sha256 ${opts.sha256}; removed it`, {
      details: { key, localPath, expectedSha256: opts.sha256 },
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

  async #get(key: string): Promise<GetObjectCommandOutput> {
    try {
      return await this.#client.send(new GetObjectCommand({ Bucket: this.#bucket, Key: key }));
    } catch (err) {
      if (isNotFound(err)) throw new LecternError('STORE_NOT_FOUND', `"${key}" does not exist in ${this.description}`, { details: { key } });
      throw this.#error('STORE_READ_FAILED', `cannot read "${key}" from ${this.description}`, err, key);
    }
  }

  #checkDownload(key: string, res: GetObjectCommandOutput, bytes: number, sha256: string): void {
    const expected = res.Metadata?.sha256;
    const sizeOk = res.ContentLength === undefined || res.ContentLength === bytes;
    if (sizeOk && (expected === undefined || !SHA256_HEX.test(expected) || expected === sha256)) return;
    throw new LecternError('CHECKSUM_MISMATCH', `"${key}" downloaded from ${this.description} has ${bytes} bytes, sha256 ${sha256}; the storage said ${res.ContentLength ?? '?'} bytes, sha256 ${expected ?? '?'}`, {
      details: { key, sha256, expectedSha256: expected },
    });
  }

  async #startError(err: S3ServiceException): Promise<LecternError> {
    // HEAD replies have no body, so the SDK knows only the status (403 "Forbidden"). A listing
    // with a body tells which: an unknown key id, a wrong secret, a skewed clock, or no rights.
    let code = err.name;
    const status = err.$metadata.httpStatusCode;
    if (!isNotFound(err)) {
      try {
        await this.#client.send(new ListObjectsV2Command({ Bucket: this.#bucket, MaxKeys: 1 }));
      } catch (probe) {
        if (probe instanceof S3ServiceException) code = probe.name;
      }
    }
    const keyHint = `access key id ending in "${this.#o.credentials.accessKeyId.slice(-4)}"`;
    const fix = 'check storage.accessKeyIdFile/accessKeyIdEnv and storage.secretAccessKeyFile/secretAccessKeyEnv (or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)';
    const details = { bucket: this.#bucket, s3Code: code, httpStatus: status };
    switch (code) {
      case 'NotFound':
      case 'NoSuchBucket':
        return new LecternError('STORE_BUCKET_MISSING', `the bucket "${this.#bucket}" does not exist at ${this.description.replace(/\/[^/]*$/, '')} (${code}); create it or fix storage.bucket`, { details });
      case 'InvalidAccessKeyId':
        return new LecternError('STORE_ACCESS_DENIED', `${this.description} does not know the ${keyHint} (InvalidAccessKeyId); ${fix}`, { details });
      case 'SignatureDoesNotMatch':
        return new LecternError('STORE_ACCESS_DENIED', `${this.description} rejected the secret access key for the ${keyHint} (SignatureDoesNotMatch): the secret is wrong; ${fix}`, { details });
      case 'RequestTimeTooSkewed':
        return new LecternError('STORE_ACCESS_DENIED', `${this.description} refused the request because this PC's clock is more than 15 minutes off (RequestTimeTooSkewed); set the clock (NTP) and restart`, { details });
      default:
        if (ACCESS_CODES.has(code) || status === 403) {
          return new LecternError('STORE_ACCESS_DENIED', `the ${keyHint} may not use the bucket "${this.#bucket}" at ${this.description} (${code}); grant it s3:ListBucket, s3:GetObject, s3:PutObject, s3:DeleteObject and multipart uploads on the bucket, or ${fix}`, { details });
        }
        return this.#error('STORE_READ_FAILED', `cannot check the bucket "${this.#bucket}" at ${this.description}`, err);
    }
  }

  /** A LecternError naming the S3 error code and HTTP status (or the network error), never the secret. */
  #error(code: ErrorCode, what: string, err: unknown, key?: string): LecternError {
    if (isLecternError(err)) return err;
    const status = err instanceof S3ServiceException ? err.$metadata.httpStatusCode : undefined;
    const name = errorName(err);
    const access = ACCESS_CODES.has(name) ? ' (check the storage credentials and their rights)' : '';
    const detail = err instanceof S3ServiceException ? `${name}${status ? ` ${status}` : ''}` : name;
    return new LecternError(code, this.#safe(`${what}: ${detail}${access}`), { cause: err, details: { ...(key ? { key } : {}), s3Code: name, ...(status ? { httpStatus: status } : {}) } });
  }

  #safe(text: string): string {
    return redactSecrets(text, [this.#o.credentials.secretAccessKey]);
  }
}

/** The S3 error code, or the network error code (ECONNREFUSED...), or the error's name. */
function errorName(err: unknown): string {
  if (err instanceof S3ServiceException) return err.name;
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string') return code;
  if (err instanceof Error) return err.name === 'Error' ? err.message.slice(0, 200) : err.name;
  return String(err);
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
