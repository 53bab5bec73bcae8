import { describe, expect, it } from 'vitest';
import { buildChaptersVtt, chaptersFromMarkers } from '../../src/transcode/chapters.js';
import { computeGaps, computePauses } from '../../src/transcode/packager.js';
import { mediaPositionSeconds } from '../../src/util/mediaTime.js';

describe('chapters.vtt', () => {
  it('runs each marker to the next and the last to the end, in order, in WebVTT', () => {
    const chapters = chaptersFromMarkers(
      [
        { atSeconds: 65.5, title: 'Proof' },
        { atSeconds: 0, title: 'Intro' },
        { atSeconds: 3725.25, title: 'Q & A <live>' },
      ],
      3800,
    );
    expect(buildChaptersVtt(chapters)).toBe(
      [
        'WEBVTT',
        '',
        'chapter-1',
        '00:00:00.000 --> 00:01:05.500',
        'Intro',
        '',
        'chapter-2',
        '00:01:05.500 --> 01:02:05.250',
        'Proof',
        '',
        'chapter-3',
        '01:02:05.250 --> 01:03:20.000',
        'Q &amp; A &lt;live&gt;',
        '',
      ].join('\n'),
    );
  });

  it('drops empty chapters: markers at one position (the last set wins) and at the very end; clamps to the lecture', () => {
    const chapters = chaptersFromMarkers(
      [
        { atSeconds: 10, title: 'first press' },
        { atSeconds: 10, title: 'second press' },
        { atSeconds: 40, title: 'at the end' },
        { atSeconds: 55, title: 'after the end' },
      ],
      40,
    );
    expect(chapters).toEqual([{ startSeconds: 10, endSeconds: 40, title: 'second press' }]);
    expect(chaptersFromMarkers([], 40)).toEqual([]);
  });

  it('keeps a title that looks like a timing line on its own line as text', () => {
    const vtt = buildChaptersVtt([{ startSeconds: 0, endSeconds: 1, title: 'a --> b' }]);
    expect(vtt).toContain('\na --&gt; b\n');
  });
});

describe('media position of a moment', () => {
  // Run 1: media from 1 000 to 11 000 ms (10 s recorded); pause; run 2 from 20 000 ms, still open.
  const runs = [
    { run: 1, startedAtMs: 1_000, endedAtMs: 11_000 },
    { run: 2, startedAtMs: 20_000, endedAtMs: null },
  ];
  const recorded = (run: number): number => (run === 1 ? 10 : 4);

  it('counts the media before it, not the time between runs', () => {
    expect(mediaPositionSeconds(500, runs, recorded)).toBe(0);
    expect(mediaPositionSeconds(4_000, runs, recorded)).toBe(3);
    expect(mediaPositionSeconds(15_000, runs, recorded)).toBe(10);
    // In the open run the wall clock counts (its last segment is not closed yet).
    expect(mediaPositionSeconds(26_500, runs, recorded)).toBe(16.5);
  });

  it('clamps a closed run to what it recorded', () => {
    expect(mediaPositionSeconds(10_900, [{ run: 1, startedAtMs: 1_000, endedAtMs: 11_000 }], () => 9.5)).toBe(9.5);
  });
});

describe('pauses are not gaps', () => {
  const seg = (run: number, durationSeconds: number) => ({ path: '', sha256: '', bytes: 0, run, durationSeconds });
  const segments = [seg(1, 10), seg(2, 5), seg(3, 5)];

  it('lists the pause at the media before it and keeps the real gap after it', () => {
    const runs = [
      { run: 1, startedAtMs: 0, endedAtMs: 10_300, endReason: 'paused' },
      { run: 2, startedAtMs: 16_000, endedAtMs: 21_000, endReason: 'the stream ended (ffmpeg exited with code 0)' },
      { run: 3, startedAtMs: 29_000, endedAtMs: 34_000, endReason: 'stopped' },
    ];
    const pauses = [{ startedAtMs: 10_000, endedAtMs: 15_000 }];
    expect(computeGaps(runs, segments, pauses, 34_000)).toEqual([{ atSeconds: 15, durationSeconds: 8, reason: 'the stream ended (ffmpeg exited with code 0)' }]);
    expect(computePauses(pauses, runs, segments, 34_000)).toEqual([
      { atSeconds: 10, durationSeconds: 5, startedAt: new Date(10_000).toISOString(), endedAt: new Date(15_000).toISOString() },
    ]);
  });

  it('takes the paused time out of an outage that a pause overlapped (camera lost, then paused)', () => {
    const runs = [
      { run: 1, startedAtMs: 0, endedAtMs: 10_000, endReason: 'ffmpeg killed by SIGKILL' },
      { run: 2, startedAtMs: 30_000, endedAtMs: 35_000, endReason: 'stopped' },
    ];
    expect(computeGaps(runs, segments.slice(0, 2), [{ startedAtMs: 12_000, endedAtMs: 29_000 }], 35_000)).toEqual([
      { atSeconds: 10, durationSeconds: 3, reason: 'ffmpeg killed by SIGKILL' },
    ]);
  });
});
