import { describe, expect, it } from 'vitest';
import {
  buildConcatList,
  parseMasterVariants,
  playlistDurationSeconds,
  rewriteInitReference,
} from '../../src/transcode/playlists.js';

// The shape ffmpeg 5.1 writes for a two-rung ladder with a shared audio group.
const MASTER = `#EXTM3U
#EXT-X-VERSION:7
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="group_aud",NAME="audio_2",DEFAULT=YES,URI="audio/index.m3u8"
#EXT-X-STREAM-INF:BANDWIDTH=1390400,RESOLUTION=1280x720,CODECS="avc1.4d401f,mp4a.40.2",AUDIO="group_aud"
720p/index.m3u8

#EXT-X-STREAM-INF:BANDWIDTH=455400,RESOLUTION=640x360,CODECS="avc1.4d401e,mp4a.40.2",AUDIO="group_aud"
360p/index.m3u8
`;

describe('playlists', () => {
  it('parses the variants of a master playlist', () => {
    expect(parseMasterVariants(MASTER)).toEqual([
      { uri: '720p/index.m3u8', bandwidth: 1390400, resolution: { width: 1280, height: 720 }, codecs: 'avc1.4d401f,mp4a.40.2' },
      { uri: '360p/index.m3u8', bandwidth: 455400, resolution: { width: 640, height: 360 }, codecs: 'avc1.4d401e,mp4a.40.2' },
    ]);
  });

  it('points EXT-X-MAP at the renamed init file', () => {
    const text = '#EXTM3U\n#EXT-X-MAP:URI="init_1.mp4"\n#EXTINF:4.000000,\nseg_00001.m4s\n';
    expect(rewriteInitReference(text, 'init.mp4')).toBe('#EXTM3U\n#EXT-X-MAP:URI="init.mp4"\n#EXTINF:4.000000,\nseg_00001.m4s\n');
  });

  it('sums EXTINF durations', () => {
    expect(playlistDurationSeconds('#EXTINF:4.000000,\na\n#EXTINF:4.010667,\nb\n#EXTINF:0.04,\nc\n')).toBeCloseTo(8.050667, 6);
  });

  it('quotes concat paths so a quote in a path cannot break the list', () => {
    expect(buildConcatList([{ path: '/a/seg 1.ts' }, { path: "/b/it's.ts" }])).toBe("ffconcat version 1.0\nfile '/a/seg 1.ts'\nfile '/b/it'\\''s.ts'\n");
  });

  it('gives each segment its recorded duration, so joins add no padding', () => {
    expect(buildConcatList([{ path: '/a.ts', durationSeconds: 10.08 }, { path: '/b.ts', durationSeconds: 4 }])).toBe(
      "ffconcat version 1.0\nfile '/a.ts'\nduration 10.080000\nfile '/b.ts'\nduration 4.000000\n",
    );
  });
});
