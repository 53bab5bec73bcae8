import { describe, expect, it } from 'vitest';
import { buildHlsVideoArgs } from '../../src/ffmpeg/hlsArgs.js';
import { buildMediaPlaylist, chunkQuantumSeconds, isPrefixOf, parseMediaEntries, planChunk } from '../../src/transcode/chunks.js';
import { initSignature, initTimescale, shiftMediaSegment } from '../../src/transcode/fmp4.js';

const seg = (name: string, durationSeconds: number) => ({ path: `/r/${name}.ts`, sha256: name, durationSeconds });
// Capture segments are never exactly 10 s: the first runs to the first keyframe after 10 s.
const SEGMENTS = [seg('a', 10.08), seg('b', 10), seg('c', 9.96), seg('d', 10.04), seg('e', 10)];
const opts = { quantumSeconds: 20, minSeconds: 20, fps: 25 };

describe('planChunk', () => {
  it('takes whole quanta while live, from the segment holding the chunk start', () => {
    expect(planChunk(SEGMENTS.slice(0, 1), 0, { ...opts, final: false })).toBeUndefined();
    const first = planChunk(SEGMENTS.slice(0, 2), 0, { ...opts, final: false });
    expect(first).toMatchObject({ startSeconds: 0, durationSeconds: 20, firstFileIndex: 0, localStartSeconds: 0 });
    expect(first?.files.map((f) => f.sha256)).toEqual(['a', 'b']);
    // 50.08 s registered, 20 done: one more quantum (20..40), read from b (10.08..20.08) at 9.92 s in.
    const second = planChunk(SEGMENTS, 20, { ...opts, final: false });
    expect(second).toMatchObject({ startSeconds: 20, durationSeconds: 20, firstFileIndex: 1, localStartSeconds: 9.92 });
    expect(second?.files.map((f) => f.sha256)).toEqual(['b', 'c', 'd']);
  });

  it('takes all that is available at once when the encoder fell behind', () => {
    expect(planChunk(SEGMENTS, 0, { ...opts, final: false })?.durationSeconds).toBe(40);
  });

  it('at Stop takes the rest, however short, and nothing when less than half a frame is left', () => {
    const last = planChunk(SEGMENTS, 40, { ...opts, final: true });
    expect(last?.durationSeconds).toBeUndefined();
    expect(last).toMatchObject({ startSeconds: 40, firstFileIndex: 3 });
    expect(last?.localStartSeconds).toBeCloseTo(9.96, 6); // d starts at 30.04
    expect(planChunk(SEGMENTS, 50.08, { ...opts, final: true })).toBeUndefined();
  });

  it('uses lcm(HLS segment, thumbnail interval) as the quantum', () => {
    expect(chunkQuantumSeconds(4, 10)).toBe(20);
    expect(chunkQuantumSeconds(6, 10)).toBe(30);
    expect(chunkQuantumSeconds(5, 10)).toBe(10);
  });

  it('knows whether the encoded inputs are still the start of the recording', () => {
    expect(isPrefixOf(SEGMENTS.slice(0, 2), SEGMENTS)).toBe(true);
    expect(isPrefixOf([seg('a', 10.08), seg('x', 10)], SEGMENTS)).toBe(false);
    expect(isPrefixOf([seg('a', 10.2)], SEGMENTS)).toBe(false);
    expect(isPrefixOf(SEGMENTS, SEGMENTS.slice(0, 2))).toBe(false);
  });
});

describe('media playlists of chunks', () => {
  it('reads the entries ffmpeg wrote and writes one VOD playlist with one init segment', () => {
    const text = '#EXTM3U\n#EXT-X-MAP:URI="init_0.mp4"\n#EXTINF:4.000000,\nseg_00006.m4s\n#EXTINF:2.160000,\nseg_00007.m4s\n#EXT-X-ENDLIST\n';
    const entries = parseMediaEntries(text);
    expect(entries).toEqual([{ uri: 'seg_00006.m4s', seconds: 4 }, { uri: 'seg_00007.m4s', seconds: 2.16 }]);
    const out = buildMediaPlaylist(entries, 'init.mp4');
    expect(out).toContain('#EXT-X-TARGETDURATION:4\n');
    expect(out).toContain('#EXT-X-MAP:URI="init.mp4"\n#EXTINF:4.000000,\nseg_00006.m4s\n#EXTINF:2.160000,\nseg_00007.m4s\n#EXT-X-ENDLIST\n');
  });
});

function box(type: string, ...payload: Buffer[]): Buffer {
  const body = Buffer.concat(payload);
  const head = Buffer.alloc(8);
  head.writeUInt32BE(8 + body.length);
  head.write(type, 4, 'latin1');
  return Buffer.concat([head, body]);
}
const u32 = (...values: number[]) => Buffer.concat(values.map((v) => { const b = Buffer.alloc(4); b.writeUInt32BE(v); return b; }));
const u64 = (v: bigint) => { const b = Buffer.alloc(8); b.writeBigUInt64BE(v); return b; };

describe('fMP4 segment shift', () => {
  it('moves tfdt and sidx by the chunk start and continues the fragment numbers', () => {
    const segment = Buffer.concat([
      box('styp', Buffer.from('msdh')),
      box('sidx', Buffer.from([1, 0, 0, 0]), u32(1, 12800), u64(0n), u64(0n)),
      box('moof', box('mfhd', u32(0, 1)), box('traf', box('tfhd', u32(0, 1)), box('tfdt', Buffer.from([1, 0, 0, 0]), u64(512n)))),
      box('mdat', Buffer.from('x')),
    ]);
    shiftMediaSegment(segment, { seconds: 60, trackTimescale: 12800, sequenceOffset: 15 });
    const at = (type: string) => segment.indexOf(type, 0, 'latin1');
    expect(segment.readBigUInt64BE(at('sidx') + 16)).toBe(768_000n);
    expect(segment.readUInt32BE(at('mfhd') + 8)).toBe(16);
    expect(segment.readBigUInt64BE(at('tfdt') + 8)).toBe(768_512n);
  });

  it('reads the timescale of an init segment and ignores its edit list when comparing', () => {
    const init = (emptyEditMs: number) =>
      box('moov', box('trak', box('edts', box('elst', u32(0, 1, emptyEditMs))), box('mdia', box('mdhd', u32(0, 0, 0, 12800, 0)), box('minf', box('stbl', box('stsd', Buffer.from('avc1-config')))))));
    expect(initTimescale(init(0))).toBe(12800);
    expect(initSignature(init(0))).toBe(initSignature(init(60000)));
  });
});

describe('buildHlsVideoArgs with a window', () => {
  it('cuts the window onto the frame grid and continues segment and thumbnail numbers', () => {
    const args = buildHlsVideoArgs({
      concatListPath: '/c.ffconcat', hlsDir: '/h', renditions: [{ name: '720p', height: 720, videoBitrateKbps: 1200, crf: 26 }], segmentSeconds: 4, fps: 25, preset: 'veryfast',
      window: { startSeconds: 9.92, durationSeconds: 20 }, startNumber: 16,
      thumbnails: { intervalSeconds: 10, width: 160, height: 90, columns: 1, rows: 1, pattern: '/t/tile_%05d.jpg', startNumber: 7, maxCount: 2 },
    });
    const graph = args[args.indexOf('-filter_complex') + 1] ?? '';
    expect(graph).toMatch(/^\[0:v\]trim=start=9\.92:end=29\.92,setpts=PTS-9\.92\/TB,fps=25:start_time=0,trim=duration=20,split=2/);
    expect(graph).not.toContain('tile=');
    expect(args[args.indexOf('-start_number') + 1]).toBe('16');
    expect(args.slice(-11)).toEqual(['-frames:v', '2', '-pix_fmt', 'yuvj420p', '-q:v', '5', '-f', 'image2', '-start_number', '7', '/t/tile_%05d.jpg']);
  });
});
