import { Readable } from 'node:stream';

/**
 * A token bucket: the rate cap on upload bodies (DESIGN §4). One bucket per agent, shared by
 * every concurrent upload, so the cap holds for the room's uplink as a whole.
 *
 * Waiters are served first come, first served by one timer: a request that asked first gets its
 * bytes first, and concurrent uploads share the rate instead of racing for it. Tokens refill
 * from the elapsed time at each look, so a timer that fires late loses nothing: the long-run
 * rate is the cap exactly, whatever the timer resolution.
 *
 * The bucket starts empty (no burst at the start): a burst of a whole second at the start of
 * every upload would overshoot the cap measurably on short windows and fill the link's queue,
 * which the delay-based yield would then read as someone else's traffic.
 */

export const UNCAPPED = Number.POSITIVE_INFINITY;
/** The smallest burst: below this the bucket wakes up too often to be worth it. */
export const MIN_BURST_BYTES = 64 * 1024;

export interface TokenBucketOptions {
  /** Bytes per second; 0 or Infinity = uncapped. */
  rateBytesPerSecond: number;
  /** Monotonic milliseconds (default: performance.now). */
  now?: () => number;
  /**
   * How much time's worth of tokens the bucket holds (default 1000 ms, at least MIN_BURST_BYTES).
   * Yield uses a short one: tokens saved up while the body waited (between two parts) would
   * otherwise leave as one burst, and a burst is a queue on the link that yield reads as traffic.
   */
  burstMs?: number;
  /** The smallest burst in bytes (default MIN_BURST_BYTES). */
  minBurstBytes?: number;
}

interface Waiter {
  bytes: number;
  resolve: () => void;
  reject: (reason: unknown) => void;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
}

export class TokenBucket {
  readonly #now: () => number;
  readonly #burstMs: number;
  readonly #minBurst: number;
  #rate = UNCAPPED;
  #burst = MIN_BURST_BYTES;
  #tokens = 0;
  #refilledAtMs: number;
  readonly #waiters: Waiter[] = [];
  #timer: NodeJS.Timeout | undefined;

  constructor(options: TokenBucketOptions) {
    this.#now = options.now ?? (() => performance.now());
    this.#burstMs = options.burstMs ?? 1_000;
    this.#minBurst = options.minBurstBytes ?? MIN_BURST_BYTES;
    this.#burst = this.#minBurst;
    this.#refilledAtMs = this.#now();
    this.setRate(options.rateBytesPerSecond);
  }

  /** Bytes per second, Infinity when uncapped. */
  get rateBytesPerSecond(): number {
    return this.#rate;
  }

  /** About one second of the rate (or `burstMs`), at least 64 KiB (or `minBurstBytes`). */
  get burstBytes(): number {
    return this.#burst;
  }

  get uncapped(): boolean {
    return this.#rate === UNCAPPED;
  }

  /** Requests waiting for tokens. */
  get waiting(): number {
    return this.#waiters.length;
  }

  /**
   * Changes the rate from now on: tokens earned so far were earned at the old rate. Going from
   * uncapped to a cap starts with an empty bucket (uncapped time earns nothing).
   */
  setRate(bytesPerSecond: number): void {
    const rate = normalizeRate(bytesPerSecond);
    if (rate === this.#rate) return;
    this.#refill();
    const wasUncapped = this.#rate === UNCAPPED;
    this.#rate = rate;
    this.#burst = rate === UNCAPPED ? this.#minBurst : Math.max(this.#minBurst, Math.round((rate * this.#burstMs) / 1000));
    this.#tokens = wasUncapped ? 0 : Math.min(this.#tokens, this.#burst);
    this.#pump();
  }

  /**
   * Resolves when `bytes` may be sent. A request larger than the burst waits for a full bucket
   * and then runs into debt, which the next ones pay: the average holds either way.
   */
  take(bytes: number, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (bytes <= 0) return Promise.resolve();
    if (this.#waiters.length === 0 && this.#tryTake(bytes)) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = { bytes, resolve, reject, signal, onAbort: undefined };
      if (signal) {
        waiter.onAbort = () => {
          const i = this.#waiters.indexOf(waiter);
          if (i >= 0) this.#waiters.splice(i, 1);
          reject(signal.reason);
          this.#pump();
        };
        signal.addEventListener('abort', waiter.onAbort, { once: true });
      }
      this.#waiters.push(waiter);
      this.#pump();
    });
  }

  /** Milliseconds until `bytes` could be taken by a new request behind the current waiters (for ETAs and tests). */
  delayMsFor(bytes: number): number {
    if (this.#rate === UNCAPPED) return 0;
    this.#refill();
    const queued = this.#waiters.reduce((sum, w) => sum + w.bytes, 0);
    const missing = queued + Math.min(bytes, this.#burst) - this.#tokens;
    return missing <= 0 ? 0 : (missing / this.#rate) * 1000;
  }

  /** Rejects every waiter (shutdown): nothing may stay blocked on a bucket nobody refills. */
  close(reason: unknown): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    for (const w of this.#waiters.splice(0)) {
      if (w.signal && w.onAbort) w.signal.removeEventListener('abort', w.onAbort);
      w.reject(reason);
    }
  }

  #refill(): void {
    const now = this.#now();
    const elapsedMs = Math.max(0, now - this.#refilledAtMs);
    this.#refilledAtMs = now;
    if (this.#rate !== UNCAPPED) this.#tokens = Math.min(this.#burst, this.#tokens + (elapsedMs / 1000) * this.#rate);
  }

  #tryTake(bytes: number): boolean {
    if (this.#rate === UNCAPPED) return true;
    this.#refill();
    if (this.#tokens < Math.min(bytes, this.#burst)) return false;
    this.#tokens -= bytes;
    return true;
  }

  /** Serves waiters in order while tokens last, then sleeps until the head can be served. */
  #pump(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    for (let head = this.#waiters[0]; head; head = this.#waiters[0]) {
      if (!this.#tryTake(head.bytes)) break;
      this.#waiters.shift();
      if (head.signal && head.onAbort) head.signal.removeEventListener('abort', head.onAbort);
      head.resolve();
    }
    const head = this.#waiters[0];
    if (!head) return;
    const missing = Math.min(head.bytes, this.#burst) - this.#tokens;
    // +1 ms: a timer firing a hair early would find the bucket still short and sleep again.
    const delayMs = Math.max(1, Math.ceil((missing / this.#rate) * 1000) + 1);
    this.#timer = setTimeout(() => this.#pump(), delayMs);
  }
}

/** 0, negative, NaN or Infinity: uncapped. */
export function normalizeRate(bytesPerSecond: number): number {
  return Number.isFinite(bytesPerSecond) && bytesPerSecond > 0 ? bytesPerSecond : UNCAPPED;
}

/** kbit/s (1000 bit/s, as links are sold) to bytes per second; 0 = uncapped. */
export function kbpsToBytesPerSecond(kbps: number): number {
  return kbps > 0 ? (kbps * 1000) / 8 : UNCAPPED;
}

export interface ThrottleBodyOptions {
  /** Called with every slice as it is let through (rate measurement, stall detection). */
  onBytes?: (bytes: number) => void;
  /** Aborts a wait for tokens; the stream then ends with the signal's reason. */
  signal?: AbortSignal;
}

/**
 * The same bytes as `source`, in the same order, let through at the bucket's rate: the body
 * keeps its length (and so its Content-Length and Content-MD5). While capped, chunks are cut
 * into slices of about 1/50 s of the rate (1-16 KiB), so the link sees a smooth flow rather than
 * a megabyte burst followed by silence; uncapped, chunks pass whole, at no cost.
 */
export function throttleBody(source: AsyncIterable<Buffer | Uint8Array | string>, bucket: TokenBucket, options: ThrottleBodyOptions = {}): Readable {
  const { onBytes, signal } = options;
  async function* paced(): AsyncGenerator<Buffer> {
    for await (const raw of source) {
      let chunk = typeof raw === 'string' ? Buffer.from(raw) : Buffer.isBuffer(raw) ? raw : Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
      while (chunk.length > 0) {
        const slice = bucket.uncapped ? chunk : chunk.subarray(0, sliceBytesFor(bucket.rateBytesPerSecond));
        await bucket.take(slice.length, signal);
        chunk = chunk.subarray(slice.length);
        onBytes?.(slice.length);
        yield slice;
      }
    }
  }
  // Byte mode with a small buffer: what left the bucket is what the socket is being given, not
  // a queue of slices read ahead.
  return Readable.from(paced(), { objectMode: false, highWaterMark: 16 * 1024 });
}

export function sliceBytesFor(rateBytesPerSecond: number): number {
  return Math.max(1024, Math.min(16 * 1024, Math.floor(rateBytesPerSecond / 50)));
}
