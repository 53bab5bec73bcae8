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
import { createTranscodeHandler, TRANSCODE_JOB } from '../transcode/handler.js';
import { Packager } from '../transcode/packager.js';
import { createPublishHandler, PUBLISH_JOB } from '../upload/publishHandler.js';
import { describeError } from '../util/errors.js';
import { buildCaptureSources, checkCameras } from './sources.js';
import { createStore, describeStoreLocation } from './store.js';

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
}

// Packaged duration may differ from the recorded one by up to half a second (the acceptance bound).
const DURATION_TOLERANCE_SECONDS = 0.5;
const PROBE_TIMEOUT_MS = 30_000;
// One seek-bar thumbnail every 10 s: a 90-minute lecture gets 540 tiles in 22 small sprites.
const THUMBNAIL_INTERVAL_SECONDS = 10;

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
    const store = createStore(config, { logger, env, defaultRoot: layout.storeDefaultRoot });
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
    worker.register(
      createTranscodeHandler({
        recordings,
        packager: new Packager({
          settings: {
            renditions: config.transcode.renditions,
            hlsSegmentSeconds: config.transcode.hlsSegmentSeconds,
            audioBitrateKbps: config.transcode.audioBitrateKbps,
            preset: config.transcode.preset,
            niceness: config.transcode.niceness,
            probeTimeoutMs: PROBE_TIMEOUT_MS,
            durationToleranceSeconds: DURATION_TOLERANCE_SECONDS,
            thumbnailIntervalSeconds: THUMBNAIL_INTERVAL_SECONDS,
            hardware: { encoder: config.transcode.hardwareEncoder, device: config.transcode.hardwareDevice },
          },
          logger,
        }),
        dataDir: config.agent.dataDir,
        packageDirs: (id) => ({ stagingDir: layout.packageStagingDir(id), finalDir: layout.packageDir(id) }),
        identity: { agentId: config.agent.id, version: this.#o.version, site: config.agent.site, room: config.agent.room },
        source: { name: presenter.name, role: presenter.role },
        enqueuePublish: (lectureId) => {
          queue.enqueue(PUBLISH_JOB, { lectureId }, { key: lectureId });
          worker.kick();
        },
      }),
    );
    worker.register(createPublishHandler({ store, storePrefix: config.storage.prefix, packageDir: (id) => layout.packageDir(id) }));

    const settings: CaptureSettings = {
      segmentSeconds: config.capture.segmentSeconds,
      format: config.capture.segmentFormat,
      stallTimeoutMs: config.capture.stallTimeoutMs,
      stopQuitGraceMs: config.capture.stopQuitGraceMs,
      stopInterruptGraceMs: config.capture.stopInterruptGraceMs,
      restartBackoff: { baseMs: 1_000, capMs: 30_000, jitter: 0.3 },
      stableRunMs: 60_000,
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
      logger,
      onFinished: enqueueTranscode,
    });

    this.#parts = { db, queue, worker, recordings, controller, store, layout };

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
