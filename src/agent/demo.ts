import type { JobQueue } from '../queue/queue.js';
import type { Job } from '../queue/types.js';
import { TRANSCODE_JOB, TRANSCODE_TIER2_JOB } from '../transcode/handler.js';
import { MANIFEST_FILE_NAME, parseManifest } from '../transcode/manifest.js';
import { PUBLISH_JOB, PUBLISH_TIER1_JOB, type PublishJobResult } from '../upload/publishHandler.js';
import { sleep } from '../util/sleep.js';
import { formatBytes, formatDuration } from '../util/units.js';
import type { Agent } from './agent.js';

/**
 * `lectern demo`: the daemon's own path on the embedded defaults. Records from the configured
 * sources (a synthetic camera by default) for a few seconds, then lets the queue package and
 * publish the lecture, and reports where it landed. If an earlier run was interrupted, it first
 * finishes that work instead of recording anew: nothing is lost, nothing is done twice.
 */

export interface DemoOptions {
  seconds: number;
  out: (line: string) => void;
  signal?: AbortSignal;
}

export interface DemoLecture {
  lectureId: string;
  state: 'published' | 'failed';
  location?: string;
  summary: string;
}

export async function runDemo(agent: Agent, opts: DemoOptions): Promise<DemoLecture[]> {
  const { queue, worker, controller } = agent.parts;
  // A demo killed while recording: the agent's start continued that lecture (controller.start());
  // it records on until its planned end, then is packaged and published like any other.
  const live = controller.status();
  if (live.recordingId !== undefined) {
    const resumed = live.recordingId;
    const plannedEndMs = live.plannedEndMs ?? Date.now();
    const remainingSeconds = Math.max(0, Math.round((plannedEndMs - Date.now()) / 1000));
    opts.out(`Resuming lecture ${resumed}, interrupted while recording: recording until its planned end in ${remainingSeconds} s...`);
    await recordUntil(plannedEndMs, opts);
    await controller.stopRecording('demo finished');
    opts.out('Recording stopped; packaging and publishing...');
    await worker.runUntilIdle();
    const ids = [...new Set([resumed, ...lecturesWithPendingWork(queue)])];
    return Promise.all(ids.map((id) => describeLecture(agent, id)));
  }

  const unfinished = lecturesWithPendingWork(queue);
  if (unfinished.length > 0) {
    opts.out(`Resuming ${unfinished.length} unfinished lecture(s) from an earlier run: ${unfinished.join(', ')}`);
    await worker.runUntilIdle();
    return Promise.all(unfinished.map((id) => describeLecture(agent, id)));
  }

  // The planned end is stored with the recording, so a demo killed mid-recording and run again
  // knows when this lecture was meant to end.
  const plannedEndMs = Date.now() + opts.seconds * 1000;
  const { recordingId } = await controller.startRecording({ title: 'lectern demo lecture', plannedEndMs });
  opts.out(`Recording lecture ${recordingId} for ${opts.seconds} s from the configured source(s)...`);
  await recordUntil(plannedEndMs, opts);
  await controller.stopRecording('demo finished');
  opts.out('Recording stopped; packaging and publishing...');
  await worker.runUntilIdle();
  return [await describeLecture(agent, recordingId)];
}

/** Waits until `endMs` (the controller also stops the recording then), or until interrupted. */
async function recordUntil(endMs: number, opts: DemoOptions): Promise<void> {
  try {
    await sleep(Math.max(0, endMs - Date.now()), opts.signal);
  } catch {
    opts.out('Interrupted: stopping the recording and keeping what was recorded.');
  }
}

/** Lectures whose transcode or publish job is queued or running. */
function lecturesWithPendingWork(queue: JobQueue): string[] {
  const ids = new Set<string>();
  for (const state of ['queued', 'running'] as const) {
    for (const job of queue.list({ state })) {
      if (job.kind === TRANSCODE_JOB || job.kind === TRANSCODE_TIER2_JOB || job.kind === PUBLISH_TIER1_JOB || job.kind === PUBLISH_JOB) ids.add(job.key);
    }
  }
  return [...ids].sort();
}

async function describeLecture(agent: Agent, lectureId: string): Promise<DemoLecture> {
  const { queue, store } = agent.parts;
  const publish = queue.findByKey(PUBLISH_JOB, lectureId);
  if (!publish || publish.state !== 'done') {
    const failed: Job | undefined = publish ?? queue.findByKey(TRANSCODE_JOB, lectureId);
    return {
      lectureId,
      state: 'failed',
      summary: `Lecture ${lectureId} was not published: ${failed ? `${failed.kind} job is ${failed.state}${failed.lastError ? ` (${failed.lastError})` : ''}` : 'no job was queued for it'}. Its recording is kept; see \`lectern queue ls\`.`,
    };
  }
  const result = publish.result as PublishJobResult;
  // Read back from the store, as the platform will: whatever the kind of storage.
  const manifest = parseManifest((await store.getBytes(`${result.lecturePrefix}${MANIFEST_FILE_NAME}`)).toString('utf8'));
  const location = agent.describeLocation(result.lecturePrefix);
  const video = manifest.renditions.filter((r) => r.kind === 'video').map((r) => r.name);
  const hasAudio = manifest.renditions.some((r) => r.kind === 'audio');
  const bytes = manifest.files.reduce((n, f) => n + f.bytes, 0);
  return {
    lectureId,
    state: 'published',
    location,
    summary:
      `Lecture ${lectureId} published: ${formatDuration(manifest.durationSeconds)} (${manifest.durationSeconds.toFixed(1)} s), ` +
      `renditions ${video.join(', ')}${hasAudio ? ' + audio-only' : ''}, ${manifest.files.length + 1} files, ${formatBytes(bytes)}, ` +
      `${manifest.gaps.length} gap(s).`,
  };
}
