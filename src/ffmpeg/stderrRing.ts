import { redactSecrets, redactUrl } from '../util/redact.js';

/**
 * The last lines a child process wrote to stderr, kept for diagnosis when it fails (Frigate's
 * LogPipe keeps 100). Lines are redacted as they are stored, so nothing read back from the ring
 * (log lines, error messages, status pages) can carry a camera password.
 */
export interface StderrRingOptions {
  /** How many lines to keep; older lines are dropped. Default 100. */
  maxLines?: number;
  /** Secret values to blank out in addition to URL credentials. */
  secrets?: readonly string[];
  /** Stored lines are cut to this length after redaction. Default 2000. */
  maxLineChars?: number;
}

// An unterminated "line" this long is flushed as a line so memory stays bounded. Redaction runs
// on the whole line before it is cut, so a URL is never split before its password is masked.
const MAX_PENDING_CHARS = 64 * 1024;

export class StderrRing {
  readonly #maxLines: number;
  readonly #maxLineChars: number;
  readonly #secrets: readonly string[];
  #lines: string[] = [];
  #pending = '';

  constructor(options: StderrRingOptions = {}) {
    this.#maxLines = Math.max(1, options.maxLines ?? 100);
    this.#maxLineChars = Math.max(16, options.maxLineChars ?? 2000);
    this.#secrets = options.secrets ?? [];
  }

  /** Feeds a chunk; complete lines are stored, a trailing partial line waits for the next chunk. */
  push(chunk: string): void {
    // ffmpeg ends stats lines with a bare CR, so CR, LF and CRLF all end a line.
    const parts = (this.#pending + chunk).split(/\r\n|\r|\n/);
    this.#pending = parts.pop() ?? '';
    for (const line of parts) this.#store(line);
    if (this.#pending.length > MAX_PENDING_CHARS) {
      this.#store(this.#pending);
      this.#pending = '';
    }
  }

  /** Stores a trailing partial line (call when the stream ends). */
  flush(): void {
    if (this.#pending !== '') this.#store(this.#pending);
    this.#pending = '';
  }

  /** The stored lines, oldest first; a copy. */
  lines(): string[] {
    return [...this.#lines];
  }

  #store(raw: string): void {
    // A CR at the end of one chunk and the LF at the start of the next leave an empty piece;
    // blank lines carry nothing worth keeping anyway.
    if (raw.trim() === '') return;
    let line = redactSecrets(redactUrl(raw), this.#secrets);
    if (line.length > this.#maxLineChars) line = `${line.slice(0, this.#maxLineChars)}…`;
    this.#lines.push(line);
    if (this.#lines.length > this.#maxLines) this.#lines.splice(0, this.#lines.length - this.#maxLines);
  }
}
