import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { AgentStatus, AlertStatus, NextEvent, RecordingState } from '../api/types.js';
import { toolVersion } from '../ffmpeg/version.js';
import type { Logger } from '../log/logger.js';
import { agentStatusKey } from '../storage/keys.js';
import type { Store } from '../storage/store.js';
import { describeError, isLecternError } from '../util/errors.js';
import { redactUrl } from '../util/redact.js';

/**
 * The heartbeat: every `intervalMs` the agent's health goes to `{prefix}/agents/{agentId}/status.json`
 * in the store (DESIGN §3.1), so IT staff see every room from the platform without logging in.
 *
 * Each beat is first written to `<dataDir>/heartbeat/status.json` (tmp + fsync + rename), then put
 * to the store. A room is often offline for hours; then the local file keeps the latest beat and
 * the store gets the next one once the link is back. Old beats are not queued: the platform needs
 * the current state, and each beat carries a short `history` of the previous beats' key numbers
 * (whether each reached the store), which also tells what happened while the room was cut off.
 *
 * A store that fails or hangs never throws out of the heartbeat and never holds up a beat or the
 * shutdown: every put is raced against an AbortSignal (the store port has no cancel; a put that
 * hangs is left to finish or fail in the background, and no second put is started beside it, so
 * an old beat can never land after a newer one).
 *
 * `beatAtMs` is this PC's clock. The platform can compare it with the object's Last-Modified (the
 * storage's clock) to see the skew even when `clock.skewMs` is unknown here.
 */

export const HEARTBEAT_SCHEMA_VERSION = 1;

export interface HeartbeatVersions {
  lectern: string;
  node: string;
  /** null when ffmpeg is missing or did not answer. */
  ffmpeg: string | null;
}

/** The key numbers of one earlier beat. */
export interface HeartbeatHistoryEntry {
  atMs: number;
  state: RecordingState;
  queueDepth: number;
  pendingLectures: number;
  pendingBytes: number | null;
  freeBytes: number | null;
  alerts: number;
  /** Whether that beat reached the store; null when unknown (a beat of a previous run). */
  sent: boolean | null;
}

/** What `status.json` holds (local and in the store). */
export interface HeartbeatDocument {
  schemaVersion: typeof HEARTBEAT_SCHEMA_VERSION;
  agent: { id: string; site: string; room: string; startedAtMs: number };
  beatAtMs: number;
  /** The same instant as ISO 8601, for people reading the file. */
  beatAt: string;
  /** Beats written by this run, from 1. */
  sequence: number;
  /** The next beat is due this long after this one. */
  intervalMs: number;
  /** 'stopping': the last beat of a clean shutdown (a silence after 'running' is a crash, a power cut or a lost link). */
  lifecycle: 'running' | 'stopping';
  /** Since the agent started. */
  uptimeSeconds: number;
  /** Since the PC booted: a small number after a silence means the power failed. */
  hostUptimeSeconds: number;
  versions: HeartbeatVersions;
  state: RecordingState;
  recording: {
    id: string;
    title: string | null;
    course: string | null;
    startedAtMs: number | null;
    elapsedMs: number;
    sources: Array<{ name: string; status: string; restarts: number }>;
  } | null;
  disk: { freeBytes: number | null; minFreeBytes: number; low: boolean };
  queue: { depth: number; queued: number; running: number; dead: number };
  uploads: { pendingLectures: number; pendingBytes: number | null; etaSeconds: number | null };
  alerts: AlertStatus[];
  next: NextEvent | null;
  clock: {
    /** The storage's clock minus this PC's, in ms; null when not measured. */
    skewMs: number | null;
    measuredAtMs: number | null;
  };
  /** The agent's most recent failure, when its source reports one. */
  lastError: { message: string; atMs: number | null } | null;
  /** The heartbeat's own link to the store. */
  link: {
    store: string;
    /** When a beat last reached the store (before this one). */
    lastSentAtMs: number | null;
    /** Beats in a row that did not reach the store (before this one). */
    failedBeats: number;
    lastError: string | null;
  };
  /** The previous beats, oldest first. */
  history: HeartbeatHistoryEntry[];
}

export interface HeartbeatOptions {
  /** The one status of the agent (StatusAggregator.current). */
  status: () => AgentStatus;
  store: Pick<Store, 'putBytes' | 'description'>;
  storePrefix: string;
  agentId: string;
  /** The local copy lives in `<dataDir>/heartbeat/status.json`. */
  dataDir: string;
  intervalMs: number;
  logger: Logger;
  /** Resolved once, at the first beat (asking ffmpeg takes a process start). */
  versions: HeartbeatVersions | (() => Promise<HeartbeatVersions>);
  /** Bytes of lectures waiting to be published, when cheaply known; else the status's own figure. */
  pendingBytes?: () => Promise<number | null>;
  /** The agent's most recent failure (e.g. the newest job error). */
  lastError?: () => { message: string; atMs: number | null } | null;
  /** The storage's clock minus ours, when something measures it; a refused put (STORE_CLOCK_SKEW) also tells. */
  clockSkewMs?: () => number | null;
  now?: () => number;
  /** How long one put may take; default half the interval, at most 30 s. */
  putTimeoutMs?: number;
  /** How long stop() may spend on the running beat and the final one; default 2000 ms. */
  stopTimeoutMs?: number;
  /** Earlier beats kept in `history`; default 12 (an hour at the default interval). */
  historySize?: number;
}

const DEFAULT_STOP_TIMEOUT_MS = 2_000;
const MAX_PUT_TIMEOUT_MS = 30_000;
const DEFAULT_HISTORY_SIZE = 12;
const MAX_MESSAGE_CHARS = 500;
const FILE_NAME = 'status.json';

export class Heartbeat {
  readonly #o: HeartbeatOptions;
  readonly #log: Logger;
  readonly #now: () => number;
  readonly #key: string;
  readonly #dir: string;
  readonly #putTimeoutMs: number;
  readonly #stopTimeoutMs: number;
  readonly #historySize: number;
  #versions: HeartbeatVersions | undefined;
  #history: HeartbeatHistoryEntry[] = [];
  #sequence = 0;
  #lastSentAtMs: number | null = null;
  #failedBeats = 0;
  #linkError: string | null = null;
  #learnedSkew: { skewMs: number; atMs: number } | undefined;
  #localFailing = false;
  /** The store's put that has not settled yet (even after we stopped waiting for it). */
  #inflight: Promise<void> | undefined;
  /** The beat being run, so stop() can wait for it. */
  #beating: Promise<void> | undefined;
  #timer: NodeJS.Timeout | undefined;
  #running = false;
  #stop = new AbortController();

  constructor(options: HeartbeatOptions) {
    if (!(options.intervalMs > 0)) throw new RangeError(`heartbeat intervalMs must be positive, got ${options.intervalMs}`);
    this.#o = options;
    this.#log = options.logger.child({ scope: 'heartbeat' });
    this.#now = options.now ?? Date.now;
    this.#key = agentStatusKey({ prefix: options.storePrefix, agentId: options.agentId });
    this.#dir = path.join(path.resolve(options.dataDir), 'heartbeat');
    this.#putTimeoutMs = options.putTimeoutMs ?? Math.min(MAX_PUT_TIMEOUT_MS, Math.max(1_000, Math.floor(options.intervalMs / 2)));
    this.#stopTimeoutMs = options.stopTimeoutMs ?? DEFAULT_STOP_TIMEOUT_MS;
    this.#historySize = options.historySize ?? DEFAULT_HISTORY_SIZE;
  }

  /** The local copy of the latest beat. */
  get localPath(): string {
    return path.join(this.#dir, FILE_NAME);
  }

  /** The store key beats go to. */
  get key(): string {
    return this.#key;
  }

  /** Beats at once and then every intervalMs; returns without waiting for the store. */
  async start(): Promise<void> {
    if (this.#running) return;
    this.#running = true;
    this.#stop = new AbortController();
    await this.#seedFromLocal();
    this.#schedule(0);
  }

  /**
   * Writes a last beat ('stopping') locally and, within stopTimeoutMs in all, to the store. A store
   * that hangs costs at most stopTimeoutMs; the local file is always written.
   */
  async stop(): Promise<void> {
    if (!this.#running) return;
    this.#running = false;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    const budget = setTimeout(() => this.#stop.abort(new Error(`the heartbeat stopped (${this.#stopTimeoutMs} ms budget spent)`)), this.#stopTimeoutMs);
    try {
      await this.#beating;
      await this.#beat('stopping');
    } finally {
      clearTimeout(budget);
      this.#stop.abort(new Error('the heartbeat stopped'));
    }
  }

  /** Runs one beat now (the timer keeps its cadence). Never throws. */
  beatNow(): Promise<void> {
    if (!this.#running) return Promise.resolve();
    if (this.#beating) return this.#beating;
    const beat = this.#beat('running').finally(() => {
      if (this.#beating === beat) this.#beating = undefined;
    });
    this.#beating = beat;
    return beat;
  }

  #schedule(delayMs: number): void {
    if (!this.#running) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      const startedMs = Date.now();
      void this.beatNow().then(() => this.#schedule(Math.max(0, this.#o.intervalMs - (Date.now() - startedMs))));
    }, delayMs);
    // The daemon's other parts keep the process alive; a heartbeat alone must not.
    this.#timer.unref();
  }

  async #beat(lifecycle: HeartbeatDocument['lifecycle']): Promise<void> {
    let doc: HeartbeatDocument;
    try {
      doc = await this.#compose(lifecycle);
    } catch (err) {
      this.#log.warn(`cannot compose a heartbeat: ${describeError(err)}`);
      return;
    }
    const body = `${JSON.stringify(doc, null, 2)}\n`;
    await this.#writeLocal(body);
    const sent = await this.#send(body);
    this.#history.push(entryOf(doc, sent));
    if (this.#history.length > this.#historySize) this.#history.splice(0, this.#history.length - this.#historySize);
  }

  async #compose(lifecycle: HeartbeatDocument['lifecycle']): Promise<HeartbeatDocument> {
    const o = this.#o;
    const s = o.status();
    const now = this.#now();
    this.#versions ??= await this.#resolveVersions();
    const pendingBytes = o.pendingBytes ? await this.#bounded('measure the upload backlog', o.pendingBytes, null) : s.uploads.pendingBytes;
    const injectedSkew = this.#safely('measure the clock skew', () => o.clockSkewMs?.() ?? null, null);
    const clock = injectedSkew !== null ? { skewMs: injectedSkew, measuredAtMs: now } : this.#learnedSkew ? { skewMs: this.#learnedSkew.skewMs, measuredAtMs: this.#learnedSkew.atMs } : { skewMs: null, measuredAtMs: null };
    const lastError = this.#safely('read the last error', () => o.lastError?.() ?? null, null);
    const r = s.recording;
    return {
      schemaVersion: HEARTBEAT_SCHEMA_VERSION,
      agent: { id: o.agentId, site: s.agent.site, room: s.agent.room, startedAtMs: s.agent.startedAtMs },
      beatAtMs: now,
      beatAt: new Date(now).toISOString(),
      sequence: ++this.#sequence,
      intervalMs: o.intervalMs,
      lifecycle,
      uptimeSeconds: Math.max(0, Math.round((now - s.agent.startedAtMs) / 1000)),
      hostUptimeSeconds: Math.round(os.uptime()),
      versions: this.#versions,
      state: r.state,
      recording:
        r.recordingId === null
          ? null
          : {
              id: r.recordingId,
              title: r.title,
              course: r.course,
              startedAtMs: r.startedAtMs,
              elapsedMs: r.elapsedMs,
              sources: r.sources.map((src) => ({ name: src.name, status: src.status, restarts: src.restarts })),
            },
      disk: { freeBytes: s.disk.freeBytes, minFreeBytes: s.disk.minFreeBytes, low: s.disk.low },
      queue: { depth: s.queue.queued + s.queue.running, queued: s.queue.queued, running: s.queue.running, dead: s.queue.dead },
      uploads: { pendingLectures: s.uploads.pendingLectures, pendingBytes, etaSeconds: s.uploads.etaSeconds },
      alerts: s.alerts.map((a) => ({ ...a, message: clean(a.message) })),
      next: s.next,
      clock,
      lastError: lastError ? { message: clean(lastError.message), atMs: lastError.atMs } : null,
      link: { store: o.store.description, lastSentAtMs: this.#lastSentAtMs, failedBeats: this.#failedBeats, lastError: this.#linkError },
      history: [...this.#history],
    };
  }

  async #resolveVersions(): Promise<HeartbeatVersions> {
    const v = this.#o.versions;
    if (typeof v !== 'function') return v;
    try {
      return await v();
    } catch (err) {
      this.#log.warn(`cannot read the versions: ${describeError(err)}`);
      return { lectern: 'unknown', node: process.versions.node, ffmpeg: null };
    }
  }

  /** An optional source's failure costs its field, not the beat. */
  #safely<T>(what: string, read: () => T, fallback: T): T {
    try {
      return read();
    } catch (err) {
      this.#log.debug(`cannot ${what}: ${describeError(err)}`);
      return fallback;
    }
  }

  /** Runs an optional measurement within the put timeout; its failure costs one field, not the beat. */
  async #bounded<T>(what: string, run: () => Promise<T>, fallback: T): Promise<T> {
    try {
      return await untilAborted(run(), AbortSignal.any([this.#stop.signal, AbortSignal.timeout(this.#putTimeoutMs)]));
    } catch (err) {
      this.#log.debug(`cannot ${what}: ${describeError(err)}`);
      return fallback;
    }
  }

  /** tmp + fsync + rename + directory fsync: after a power cut the file holds a whole beat. */
  async #writeLocal(body: string): Promise<void> {
    const tmp = path.join(this.#dir, `.${FILE_NAME}.tmp-${randomBytes(6).toString('hex')}`);
    try {
      await fs.mkdir(this.#dir, { recursive: true });
      const fh = await fs.open(tmp, 'wx', 0o644);
      try {
        await fh.writeFile(body);
        await fh.sync();
      } finally {
        await fh.close();
      }
      await fs.rename(tmp, this.localPath);
      const dir = await fs.open(this.#dir, 'r');
      try {
        await dir.sync();
      } finally {
        await dir.close();
      }
      if (this.#localFailing) this.#log.info(`the local heartbeat file ${this.localPath} is written again`);
      this.#localFailing = false;
    } catch (err) {
      await fs.rm(tmp, { force: true }).catch(() => undefined);
      // A full disk fails every beat; say it once, the disk_low alert says the rest.
      if (!this.#localFailing) this.#log.warn(`cannot write the local heartbeat file ${this.localPath}: ${describeError(err)}`);
      this.#localFailing = true;
    }
  }

  /** Puts the beat; true when the store has it. Never throws, never waits beyond the put timeout or stop. */
  async #send(body: string): Promise<boolean> {
    if (this.#inflight) {
      this.#noteFailure('the previous heartbeat upload has not finished yet');
      return false;
    }
    if (this.#stop.signal.aborted) {
      this.#noteFailure(describeError(this.#stop.signal.reason));
      return false;
    }
    const put = this.#o.store.putBytes(this.#key, body, { contentType: 'application/json' });
    // Cleared in the put's own settlement, before anyone awaiting the put resumes.
    const settled = (): void => {
      if (this.#inflight === inflight) this.#inflight = undefined;
    };
    const inflight: Promise<void> = put.then(settled, settled);
    this.#inflight = inflight;
    try {
      await untilAborted(put, AbortSignal.any([this.#stop.signal, AbortSignal.timeout(this.#putTimeoutMs)]));
    } catch (err) {
      const skewMs = isLecternError(err, 'STORE_CLOCK_SKEW') ? err.details.skewMs : undefined;
      if (typeof skewMs === 'number' && Number.isFinite(skewMs)) this.#learnedSkew = { skewMs, atMs: this.#now() };
      const timedOut = err instanceof DOMException && err.name === 'TimeoutError';
      this.#noteFailure(timedOut ? `the storage did not answer within ${this.#putTimeoutMs} ms` : describeError(err));
      return false;
    }
    if (this.#failedBeats > 0) this.#log.info(`the heartbeat reaches the storage again after ${this.#failedBeats} beat(s) kept only locally`);
    this.#failedBeats = 0;
    this.#linkError = null;
    this.#lastSentAtMs = this.#now();
    // The storage took a signed request, so the clock is within its tolerance: an old skew is news no more.
    this.#learnedSkew = undefined;
    return true;
  }

  #noteFailure(reason: string): void {
    const message = clean(reason);
    if (this.#failedBeats === 0) this.#log.warn(`cannot send the heartbeat to ${this.#o.store.description}; kept at ${this.localPath} and sent with a later beat: ${message}`);
    else this.#log.debug(`heartbeat still not sent (${this.#failedBeats + 1} beats): ${message}`);
    this.#failedBeats += 1;
    this.#linkError = message;
  }

  /** A restart keeps the history and the link's last success from the local file of the previous run. */
  async #seedFromLocal(): Promise<void> {
    let previous: Partial<HeartbeatDocument>;
    try {
      previous = JSON.parse(await fs.readFile(this.localPath, 'utf8')) as Partial<HeartbeatDocument>;
    } catch {
      return; // none yet, or torn by hand: the first beat replaces it
    }
    if (previous.schemaVersion !== HEARTBEAT_SCHEMA_VERSION || !Array.isArray(previous.history)) return;
    try {
      const last = entryOf(previous as HeartbeatDocument, null);
      const earlier = previous.history.filter((e) => typeof (e as Partial<HeartbeatHistoryEntry> | null)?.atMs === 'number');
      this.#history = [...earlier, last].slice(-this.#historySize);
      this.#lastSentAtMs = typeof previous.link?.lastSentAtMs === 'number' ? previous.link.lastSentAtMs : null;
    } catch {
      // A file of another shape: start a fresh history.
    }
  }
}

function entryOf(doc: HeartbeatDocument, sent: boolean | null): HeartbeatHistoryEntry {
  return {
    atMs: doc.beatAtMs,
    state: doc.state,
    queueDepth: doc.queue.depth,
    pendingLectures: doc.uploads.pendingLectures,
    pendingBytes: doc.uploads.pendingBytes,
    freeBytes: doc.disk.freeBytes,
    alerts: doc.alerts.length,
    sent,
  };
}

function clean(text: string): string {
  const redacted = redactUrl(text);
  return redacted.length > MAX_MESSAGE_CHARS ? `${redacted.slice(0, MAX_MESSAGE_CHARS - 3)}...` : redacted;
}

/** Settles with `promise`, or rejects with the signal's reason as soon as it aborts. */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason as Error);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err as Error);
      },
    );
  });
}

/** The versions a heartbeat reports; ffmpeg is asked once (null when it is missing or silent). */
export async function readHeartbeatVersions(lectern: string, opts: { timeoutMs?: number } = {}): Promise<HeartbeatVersions> {
  let ffmpeg: string | null = null;
  try {
    ffmpeg = (await toolVersion('ffmpeg', { timeoutMs: opts.timeoutMs ?? 5_000 })).version;
  } catch {
    // The doctor and the capture say why; the heartbeat just reports that it is unknown.
  }
  return { lectern, node: process.versions.node, ffmpeg };
}

/**
 * Bytes of built packages waiting to be published: the file sizes their lecture.json lists.
 * Lectures still being packaged are not counted (their size is not known yet).
 */
export async function packagedBytesWaiting(lectureIds: readonly string[], manifestPath: (lectureId: string) => string): Promise<number> {
  let total = 0;
  for (const id of lectureIds) {
    try {
      const manifest = JSON.parse(await fs.readFile(manifestPath(id), 'utf8')) as { files?: Array<{ bytes?: unknown }> };
      for (const f of manifest.files ?? []) if (typeof f.bytes === 'number') total += f.bytes;
    } catch {
      // Being rebuilt or already cleaned away: counted (or not) at the next beat.
    }
  }
  return total;
}

/**
 * The newest job failure still standing (a job waiting to retry, or given up in the dead letter),
 * as the heartbeat's lastError; null when no job is failing. A job that later succeeded is not one.
 */
export function newestJobError(
  jobs: ReadonlyArray<{ kind: string; key: string; state: string; lastError: string | null; updatedAtMs: number }>,
): { message: string; atMs: number } | null {
  let newest: (typeof jobs)[number] | undefined;
  for (const job of jobs) {
    if (job.lastError === null || (job.state !== 'queued' && job.state !== 'dead')) continue;
    if (!newest || job.updatedAtMs > newest.updatedAtMs) newest = job;
  }
  return newest ? { message: `${newest.kind} ${newest.key}${newest.state === 'dead' ? ' (given up)' : ''}: ${newest.lastError ?? ''}`, atMs: newest.updatedAtMs } : null;
}
