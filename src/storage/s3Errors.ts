import { S3ServiceException } from '@aws-sdk/client-s3';
import { isLecternError } from '../util/errors.js';
import type { StoreErrorClass } from './store.js';

/**
 * What an S3 failure means for the caller, decided in one place:
 *
 * - `retryable`: the server or the path to it had a bad moment (5xx, SlowDown, throttling, a
 *   reset or refused connection, an idle timeout). Retried here with capped backoff; if it
 *   persists, the job retries later and the upload resumes from its confirmed parts.
 * - `operator`: the credentials, their rights or the bucket are wrong. Retrying cannot help and
 *   would only hammer the server (and fill its logs); a person must fix the configuration.
 * - `clock`: RequestTimeTooSkewed — this PC's clock is off (no RTC, no NTP). Also a person's job;
 *   the error carries the measured skew.
 * - `noSuchUpload`: the multipart upload is gone (aborted, expired by the server, or completed
 *   by an earlier Complete whose reply was lost). The uploader decides what that means.
 * - `notFound`: the object is not there.
 * - `content`: the server refused the bytes (BadDigest, a bad part list): this content must start over.
 * - `fatal`: anything else (a programming error or a reply nothing can be done about).
 */
export type S3ErrorClass = StoreErrorClass;

export interface S3ErrorInfo {
  cls: S3ErrorClass;
  /** The S3 error code, the network error code (ECONNRESET...) or the error's name. */
  name: string;
  httpStatus?: number;
  /** For `clock`: the server's time minus ours, in ms (positive: our clock is behind). */
  skewMs?: number;
}

const RETRYABLE_NAMES = new Set([
  'SlowDown',
  'InternalError',
  'ServiceUnavailable',
  'RequestTimeout',
  'Throttling',
  'ThrottlingException',
  'TooManyRequests',
  'RequestLimitExceeded',
  'OperationAborted',
  'TimeoutError',
]);

const NETWORK_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'ENETUNREACH',
  'ENETDOWN',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'EAI_AGAIN',
  'ENOTFOUND',
  'ERR_STREAM_PREMATURE_CLOSE',
  'UND_ERR_SOCKET',
]);

/** The credentials, their rights or the bucket: only a person can fix these. */
export const OPERATOR_NAMES = new Set([
  'AccessDenied',
  'InvalidAccessKeyId',
  'SignatureDoesNotMatch',
  'Forbidden',
  'InvalidToken',
  'ExpiredToken',
  'TokenRefreshRequired',
  'AllAccessDisabled',
  'AccountProblem',
  'NoSuchBucket',
  'InvalidBucketName',
  'PermanentRedirect',
  'AuthorizationHeaderMalformed',
  'InvalidRequest',
  'NotImplemented',
  'MissingContentLength',
]);

const CONTENT_NAMES = new Set(['BadDigest', 'InvalidDigest', 'InvalidPart', 'InvalidPartOrder', 'EntityTooSmall', 'EntityTooLarge', 'IncompleteBody']);

/** The S3 error code, or the network error code (ECONNREFUSED...), or the error's name. */
export function errorName(err: unknown): string {
  if (err instanceof S3ServiceException) return err.name;
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string') return code;
  if (err instanceof Error) return err.name === 'Error' ? err.message.slice(0, 200) : err.name;
  return String(err);
}

/** The HTTP status of the reply the error came from, when there was one. */
function statusOf(err: unknown): number | undefined {
  const status = (err as { $metadata?: { httpStatusCode?: unknown } } | null)?.$metadata?.httpStatusCode;
  return typeof status === 'number' ? status : undefined;
}

// Replies without a body (every HEAD) leave the SDK only the status, which it names "Unknown".
const STATUS_NAMES: Readonly<Record<number, string>> = { 400: 'BadRequest', 403: 'Forbidden', 404: 'NotFound', 500: 'InternalError', 502: 'BadGateway', 503: 'ServiceUnavailable', 504: 'GatewayTimeout' };

export function classifyS3Error(err: unknown, nowMs: number = Date.now()): S3ErrorInfo {
  const status = statusOf(err);
  const raw = errorName(err);
  const name = (raw === 'Unknown' || raw === 'UnknownError') && status !== undefined ? (STATUS_NAMES[status] ?? `Http${status}`) : raw;
  const base = { name, ...(status !== undefined ? { httpStatus: status } : {}) };
  if (isLecternError(err)) return { ...base, cls: 'fatal' };
  if (name === 'RequestTimeTooSkewed') {
    const skewMs = measuredSkewMs(err, nowMs);
    return { ...base, cls: 'clock', ...(skewMs !== undefined ? { skewMs } : {}) };
  }
  if (name === 'NoSuchUpload') return { ...base, cls: 'noSuchUpload' };
  if (OPERATOR_NAMES.has(name)) return { ...base, cls: 'operator' };
  if (CONTENT_NAMES.has(name)) return { ...base, cls: 'content' };
  if (name === 'NoSuchKey' || name === 'NotFound') return { ...base, cls: 'notFound' };
  if (RETRYABLE_NAMES.has(name) || NETWORK_CODES.has(name)) return { ...base, cls: 'retryable' };
  if (status !== undefined) {
    if (status >= 500 || status === 429) return { ...base, cls: 'retryable' };
    if (status === 403) return { ...base, cls: 'operator' };
    if (status === 404) return { ...base, cls: 'notFound' };
    return { ...base, cls: 'fatal' };
  }
  // Raised inside the SDK while reading a reply (a body cut short, half an XML document): the
  // request may not have reached its end, so it is worth another try.
  if (err instanceof Error && '$metadata' in err) return { ...base, cls: 'retryable' };
  return { ...base, cls: 'fatal' };
}

/**
 * The server's clock minus ours, from the reply's Date header (every S3 reply has one), or else
 * from the <ServerTime> the RequestTimeTooSkewed error body carries.
 */
function measuredSkewMs(err: unknown, nowMs: number): number | undefined {
  const e = err as { $response?: { headers?: Record<string, string | undefined> }; ServerTime?: unknown } | null;
  const date = e?.$response?.headers?.date ?? e?.$response?.headers?.Date;
  const fromHeader = date ? Date.parse(date) : Number.NaN;
  if (Number.isFinite(fromHeader)) return fromHeader - nowMs;
  const serverTime = e?.ServerTime instanceof Date ? e.ServerTime.getTime() : typeof e?.ServerTime === 'string' ? Date.parse(e.ServerTime) : Number.NaN;
  return Number.isFinite(serverTime) ? serverTime - nowMs : undefined;
}

/** "12 min 5 s ahead" / "3 s behind", for people. */
export function describeSkew(skewMs: number): string {
  const abs = Math.round(Math.abs(skewMs) / 1000);
  const text = abs >= 3600 ? `${Math.floor(abs / 3600)} h ${Math.floor((abs % 3600) / 60)} min` : abs >= 60 ? `${Math.floor(abs / 60)} min ${abs % 60} s` : `${abs} s`;
  return `${text} ${skewMs > 0 ? 'behind' : 'ahead of'} the storage's clock`;
}
