/**
 * Bytes sent over the last seconds, in 100 ms bins: the "current rate" of the status and the
 * starting point of yield's first decrease.
 */
const BIN_MS = 100;

export class RateMeter {
  readonly #spanMs: number;
  readonly #now: () => number;
  readonly #bins = new Map<number, number>();
  readonly #startedMs: number;
  #total = 0;

  constructor(opts: { spanMs?: number; now?: () => number } = {}) {
    this.#spanMs = opts.spanMs ?? 10_000;
    this.#now = opts.now ?? (() => performance.now());
    this.#startedMs = this.#now();
  }

  add(bytes: number): void {
    const bin = Math.floor(this.#now() / BIN_MS);
    this.#bins.set(bin, (this.#bins.get(bin) ?? 0) + bytes);
    this.#total += bytes;
    if (this.#bins.size > this.#spanMs / BIN_MS + 2) this.#prune();
  }

  /** Every byte counted since the meter was made. */
  get totalBytes(): number {
    return this.#total;
  }

  /** Bytes per second over the last `windowMs` (at most the span; less right after start). */
  rate(windowMs: number = this.#spanMs): number {
    const now = this.#now();
    const span = Math.min(windowMs, this.#spanMs, Math.max(BIN_MS, now - this.#startedMs));
    const fromBin = Math.floor((now - span) / BIN_MS);
    let bytes = 0;
    for (const [bin, n] of this.#bins) if (bin > fromBin) bytes += n;
    return (bytes / span) * 1000;
  }

  #prune(): void {
    const oldest = Math.floor((this.#now() - this.#spanMs) / BIN_MS);
    for (const bin of this.#bins.keys()) if (bin <= oldest) this.#bins.delete(bin);
  }
}
