import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { SEGMENT_LIST_NAME } from '../ffmpeg/captureArgs.js';
import { probeMedia } from '../ffmpeg/ffprobe.js';
import { describeError } from '../util/errors.js';
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
  // ffmpeg lists a segment it closed without a packet when it is stopped before media arrived
  // (still probing the camera): there is nothing in it to keep, and the packager could not read it.
  if (bytes === 0 || durationSeconds === 0) return { added: false, bytes, durationSeconds };
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

const SEGMENT_FILE = /^seg_(\d+)\.(?:ts|mp4)$/;
const SALVAGE_PROBE_TIMEOUT_MS = 15_000;

/**
 * Registers the segment ffmpeg was still writing when it was killed (the stop ladder's last rung,
 * kill -9, a power cut): it has no line in the list, but MPEG-TS and fragmented MP4 are readable
 * up to the last packet written, so its media is kept instead of lost. Its duration is what
 * ffprobe reads; a file without a readable video stream is left alone (and logged by the caller).
 * Returns the segments registered.
 */
export async function salvageUnlistedSegments(
  where: { recordingId: string; source: string; run: number; runDir: string; dataDir: string },
  sink: SegmentSink,
  nowMs: number,
): Promise<Array<{ fileName: string; durationSeconds: number } | { fileName: string; unreadable: string }>> {
  let listText = '';
  try {
    listText = await readFile(path.join(where.runDir, SEGMENT_LIST_NAME), 'utf8');
  } catch {
    // No list: no segment was closed; the first one may still hold media.
  }
  const listed = parseSegmentList(listText);
  let names: string[];
  try {
    names = await readdir(where.runDir);
  } catch {
    return [];
  }
  const unlisted = names
    .map((name) => ({ name, index: Number(SEGMENT_FILE.exec(name)?.[1] ?? NaN) }))
    .filter((f) => Number.isInteger(f.index) && f.index >= listed.length)
    .sort((a, b) => a.index - b.index);
  const out: Array<{ fileName: string; durationSeconds: number } | { fileName: string; unreadable: string }> = [];
  let startSeconds = listed.at(-1)?.endSeconds ?? 0;
  for (const file of unlisted) {
    const full = path.join(where.runDir, file.name);
    if ((await stat(full)).size === 0) continue;
    let durationSeconds: number;
    try {
      const probe = await probeMedia(full, { timeoutMs: SALVAGE_PROBE_TIMEOUT_MS });
      durationSeconds = probe.durationSeconds ?? 0;
      if (!probe.streams.some((s) => s.codecType === 'video') || durationSeconds <= 0) throw new Error('no readable video in it');
    } catch (err) {
      out.push({ fileName: file.name, unreadable: describeError(err) });
      continue;
    }
    const entry = { index: file.index, fileName: file.name, startSeconds, endSeconds: startSeconds + durationSeconds };
    const { added } = await ingestSegment(where, entry, sink, nowMs);
    if (added) out.push({ fileName: file.name, durationSeconds });
    startSeconds = entry.endSeconds;
  }
  return out;
}
