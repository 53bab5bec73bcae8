import { connect } from 'node:net';

/**
 * Yield: a delay-based rate controller in the spirit of LEDBAT (RFC 6817). While yield is on it
 * owns the upload's rate (bodies are paced at it even when no cap is configured): an upload that
 * ran ahead of the link would park megabytes in the kernel's socket buffer, which then drain at
 * TCP's fair share for seconds whatever the rate says — the foreground traffic yield is for would
 * get half the link instead of nearly all of it.
 *
 * The round-trip time to the store is sampled a few times a second while uploading; its minimum
 * over the last minutes is the base (the link's own delay, queues empty), and the current delay
 * (the minimum of the last samples) minus the base is the queueing delay. The target is
 * `thresholdMs`, or the base itself on a short path, but never below `minThresholdMs`.
 *   - Start: from `startBytesPerSecond` the rate doubles each sample while the link keeps up (it
 *     took at least three quarters of the rate) and no queue shows: the probe for the link's rate.
 *     With a cap (the window's or the configured one) the start is the cap itself: the operator
 *     said what the upload may take, and creeping up to it from 32 kB/s would cost the first
 *     second of every capped upload; the same checks end the start within two samples when a
 *     queue shows or the link takes less.
 *   - Below the target: additive increase, in proportion to how far below (LEDBAT's off-target),
 *     by at most a sixteenth of the best rate the link took recently (or an eighth of the rate,
 *     if that is less) per sample; none while the queue grows fast (the rate is above the link's
 *     already; growing on overshoots).
 *   - Above the target: a proportional decrease, from what the link actually took when that was
 *     less than the rate: gentle just above the target, a half at nine times the target.
 *   - Never faster than the rate the link took over the last seconds plus a small margin, so the
 *     bytes written ahead of the link stay few.
 * A foreground transfer fills the link's queue, and the upload backs off to its floor within a
 * second or two; an upload alone on the link fills it, with a queue near the target.
 *
 * The controller is pure (samples in, rate out); the probe that measures the round trip is
 * injected, so tests drive it with numbers and the agent with TCP connects to the store.
 */

export interface YieldSettings {
  /** LEDBAT's target queueing delay (its standard value is 100 ms). */
  thresholdMs: number;
  /**
   * On a short path the target is the base itself, but never less than this (jitter of a few ms
   * is no queue). Not more either: a foreground flow under BBR keeps its queue at 30-50 ms on the
   * 4 Mbit/s test link (after its start-up burst of 400 ms), and a target above that would not
   * yield to it (seen with 50 ms: the upload never gave way).
   */
  minThresholdMs: number;
  /** The rate never goes below this (bytes/s): the upload always creeps on. */
  minBytesPerSecond: number;
  /** The rate of an upload before anything is known of the link, when no cap is set (bytes/s). */
  startBytesPerSecond: number;
  /**
   * Proportional decrease: the fraction cut per target of queueing delay over the target, at
   * most a half (1/16: a sixteenth at twice the target, a half at nine times and above).
   * Gentle near the target, where an upload alone on the link runs (a cut of a fifth there
   * empties the queue, and the link idles until the rate is back); a foreground transfer's queue
   * is far above it at its start (400 ms on the test link: sixteen targets).
   */
  decreaseGain: number;
  /** Additive increase per sample at an empty queue, as a fraction of the best rate the link took. */
  increaseGain: number;
  /** Headroom over the rate the link took recently: at most this fraction, plus `marginBytesPerSecond`. */
  drainHeadroom: number;
  marginBytesPerSecond: number;
  /** How far back "recently" reaches for that rate. */
  drainWindowMs: number;
  /** The base is the minimum over this long (LEDBAT keeps about ten minutes of history). */
  baseWindowMs: number;
  /**
   * The current delay is the minimum of this many last samples (LEDBAT's current-delay filter):
   * one late packet or a busy moment of the CPU is no queue; a queue shows in every sample.
   */
  currentFilter: number;
}

export const DEFAULT_YIELD: YieldSettings = {
  thresholdMs: 100,
  minThresholdMs: 25,
  minBytesPerSecond: 8_000,
  startBytesPerSecond: 32_000,
  decreaseGain: 1 / 16,
  increaseGain: 1 / 16,
  drainHeadroom: 0.1,
  marginBytesPerSecond: 16_000,
  drainWindowMs: 2_000,
  baseWindowMs: 10 * 60_000,
  currentFilter: 2,
};

/** One minute per bucket of base history, as in LEDBAT: a minimum that forgets slowly. */
const BASE_BUCKET_MS = 60_000;
/** The largest cut per sample: a foreground transfer takes the link within a second or two. */
const MAX_CUT = 0.5;
/** How long the best rate the link took counts for the size of an increase step. */
const PEAK_WINDOW_MS = 60_000;
/** `yielding` in the status: a queue made the rate go down within this long. */
const YIELDING_FOR_MS = 10_000;

export interface YieldSample {
  rttMs: number;
  /** Monotonic ms. */
  nowMs: number;
  /** What the link took of the upload since the last sample, bytes/s. */
  drainedBytesPerSecond: number;
  /** False while no upload is sending: the rate is then held (nothing is learnt about the link). */
  busy: boolean;
  /** The cap without yield (a window or the configured cap); Infinity when none. */
  ceilingBytesPerSecond: number;
}

export interface YieldState {
  /** The rate yield allows (bytes/s). */
  capBytesPerSecond: number;
  /** A queue on the link held the rate below the ceiling within the last seconds. */
  yielding: boolean;
  baseRttMs: number | null;
  lastRttMs: number | null;
  /** Queueing delay over the base by the current-delay filter, ms. */
  queueingMs: number | null;
}

export class DelayYield {
  readonly #s: YieldSettings;
  readonly #history: { startMs: number; minMs: number }[] = [];
  readonly #recent: number[] = [];
  readonly #drained: { atMs: number; bytesPerSecond: number }[] = [];
  #rate: number;
  #slowStart = true;
  /** A busy sample was taken: the rate is no longer the start's guess. */
  #learnt = false;
  #shortSamples = 0;
  #last: number | null = null;
  #queueing: number | null = null;
  /** The last busy sample's queueing delay (unfiltered), for the trend. */
  #previousQueueingMs: number | null = null;
  #ceiling = Number.POSITIVE_INFINITY;
  #lastCutMs = Number.NEGATIVE_INFINITY;
  #lastSampleMs = Number.NEGATIVE_INFINITY;

  constructor(settings: Partial<YieldSettings> = {}) {
    this.#s = { ...DEFAULT_YIELD, ...settings };
    this.#rate = this.#startRate(Number.POSITIVE_INFINITY);
  }

  state(): YieldState {
    const yielding = this.#rate < this.#ceiling && this.#lastSampleMs - this.#lastCutMs <= YIELDING_FOR_MS;
    return { capBytesPerSecond: this.#rate, yielding, baseRttMs: this.baseRttMs, lastRttMs: this.#last, queueingMs: this.#queueing };
  }

  /** The rate the upload is paced at (bytes/s); the ceiling applies on top. */
  get capBytesPerSecond(): number {
    return this.#rate;
  }

  get baseRttMs(): number | null {
    return this.#history.length === 0 ? null : Math.min(...this.#history.map((h) => h.minMs));
  }

  /** The target queueing delay for the current base. */
  targetMs(): number {
    const base = this.baseRttMs ?? 0;
    return Math.max(this.#s.minThresholdMs, Math.min(this.#s.thresholdMs, base));
  }

  onSample(sample: YieldSample): void {
    const { rttMs, nowMs } = sample;
    this.#last = rttMs;
    this.#lastSampleMs = nowMs;
    this.#ceiling = sample.ceilingBytesPerSecond;
    this.#remember(rttMs, nowMs);
    this.#recent.push(rttMs);
    while (this.#recent.length > Math.max(1, this.#s.currentFilter)) this.#recent.shift();
    const base = this.baseRttMs ?? rttMs;
    // A decrease needs a queue in every recent sample (one late packet is no queue); an increase
    // stops at the first sample that shows one.
    const queueingMs = Math.max(0, Math.min(...this.#recent) - base);
    const latestQueueingMs = Math.max(0, rttMs - base);
    this.#queueing = queueingMs;
    if (!this.#learnt) this.#rate = this.#startRate(sample.ceilingBytesPerSecond);
    // Idle: the samples keep the base fresh, but say nothing about the rate the link takes.
    if (!sample.busy) return;
    this.#learnt = true;

    const drained = Math.max(0, sample.drainedBytesPerSecond);
    this.#drained.push({ atMs: nowMs, bytesPerSecond: drained });
    while ((this.#drained[0]?.atMs ?? nowMs) < nowMs - PEAK_WINDOW_MS) this.#drained.shift();
    const recent = this.#bestDrained(nowMs - this.#s.drainWindowMs);
    const peak = this.#bestDrained(Number.NEGATIVE_INFINITY);
    const floor = this.#s.minBytesPerSecond;
    const target = this.targetMs();

    if (queueingMs > target) {
      const excess = (queueingMs - target) / target;
      const from = Math.min(this.#rate, Math.max(drained, floor));
      this.#rate = from * (1 - Math.min(MAX_CUT, this.#s.decreaseGain * excess));
      this.#slowStart = false;
      this.#lastCutMs = nowMs;
    } else if (this.#slowStart) {
      if (latestQueueingMs > target / 2) {
        // A queue starts to build: the link is about full.
        this.#slowStart = false;
      } else if (drained >= 0.75 * this.#rate) {
        this.#rate *= 2;
        this.#shortSamples = 0;
      } else if (++this.#shortSamples >= 2) {
        // Twice in a row the link took less than the rate (one short sample may be a gap between
        // two requests): that is about its rate.
        this.#slowStart = false;
        this.#rate = recent * (1 + this.#s.drainHeadroom) + this.#s.marginBytesPerSecond;
      }
    } else {
      // A queue that grows fast means a rate above the link's already: holding it there, rather
      // than growing on until the queue passes the target, keeps the overshoot (and the cut after
      // it, which empties the queue and idles the link) small.
      const growingMs = latestQueueingMs - (this.#previousQueueingMs ?? latestQueueingMs);
      if (growingMs <= target / 4) {
        // The step is a sixteenth of the best rate the link took, but no more than an eighth of
        // the rate: after yielding, one sample that found the queue empty (a foreground flow
        // under BBR drains it for 200 ms every 10 s) must not take back a sixteenth of the link.
        const offTarget = Math.max(0, (target - latestQueueingMs) / target);
        this.#rate += offTarget * Math.max(floor, Math.min(peak, 2 * this.#rate) * this.#s.increaseGain);
      }
      this.#rate = Math.min(this.#rate, recent * (1 + this.#s.drainHeadroom) + this.#s.marginBytesPerSecond);
    }
    this.#previousQueueingMs = latestQueueingMs;
    // Growing past the ceiling only stores up a burst for when the ceiling rises.
    if (Number.isFinite(sample.ceilingBytesPerSecond) && this.#rate > sample.ceilingBytesPerSecond) {
      this.#rate = sample.ceilingBytesPerSecond;
      this.#slowStart = false;
    }
    this.#rate = Math.max(floor, this.#rate);
  }

  /** Before anything is learnt of the link: the cap when there is one, else the probe rate. */
  #startRate(ceilingBytesPerSecond: number): number {
    const start = Number.isFinite(ceilingBytesPerSecond) ? ceilingBytesPerSecond : this.#s.startBytesPerSecond;
    return Math.max(this.#s.minBytesPerSecond, start);
  }

  #bestDrained(sinceMs: number): number {
    let best = 0;
    for (const d of this.#drained) if (d.atMs >= sinceMs && d.bytesPerSecond > best) best = d.bytesPerSecond;
    return best;
  }

  #remember(rttMs: number, nowMs: number): void {
    const bucketStart = Math.floor(nowMs / BASE_BUCKET_MS) * BASE_BUCKET_MS;
    const last = this.#history.at(-1);
    if (last && last.startMs === bucketStart) last.minMs = Math.min(last.minMs, rttMs);
    else this.#history.push({ startMs: bucketStart, minMs: rttMs });
    while (this.#history.length > 0 && (this.#history[0]?.startMs ?? 0) <= nowMs - this.#s.baseWindowMs - BASE_BUCKET_MS) this.#history.shift();
  }
}

/** Measures one round trip to the store in ms; rejects when the store cannot be reached. */
export type RttProbe = (signal: AbortSignal) => Promise<number>;

/**
 * A TCP connect to the store's host and port: the SYN waits in the same queues as the upload's
 * bytes, so its round trip grows exactly when the link's queue does. Cheap for the server (no
 * request, no credentials) and needs no rights.
 */
export function tcpConnectProbe(host: string, port: number, timeoutMs = 3_000): RttProbe {
  return (signal) =>
    new Promise((resolve, reject) => {
      const started = performance.now();
      const socket = connect({ host, port, signal, timeout: timeoutMs });
      const fail = (err: Error): void => {
        socket.destroy();
        reject(err);
      };
      socket.once('connect', () => {
        const ms = performance.now() - started;
        socket.destroy();
        resolve(ms);
      });
      socket.once('timeout', () => fail(Object.assign(new Error(`no TCP connect to ${host}:${port} within ${timeoutMs} ms`), { code: 'ETIMEDOUT' })));
      socket.once('error', fail);
    });
}

/** Host and port of the store's endpoint (AWS's regional endpoint when none is configured). */
export function endpointAddress(endpoint: string | undefined, region: string): { host: string; port: number } {
  if (!endpoint) return { host: `s3.${region}.amazonaws.com`, port: 443 };
  const url = new URL(endpoint);
  const port = url.port ? Number(url.port) : url.protocol === 'https:' ? 443 : 80;
  return { host: url.hostname.replace(/^\[|\]$/g, ''), port };
}
