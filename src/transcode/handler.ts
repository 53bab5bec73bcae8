import path from 'node:path';
import type { JobHandler } from '../queue/types.js';
import { LecternError } from '../util/errors.js';
import { failpointDelayMs } from '../util/failpoints.js';
import { sleep } from '../util/sleep.js';
import { ULID_PATTERN } from '../util/ulid.js';
import type { Packager, PackageRun, PackageSegment } from './packager.js';

/**
 * The `transcode` job: recording -> validated HLS package -> a `publish` job. Safe to run twice
 * (a lease can expire mid-run, a crash can repeat it): the packager reuses a finished package and
 * the publish job's idempotency key makes the hand-off happen once.
 */

export const TRANSCODE_JOB = 'transcode';

export interface TranscodePayload {
  recordingId: string;
}

/** What the handler reads about a recording (db/recordings.ts provides it). */
export interface RecordingSource {
  get(id: string):
    | { id: string; state: string; title: string; course: string | null; teacher: string | null; startedAtMs: number; stoppedAtMs: number | null }
    | undefined;
  segments(recordingId: string): ReadonlyArray<{ source: string; run: number; path: string; bytes: number; sha256: string; durationSeconds: number }>;
  runs(recordingId: string): ReadonlyArray<{ source: string; run: number; startedAtMs: number; endedAtMs: number | null; endReason: string | null }>;
  /** Alerts raised while recording (capture/alerts.ts), for the manifest. */
  alerts?(recordingId: string): ReadonlyArray<{ kind: string; startedAtMs: number; endedAtMs: number | null; message: string }>;
  /** The teacher's pauses and chapter markers (capture/recordingController.ts), for the manifest and chapters.vtt. */
  pauses?(recordingId: string): ReadonlyArray<{ startedAtMs: number; endedAtMs: number | null }>;
  markers?(recordingId: string): ReadonlyArray<{ atMs: number; title: string }>;
}

export interface TranscodeHandlerDeps {
  recordings: RecordingSource;
  packager: Packager;
  dataDir: string;
  packageDirs(lectureId: string): { stagingDir: string; finalDir: string };
  identity: { agentId: string; version: string; site: string; room: string };
  /** The source packaged (the presenter camera); the packaging issue adds one package per source. */
  source: { name: string; role: 'presenter' | 'presentation' };
  /** Hands the built package on; must be idempotent per lecture. */
  enqueuePublish(lectureId: string): void;
  /** The ProgressiveEncoder, when progressive packaging is on: it hands the lecture's chunks over. */
  progressive?: { release(recordingId: string): Promise<void> };
}

export function parseTranscodePayload(payload: unknown): TranscodePayload {
  const p = payload as Partial<TranscodePayload> | null;
  if (!p || typeof p.recordingId !== 'string' || !ULID_PATTERN.test(p.recordingId)) {
    throw new LecternError('INTERNAL', `transcode job payload is malformed: ${JSON.stringify(payload)}`);
  }
  return { recordingId: p.recordingId };
}

export function createTranscodeHandler(deps: TranscodeHandlerDeps): JobHandler<TranscodePayload> {
  return {
    kind: TRANSCODE_JOB,
    parse: parseTranscodePayload,
    async run({ recordingId }, ctx) {
      const rec = deps.recordings.get(recordingId);
      if (!rec) throw new LecternError('RECORDING_NOT_FOUND', `recording ${recordingId} does not exist`);
      if (rec.state === 'recording') return { type: 'retryAfter', delayMs: 10_000, reason: 'the recording is still live' };
      const pauseMs = failpointDelayMs('transcode.start');
      if (pauseMs > 0) await sleep(pauseMs, ctx.signal);

      // Its chunk in progress is finished first: the packager continues from the chunks.
      await deps.progressive?.release(recordingId);
      const segments: PackageSegment[] = deps.recordings
        .segments(recordingId)
        .filter((s) => s.source === deps.source.name)
        .map((s) => ({ path: path.resolve(deps.dataDir, s.path), sha256: s.sha256, bytes: s.bytes, durationSeconds: s.durationSeconds, run: s.run }));
      const runs: PackageRun[] = deps.recordings.runs(recordingId).filter((r) => r.source === deps.source.name);

      const built = await deps.packager.build(
        {
          lectureId: recordingId,
          agent: { id: deps.identity.agentId, version: deps.identity.version },
          site: deps.identity.site,
          room: deps.identity.room,
          title: rec.title,
          course: rec.course,
          teacher: rec.teacher,
          startedAtMs: rec.startedAtMs,
          endedAtMs: rec.stoppedAtMs ?? rec.startedAtMs,
          source: deps.source,
          segments,
          runs,
          alerts: deps.recordings.alerts?.(recordingId) ?? [],
          pauses: deps.recordings.pauses?.(recordingId) ?? [],
          markers: deps.recordings.markers?.(recordingId) ?? [],
        },
        deps.packageDirs(recordingId),
        ctx.signal,
      );
      deps.enqueuePublish(recordingId);
      return { type: 'done', result: { packageDir: built.dir, durationSeconds: built.manifest.durationSeconds, files: built.manifest.files.length } };
    },
  };
}
