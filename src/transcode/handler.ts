import path from 'node:path';
import type { JobHandler, JobOutcome } from '../queue/types.js';
import { LecternError } from '../util/errors.js';
import { failpointDelayMs } from '../util/failpoints.js';
import { sleep } from '../util/sleep.js';
import { ULID_PATTERN } from '../util/ulid.js';
import type { BuiltPackage, Packager, PackageRun, PackageSegment, PackageTier } from './packager.js';

/**
 * The `transcode` job: recording -> validated HLS package -> a `publish` job. Safe to run twice
 * (a lease can expire mid-run, a crash can repeat it): the packager reuses a finished package and
 * the publish job's idempotency key makes the hand-off happen once.
 *
 * With tiers (DESIGN §3.1) the `transcode` job builds tier 1 (audio, the lowest rendition,
 * poster) and hands it on at once to a tier-1 publish, and to a `transcode-tier2` job that adds
 * the rest of the ladder to the same package and hands that to the lecture's `publish` job. Each
 * tier has its own job kinds, so each hand-off is idempotent under the lecture id as key; a crash
 * between the tiers leaves the tier-2 job in the queue, which finishes the same lecture.
 */

export const TRANSCODE_JOB = 'transcode';
export const TRANSCODE_TIER2_JOB = 'transcode-tier2';

/** Queue priority of each tier's jobs (lower runs first): every tier-1 job before any tier-2 one. */
export const TIER_PRIORITY: Readonly<Record<PackageTier, number>> = { 1: 0, 2: 1 };

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
  /** The source packaged at hls/ (the presenter camera): the lecture's audio and its main picture. */
  source: { name: string; role: 'presenter' | 'presentation' };
  /** The room's other video sources: each gets a video-only package under sources/{name}/ with the full ladder (tier 2). */
  otherSources?: ReadonlyArray<{ name: string; role: 'presenter' | 'presentation' }>;
  /** Hands the built package on; must be idempotent per lecture and tier. Tier 2 is the lecture's final publish. */
  enqueuePublish(lectureId: string, tier: PackageTier): void;
  /**
   * Build tier 1 first and queue the rest (`transcode.tiers`); without it the whole package is
   * built in one job. Queues the lecture's `transcode-tier2` job; idempotent per lecture.
   */
  tiers?: { enqueueTier2(lectureId: string): void };
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
      const built = await buildTier(deps, recordingId, deps.tiers ? 1 : undefined, ctx.signal);
      if (!('manifest' in built)) return built;
      // A ladder of one rung is whole at tier 1: it goes straight to the lecture's final publish.
      if (built.manifest.tier === 1) {
        deps.enqueuePublish(recordingId, 1);
        deps.tiers?.enqueueTier2(recordingId);
      } else {
        deps.enqueuePublish(recordingId, 2);
      }
      return { type: 'done', result: resultOf(built) };
    },
  };
}

/** The `transcode-tier2` job: the rest of the ladder added to the lecture's tier-1 package. */
export function createTranscodeTier2Handler(deps: TranscodeHandlerDeps): JobHandler<TranscodePayload> {
  return {
    kind: TRANSCODE_TIER2_JOB,
    parse: parseTranscodePayload,
    async run({ recordingId }, ctx) {
      const built = await buildTier(deps, recordingId, 2, ctx.signal);
      if (!('manifest' in built)) return built;
      deps.enqueuePublish(recordingId, 2);
      return { type: 'done', result: resultOf(built) };
    },
  };
}

function resultOf(built: BuiltPackage): { packageDir: string; tier: PackageTier; durationSeconds: number; files: number } {
  return { packageDir: built.dir, tier: built.manifest.tier, durationSeconds: built.manifest.durationSeconds, files: built.manifest.files.length };
}

async function buildTier(deps: TranscodeHandlerDeps, recordingId: string, tier: PackageTier | undefined, signal: AbortSignal): Promise<BuiltPackage | JobOutcome> {
  const rec = deps.recordings.get(recordingId);
  if (!rec) throw new LecternError('RECORDING_NOT_FOUND', `recording ${recordingId} does not exist`);
  if (rec.state === 'recording') return { type: 'retryAfter', delayMs: 10_000, reason: 'the recording is still live' };
  // At the start of each tier, so a crash test can also land between tier 1 and tier 2.
  const pauseMs = failpointDelayMs('transcode.start');
  if (pauseMs > 0) await sleep(pauseMs, signal);

  // Its chunk in progress is finished first: the packager continues from the chunks.
  await deps.progressive?.release(recordingId);
  const allSegments = deps.recordings.segments(recordingId);
  const allRuns = deps.recordings.runs(recordingId);
  const segmentsOf = (source: string): PackageSegment[] =>
    allSegments
      .filter((s) => s.source === source)
      .map((s) => ({ path: path.resolve(deps.dataDir, s.path), sha256: s.sha256, bytes: s.bytes, durationSeconds: s.durationSeconds, run: s.run }));
  const runsOf = (source: string): PackageRun[] => allRuns.filter((r) => r.source === source);
  const segments = segmentsOf(deps.source.name);
  const runs = runsOf(deps.source.name);
  const otherSources = (deps.otherSources ?? [])
    .map((s) => ({ ...s, segments: segmentsOf(s.name), runs: runsOf(s.name) }))
    .filter((s) => s.segments.length > 0);

  return deps.packager.build(
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
      ...(otherSources.length > 0 ? { otherSources } : {}),
    },
    deps.packageDirs(recordingId),
    signal,
    tier !== undefined ? { tier } : {},
  );
}
