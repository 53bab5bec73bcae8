import type { JobQueue } from '../queue/queue.js';
import type { Job } from '../queue/types.js';
import { TRANSCODE_JOB, TRANSCODE_TIER2_JOB } from '../transcode/handler.js';
import { PUBLISH_JOB, PUBLISH_TIER1_JOB } from '../upload/publishHandler.js';

/**
 * Where a lecture is between Stop and the store, read from its jobs: `lectern uploads`, the API's
 * lecture list (the kiosk) and the pending count of the status all say it the same way. A lecture's
 * jobs hand on to each other in this order, each keyed by the lecture id; with tiers (DESIGN §3.1)
 * all four run, without them (or with a ladder of one rung) only `transcode` and `publish`.
 */
export const LECTURE_JOB_KINDS: readonly string[] = [TRANSCODE_JOB, PUBLISH_TIER1_JOB, TRANSCODE_TIER2_JOB, PUBLISH_JOB];

export interface LectureProgress {
  /** The job that says where the lecture is: the first failed or unfinished one in hand-on order, else the final publish. */
  job: Job;
  work: 'package' | 'publish';
  /** The part that job works on: tier 1, the full ladder of a tiered lecture (2), or the whole package of an untiered one (null). */
  part: 1 | 2 | null;
  /** The highest tier the store holds (the tier of the published lecture.json); null before the first publish. */
  tier: 1 | 2 | null;
  /** `done` only once the final publish is done: a lecture with tier 1 published is still on its way. */
  state: 'waiting' | 'running' | 'failed' | 'done';
  /** In words: "packaging tier 1", "publishing tier 1", "tier 1 published, packaging the full ladder", "publishing the full ladder", "published". */
  text: string;
}

/**
 * `jobs`: one lecture's jobs of LECTURE_JOB_KINDS (others are ignored). `tiered`: whether a lecture
 * whose first job has not told yet is packaged in tiers (`transcode.tiers` and a ladder of more
 * than one rung); once tier 1 is built, its jobs tell. Undefined when the lecture has no job.
 */
export function lectureProgress(jobs: readonly Job[], opts: { tiered: boolean }): LectureProgress | undefined {
  const of = (kind: string): Job | undefined => jobs.find((j) => j.kind === kind);
  const transcode = of(TRANSCODE_JOB);
  const publishTier1 = of(PUBLISH_TIER1_JOB);
  const transcodeTier2 = of(TRANSCODE_TIER2_JOB);
  const publish = of(PUBLISH_JOB);
  const chain = [transcode, publishTier1, transcodeTier2, publish].filter((j): j is Job => j !== undefined);
  const last = chain[chain.length - 1];
  if (!last) return undefined;

  const builtTier = transcode?.state === 'done' ? resultTier(transcode) : undefined;
  const tiered = publishTier1 !== undefined || transcodeTier2 !== undefined || (builtTier !== undefined ? builtTier === 1 : publish === undefined && opts.tiered);
  const tier = maxTier(publishedTier(publishTier1, 1), publishedTier(publish, 2));

  if (publish?.state === 'done') return { job: publish, work: 'publish', part: tiered ? 2 : null, tier, state: 'done', text: 'published' };
  // A failed step stops the lecture where it is (a person must look), even if later jobs run on.
  const job = chain.find((j) => j.state === 'dead' || j.state === 'cancelled') ?? chain.find((j) => j.state === 'queued' || j.state === 'running') ?? last;
  const work = job.kind === TRANSCODE_JOB || job.kind === TRANSCODE_TIER2_JOB ? 'package' : 'publish';
  const part = !tiered ? null : job.kind === TRANSCODE_JOB || job.kind === PUBLISH_TIER1_JOB ? 1 : 2;
  const state = job.state === 'dead' || job.state === 'cancelled' ? 'failed' : job.state === 'running' ? 'running' : 'waiting';
  return { job, work, part, tier, state, text: describe(work, part, tier, job, state) };
}

function describe(work: 'package' | 'publish', part: 1 | 2 | null, tier: 1 | 2 | null, job: Job, state: 'waiting' | 'running' | 'failed'): string {
  const what = part === 1 ? ' tier 1' : part === 2 ? ' the full ladder' : '';
  const doing = `${work === 'package' ? 'packaging' : 'publishing'}${what}`;
  const phrase = state === 'failed' ? `${doing} ${job.state === 'cancelled' ? 'cancelled' : 'failed'}` : state === 'running' ? doing : `waiting to ${work}${what}`;
  // While the full ladder is packaged the lecture can already be watched: worth saying.
  return tier === 1 && work === 'package' && part === 2 ? `tier 1 published, ${phrase}` : phrase;
}

/** The tier a done publish put in the store (its result says; a result from before tiers is the whole package). */
function publishedTier(job: Job | undefined, fallback: 1 | 2): 1 | 2 | null {
  if (job?.state !== 'done') return null;
  return resultTier(job) ?? fallback;
}

function resultTier(job: Job): 1 | 2 | undefined {
  const tier = (job.result as { tier?: unknown } | null)?.tier;
  return tier === 1 || tier === 2 ? tier : undefined;
}

function maxTier(a: 1 | 2 | null, b: 1 | 2 | null): 1 | 2 | null {
  return a === null ? b : b === null ? a : a > b ? a : b;
}

/** Whether a new lecture is packaged in tiers: `transcode.tiers` and a ladder of more than one rung (one rung is whole at tier 1). */
export function packagesInTiers(transcode: { tiers: boolean; renditions: readonly unknown[] }): boolean {
  return transcode.tiers && transcode.renditions.length > 1;
}

/** Every lecture with a job of LECTURE_JOB_KINDS in the queue, by lecture id, jobs in id order. */
export function lectureJobs(queue: JobQueue, filter: { state?: Job['state'] } = {}): Map<string, Job[]> {
  const byLecture = new Map<string, Job[]>();
  for (const kind of LECTURE_JOB_KINDS) {
    for (const job of queue.list({ kind, ...filter })) {
      const list = byLecture.get(job.key);
      if (list) list.push(job);
      else byLecture.set(job.key, [job]);
    }
  }
  for (const list of byLecture.values()) list.sort((a, b) => a.id - b.id);
  return byLecture;
}

/**
 * Lectures recorded but not yet fully published: each lecture once, with any job of the four
 * kinds queued or running (a lecture with tier 1 published and tier 2 to come counts until its
 * final publish). A failed job waits for a person and is counted by the queue's dead count.
 */
export function pendingLectureCount(queue: JobQueue): number {
  const ids = new Set<string>();
  for (const state of ['queued', 'running'] as const) for (const id of lectureJobs(queue, { state }).keys()) ids.add(id);
  return ids.size;
}
