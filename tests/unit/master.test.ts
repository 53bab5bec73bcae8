import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { avcCodecFromInit, buildMasterPlaylist, measureRendition } from '../../src/transcode/master.js';
import { parseMasterVariants } from '../../src/transcode/playlists.js';

describe('master playlist', () => {
  const stats = (peak: number, avg: number) => ({ peakBitsPerSecond: peak, averageBitsPerSecond: avg, durationSeconds: 60 });

  it('lists video variants highest first with audio added to BANDWIDTH, then an audio-only variant', () => {
    const text = buildMasterPlaylist(
      [
        { uri: '360p/index.m3u8', width: 640, height: 360, codec: 'avc1.4d401e', stats: stats(400_000, 300_000) },
        { uri: '720p/index.m3u8', width: 1280, height: 720, codec: 'avc1.4d401f', stats: stats(1_300_000, 900_000) },
      ],
      { uri: 'audio/index.m3u8', stats: stats(70_000, 66_000) },
    );
    expect(text).toContain('#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud",NAME="audio",DEFAULT=YES,AUTOSELECT=YES,CHANNELS="2",URI="audio/index.m3u8"');
    expect(parseMasterVariants(text)).toEqual([
      { uri: '720p/index.m3u8', bandwidth: 1_370_000, resolution: { width: 1280, height: 720 }, codecs: 'avc1.4d401f,mp4a.40.2' },
      { uri: '360p/index.m3u8', bandwidth: 470_000, resolution: { width: 640, height: 360 }, codecs: 'avc1.4d401e,mp4a.40.2' },
      { uri: 'audio/index.m3u8', bandwidth: 70_000, codecs: 'mp4a.40.2' },
    ]);
    expect(text).toContain('AVERAGE-BANDWIDTH=966000');
  });

  it('reads the H.264 codec string from an avcC box', () => {
    const box = Buffer.concat([Buffer.from('....avcC'), Buffer.from([1, 0x4d, 0x40, 0x1f, 0xff])]);
    expect(avcCodecFromInit(box)).toBe('avc1.4d401f');
    expect(avcCodecFromInit(Buffer.from('no box here'))).toBeUndefined();
  });

  it('takes the peak over segments of a second or more, so a short keyframe tail is no peak', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'lectern-'));
    try {
      writeFileSync(path.join(dir, 'a.m4s'), Buffer.alloc(50_000)); // 4 s: 100 kbit/s
      writeFileSync(path.join(dir, 'b.m4s'), Buffer.alloc(100_000)); // 4 s: 200 kbit/s
      writeFileSync(path.join(dir, 'c.m4s'), Buffer.alloc(20_000)); // 0.04 s: 4 Mbit/s, ignored
      writeFileSync(path.join(dir, 'index.m3u8'), '#EXTM3U\n#EXTINF:4.0,\na.m4s\n#EXTINF:4.0,\nb.m4s\n#EXTINF:0.04,\nc.m4s\n#EXT-X-ENDLIST\n');
      const s = await measureRendition(path.join(dir, 'index.m3u8'));
      expect(s.peakBitsPerSecond).toBe(200_000);
      expect(s.durationSeconds).toBeCloseTo(8.04, 6);
      expect(s.averageBitsPerSecond).toBe(Math.round((170_000 * 8) / 8.04));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
