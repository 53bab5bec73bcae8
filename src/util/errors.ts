/**
 * Domain errors with stable codes. The kiosk, the CLI and the logs show the same message for the
 * same code, and tests assert codes rather than message text.
 */
export const ERROR_CODES = {
  CONFIG_INVALID: 'the configuration file has errors',
  CONFIG_UNREADABLE: 'the configuration file cannot be read',
  SECRET_UNREADABLE: 'a secret file cannot be read',
  SECRET_INSECURE: 'a secret file can be read by other users',
  DB_OPEN_FAILED: 'the state database cannot be opened',
  DB_CORRUPT: 'the state database failed its integrity check',
  QUEUE_UNKNOWN_KIND: 'no handler is registered for this job kind',
  QUEUE_LEASE_LOST: 'the job lease expired and another worker claimed it',
  FFMPEG_NOT_FOUND: 'ffmpeg or ffprobe is not installed',
  FFMPEG_FAILED: 'ffmpeg exited with an error',
  FFMPEG_STALLED: 'ffmpeg made no progress',
  FFPROBE_FAILED: 'ffprobe could not read the media',
  FFPROBE_TIMEOUT: 'ffprobe did not answer in time',
  RECORDING_ACTIVE: 'a recording is already running',
  RECORDING_NOT_FOUND: 'no such recording',
  RECORDING_EMPTY: 'the recording has no complete segments',
  DISK_LOW: 'free disk space is below the configured threshold',
  TRANSCODE_FAILED: 'the lecture package could not be built',
  PACKAGE_INVALID: 'the lecture package failed validation',
  STORE_WRITE_FAILED: 'the storage refused or failed a write',
  STORE_READ_FAILED: 'the storage could not be read',
  STORE_NOT_FOUND: 'the object does not exist in the storage',
  CHECKSUM_MISMATCH: 'a file does not match its sha256',
  INVALID_NAME: 'a name contains characters that are not allowed',
  INTERNAL: 'an internal error',
  STORE_BUCKET_MISSING: 'the storage bucket does not exist',
  STORE_ACCESS_DENIED: 'the storage refused the credentials or their rights',
  CAMERA_UNREACHABLE: 'the camera cannot be reached on the network',
  CAMERA_TIMEOUT: 'the camera did not answer in time',
  CAMERA_AUTH_FAILED: 'the camera refused the user name or password',
  CAMERA_BAD_REPLY: 'the camera sent a reply that cannot be understood',
  CAMERA_FAULT: 'the camera refused the request',
  CAMERA_UNSUPPORTED: 'the camera does not offer this function',
  CAMERA_NO_MATCH: 'the camera has no profile or preset by that name',
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export class LecternError extends Error {
  readonly code: ErrorCode;
  /** Machine-readable context; never holds secrets. */
  readonly details: Readonly<Record<string, unknown>>;

  constructor(code: ErrorCode, message?: string, options?: { cause?: unknown; details?: Record<string, unknown> }) {
    super(message ?? ERROR_CODES[code], options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'LecternError';
    this.code = code;
    this.details = options?.details ?? {};
  }
}

export function isLecternError(err: unknown, code?: ErrorCode): err is LecternError {
  return err instanceof LecternError && (code === undefined || err.code === code);
}

/** A one-line description of any thrown value, for logs and CLI output. */
export function describeError(err: unknown): string {
  if (err instanceof LecternError) return `${err.code}: ${err.message}`;
  if (err instanceof Error) return err.message;
  return String(err);
}
