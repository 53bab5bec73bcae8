import { connect } from 'node:net';
import { UNCAPPED } from './tokenBucket.js';

/**
 * Yield: delay-based back-off in the spirit of LEDBAT (RFC 6817). The round-trip time to the
 * store is sampled every second or so; its minimum over the last minutes is the base (the
 * link's own delay, queues empty). When a sample rises well above the base (+100 ms, or twice
 * the base on a short path, whichever comes first), a queue is
 * building on the way — someone in the classroom is using the link, or we fill it ourselves —
 * and the upload rate is halved; once the delay is back near the base it grows again by a
 * small step per sample (AIMD). A foreground transfer thus keeps nearly the whole link, and an
 * upload alone on the link still fills it when nobody else needs it.
 *
 * The controller is pure (samples in, cap out); the probe that measures the round trip is
 * injected, so tests can drive it with numbers and the agent with TCP connects to the store.
 */

export interface YieldSettings {
  /**
   * A sample this far above the base counts as a queue building up (LEDBAT's target is 100 ms);
   * on a short path a doubling of the round trip counts sooner, but never less than
   * `minThresholdMs` above the base (jitter of a few ms is no queue).
   */
  thresholdMs: number;
  minThresholdMs: number;
  /** The yield never goes below this rate (bytes/s): the upload always creeps on. */
  minBytesPerSecond: number;
  /** Multiplicative decrease per congested sample. */
  decreaseFactor: number;
  /** The base is the minimum over this long (LEDBAT keeps about ten minutes of history). */
  baseWindowMs: number;
  /**
   * The current delay is the minimum of this many last samples (LEDBAT's current-delay filter):
   * one late packet or a busy moment of the CPU is no queue; a queue shows in every sample.
   */
  currentFilter: number;
}

export const DEFAULT_YIELD: YieldSettings = { thresholdMs: 100, minThresholdMs: 25, minBytesPerSecond: 8_000, decreaseFactor: 0.5, baseWindowMs: 10 * 60_000, currentFilter: 2 };

/** One minute per bucket of base history, as in LEDBAT: a minimum that forgets slowly. */
const BASE_BUCKET_MS = 60_000;

export interface YieldState {
  /** The rate yield allows (bytes/s); Infinity = it is not limiting. */
  capBytesPerSecond: number;
  yielding: boolean;
  baseRttMs: number | null;
  lastRttMs: number | null;
}

export class DelayYield {
  readonly #s: YieldSettings;
  readonly #history: { startMs: number; minMs: number }[] = [];
  readonly #recent: number[] = [];
  #cap = UNCAPPED;
  #last: number | null = null;
  #peakRate = 0;

  constructor(settings: Partial<YieldSettings> = {}) {
    this.#s = { ...DEFAULT_YIELD, ...settings };
  }

  state(): YieldState {
    return { capBytesPerSecond: this.#cap, yielding: this.#cap !== UNCAPPED, baseRttMs: this.baseRttMs, lastRttMs: this.#last };
  }

  get capBytesPerSecond(): number {
    return this.#cap;
  }

  get baseRttMs(): number | null {
    return this.#history.length === 0 ? null : Math.min(...this.#history.map((h) => h.minMs));
  }

  /**
   * One round-trip sample. `sendingBytesPerSecond`: what the upload measured over the last
   * seconds (the starting point of the first decrease); `ceilingBytesPerSecond`: the cap without
   * yield (window or configured cap; Infinity when none).
   */
  onSample(rttMs: number, nowMs: number, sendingBytesPerSecond: number, ceilingBytesPerSecond: number): void {
    this.#last = rttMs;
    this.#remember(rttMs, nowMs);
    this.#recent.push(rttMs);
    while (this.#recent.length > Math.max(1, this.#s.currentFilter)) this.#recent.shift();
    this.#peakRate = Math.max(this.#peakRate, sendingBytesPerSecond);
    const base = this.baseRttMs ?? rttMs;
    const queueingMs = Math.min(...this.#recent) - base;
    const floor = this.#s.minBytesPerSecond;
    const thresholdMs = Math.max(this.#s.minThresholdMs, Math.min(this.#s.thresholdMs, base));
    if (queueingMs > thresholdMs) {
      const from = this.#cap !== UNCAPPED ? Math.min(this.#cap, Math.max(sendingBytesPerSecond, floor)) : sendingBytesPerSecond > 0 ? sendingBytesPerSecond : ceilingBytesPerSecond;
      // Nothing measured and no ceiling: nothing to halve yet; start from the floor's side.
      if (!Number.isFinite(from)) return;
      this.#cap = Math.max(floor, from * this.#s.decreaseFactor);
      return;
    }
    if (this.#cap === UNCAPPED || queueingMs > thresholdMs / 2) return;
    // A step of a twentieth of the best rate seen: back to full speed in about twenty samples.
    this.#cap += Math.max(floor, this.#peakRate / 20);
    const enough = Number.isFinite(ceilingBytesPerSecond) ? ceilingBytesPerSecond : 2 * this.#peakRate;
    if (this.#cap >= enough) this.#cap = UNCAPPED;
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
