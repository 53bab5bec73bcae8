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
  RECORDING_NOT_ACTIVE: 'no recording is live',
  RECORDING_NO_PLANNED_END: 'the recording has no planned end to extend; it runs until stopped',
  RECORDING_END_IN_PAST: 'the planned end of a recording must be in the future',
  MARKER_TITLE_INVALID: 'a chapter marker title must be 1 to 200 characters on one line',
  DISK_LOW: 'free disk space is below the configured threshold',
  TRANSCODE_FAILED: 'the lecture package could not be built',
  PACKAGE_INVALID: 'the lecture package failed validation',
  PUBLISH_CONFLICT: 'the storage already holds a different file under this lecture id',
  STORE_WRITE_FAILED: 'the storage refused or failed a write',
  STORE_READ_FAILED: 'the storage could not be read',
  STORE_NOT_FOUND: 'the object does not exist in the storage',
  CHECKSUM_MISMATCH: 'a file does not match its sha256',
  INVALID_NAME: 'a name contains characters that are not allowed',
  INTERNAL: 'an internal error',
  STORE_BUCKET_MISSING: 'the storage bucket does not exist',
  STORE_ACCESS_DENIED: 'the storage refused the credentials or their rights',
  STORE_CLOCK_SKEW: "the storage refused this PC's clock as too far off",
  CAMERA_UNREACHABLE: 'the camera cannot be reached on the network',
  CAPTURE_DEVICE_MISSING: 'a capture device on this PC (video device or sound card) is not there',
  CAMERA_TIMEOUT: 'the camera did not answer in time',
  CAMERA_AUTH_FAILED: 'the camera refused the user name or password',
  CAMERA_BAD_REPLY: 'the camera sent a reply that cannot be understood',
  CAMERA_FAULT: 'the camera refused the request',
  CAMERA_UNSUPPORTED: 'the camera does not offer this function',
  CAMERA_NO_MATCH: 'the camera has no profile or preset by that name',
  SCHEDULE_INVALID: 'the timetable has errors',
  SCHEDULE_UNREADABLE: 'the timetable cannot be read',
  SCHEDULE_UNAVAILABLE: 'the timetable could not be fetched and no cached copy exists',
  IMPORT_NOT_MEDIA: 'a file dropped in the import folder is not a recording ffmpeg can read',
  IMPORT_UNSUPPORTED: 'a file dropped in the import folder has no video to package (audio only, or a still picture)',
  IMPORT_SIDECAR_INVALID: 'the sidecar JSON of a file dropped in the import folder is invalid',
  API_HOST_REJECTED: 'the request names a host this API does not answer for',
  API_UNAUTHORIZED: 'the request needs a valid API token',
  API_FORBIDDEN: 'the request is not allowed',
  API_NOT_FOUND: 'no such API route',
  API_METHOD_NOT_ALLOWED: 'the route does not accept this HTTP method',
  API_UNSUPPORTED_MEDIA_TYPE: 'the request body must be JSON (Content-Type: application/json)',
  API_BODY_TOO_LARGE: 'the request body is too large',
  API_BAD_JSON: 'the request body is not valid JSON',
  API_INVALID_BODY: 'the request body has invalid or unknown fields',
  API_BUSY: 'the API has too many open connections of this kind',
  NOT_IMPLEMENTED: 'this operation is not available yet',
  DAEMON_NOT_RUNNING: 'the lectern daemon is not running or cannot be reached',
  PIN_WRONG: 'the kiosk PIN is wrong',
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
