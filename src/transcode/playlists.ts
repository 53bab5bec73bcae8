/**
 * Pure helpers on playlists: the init-segment rename the storage contract wants (DESIGN §3.1:
 * `hls/{rendition}/init.mp4`), reading master and media playlists, and the concat list.
 */

/** ffmpeg names fMP4 init files init_0.mp4, init_1.mp4… when it writes several variants. */
export const FFMPEG_INIT_FILE = /^init_\d+\.mp4$/;

export function rewriteInitReference(mediaPlaylist: string, initFileName: string): string {
  return mediaPlaylist.replace(/#EXT-X-MAP:URI="[^"]*"/g, `#EXT-X-MAP:URI="${initFileName}"`);
}

export interface VariantInfo {
  uri: string;
  bandwidth: number;
  resolution?: { width: number; height: number };
  codecs?: string;
}

/** The variants listed in a master playlist, in order. */
export function parseMasterVariants(master: string): VariantInfo[] {
  const lines = master.split(/\r?\n/);
  const out: VariantInfo[] = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] ?? '';
    if (!line.startsWith('#EXT-X-STREAM-INF:')) continue;
    const attrs = line.slice('#EXT-X-STREAM-INF:'.length);
    const bandwidth = Number(/(?:^|,)BANDWIDTH=(\d+)/.exec(attrs)?.[1] ?? NaN);
    const res = /RESOLUTION=(\d+)x(\d+)/.exec(attrs);
    const codecs = /CODECS="([^"]*)"/.exec(attrs)?.[1];
    let uri = '';
    for (let j = i + 1; j < lines.length; j++) {
      const next = (lines[j] ?? '').trim();
      if (next === '' ) continue;
      if (!next.startsWith('#')) uri = next;
      break;
    }
    out.push({
      uri,
      bandwidth,
      ...(res ? { resolution: { width: Number(res[1]), height: Number(res[2]) } } : {}),
      ...(codecs !== undefined ? { codecs } : {}),
    });
  }
  return out;
}

/** Sum of EXTINF durations of a media playlist. */
export function playlistDurationSeconds(mediaPlaylist: string): number {
  let total = 0;
  for (const m of mediaPlaylist.matchAll(/#EXTINF:([\d.]+)/g)) total += Number(m[1]);
  return total;
}

/**
 * An ffconcat list of the recorded segments. Each entry carries the segment's duration as the
 * segment muxer measured it on the video: without it the concat demuxer advances by the file's
 * longest stream (the audio runs a few tens of ms past the video in each segment), which inserts
 * a small gap at every join; over a 90-minute lecture of 10 s segments that is half a minute of
 * padding and duplicated frames.
 */
export function buildConcatList(entries: ReadonlyArray<{ path: string; durationSeconds?: number }>): string {
  const quote = (p: string): string => `'${p.replace(/'/g, `'\\''`)}'`;
  const lines = entries.map((e) => `file ${quote(e.path)}\n${e.durationSeconds !== undefined && e.durationSeconds > 0 ? `duration ${e.durationSeconds.toFixed(6)}\n` : ''}`);
  return `ffconcat version 1.0\n${lines.join('')}`;
}
