import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { SEGMENT_LIST_NAME } from '../ffmpeg/captureArgs.js';
import { hashFile } from '../util/hash.js';
import { parseSegmentList, type SegmentListEntry } from './segmentList.js';
import type { SegmentSink } from './sourceRecorder.js';

/**
 * Registers one closed segment: hashes the file and records it with its duration. Shared by the
 * live watcher and by crash recovery, so a segment is described the same way whichever saw it;
 * the sink ignores a segment it already holds.
 */
export async function ingestSegment(
  where: { recordingId: string; source: string; run: number; runDir: string; dataDir: string },
  entry: SegmentListEntry,
  sink: SegmentSink,
  nowMs: number,
): Promise<{ added: boolean; bytes: number; durationSeconds: number }> {
  const file = path.join(where.runDir, entry.fileName);
  const { sha256, bytes } = await hashFile(file);
  const durationSeconds = Math.max(0, entry.endSeconds - entry.startSeconds);
  const added = sink.addSegment(
    {
      recordingId: where.recordingId,
      source: where.source,
      run: where.run,
      seq: entry.index,
      path: path.relative(where.dataDir, file),
      bytes,
      sha256,
      startSeconds: entry.startSeconds,
      durationSeconds,
    },
    nowMs,
  );
  return { added, bytes, durationSeconds };
}

/** Registers every segment a run's list names (after a crash, the watcher may have missed the last ones). */
export async function ingestRunDir(
  where: { recordingId: string; source: string; run: number; runDir: string; dataDir: string },
  sink: SegmentSink,
  nowMs: number,
): Promise<number> {
  let text: string;
  try {
    text = await readFile(path.join(where.runDir, SEGMENT_LIST_NAME), 'utf8');
  } catch {
    return 0; // the run never closed a segment
  }
  let added = 0;
  for (const entry of parseSegmentList(text)) {
    if ((await ingestSegment(where, entry, sink, nowMs)).added) added++;
  }
  return added;
}
