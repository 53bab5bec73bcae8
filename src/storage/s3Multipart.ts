import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  ListMultipartUploadsCommand,
  ListPartsCommand,
  UploadPartCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import type { Logger } from '../log/logger.js';
import { classifyS3Error, errorName } from './s3Errors.js';

/**
 * Multipart upload to S3 in small steps (resume, create, uploadPart, complete, abort) around an
 * injected MultipartState: in memory, or in SQLite (db/uploads.ts) so an upload resumes after a
 * restart. The upload id is recorded before the first part is sent and every part as the server
 * confirms it. On resume the server's part list (ListParts) is the truth; the local record only
 * says which ETags we saw. Retrying is the caller's business (S3Store), one request at a time.
 */

/** S3's limits: parts of 5 MiB at least (except the last), at most 10,000 of them. */
export const MIN_PART_BYTES = 5 * 1024 * 1024;
export const MAX_PARTS = 10_000;
/** Read size for request bodies: larger than the 64 KiB default, measured ~30% faster on loopback. */
export const UPLOAD_READ_CHUNK_BYTES = 1024 * 1024;

/** One part of a local file: bytes [start, end). */
export interface PartPlan {
  /** 1-based, as S3 numbers parts. */
  partNumber: number;
  start: number;
  end: number;
  /** base64 MD5 of the part, sent as Content-MD5 so the server rejects bytes that changed. */
  md5Base64: string;
}

/** What one read of a local file tells before it is uploaded. */
export interface UploadPlan {
  sizeBytes: number;
  sha256: string;
  parts: PartPlan[];
}

export interface MultipartUpload {
  key: string;
  uploadId: string;
  sizeBytes: number;
  sha256: string;
  partSizeBytes: number;
  startedMs: number;
}

export interface UploadedPart {
  partNumber: number;
  etag: string;
  sizeBytes: number;
}

/** Where the progress of multipart uploads is kept. */
export interface MultipartState {
  /** The open upload of `key` with exactly this content and part size, to resume it. */
  find(key: string, sha256: string, partSizeBytes: number): Promise<MultipartUpload | undefined>;
  /** Called after CreateMultipartUpload, before any part is sent. */
  begin(upload: MultipartUpload): Promise<void>;
  /** Called after the server confirmed a part. */
  partDone(uploadId: string, part: UploadedPart): Promise<void>;
  /** The confirmed parts, in any order. */
  parts(uploadId: string): Promise<UploadedPart[]>;
  /** A recorded part the server does not hold as recorded: it will be sent again. */
  forgetPart(uploadId: string, partNumber: number): Promise<void>;
  /** The upload was completed or aborted: forget it. */
  end(uploadId: string): Promise<void>;
  /** Every upload still open (to abort those of a lecture given up). */
  list?(): MultipartUpload[] | Promise<MultipartUpload[]>;
}

/** Keeps the state for the life of the process: resumes within it, not after a restart. */
export class MemoryMultipartState implements MultipartState {
  readonly #uploads = new Map<string, { upload: MultipartUpload; parts: Map<number, UploadedPart> }>();

  async find(key: string, sha256: string, partSizeBytes: number): Promise<MultipartUpload | undefined> {
    for (const { upload } of this.#uploads.values()) {
      if (upload.key === key && upload.sha256 === sha256 && upload.partSizeBytes === partSizeBytes) return { ...upload };
    }
    return undefined;
  }

  async begin(upload: MultipartUpload): Promise<void> {
    this.#uploads.set(upload.uploadId, { upload: { ...upload }, parts: new Map() });
  }

  async partDone(uploadId: string, part: UploadedPart): Promise<void> {
    this.#uploads.get(uploadId)?.parts.set(part.partNumber, { ...part });
  }

  async parts(uploadId: string): Promise<UploadedPart[]> {
    return [...(this.#uploads.get(uploadId)?.parts.values() ?? [])].map((p) => ({ ...p }));
  }

  async forgetPart(uploadId: string, partNumber: number): Promise<void> {
    this.#uploads.get(uploadId)?.parts.delete(partNumber);
  }

  async end(uploadId: string): Promise<void> {
    this.#uploads.delete(uploadId);
  }

  list(): MultipartUpload[] {
    return [...this.#uploads.values()].map(({ upload }) => ({ ...upload }));
  }

  /** Open uploads, for tests and status. */
  get openUploads(): number {
    return this.#uploads.size;
  }
}

/** The part size to use for a file: the configured one, raised so the file fits in 10,000 parts. */
export function choosePartSize(sizeBytes: number, partSizeBytes: number): number {
  const mib = 1024 * 1024;
  const needed = Math.ceil(sizeBytes / MAX_PARTS / mib) * mib;
  return Math.max(partSizeBytes, needed, MIN_PART_BYTES);
}

/**
 * The plan of a file already read into memory: one part, the same checks as planUpload. The
 * bytes hashed here are the bytes sent, so the file cannot change between check and send.
 */
export function planBytes(bytes: Buffer): UploadPlan {
  return {
    sizeBytes: bytes.length,
    sha256: createHash('sha256').update(bytes).digest('hex'),
    parts: [{ partNumber: 1, start: 0, end: bytes.length, md5Base64: createHash('md5').update(bytes).digest('base64') }],
  };
}

/**
 * Reads the file once: its size and sha256 (checked against what the caller expects BEFORE
 * anything is sent) and the MD5 of each part (sent with the part, so the server refuses a part
 * whose bytes changed since this read). `partSizeBytes` Infinity gives one part.
 */
export async function planUpload(localPath: string, partSizeBytes: number): Promise<UploadPlan> {
  const whole = createHash('sha256');
  const parts: PartPlan[] = [];
  let md5 = createHash('md5');
  let partStart = 0;
  let pos = 0;
  const closePart = (): void => {
    parts.push({ partNumber: parts.length + 1, start: partStart, end: pos, md5Base64: md5.digest('base64') });
    md5 = createHash('md5');
    partStart = pos;
  };
  for await (const chunk of createReadStream(localPath, { highWaterMark: 1024 * 1024 })) {
    let buf = chunk as Buffer;
    whole.update(buf);
    while (buf.length > 0) {
      const take = Math.min(partStart + partSizeBytes - pos, buf.length);
      md5.update(buf.subarray(0, take));
      pos += take;
      buf = buf.subarray(take);
      if (pos - partStart === partSizeBytes) closePart();
    }
  }
  if (pos > partStart || parts.length === 0) closePart();
  return { sizeBytes: pos, sha256: whole.digest('hex'), parts };
}


export interface MultipartUploaderOptions {
  client: S3Client;
  bucket: string;
  state: MultipartState;
  logger: Logger;
  /** Paces part bodies (the bandwidth policy); absent: full speed. */
  throttle?: BodyThrottle;
}

/**
 * Paces upload bodies (DESIGN §4, the bandwidth policy in upload/, injected by the agent).
 * `begin` is awaited before each request with a file body, inside the retry loop, so a retry
 * waits too; it may hold the request while uploads are paused (a recording runs, a window says
 * so). The request's body goes through `body()` (the same bytes, paced, so Content-Length and
 * Content-MD5 stay right), and the request is aborted when `signal` fires: the policy gives up
 * a request that stalled while the link was down, so it is retried the moment the link is back
 * instead of after the socket's idle timeout.
 */
export interface BodyThrottle {
  begin(request: { key: string; sizeBytes: number }): Promise<ThrottledRequest>;
  /** Small in-memory bodies (manifests, pointers, heartbeats): counted against the rate, never paused. */
  charge(sizeBytes: number): Promise<void>;
}

export interface ThrottledRequest {
  body(source: Readable): Readable;
  readonly signal: AbortSignal;
  /** The request is over (either way). */
  end(): void;
}

/**
 * A request the throttle gave up (it stalled while the link was down, or a pause withdrew it):
 * a connection we aborted, so retryable like a reset (code ECONNABORTED).
 */
export class RequestWithdrawnError extends Error {
  override readonly name = 'RequestWithdrawn';
  readonly code = 'ECONNABORTED';
}

/** Sends one request with a file body through the throttle, when there is one. */
export async function sendThrottled<T>(
  throttle: BodyThrottle | undefined,
  request: { key: string; sizeBytes: number },
  openBody: () => Readable | Buffer,
  send: (body: Readable | Buffer, abortSignal: AbortSignal | undefined) => Promise<T>,
): Promise<T> {
  if (!throttle) return send(openBody(), undefined);
  const paced = await throttle.begin(request);
  try {
    const body = openBody();
    return await send(paced.body(Buffer.isBuffer(body) ? Readable.from([body]) : body), paced.signal);
  } catch (err) {
    const reason: unknown = paced.signal.reason;
    if (paced.signal.aborted) throw new RequestWithdrawnError(`the request for "${request.key}" was withdrawn: ${reason instanceof Error ? reason.message : String(reason)}`, { cause: err });
    throw err;
  } finally {
    paced.end();
  }
}

/** What resume() found. */
export type ResumeResult =
  /** Nothing recorded for this content: create a new upload. */
  | { kind: 'none' }
  /**
   * Recorded, but the server no longer knows the upload (NoSuchUpload): it was aborted, expired,
   * or completed by a Complete whose reply never arrived. The record is gone; the caller checks
   * the object (HEAD) before starting over.
   */
  | { kind: 'gone'; uploadId: string }
  /** The open upload and the parts the server holds as recorded (or provably ours). */
  | { kind: 'resumed'; upload: MultipartUpload; confirmed: UploadedPart[]; adopted: number; dropped: number };

/**
 * The server no longer has the upload. S3 says NoSuchUpload; Ceph RGW answers ListParts of an
 * upload that was completed with 404 NoSuchKey (seen in tests/integration/s3-resume.test.ts), so
 * any 404 to a request naming the UploadId means the same. Named like the S3 code so that
 * classifyS3Error sorts it as 'noSuchUpload'.
 */
export class UploadGoneError extends Error {
  override readonly name = 'NoSuchUpload';
}

function asUploadGone(err: unknown, what: string): unknown {
  const name = errorName(err);
  const status = (err as { $metadata?: { httpStatusCode?: number } } | null)?.$metadata?.httpStatusCode;
  if (name === 'NoSuchUpload' || name === 'NoSuchKey' || name === 'NotFound' || status === 404) {
    return new UploadGoneError(`${what}: the storage no longer knows the upload (${name})`, { cause: err });
  }
  return err;
}

interface ServerPart {
  etag: string;
  sizeBytes: number;
}

/** ETags compare without their quotes (servers differ in whether ListParts quotes them). */
/** An ETag without quotes or the weak prefix, lower case: comparable with an MD5 in hex. */
export function bareEtag(etag: string): string {
  return etag.replace(/^W\//, '').replace(/^"+|"+$/g, '').toLowerCase();
}

export class MultipartUploader {
  readonly #o: MultipartUploaderOptions;
  readonly #log: Logger;

  constructor(options: MultipartUploaderOptions) {
    this.#o = options;
    this.#log = options.logger.child({ scope: 's3-multipart' });
  }

  get state(): MultipartState {
    return this.#o.state;
  }

  /**
   * The open upload of this content, checked against the server's part list:
   * - a recorded part the server holds with the same ETag and size is done;
   * - a recorded part the server lacks, or holds with another ETag or size, is forgotten and sent again;
   * - a part the server holds but we never recorded (we died between its reply and our commit)
   *   is adopted only when its size matches and its ETag is the MD5 of our local bytes; otherwise
   *   it is sent again (ETags need not be MD5s, so an unknown ETag proves nothing).
   */
  async resume(key: string, plan: UploadPlan, partSizeBytes: number): Promise<ResumeResult> {
    const open = await this.#o.state.find(key, plan.sha256, partSizeBytes);
    if (!open) return { kind: 'none' };
    if (open.sizeBytes !== plan.sizeBytes) {
      // Same sha256 but another size cannot be the same content; the record is wrong.
      await this.#abortQuietly(open);
      await this.#o.state.end(open.uploadId);
      return { kind: 'none' };
    }
    let server: Map<number, ServerPart>;
    try {
      server = await this.listParts(open);
    } catch (err) {
      if (classifyS3Error(err).cls !== 'noSuchUpload') throw err;
      await this.#o.state.end(open.uploadId);
      return { kind: 'gone', uploadId: open.uploadId };
    }
    const recorded = new Map((await this.#o.state.parts(open.uploadId)).map((p) => [p.partNumber, p]));
    const confirmed: UploadedPart[] = [];
    let adopted = 0;
    let dropped = 0;
    for (const part of plan.parts) {
      const sizeBytes = part.end - part.start;
      const mine = recorded.get(part.partNumber);
      const theirs = server.get(part.partNumber);
      const md5Hex = Buffer.from(part.md5Base64, 'base64').toString('hex');
      const ok =
        theirs !== undefined &&
        theirs.sizeBytes === sizeBytes &&
        (mine ? bareEtag(mine.etag) === bareEtag(theirs.etag) && mine.sizeBytes === sizeBytes : bareEtag(theirs.etag) === md5Hex);
      if (ok) {
        const done: UploadedPart = mine ?? { partNumber: part.partNumber, etag: theirs.etag, sizeBytes };
        if (!mine) {
          await this.#o.state.partDone(open.uploadId, done);
          adopted++;
        }
        confirmed.push(done);
      } else if (mine) {
        await this.#o.state.forgetPart(open.uploadId, part.partNumber);
        dropped++;
      }
    }
    return { kind: 'resumed', upload: open, confirmed, adopted, dropped };
  }

  /** Every part the server holds for the upload (ListParts, all pages). Throws NoSuchUpload when it is gone. */
  async listParts(upload: MultipartUpload): Promise<Map<number, ServerPart>> {
    const out = new Map<number, ServerPart>();
    let marker: string | undefined;
    for (;;) {
      const page = await this.#o.client
        .send(new ListPartsCommand({ Bucket: this.#o.bucket, Key: upload.key, UploadId: upload.uploadId, MaxParts: 1000, ...(marker ? { PartNumberMarker: marker } : {}) }))
        .catch((err: unknown) => {
          throw asUploadGone(err, `ListParts of "${upload.key}"`);
        });
      for (const p of page.Parts ?? []) {
        if (p.PartNumber !== undefined && p.ETag) out.set(p.PartNumber, { etag: p.ETag, sizeBytes: p.Size ?? -1 });
      }
      if (!page.IsTruncated || !page.NextPartNumberMarker || page.NextPartNumberMarker === marker) break;
      marker = page.NextPartNumberMarker;
    }
    return out;
  }

  /**
   * Creates a new upload (its sha256 goes in the object's metadata) and records it before any
   * part is sent. First it aborts every other open upload of this key on the server: none of them
   * is resumable (resume() found none), and one may be an orphan of a crash between Create's
   * reply and our record of it, which nobody else would ever clean up.
   */
  async create(key: string, opts: { sizeBytes: number; sha256: string; partSizeBytes: number; contentType: string }): Promise<MultipartUpload> {
    await this.abortOthers(key);
    const created = await this.#o.client.send(
      new CreateMultipartUploadCommand({ Bucket: this.#o.bucket, Key: key, ContentType: opts.contentType, Metadata: { sha256: opts.sha256 } }),
    );
    if (!created.UploadId) throw new Error(`CreateMultipartUpload for "${key}" returned no UploadId`);
    const upload: MultipartUpload = { key, uploadId: created.UploadId, sizeBytes: opts.sizeBytes, sha256: opts.sha256, partSizeBytes: opts.partSizeBytes, startedMs: Date.now() };
    await this.#o.state.begin(upload);
    return upload;
  }

  /** Aborts the server's open uploads of exactly `key` except `keepUploadId`; returns how many. */
  async abortOthers(key: string, keepUploadId?: string): Promise<number> {
    let aborted = 0;
    let keyMarker: string | undefined;
    let idMarker: string | undefined;
    for (;;) {
      const page = await this.#o.client.send(
        new ListMultipartUploadsCommand({ Bucket: this.#o.bucket, Prefix: key, ...(keyMarker ? { KeyMarker: keyMarker } : {}), ...(idMarker ? { UploadIdMarker: idMarker } : {}) }),
      );
      for (const u of page.Uploads ?? []) {
        if (u.Key !== key || !u.UploadId || u.UploadId === keepUploadId) continue;
        await this.#abortQuietly({ key, uploadId: u.UploadId });
        aborted++;
      }
      if (!page.IsTruncated || (!page.NextKeyMarker && !page.NextUploadIdMarker)) break;
      keyMarker = page.NextKeyMarker;
      idMarker = page.NextUploadIdMarker;
    }
    if (aborted > 0) this.#log.info(`aborted ${aborted} stale multipart upload(s) of "${key}" left by an earlier run`);
    return aborted;
  }

  /**
   * Aborts every open upload under `prefix`: those recorded here (by their UploadId) and those
   * the server lists (an orphan of a crash between Create's reply and our record of it), and
   * forgets each the server no longer holds. An upload whose abort failed stays recorded, so a
   * later upload of its key (abortOthers) still finds it. Returns how many were aborted.
   */
  async abortUnder(prefix: string): Promise<number> {
    const recorded = (await this.#o.state.list?.()) ?? [];
    const targets = new Map<string, Pick<MultipartUpload, 'key' | 'uploadId'>>();
    for (const u of recorded) if (u.key.startsWith(prefix)) targets.set(u.uploadId, u);
    let keyMarker: string | undefined;
    let idMarker: string | undefined;
    for (;;) {
      const page = await this.#o.client.send(
        new ListMultipartUploadsCommand({ Bucket: this.#o.bucket, Prefix: prefix, ...(keyMarker ? { KeyMarker: keyMarker } : {}), ...(idMarker ? { UploadIdMarker: idMarker } : {}) }),
      );
      for (const u of page.Uploads ?? []) if (u.Key?.startsWith(prefix) && u.UploadId) targets.set(u.UploadId, { key: u.Key, uploadId: u.UploadId });
      if (!page.IsTruncated || (!page.NextKeyMarker && !page.NextUploadIdMarker)) break;
      keyMarker = page.NextKeyMarker;
      idMarker = page.NextUploadIdMarker;
    }
    let aborted = 0;
    for (const upload of targets.values()) {
      if (!(await this.#abortQuietly(upload))) continue;
      await this.#o.state.end(upload.uploadId);
      aborted++;
    }
    return aborted;
  }

  /** Sends one part from the file as a stream with its length and Content-MD5, and records it. */
  async uploadPart(upload: MultipartUpload, localPath: string, part: PartPlan): Promise<UploadedPart> {
    const sizeBytes = part.end - part.start;
    const res = await sendThrottled(
      this.#o.throttle,
      { key: upload.key, sizeBytes },
      () => createReadStream(localPath, { start: part.start, end: part.end - 1, highWaterMark: UPLOAD_READ_CHUNK_BYTES }),
      (body, abortSignal) =>
        this.#o.client.send(
          new UploadPartCommand({
            Bucket: this.#o.bucket,
            Key: upload.key,
            UploadId: upload.uploadId,
            PartNumber: part.partNumber,
            Body: body,
            ContentLength: sizeBytes,
            ContentMD5: part.md5Base64,
          }),
          abortSignal ? { abortSignal } : {},
        ),
    )
      .catch((err: unknown) => {
        throw asUploadGone(err, `UploadPart ${part.partNumber} of "${upload.key}"`);
      });
    if (!res.ETag) throw new Error(`UploadPart ${part.partNumber} of "${upload.key}" returned no ETag`);
    const done: UploadedPart = { partNumber: part.partNumber, etag: res.ETag, sizeBytes };
    await this.#o.state.partDone(upload.uploadId, done);
    return done;
  }

  /**
   * Sends CompleteMultipartUpload with exactly the recorded parts, in order. The reply proves
   * little: the SDK turns a 200 whose body ends in </Error> into an error, but not every error
   * body (and RGW's success reply showed an empty ETag), so the caller believes only HEAD.
   * The record is kept until the caller has seen the object (finish()).
   */
  async complete(upload: MultipartUpload, expectedParts: number): Promise<void> {
    const parts = (await this.#o.state.parts(upload.uploadId)).sort((a, b) => a.partNumber - b.partNumber);
    if (parts.length !== expectedParts || parts.some((p, i) => p.partNumber !== i + 1)) {
      throw new Error(`multipart upload of "${upload.key}" has parts ${parts.map((p) => p.partNumber).join(',')}, expected 1..${expectedParts}`);
    }
    await this.#o.client
      .send(
        new CompleteMultipartUploadCommand({
          Bucket: this.#o.bucket,
          Key: upload.key,
          UploadId: upload.uploadId,
          MultipartUpload: { Parts: parts.map((p) => ({ PartNumber: p.partNumber, ETag: p.etag })) },
        }),
      )
      .catch((err: unknown) => {
        throw asUploadGone(err, `CompleteMultipartUpload of "${upload.key}"`);
      });
  }

  /** The object is there and verified: forget the upload. */
  async finish(upload: MultipartUpload): Promise<void> {
    await this.#o.state.end(upload.uploadId);
  }

  /** Removes the upload and its parts from the server; a failure here is logged, not thrown. */
  async abort(upload: MultipartUpload): Promise<void> {
    if (await this.#abortQuietly(upload)) await this.#o.state.end(upload.uploadId);
  }

  /** True when the server no longer holds the upload. */
  async #abortQuietly(upload: Pick<MultipartUpload, 'key' | 'uploadId'>): Promise<boolean> {
    try {
      await this.#o.client.send(new AbortMultipartUploadCommand({ Bucket: this.#o.bucket, Key: upload.key, UploadId: upload.uploadId }));
      return true;
    } catch (err) {
      if (classifyS3Error(asUploadGone(err, 'AbortMultipartUpload')).cls === 'noSuchUpload') return true;
      // Its parts stay on the server until the next upload of this key (abortOthers), a lifecycle rule or a janitor removes them.
      this.#log.warn(`could not abort the multipart upload of "${upload.key}" (${errorName(err)}); its parts stay on the server until it is cleaned up`, {
        uploadId: upload.uploadId,
      });
      return false;
    }
  }
}
