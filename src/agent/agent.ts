import path from 'node:path';
import { RecordingController } from '../capture/recordingController.js';
import type { CaptureSettings } from '../capture/sourceRecorder.js';
import type { Config } from '../config/index.js';
import { closeDatabase, openDatabase, type Db } from '../db/index.js';
import { RecordingRepo } from '../db/recordings.js';
import type { Logger } from '../log/logger.js';
import { JobQueue } from '../queue/queue.js';
import { Worker } from '../queue/worker.js';
import { DiskGuard } from '../storage/diskSpace.js';
import { LocalLayout } from '../storage/localLayout.js';
import type { Store } from '../storage/store.js';
import { createTranscodeHandler, createTranscodeTier2Handler, TIER_PRIORITY, TRANSCODE_JOB, TRANSCODE_TIER2_JOB, type TranscodeHandlerDeps } from '../transcode/handler.js';
import { Packager, type PackagerSettings } from '../transcode/packager.js';
import { ProgressiveEncoder } from '../transcode/progressive.js';
import { createPublishHandler, createTier1PublishHandler, PUBLISH_JOB, PUBLISH_TIER1_JOB, type PublishHandlerDeps } from '../upload/publishHandler.js';
import { describeError } from '../util/errors.js';
import { createApiBackend, createApiServer } from './apiBackend.js';
import { pendingLectureCount } from './lectureProgress.js';
import { buildCaptureSources, checkCameras } from './sources.js';
import { StatusAggregator } from './status.js';
import type { ApiServer } from '../api/server.js';
import { freeDiskBytes } from '../storage/diskSpace.js';
import { createStore, describeStoreLocation } from './store.js';
import { createTimetable } from './timetable.js';
import { BandwidthPolicy } from '../upload/bandwidthPolicy.js';
import { endpointAddress, tcpConnectProbe } from '../upload/yield.js';
import { PublishProgressRepo } from '../db/publishProgress.js';
import { RetentionRepo } from '../db/retention.js';
import { Retention } from '../storage/retention.js';
import { Heartbeat, newestJobError, packagedBytesWaiting, readHeartbeatVersions } from './heartbeat.js';
import { MANIFEST_FILE_NAME } from '../transcode/manifest.js';
import { ImportFolder } from '../capture/importFolder.js';
import { probeMedia } from '../ffmpeg/ffprobe.js';
import type { Scheduler } from '../schedule/index.js';

/**
 * The composition root: the only place that knows every module. It builds the components,
 * starts them in order and stops them in reverse; each hand-off between stages goes through
 * SQLite (recording finished -> transcode job -> publish job), never a call chain a crash could
 * cut in half.
 */

export interface AgentOptions {
  config: Config;
  logger: Logger;
  version: string;
  env?: NodeJS.ProcessEnv;
  /** Serve the local API and kiosk (config `api`); the daemon does, the demo does not. */
  serveApi?: boolean;
  /** Follow the timetable and watch the import folder (config `schedule`, `import`); the daemon does, the demo does not. */
  roomDuties?: boolean;
}

/** The parts a running agent exposes to the CLI, the demo and (later) the local API. */
export interface AgentParts {
  db: Db;
  queue: JobQueue;
  worker: Worker;
  recordings: RecordingRepo;
  controller: RecordingController;
  store: Store;
  layout: LocalLayout;
  /** The one status the API, CLI, metrics and heartbeat read. */
  status: StatusAggregator;
  /** The local API, when serveApi was asked and api.enabled. */
  api?: ApiServer;
  /** The room's timetable, when one is configured (daemon only). */
  scheduler?: Scheduler;
}

// Packaged duration may differ from the recorded one by up to half a second (the acceptance bound).
const DURATION_TOLERANCE_SECONDS = 0.5;
const PROBE_TIMEOUT_MS = 30_000;
// One seek-bar thumbnail every 10 s: a 90-minute lecture gets 540 tiles in 22 small sprites.
const THUMBNAIL_INTERVAL_SECONDS = 10;
// A 1080p camera writes about 30 MB a minute: 5 s between checks is a few MB of margin.
const DISK_CHECK_INTERVAL_MS = 5_000;

export class Agent {
  readonly #o: AgentOptions;
  readonly #log: Logger;
  #parts: AgentParts | undefined;
  #started: Array<{ name: string; stop: () => Promise<void> | void }> = [];

  constructor(options: AgentOptions) {
    this.#o = options;
    this.#log = options.logger.child({ scope: 'agent' });
  }

  get parts(): AgentParts {
    if (!this.#parts) throw new Error('the agent is not started');
    return this.#parts;
  }

  async start(): Promise<void> {
    const { config, logger } = this.#o;
    const env = this.#o.env ?? process.env;
    const layout = new LocalLayout(config.agent.dataDir);
    const db = openDatabase(layout.dbPath, { logger });
    this.#started.push({ name: 'database', stop: () => closeDatabase(db) });

    const recordings = new RecordingRepo(db);
    const queue = new JobQueue({
      db,
      logger,
      leaseMs: config.queue.leaseMs,
      maxAttempts: config.queue.maxAttempts,
      backoff: { baseMs: config.queue.backoffBaseMs, capMs: config.queue.backoffCapMs, jitter: 0.5 },
    });
    // DESIGN §4: one bandwidth policy for the agent (S3 only; a folder store needs none).
    const recordingRef: { controller?: RecordingController } = {};
    let backlogBytes: number | null = null;
    let backlogAtMs = 0;
    const storageConf = config.storage;
    const probeAt = storageConf.kind === 's3' ? endpointAddress(storageConf.endpoint, storageConf.region) : undefined;
    const bandwidth = probeAt
      ? new BandwidthPolicy({
          settings: config.upload,
          logger,
          isRecording: () => (recordingRef.controller?.status().state ?? 'idle') !== 'idle',
          probe: tcpConnectProbe(probeAt.host, probeAt.port),
          pendingBytes: () => {
            // Summed from the waiting lectures' manifests at most every 10 s (an upper bound:
            // what is already sent is not subtracted).
            if (Date.now() - backlogAtMs > 10_000) {
              backlogAtMs = Date.now();
              void packagedBytesWaiting(publishJobLectureIds(queue), (id) => path.join(layout.packageDir(id), MANIFEST_FILE_NAME)).then(
                (b) => (backlogBytes = b),
                () => undefined,
              );
            }
            return backlogBytes;
          },
        })
      : undefined;
    if (bandwidth) {
      await bandwidth.start();
      this.#started.push({ name: 'bandwidth policy', stop: () => bandwidth.stop() });
    }
    const store = await createStore(config, { logger, env, defaultRoot: layout.storeDefaultRoot, db, ...(bandwidth ? { throttle: bandwidth } : {}) });
    await store.start();
    this.#started.push({ name: 'store', stop: () => store.stop() });

    // The daemon is the only worker on its database, so every running job at start is an orphan.
    const worker = new Worker({ queue, logger, owner: `lectern:${process.pid}`, reclaimAllOnStart: true });
    const sources = buildCaptureSources(config, env, logger);
    // ONVIF cameras are asked for their streams now, so a wrong address or password shows in the
    // log at start; a camera that is not ready yet is asked again at each recording start.
    await checkCameras(sources, AbortSignal.timeout(30_000));
    const presenter = sources.find((s) => s.role === 'presenter') ?? sources[0];
    if (!presenter) throw new Error('no source configured');
    const packagerSettings: PackagerSettings = {
      renditions: config.transcode.renditions,
      hlsSegmentSeconds: config.transcode.hlsSegmentSeconds,
      audioBitrateKbps: config.transcode.audioBitrateKbps,
      preset: config.transcode.preset,
      niceness: config.transcode.niceness,
      probeTimeoutMs: PROBE_TIMEOUT_MS,
      durationToleranceSeconds: DURATION_TOLERANCE_SECONDS,
      thumbnailIntervalSeconds: THUMBNAIL_INTERVAL_SECONDS,
      hardware: { encoder: config.transcode.hardwareEncoder, device: config.transcode.hardwareDevice },
      progressive: config.transcode.progressive,
    };
    // Encodes the video ladder while the lecture is recorded, so the package is ready soon after Stop.
    const progressive = config.transcode.progressive
      ? new ProgressiveEncoder({ recordings, dataDir: config.agent.dataDir, sourceName: presenter.name, packageDir: (id) => layout.packageDir(id), settings: packagerSettings, logger })
      : undefined;
    const transcodeDeps: TranscodeHandlerDeps = {
      recordings,
      packager: new Packager({ settings: packagerSettings, logger }),
      ...(progressive ? { progressive } : {}),
      dataDir: config.agent.dataDir,
      packageDirs: (id) => ({ stagingDir: layout.packageStagingDir(id), finalDir: layout.packageDir(id) }),
      identity: { agentId: config.agent.id, version: this.#o.version, site: config.agent.site, room: config.agent.room },
      source: { name: presenter.name, role: presenter.role },
      otherSources: sources.filter((s) => s !== presenter).map((s) => ({ name: s.name, role: s.role })),
      // DESIGN §4: lower tiers first (then older lectures, by job id); `publish` is a lecture's final publish.
      enqueuePublish: (lectureId, tier) => {
        queue.enqueue(tier === 1 ? PUBLISH_TIER1_JOB : PUBLISH_JOB, { lectureId }, { key: lectureId, priority: config.transcode.tiers ? TIER_PRIORITY[tier] : 0 });
        worker.kick();
      },
      ...(config.transcode.tiers
        ? {
            tiers: {
              enqueueTier2: (lectureId: string) => {
                queue.enqueue(TRANSCODE_TIER2_JOB, { recordingId: lectureId }, { key: lectureId, priority: TIER_PRIORITY[2] });
                worker.kick();
              },
            },
          }
        : {}),
    };
    worker.register(createTranscodeHandler(transcodeDeps));
    // Registered even with tiers off: a tier-2 job queued before the switch still finishes its lecture.
    worker.register(createTranscodeTier2Handler(transcodeDeps));
    const publishProgress = new PublishProgressRepo(db);
    const publishDeps: PublishHandlerDeps = {
      store,
      storePrefix: config.storage.prefix,
      packageDir: (id) => layout.packageDir(id),
      onProgress: (id, p) => publishProgress.set(id, p),
      // A publish that would only wait for the recording to end gives the worker back to packaging.
      ...(bandwidth ? { uploadsPaused: () => bandwidth.status().pausedReason != null } : {}),
    };
    worker.register(createPublishHandler(publishDeps));
    worker.register(createTier1PublishHandler(publishDeps));

    const settings: CaptureSettings = {
      segmentSeconds: config.capture.segmentSeconds,
      format: config.capture.segmentFormat,
      stallTimeoutMs: config.capture.stallTimeoutMs,
      stopQuitGraceMs: config.capture.stopQuitGraceMs,
      stopInterruptGraceMs: config.capture.stopInterruptGraceMs,
      // While a lecture is live a lost camera is retried at least every 2 s: a camera reboot of
      // ten seconds must cost ten seconds of lecture, not the minute a longer backoff would.
      restartBackoff: { baseMs: 1_000, capMs: 2_000, jitter: 0.3 },
      stableRunMs: 60_000,
      monitor: config.capture.monitor,
    };
    const enqueueTranscode = (recordingId: string): void => {
      queue.enqueue(TRANSCODE_JOB, { recordingId }, { key: recordingId });
      worker.kick();
    };
    const controller = new RecordingController({
      sources,
      settings,
      store: recordings,
      dirs: layout,
      disk: new DiskGuard({ path: config.agent.dataDir, minFreeBytes: config.capture.minFreeDiskBytes, logger }),
      diskWatch: {
        intervalMs: DISK_CHECK_INTERVAL_MS,
        alertBelowBytes: config.capture.minFreeDiskBytes,
        stopBelowBytes: Math.min(config.capture.stopFreeDiskBytes, config.capture.minFreeDiskBytes),
      },
      logger,
      onFinished: enqueueTranscode,
    });
    recordingRef.controller = controller;

    const status = new StatusAggregator({
      identity: { id: config.agent.id, site: config.agent.site, room: config.agent.room, version: this.#o.version },
      controller,
      recording: (id) => recordings.get(id),
      queueCounts: () => queue.counts(),
      pendingLectures: () => pendingLectureCount(queue),
      freeDiskBytes: () => freeDiskBytes(config.agent.dataDir),
      disk: { minFreeBytes: config.capture.minFreeDiskBytes, stopFreeBytes: config.capture.stopFreeDiskBytes },
      kioskPinRequired: config.api.kioskPinFile !== undefined,
      ...(bandwidth ? { uploadPolicy: () => bandwidth.status() } : {}),
      next: () => {
        const [slot] = this.#parts?.scheduler?.upcoming(1) ?? [];
        return slot ? { title: slot.title, course: slot.course, startsAtMs: slot.startMs, endsAtMs: slot.endMs } : null;
      },
      logger,
    });
    this.#parts = { db, queue, worker, recordings, controller, store, layout, status };

    await controller.start();
    // A crash between "recording stopped" and "transcode enqueued" is healed here: the
    // idempotency key makes this a no-op for recordings already handed on.
    for (const rec of recordings.list({ state: 'stopped' })) {
      if (!queue.findByKey(TRANSCODE_JOB, rec.id)) {
        this.#log.info(`recording ${rec.id} was never handed to packaging; queueing it now`);
        enqueueTranscode(rec.id);
      }
    }
    await worker.start();
    this.#started.push({ name: 'worker', stop: () => worker.stop() });
    this.#started.push({ name: 'recording controller', stop: () => controller.stop() });
    if (progressive) {
      // Stopped before the controller and the worker.
      progressive.start();
      this.#started.push({ name: 'progressive encoder', stop: () => progressive.stop() });
    }
    if (this.#o.roomDuties) {
      // After the controller: a lecture resumed after a restart is already live when the
      // timetable looks at the slot in progress.
      const scheduler = createTimetable(config, controller, logger);
      if (scheduler) {
        await scheduler.start();
        this.#started.push({ name: 'timetable', stop: () => scheduler.stop() });
        this.#parts.scheduler = scheduler;
      }
      if (config.import.folder !== undefined) {
        const importer = new ImportFolder({
          folder: config.import.folder,
          dataDir: layout.dataDir,
          copiesDir: path.join(layout.dataDir, 'imports'),
          sourceName: presenter.name,
          settleMs: config.import.settleMs,
          scanIntervalMs: config.import.scanIntervalMs,
          repo: recordings,
          enqueue: enqueueTranscode,
          probe: (file) => probeMedia(file, { timeoutMs: PROBE_TIMEOUT_MS }),
          logger,
        });
        await importer.start();
        this.#started.push({ name: 'import folder', stop: () => importer.stop() });
      }
      // Daemon only: a demo never deletes data.
      const retention = new Retention({
        store,
        layout,
        catalog: new RetentionRepo(db, PUBLISH_JOB),
        logger,
        keepDays: config.retention.keepDays,
        intervalMs: config.retention.intervalMs,
        purgeWhenLowDisk: config.retention.purgeWhenLowDisk,
        minFreeDiskBytes: config.capture.minFreeDiskBytes,
      });
      await retention.start();
      this.#started.push({ name: 'retention', stop: () => retention.stop() });
    }
    await status.start();
    this.#started.push({ name: 'status', stop: () => status.stop() });
    if (this.#o.roomDuties && config.heartbeat.enabled) {
      // After the worker and the status; stopped before both and before the store is released,
      // with at most 2 s spent on a store that hangs.
      const heartbeat = new Heartbeat({
        status: () => status.current(),
        store,
        storePrefix: config.storage.prefix,
        agentId: config.agent.id,
        dataDir: layout.dataDir,
        intervalMs: config.heartbeat.intervalMs,
        logger,
        versions: () => readHeartbeatVersions(this.#o.version),
        pendingBytes: () => packagedBytesWaiting(publishJobLectureIds(queue), (id) => path.join(layout.packageDir(id), MANIFEST_FILE_NAME)),
        lastError: () => newestJobError(queue.list({ limit: 200 })),
      });
      await heartbeat.start();
      this.#started.push({ name: 'heartbeat', stop: () => heartbeat.stop() });
    }
    if (this.#o.serveApi && config.api.enabled) {
      const api = createApiServer(config, createApiBackend({ config, controller, recordings, queue, layout, status, logger }), logger, env);
      await api.start();
      this.#started.push({ name: 'local API', stop: () => api.stop() });
      this.#parts.api = api;
    }
    this.#log.info('agent started', { dataDir: config.agent.dataDir, store: store.description, sources: sources.map((s) => s.name).join(',') });
  }

  /** Stops in reverse order of start; each part's failure is logged and the rest still stop. */
  async stop(): Promise<void> {
    const parts = this.#started.reverse();
    this.#started = [];
    for (const part of parts) {
      try {
        await part.stop();
      } catch (err) {
        this.#log.error(`${part.name} did not stop cleanly: ${describeError(err)}`);
      }
    }
    this.#parts = undefined;
  }

  /** Where a published lecture can be found, for people reading the CLI's output. */
  describeLocation(prefix: string): string {
    return describeStoreLocation(this.#o.config, prefix);
  }
}

/** The lectures whose publish job (of either tier) is waiting or running, each once. */
function publishJobLectureIds(queue: JobQueue): string[] {
  const jobs = [PUBLISH_TIER1_JOB, PUBLISH_JOB].flatMap((kind) => [...queue.list({ kind, state: 'queued' }), ...queue.list({ kind, state: 'running' })]);
  const ids = jobs.flatMap((job) => {
    const id = (job.payload as { lectureId?: unknown } | null)?.lectureId;
    return typeof id === 'string' ? [id] : [];
  });
  return [...new Set(ids)];
}
