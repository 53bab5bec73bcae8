import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { ApiServer } from '../api/server.js';
import type { ApiBackend, CameraView, LectureView, QueueView, StartRequest } from '../api/types.js';
import type { RecordingController } from '../capture/recordingController.js';
import { readSecret, type Config } from '../config/index.js';
import type { RecordingRepo } from '../db/recordings.js';
import { runFfmpeg } from '../ffmpeg/run.js';
import type { Logger } from '../log/logger.js';
import type { JobQueue } from '../queue/queue.js';
import type { Job } from '../queue/types.js';
import type { LocalLayout } from '../storage/localLayout.js';
import { describeError, LecternError } from '../util/errors.js';
import { LECTURE_JOB_KINDS, lectureProgress, packagesInTiers } from './lectureProgress.js';
import type { StatusAggregator } from './status.js';

/**
 * The API's view of the agent: the ApiBackend the server gets (api/ never sees the controller, the
 * database or ffmpeg), and the building of the server from the configuration. Commands go to the
 * RecordingController, whose operations are serialised and idempotent (Record twice = one
 * recording); after each one the status is recomposed so the kiosk sees the effect at once.
 */

export interface ApiBackendParts {
  config: Config;
  controller: RecordingController;
  recordings: RecordingRepo;
  queue: JobQueue;
  layout: LocalLayout;
  status: StatusAggregator;
  logger: Logger;
  now?: () => number;
}

const RECENT_LECTURES = 8;
const RECENT_JOBS = 20;
const SNAPSHOT_WIDTH = 640;

export function createApiBackend(p: ApiBackendParts): ApiBackend {
  const now = p.now ?? Date.now;
  const snapshots = new SegmentSnapshots(p);
  return {
    status: () => p.status.current(),
    subscribe: (listener) => p.status.subscribe(listener),
    async startRecording(request: StartRequest) {
      const minutes = request.durationMinutes ?? null;
      try {
        return await p.controller.startRecording({
          ...(request.title !== undefined ? { title: request.title } : {}),
          course: request.course ?? null,
          teacher: request.teacher ?? null,
          plannedEndMs: minutes === null ? null : now() + minutes * 60_000,
        });
      } finally {
        p.status.refresh();
      }
    },
    async stopRecording() {
      try {
        return { recordingId: (await p.controller.stopRecording('stopped by request')) ?? null };
      } finally {
        p.status.refresh();
      }
    },
    pauseRecording: () => afterRefresh(p, () => p.controller.pause()),
    resumeRecording: () => afterRefresh(p, () => p.controller.resume()),
    extendRecording: (minutes) => afterRefresh(p, () => p.controller.extend({ minutes })),
    addMarker: (title) => afterRefresh(p, () => p.controller.marker(title)),
    cameras: (): CameraView[] => {
      const live = p.controller.status();
      return p.config.sources.map((s) => ({
        name: s.name,
        kind: s.kind,
        role: s.role,
        snapshot: live.state === 'recording' && (live.sources.find((x) => x.name === s.name)?.segments ?? 0) > 0,
      }));
    },
    snapshot: (name, signal) => snapshots.get(name, signal),
    queue: () => queueView(p),
  };
}

/** Runs a controller command and recomposes the status, so the kiosk sees the effect at once. */
async function afterRefresh<T>(p: ApiBackendParts, command: () => Promise<T>): Promise<T> {
  try {
    return await command();
  } finally {
    p.status.refresh();
  }
}

/** Builds the API server from `api` in the configuration; secrets come from 0600 files. */
export function createApiServer(config: Config, backend: ApiBackend, logger: Logger, env: NodeJS.ProcessEnv): ApiServer {
  const api = config.api;
  const token = api.tokenFile === undefined ? undefined : readSecret({ file: api.tokenFile }, { env, what: 'the API token (api.tokenFile)' });
  const pin = api.kioskPinFile === undefined ? undefined : readSecret({ file: api.kioskPinFile }, { env, what: 'the kiosk PIN (api.kioskPinFile)' });
  if (pin !== undefined && !/^[0-9]{4,12}$/.test(pin)) {
    throw new LecternError('CONFIG_INVALID', `the kiosk PIN in ${api.kioskPinFile} must be 4 to 12 digits`);
  }
  return new ApiServer({
    backend,
    logger,
    host: api.host,
    port: api.port,
    ...(api.socketPath !== undefined ? { socketPath: api.socketPath } : {}),
    ...(token !== undefined ? { token } : {}),
    ...(pin !== undefined ? { kioskPin: pin } : {}),
    allowedHosts: api.allowedHosts,
  });
}

/** The recent lectures, each once with where it is (agent/lectureProgress.ts), and the recent jobs. */
export function queueView(p: Pick<ApiBackendParts, 'config' | 'recordings' | 'queue'>): QueueView {
  const tiered = packagesInTiers(p.config.transcode);
  const lectures = p.recordings.list({ limit: RECENT_LECTURES }).map((r): LectureView => {
    const base = { id: r.id, title: r.title, course: r.course, startedAtMs: r.startedAtMs, stoppedAtMs: r.stoppedAtMs };
    if (r.state === 'recording') return { ...base, stage: 'recording', step: 'recording', tier: null, problem: null };
    if (r.state === 'failed') return { ...base, stage: 'failed', step: 'recording failed', tier: null, problem: r.stopReason };
    const jobs = LECTURE_JOB_KINDS.flatMap((kind) => p.queue.findByKey(kind, r.id) ?? []);
    const progress = lectureProgress(jobs, { tiered });
    if (!progress) return { ...base, stage: 'waiting', step: 'waiting to package', tier: null, problem: null };
    const { job, tier, text: step } = progress;
    if (progress.state === 'done') return { ...base, stage: 'published', step, tier, problem: null };
    if (progress.state === 'failed') return { ...base, stage: 'failed', step, tier, problem: job.lastError ?? `the ${job.kind} job was ${job.state}` };
    // Once its first package is built the lecture is publishing until its final publish: a queued
    // publish only waits (for the link, a window, the recording) and the full ladder follows tier 1.
    const stage = progress.work === 'publish' || progress.part === 2 ? 'publishing' : progress.state === 'running' ? 'packaging' : 'waiting';
    return { ...base, stage, step, tier, problem: retrying(job) };
  });
  const jobs = p.queue.list({ limit: RECENT_JOBS }).map((j) => ({
    id: j.id,
    kind: j.kind,
    key: j.key,
    state: j.state,
    attempts: j.attempts,
    maxAttempts: j.maxAttempts,
    lastError: j.lastError,
    updatedAtMs: j.updatedAtMs,
  }));
  return { lectures, jobs };
}

/** A queued job with a last error is waiting to retry it: that is worth showing. */
function retrying(job: Job): string | null {
  return job.state === 'queued' && job.lastError ? job.lastError : null;
}

/**
 * A preview picture of a source: the first frame of its newest recorded segment, so it shows
 * exactly what is being recorded without opening another stream to the camera. One ffmpeg per new
 * segment at most; between segments the same picture is served.
 */
class SegmentSnapshots {
  readonly #p: ApiBackendParts;
  readonly #cache = new Map<string, { segment: string; body: Promise<Buffer | undefined> }>();

  constructor(parts: ApiBackendParts) {
    this.#p = parts;
  }

  async get(source: string, signal: AbortSignal): Promise<{ contentType: string; body: Buffer } | undefined> {
    const live = this.#p.controller.status();
    if (live.recordingId === undefined) return undefined;
    const segments = this.#p.recordings.segments(live.recordingId, source);
    const newest = segments[segments.length - 1];
    if (!newest) return undefined;
    let entry = this.#cache.get(source);
    if (entry?.segment !== newest.path) {
      entry = { segment: newest.path, body: this.#grab(source, path.resolve(this.#p.layout.dataDir, newest.path), signal) };
      this.#cache.set(source, entry);
    }
    const body = await entry.body;
    return body ? { contentType: 'image/jpeg', body } : undefined;
  }

  async #grab(source: string, segmentFile: string, signal: AbortSignal): Promise<Buffer | undefined> {
    const dir = path.join(this.#p.layout.dataDir, 'tmp');
    const out = path.join(dir, `snapshot-${source}-${randomBytes(6).toString('hex')}.jpg`);
    try {
      await mkdir(dir, { recursive: true });
      await runFfmpeg({
        label: `snapshot ${source}`,
        logger: this.#p.logger,
        niceness: 10,
        signal,
        args: ['-hide_banner', '-loglevel', 'error', '-i', segmentFile, '-an', '-frames:v', '1', '-vf', `scale='min(${SNAPSHOT_WIDTH},iw)':-2`, '-q:v', '5', '-f', 'image2', '-c:v', 'mjpeg', out],
      });
      return await readFile(out);
    } catch (err) {
      this.#p.logger.warn(`cannot take a preview picture of ${source}: ${describeError(err)}`);
      this.#cache.delete(source);
      return undefined;
    } finally {
      await rm(out, { force: true });
    }
  }
}
