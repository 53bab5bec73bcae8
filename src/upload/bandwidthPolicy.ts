import type { Readable } from 'node:stream';
import type { Logger } from '../log/logger.js';
// Types only: s3Multipart.ts loads the AWS SDK, which the agent loads only for a bucket.
import type { BodyThrottle, ThrottledRequest } from '../storage/s3Multipart.js';
import { describeError, LecternError } from '../util/errors.js';
import { RateMeter } from './rateMeter.js';
import { kbpsToBytesPerSecond, throttleBody, TokenBucket, UNCAPPED } from './tokenBucket.js';
import { UploadWindows, type ActiveWindow } from './windows.js';
import { DelayYield, type RttProbe } from './yield.js';

/**
 * "Upload when bandwidth allows" (DESIGN §4): the one component the store's bodies go through.
 * It combines
 *   - a rate cap: one token bucket for the whole agent (tokenBucket.ts);
 *   - time windows with their own caps in the configured zone (windows.ts);
 *   - pause while recording: a new request waits while any recording runs; one already sending
 *     finishes, unless finishing would take longer than `finishWithinMs` at the current rate,
 *     then it is withdrawn and sent again after the recording (at most one part is re-sent);
 *   - yield: a LEDBAT-like controller owns the rate while it is on (yield.ts): it grows while the
 *     round trip to the store shows no queue, backs off in proportion when one builds, and never
 *     runs ahead of what the link took recently, so the socket's buffer never fills;
 *   - link watch: the same probe notices the store going away and coming back; a request that
 *     stalled meanwhile and does not move again within a few seconds is withdrawn and sent
 *     again, so the upload resumes within seconds of the link returning rather than after TCP's
 *     backoff or the socket's idle timeout;
 * and reports what it does (status()): measured rate, cap, window, why it waits, backlog, ETA.
 *
 * Priorities need nothing here: the queue claims jobs by priority, then id (creation order), and
 * one publish job per lecture is enqueued when its package is built, so older lectures are
 * published first; within a lecture, publish.ts sends media before playlists before the manifest.
 */

export interface UploadSettings {
  /** Default cap in kbit/s outside every window; 0 = uncapped. */
  rateCapKbps: number;
  /** Window lines, see windows.ts. */
  windows: readonly string[];
  /** IANA zone of the windows (default: the system zone). */
  timeZone?: string | undefined;
  pauseWhileRecording: boolean;
  yield: { enabled: boolean; thresholdMs: number; minRateKbps: number; intervalMs: number };
}

export type PausedReason = 'recording' | 'window';

export interface UploadPolicyStatus {
  /** Measured over the last 10 s, bytes per second. */
  rateBytesPerSecond: number;
  /** The cap in force (window or configured cap, lowered by yield); null = uncapped. */
  capBytesPerSecond: number | null;
  /** The window line in force, null outside every window. */
  window: string | null;
  pausedReason: PausedReason | null;
  /** The store did not answer the last probes. */
  linkDown: boolean;
  yielding: boolean;
  rttMs: number | null;
  baseRttMs: number | null;
  activeUploads: number;
  pendingBytes: number | null;
  etaSeconds: number | null;
}

export interface BandwidthPolicyOptions {
  settings: UploadSettings;
  logger: Logger;
  /** True while any recording runs (RecordingController status not idle). */
  isRecording?: () => boolean;
  /** Round trip to the store; without it, no yield and no link watch. */
  probe?: RttProbe;
  /** Bytes waiting to be uploaded, for the status and its ETA. */
  pendingBytes?: () => number | null;
  /** Wall clock for windows (epoch ms). */
  now?: () => number;
  /** Monotonic clock for rates (ms). */
  monotonicNow?: () => number;
  /** How often windows and recording are looked at; default 1000 ms. */
  tickMs?: number;
  /** A sending request is let finish a pause if it needs at most this long; default 30 s. */
  finishWithinMs?: number;
  /**
   * When the link comes back, a request that stalled gets this long to move again by itself (TCP
   * retransmits, nothing is re-sent); one that does not is withdrawn and sent again. Default 5 s.
   */
  resumeGraceMs?: number;
  /** How long a new request waits for a link the probe calls down, at most; default 60 s. */
  linkWaitMs?: number;
}

interface Active {
  key: string;
  sizeBytes: number;
  sentBytes: number;
  lastProgressMs: number;
  controller: AbortController;
}

/** Probes while idle: enough to keep the base round trip fresh without bothering the server. */
const IDLE_PROBE_MS = 30_000;
/**
 * While uploading, the round trip is sampled at least this often: yield must see a foreground
 * transfer's queue within a second, before our excess piles up in the socket's buffer. A TCP
 * connect (no request) four times a second is cheap for the store.
 */
const BUSY_PROBE_MS = 250;
/** The token bucket's burst while yield paces: 50 ms of the rate, at least 8 KiB. */
const YIELD_BURST_MS = 50;
const YIELD_MIN_BURST_BYTES = 8 * 1024;
/** Probe failures in a row before the link counts as down. */
const DOWN_AFTER_FAILURES = 2;

export class BandwidthPolicy implements BodyThrottle {
  readonly #o: BandwidthPolicyOptions;
  readonly #log: Logger;
  readonly #now: () => number;
  readonly #mono: () => number;
  readonly #bucket: TokenBucket;
  readonly #meter: RateMeter;
  readonly #windows: UploadWindows;
  readonly #yield: DelayYield | undefined;
  readonly #active = new Set<Active>();
  #window: ActiveWindow;
  #paused: PausedReason | null = null;
  #linkDown = false;
  #probeFailures = 0;
  #everReached = false;
  #wake: (() => void)[] = [];
  #tickTimer: NodeJS.Timeout | undefined;
  #probeTimer: NodeJS.Timeout | undefined;
  #probeAbort: AbortController | undefined;
  #probeDueMs = Number.POSITIVE_INFINITY;
  #probing = false;
  #lastBusyMs = Number.NEGATIVE_INFINITY;
  /** Bytes counted and the time at the last yield sample: what the link took in between. */
  #sampledBytes = 0;
  #sampledAtMs = 0;
  #busyAtSample = false;
  #stopped = false;
  #started = false;

  constructor(options: BandwidthPolicyOptions) {
    this.#o = options;
    this.#log = options.logger.child({ scope: 'bandwidth' });
    this.#now = options.now ?? Date.now;
    this.#mono = options.monotonicNow ?? (() => performance.now());
    const s = options.settings;
    const yieldOn = s.yield.enabled && options.probe !== undefined;
    // Yield paces every body: a short burst keeps what the link sees as smooth as the rate says.
    this.#bucket = new TokenBucket({ rateBytesPerSecond: kbpsToBytesPerSecond(s.rateCapKbps), now: this.#mono, ...(yieldOn ? { burstMs: YIELD_BURST_MS, minBurstBytes: YIELD_MIN_BURST_BYTES } : {}) });
    this.#meter = new RateMeter({ now: this.#mono });
    this.#windows = new UploadWindows(s.windows, { ...(s.timeZone ? { timeZone: s.timeZone } : {}), defaultCapBytesPerSecond: kbpsToBytesPerSecond(s.rateCapKbps) });
    this.#yield = s.yield.enabled && options.probe ? new DelayYield({ thresholdMs: s.yield.thresholdMs, minBytesPerSecond: kbpsToBytesPerSecond(s.yield.minRateKbps) }) : undefined;
    this.#sampledAtMs = this.#mono();
    this.#window = this.#windows.at(this.#now());
    this.#apply();
  }

  async start(): Promise<void> {
    if (this.#started) return;
    this.#started = true;
    this.tick();
    this.#tickTimer = setInterval(() => this.tick(), this.#o.tickMs ?? 1_000);
    this.#tickTimer.unref();
    if (this.#o.probe) this.#scheduleProbe(0);
  }

  /**
   * Stops shaping: whatever is still being sent while the agent shuts down (the worker lets the
   * current file finish) goes at full speed, and nothing waits on a gate nobody will open. The
   * worker stops its jobs itself; failing their requests here would only make the store retry.
   */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#tickTimer) clearInterval(this.#tickTimer);
    if (this.#probeTimer) clearTimeout(this.#probeTimer);
    this.#probeAbort?.abort();
    this.#paused = null;
    this.#linkDown = false;
    this.#bucket.setRate(UNCAPPED);
    this.#wakeAll();
  }

  // ---- BodyThrottle --------------------------------------------------------------------------

  async begin(request: { key: string; sizeBytes: number }): Promise<ThrottledRequest> {
    this.#lastBusyMs = this.#mono();
    this.#probeSoon();
    const linkWaitUntil = this.#mono() + (this.#o.linkWaitMs ?? 60_000);
    for (;;) {
      if (this.#stopped) break;
      const waitForLink = this.#linkDown && this.#mono() < linkWaitUntil;
      if (!this.#paused && !waitForLink) break;
      await this.#changed(waitForLink ? 1_000 : undefined);
      this.#lastBusyMs = this.#mono();
    }
    const controller = new AbortController();
    const active: Active = { key: request.key, sizeBytes: request.sizeBytes, sentBytes: 0, lastProgressMs: this.#mono(), controller };
    this.#active.add(active);
    return {
      signal: controller.signal,
      body: (source: Readable) => {
        const paced = throttleBody(source, this.#bucket, {
          signal: controller.signal,
          onBytes: (n) => {
            active.sentBytes += n;
            active.lastProgressMs = this.#mono();
            this.#meter.add(n);
          },
        });
        // The HTTP client pipes the body and ignores its errors: a body that fails (the file
        // unreadable, a withdrawal, stop()) must abort the request, or it would hang until the
        // idle timeout — and an 'error' with no listener would take the process down.
        paced.on('error', (err) => controller.abort(err));
        return paced;
      },
      end: () => {
        this.#active.delete(active);
        this.#lastBusyMs = this.#mono();
      },
    };
  }

  async charge(sizeBytes: number): Promise<void> {
    await this.#bucket.take(sizeBytes);
    this.#meter.add(sizeBytes);
  }

  // ---- status --------------------------------------------------------------------------------

  status(): UploadPolicyStatus {
    const rate = this.#meter.rate();
    const cap = this.#bucket.rateBytesPerSecond;
    const pendingBytes = this.#o.pendingBytes?.() ?? null;
    const y = this.#yield?.state();
    return {
      rateBytesPerSecond: Math.round(rate),
      capBytesPerSecond: this.#paused ? 0 : cap === UNCAPPED ? null : Math.round(cap),
      window: this.#window.window?.name ?? null,
      pausedReason: this.#paused,
      linkDown: this.#linkDown,
      yielding: y?.yielding ?? false,
      rttMs: y?.lastRttMs === null || y === undefined ? null : Math.round(y.lastRttMs),
      baseRttMs: y?.baseRttMs === null || y === undefined ? null : Math.round(y.baseRttMs),
      activeUploads: this.#active.size,
      pendingBytes,
      etaSeconds: pendingBytes === null ? null : pendingBytes === 0 ? 0 : rate > 0 ? Math.ceil(pendingBytes / rate) : null,
    };
  }

  /** Looks at the clock and the recorder again (every tick; callable after a command). */
  tick(): void {
    if (this.#stopped) return;
    const now = this.#now();
    if (this.#window.nextChangeMs !== null && now >= this.#window.nextChangeMs) {
      const before = this.#window.window?.name ?? null;
      this.#window = this.#windows.at(now);
      const after = this.#window.window?.name ?? null;
      if (before !== after) this.#log.info(`upload window now ${after === null ? 'the default cap' : `"${after}"`}`);
    }
    let recording = false;
    try {
      recording = this.#o.settings.pauseWhileRecording && (this.#o.isRecording?.() ?? false);
    } catch (err) {
      this.#log.warn(`cannot tell whether a recording runs: ${describeError(err)}`);
    }
    const paused: PausedReason | null = this.#window.paused ? 'window' : recording ? 'recording' : null;
    if (paused !== this.#paused) {
      this.#paused = paused;
      if (paused) this.#withdrawLongRequests(paused);
      this.#log.info(paused ? `uploads paused (${paused === 'recording' ? 'a recording is running' : `window "${this.#window.window?.name ?? ''}"`})` : 'uploads resumed');
    }
    this.#apply();
    this.#wakeAll();
  }

  /** The bucket's rate: the window's (or default) cap, lowered by yield. */
  #apply(): void {
    const ceiling = this.#window.paused ? UNCAPPED : this.#window.capBytesPerSecond;
    // A probe that never worked says nothing about the link: yield's start guess must not hold
    // uploads at 32 kB/s for good (a firewall that drops bare connects, a proxy in the way).
    const probeBroken = !this.#everReached && this.#probeFailures >= DOWN_AFTER_FAILURES;
    const y = this.#yield && !probeBroken ? this.#yield.capBytesPerSecond : UNCAPPED;
    this.#bucket.setRate(Math.min(ceiling, y));
  }

  /** A pause began: a request that would need long to finish gives way now and is sent again later. */
  #withdrawLongRequests(reason: PausedReason): void {
    const limitMs = this.#o.finishWithinMs ?? 30_000;
    // What it gets now; right after its start nothing is measured yet, and the cap is the guess.
    const measured = this.#meter.rate(2_000);
    const rate = measured > 0 ? Math.min(this.#bucket.rateBytesPerSecond, measured) : this.#bucket.rateBytesPerSecond;
    for (const a of this.#active) {
      const leftMs = ((a.sizeBytes - a.sentBytes) / rate) * 1000;
      if (leftMs <= limitMs) continue;
      this.#log.info(`withdrawing the upload of "${a.key}" for now (${reason}); it would need ${Math.round(leftMs / 1000)} s more`);
      a.controller.abort(new LecternError('INTERNAL', `uploads paused (${reason})`));
    }
  }

  // ---- probing -------------------------------------------------------------------------------

  #scheduleProbe(delayMs: number): void {
    if (this.#stopped) return;
    if (this.#probeTimer) clearTimeout(this.#probeTimer);
    this.#probeDueMs = this.#mono() + delayMs;
    this.#probeTimer = setTimeout(() => void this.#probeOnce(), delayMs);
    this.#probeTimer.unref();
  }

  /** Uploads start: from the idle probing pace to the busy one at once. */
  #probeSoon(): void {
    if (!this.#o.probe || !this.#started || this.#probing) return;
    if (this.#probeDueMs - this.#mono() > this.#busyProbeMs()) this.#scheduleProbe(0);
  }

  async #probeOnce(): Promise<void> {
    const probe = this.#o.probe;
    if (!probe || this.#stopped) return;
    this.#probeAbort = new AbortController();
    this.#probing = true;
    try {
      const rttMs = await probe(this.#probeAbort.signal);
      this.#everReached = true;
      this.#probeFailures = 0;
      if (this.#linkDown) this.#linkBack();
      if (this.#yield) this.#yieldSample(this.#yield, rttMs);
    } catch (err) {
      if (this.#stopped) return;
      this.#probeFailures++;
      // A probe that never worked says nothing about the link (a proxy in the way, a firewall
      // that drops bare connects): it must not hold uploads back.
      if (this.#everReached && !this.#linkDown && this.#probeFailures >= DOWN_AFTER_FAILURES) {
        this.#linkDown = true;
        this.#log.warn(`the storage does not answer (${describeError(err)}); uploads wait for it`);
      }
      if (!this.#everReached) this.#apply();
    }
    this.#probing = false;
    const busy = this.#active.size > 0 || this.#mono() - this.#lastBusyMs < 10_000 || this.#linkDown;
    this.#scheduleProbe(busy ? this.#busyProbeMs() : IDLE_PROBE_MS);
  }

  #busyProbeMs(): number {
    return Math.min(this.#o.settings.yield.intervalMs, BUSY_PROBE_MS);
  }

  /**
   * Feeds yield what the link took since the last sample. That counts the bytes the body handed
   * to the socket: as long as the rate is below what the link takes they are what it took, and
   * once the socket's buffer is full, what it lets in is what drained. An interval counts as busy
   * only when a request was open at both ends (a request that just began has idled part of it).
   */
  #yieldSample(y: DelayYield, rttMs: number): void {
    const now = this.#mono();
    const bytes = this.#meter.totalBytes;
    const elapsedMs = Math.max(1, now - this.#sampledAtMs);
    const drainedBytesPerSecond = ((bytes - this.#sampledBytes) / elapsedMs) * 1000;
    const busyNow = this.#active.size > 0;
    const busy = busyNow && this.#busyAtSample;
    this.#sampledBytes = bytes;
    this.#sampledAtMs = now;
    this.#busyAtSample = busyNow;
    const before = y.state();
    y.onSample({ rttMs, nowMs: now, drainedBytesPerSecond, busy, ceilingBytesPerSecond: this.#window.capBytesPerSecond });
    const after = y.state();
    if (after.capBytesPerSecond < before.capBytesPerSecond * 0.9 || after.yielding !== before.yielding) {
      this.#log.debug(
        `yield: round trip ${Math.round(rttMs)} ms (base ${Math.round(after.baseRttMs ?? rttMs)} ms, queue ${Math.round(after.queueingMs ?? 0)} ms); link took ${Math.round((drainedBytesPerSecond * 8) / 1000)} kbit/s; rate now ${Math.round((after.capBytesPerSecond * 8) / 1000)} kbit/s`,
      );
    }
    this.#apply();
  }

  #linkBack(): void {
    this.#linkDown = false;
    const backMs = this.#mono();
    this.#log.info('the storage answers again');
    this.#wakeAll();
    // After a long outage TCP's next retransmission can be a minute away (exponential backoff),
    // and the socket's idle timeout as far: a request still stuck after the grace is withdrawn
    // and sent again at once (at most its one part is re-sent).
    const timer = setTimeout(() => {
      for (const a of this.#active) {
        if (a.lastProgressMs >= backMs || a.controller.signal.aborted) continue;
        this.#log.info(`the upload of "${a.key}" did not move again after the outage; sending it again`);
        a.controller.abort(new LecternError('INTERNAL', 'the request stalled while the storage was unreachable'));
      }
    }, this.#o.resumeGraceMs ?? 5_000);
    timer.unref();
  }

  // ---- waiting -------------------------------------------------------------------------------

  /** Resolves at the next tick (or state change), or after `maxMs`. */
  #changed(maxMs?: number): Promise<void> {
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const done = (): void => {
        if (timer) clearTimeout(timer);
        resolve();
      };
      if (maxMs !== undefined) timer = setTimeout(done, maxMs);
      if (this.#stopped) done();
    else this.#wake.push(done);
    });
  }

  #wakeAll(): void {
    for (const wake of this.#wake.splice(0)) wake();
  }
}
