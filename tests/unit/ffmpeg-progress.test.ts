import { describe, it, expect } from 'vitest';
import { ProgressParser } from '../../src/ffmpeg/progress.js';
import { StderrRing } from '../../src/ffmpeg/stderrRing.js';

// Real output of ffmpeg 5.1: `-f lavfi -i testsrc -t 2 -progress pipe:1 -f mpegts out.ts`.
const FIRST_BLOCK = [
  'frame=1',
  'fps=0.00',
  'stream_0_0_q=0.0',
  'bitrate=N/A',
  'total_size=0',
  'out_time_us=0',
  'out_time_ms=0',
  'out_time=00:00:00.000000',
  'dup_frames=0',
  'drop_frames=0',
  'speed=N/A',
  'progress=continue',
].join('\n') + '\n';

const END_BLOCK = [
  'frame=50',
  'fps=0.00',
  'stream_0_0_q=2.0',
  'bitrate= 466.9kbits/s',
  'total_size=112048',
  'out_time_us=1920011',
  'out_time_ms=1920011',
  'out_time=00:00:01.920011',
  'dup_frames=3',
  'drop_frames=1',
  'speed=35.2x',
  'progress=end',
].join('\n') + '\n';

describe('ProgressParser', () => {
  it('parses a block with N/A values into typed fields, leaving N/A out', () => {
    const blocks = new ProgressParser().push(FIRST_BLOCK);
    expect(blocks).toStrictEqual([{ frame: 1, fps: 0, totalSizeBytes: 0, outTimeUs: 0, dupFrames: 0, dropFrames: 0, end: false }]);
  });

  it('parses the end block, bitrate with its leading space and unit, and speed with its x', () => {
    const blocks = new ProgressParser().push(END_BLOCK);
    expect(blocks).toStrictEqual([
      {
        frame: 50,
        fps: 0,
        bitrateKbps: 466.9,
        totalSizeBytes: 112048,
        outTimeUs: 1920011,
        dupFrames: 3,
        dropFrames: 1,
        speed: 35.2,
        end: true,
      },
    ]);
  });

  it('gives the same blocks however the stream is chunked, including one byte at a time', () => {
    const text = FIRST_BLOCK + END_BLOCK;
    const whole = new ProgressParser().push(text);
    expect(whole).toHaveLength(2);

    const byByte = new ProgressParser();
    const fromBytes = [...text].flatMap((ch) => byByte.push(ch));
    expect(fromBytes).toStrictEqual(whole);

    // A split inside a key, inside a value and right before the newline of `progress=end`.
    const cuts = [3, 40, text.length - 1];
    const parser = new ProgressParser();
    const pieces = [text.slice(0, cuts[0]), text.slice(cuts[0], cuts[1]), text.slice(cuts[1], cuts[2]), text.slice(cuts[2])];
    const results = pieces.map((p) => parser.push(p));
    expect(results.flat()).toStrictEqual(whole);
    // The end block is only emitted once its final newline arrives.
    expect(results[2]).toHaveLength(1);
    expect(results[3]).toStrictEqual([whole[1]]);
  });

  it('handles CRLF line endings', () => {
    const blocks = new ProgressParser().push(END_BLOCK.replace(/\n/g, '\r\n'));
    expect(blocks[0]).toMatchObject({ outTimeUs: 1920011, speed: 35.2, end: true });
  });

  it('does not carry fields from one block into the next', () => {
    const parser = new ProgressParser();
    const blocks = parser.push('frame=10\nout_time_us=400000\nprogress=continue\nspeed=1.01x\nprogress=continue\n');
    expect(blocks).toStrictEqual([
      { frame: 10, outTimeUs: 400000, end: false },
      { speed: 1.01, end: false },
    ]);
  });

  it('falls back to out_time_ms, then to out_time, when out_time_us is missing', () => {
    const parser = new ProgressParser();
    expect(parser.push('out_time_ms=2500000\nprogress=continue\n')).toStrictEqual([{ outTimeUs: 2_500_000, end: false }]);
    expect(parser.push('out_time=01:02:03.250000\nprogress=continue\n')).toStrictEqual([
      { outTimeUs: (3723 + 0.25) * 1_000_000, end: false },
    ]);
  });

  it('treats a negative out_time (no timestamp yet) and garbage as unknown', () => {
    const blocks = new ProgressParser().push('out_time_us=-9223372036854775807\nframe=abc\ntotal_size=N/A\nprogress=continue\n');
    expect(blocks).toStrictEqual([{ end: false }]);
  });

  it('ignores lines that are not key=value', () => {
    const blocks = new ProgressParser().push('hello\n=5\nframe=7\nprogress=continue\n');
    expect(blocks).toStrictEqual([{ frame: 7, end: false }]);
  });
});

describe('StderrRing', () => {
  it('keeps only the last N lines, oldest first', () => {
    const ring = new StderrRing({ maxLines: 3 });
    ring.push('one\ntwo\nthree\nfour\nfive\n');
    expect(ring.lines()).toEqual(['three', 'four', 'five']);
  });

  it('joins lines split across chunks and keeps a trailing partial line until flush', () => {
    const ring = new StderrRing({ maxLines: 10 });
    ring.push('[tcp @ 0x1] Conn');
    ring.push('ection refused\nsecond');
    expect(ring.lines()).toEqual(['[tcp @ 0x1] Connection refused']);
    ring.flush();
    expect(ring.lines()).toEqual(['[tcp @ 0x1] Connection refused', 'second']);
  });

  it('treats CR, LF and CRLF (split across chunks) as line ends without blank lines', () => {
    const ring = new StderrRing();
    ring.push('a\r');
    ring.push('\nb\rc\n\n');
    expect(ring.lines()).toEqual(['a', 'b', 'c']);
  });

  it('redacts a password URL even when it arrives in pieces', () => {
    const ring = new StderrRing({ maxLines: 5 });
    ring.push('rtsp://admin:s3c');
    ring.push('ret@10.0.0.5/stream: Connection refused\n');
    const lines = ring.lines();
    expect(lines).toEqual(['rtsp://admin:***@10.0.0.5/stream: Connection refused']);
    expect(lines.join('\n')).not.toContain('s3cret');
  });

  it('redacts given secret values', () => {
    const ring = new StderrRing({ secrets: ['AKIA-SECRET-KEY'] });
    ring.push('Authorization failed for AKIA-SECRET-KEY\n');
    expect(ring.lines()).toEqual(['Authorization failed for ***']);
  });

  it('cuts very long lines after redacting them', () => {
    const ring = new StderrRing({ maxLineChars: 50 });
    ring.push(`${'x'.repeat(40)} rtsp://u:hunter22@cam/s ${'y'.repeat(100)}\n`);
    const [line] = ring.lines();
    expect(line).toBeDefined();
    expect(line?.length).toBe(51);
    expect(line?.endsWith('…')).toBe(true);
    expect(line).not.toContain('hunter22');
  });
});
