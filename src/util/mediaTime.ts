/**
 * Where a wall-clock moment of a recording falls in its packaged video. The package joins the
 * source's segments end to end, so pauses and gaps take no time in it: the position of a moment is
 * the media recorded before it. Capture uses this when a marker is set (the run is still open) and
 * the packager again from the final runs, so both agree on what "the position" means.
 */

export interface MediaRun {
  run: number;
  /** When the run's media began. */
  startedAtMs: number;
  /** null while the run is still recording. */
  endedAtMs: number | null;
}

/**
 * @param recordedSeconds the media each run holds (the sum of its segment durations)
 * @returns seconds from the start of the packaged video
 */
export function mediaPositionSeconds(atMs: number, runs: readonly MediaRun[], recordedSeconds: (run: number) => number): number {
  let position = 0;
  for (const r of [...runs].sort((a, b) => a.run - b.run)) {
    if (atMs <= r.startedAtMs) break;
    const recorded = recordedSeconds(r.run);
    const elapsed = (atMs - r.startedAtMs) / 1000;
    if (r.endedAtMs === null) {
      // An open run: its last segment is not closed yet, so the wall clock is the better measure.
      position += Math.max(elapsed, recorded);
      break;
    }
    if (atMs < r.endedAtMs) {
      position += Math.min(elapsed, recorded);
      break;
    }
    position += recorded;
  }
  return Math.round(position * 1000) / 1000;
}

/** Milliseconds of [fromMs, toMs] that the intervals cover (open intervals end at `openEndMs`). */
export function overlapMs(fromMs: number, toMs: number, intervals: ReadonlyArray<{ startedAtMs: number; endedAtMs: number | null }>, openEndMs: number): number {
  let total = 0;
  for (const i of intervals) {
    const start = Math.max(fromMs, i.startedAtMs);
    const end = Math.min(toMs, i.endedAtMs ?? openEndMs);
    if (end > start) total += end - start;
  }
  return total;
}
