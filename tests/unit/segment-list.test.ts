import { describe, expect, it } from 'vitest';
import { parseSegmentList } from '../../src/capture/segmentList.js';
import { computeGaps } from '../../src/transcode/packager.js';

describe('parseSegmentList', () => {
  it('returns complete lines only; a line still being written is not a segment yet', () => {
    const text = 'seg_00000.ts,0.000000,6.021333\nseg_00001.ts,6.021333,10.021333\nseg_00002.ts,10.02';
    expect(parseSegmentList(text)).toEqual([
      { index: 0, fileName: 'seg_00000.ts', startSeconds: 0, endSeconds: 6.021333 },
      { index: 1, fileName: 'seg_00001.ts', startSeconds: 6.021333, endSeconds: 10.021333 },
    ]);
  });

  it('skips malformed lines without shifting later segments onto wrong numbers', () => {
    const entries = parseSegmentList('seg_00000.ts,0,4\ngarbage\nseg_00001.ts,4,8\n');
    expect(entries.map((e) => e.fileName)).toEqual(['seg_00000.ts', 'seg_00001.ts']);
  });
});

describe('computeGaps', () => {
  it('places each gap after the media of the runs before it and measures it by wall clock', () => {
    const runs = [
      { run: 1, startedAtMs: 0, endedAtMs: 20_000, endReason: 'ffmpeg exited with code 0' },
      { run: 2, startedAtMs: 31_500, endedAtMs: 60_000, endReason: 'stopped' },
    ];
    const segments = [
      { path: 'a', sha256: '', bytes: 1, durationSeconds: 10, run: 1 },
      { path: 'b', sha256: '', bytes: 1, durationSeconds: 9.5, run: 1 },
      { path: 'c', sha256: '', bytes: 1, durationSeconds: 10, run: 2 },
    ];
    expect(computeGaps(runs, segments)).toEqual([{ atSeconds: 19.5, durationSeconds: 11.5, reason: 'ffmpeg exited with code 0' }]);
  });

  it('reports no gap for a single run', () => {
    expect(computeGaps([{ run: 1, startedAtMs: 0, endedAtMs: 5, endReason: 'stopped' }], [])).toEqual([]);
  });

  it('lists a short wait for the first frame as a gap when the source was known lost then', () => {
    const segments = [{ path: 'a', sha256: '', bytes: 1, durationSeconds: 20, run: 1 }];
    // The agent was killed 0.1 s after the lecture began; the restarted one's first frame came 4.4 s in.
    const runs = [{ run: 1, startedAtMs: 104_400, endedAtMs: 124_400, endReason: 'stopped by request' }];
    const restart = { startedAtMs: 100_000, endedAtMs: 104_400 };
    expect(computeGaps(runs, segments, [], 124_400, 100_000, [restart])).toEqual([{ atSeconds: 0, durationSeconds: 4.4, reason: 'no media from the source yet' }]);
    // Without that alert, 4.4 s is a camera taking its time to connect: not listed.
    expect(computeGaps(runs, segments, [], 124_400, 100_000)).toEqual([]);
    // An outage that began after the first frame says nothing about the start.
    expect(computeGaps(runs, segments, [], 124_400, 100_000, [{ startedAtMs: 110_000, endedAtMs: 112_000 }])).toEqual([]);
  });

  it('reports the time before the first frame and after the last one as gaps when they are long', () => {
    const segments = [{ path: 'a', sha256: '', bytes: 1, durationSeconds: 20, run: 3 }];
    // The agent was killed twice before any segment closed: media began 9 s after the start.
    const late = [{ run: 3, startedAtMs: 109_000, endedAtMs: 129_000, endReason: 'stopped by request' }];
    expect(computeGaps(late, segments, [], 129_000, 100_000)).toEqual([{ atSeconds: 0, durationSeconds: 9, reason: 'no media from the source yet' }]);
    // A usual start (the first frame 2 s in) and a stop that ends the run: nothing lost.
    const usual = [{ run: 1, startedAtMs: 102_000, endedAtMs: 122_000, endReason: 'stopped by request' }];
    expect(computeGaps(usual, segments.map((x) => ({ ...x, run: 1 })), [], 122_000, 100_000)).toEqual([]);
    // The camera was lost 6 s before the stop and never came back.
    const lost = [{ run: 1, startedAtMs: 100_500, endedAtMs: 120_500, endReason: 'camera lost' }];
    expect(computeGaps(lost, segments.map((x) => ({ ...x, run: 1 })), [], 126_500, 100_000)).toEqual([{ atSeconds: 20, durationSeconds: 6, reason: 'camera lost' }]);
    // ...unless that time was a pause that lasted to the stop.
    const paused = [{ run: 1, startedAtMs: 100_500, endedAtMs: 120_500, endReason: 'paused' }];
    expect(computeGaps(paused, segments.map((x) => ({ ...x, run: 1 })), [{ startedAtMs: 120_500, endedAtMs: null }], 126_500, 100_000)).toEqual([]);
  });
});
