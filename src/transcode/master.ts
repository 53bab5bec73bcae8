import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';

/**
 * The master playlist, written by lectern from what was actually produced: BANDWIDTH is the
 * peak segment bit rate measured on the files (as the HLS spec defines it, not the encoder's
 * nominal rate), CODECS comes from each init segment's avcC box, and the audio rendition is
 * offered both as the video variants' audio group and as an audio-only variant for 2G/3G.
 */

export const AUDIO_GROUP_ID = 'aud';
export const AAC_LC_CODEC = 'mp4a.40.2';

export interface RenditionStats {
  /** Highest bits per second over segments of at least a second (a 40 ms tail segment holding a keyframe is no peak). */
  peakBitsPerSecond: number;
  averageBitsPerSecond: number;
  durationSeconds: number;
}

export interface MasterVideoVariant {
  uri: string;
  width: number;
  height: number;
  codec: string;
  stats: RenditionStats;
}

export interface MasterAudio {
  uri: string;
  stats: RenditionStats;
}

/** Bit rates of a media playlist's segments, read from the files next to it. */
export async function measureRendition(playlistPath: string): Promise<RenditionStats> {
  const text = await readFile(playlistPath, 'utf8');
  const dir = path.dirname(playlistPath);
  const lines = text.split(/\r?\n/);
  let durationSeconds = 0;
  let totalBits = 0;
  let peak = 0;
  let peakAny = 0;
  for (let i = 0; i < lines.length; i++) {
    const m = /^#EXTINF:([\d.]+)/.exec(lines[i] ?? '');
    const uri = lines[i + 1];
    if (!m || !uri || uri.startsWith('#')) continue;
    const seconds = Number(m[1]);
    const bits = (await stat(path.join(dir, uri))).size * 8;
    durationSeconds += seconds;
    totalBits += bits;
    if (seconds <= 0) continue;
    peakAny = Math.max(peakAny, bits / seconds);
    if (seconds >= 1) peak = Math.max(peak, bits / seconds);
  }
  return {
    peakBitsPerSecond: Math.round(peak || peakAny),
    averageBitsPerSecond: Math.round(durationSeconds > 0 ? totalBits / durationSeconds : 0),
    durationSeconds,
  };
}

/**
 * The RFC 6381 codec string of an H.264 init segment: "avc1." + profile, constraint flags and
 * level from the avcC box, e.g. avc1.4d401f for Main@3.1.
 */
export function avcCodecFromInit(init: Buffer): string | undefined {
  const at = init.indexOf('avcC');
  // avcC payload: configurationVersion, AVCProfileIndication, profile_compatibility, AVCLevelIndication.
  if (at < 0 || at + 8 > init.length || init[at + 4] !== 1) return undefined;
  const hex = (b: number | undefined): string => (b ?? 0).toString(16).padStart(2, '0');
  return `avc1.${hex(init[at + 5])}${hex(init[at + 6])}${hex(init[at + 7])}`;
}

export function buildMasterPlaylist(video: readonly MasterVideoVariant[], audio?: MasterAudio): string {
  const lines = ['#EXTM3U', '#EXT-X-VERSION:7', '#EXT-X-INDEPENDENT-SEGMENTS'];
  if (audio) {
    lines.push(`#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="${AUDIO_GROUP_ID}",NAME="audio",DEFAULT=YES,AUTOSELECT=YES,CHANNELS="2",URI="${audio.uri}"`);
  }
  // Highest first: players that take the first variant start with the best picture the link allows.
  const sorted = [...video].sort((a, b) => b.stats.peakBitsPerSecond - a.stats.peakBitsPerSecond);
  for (const v of sorted) {
    const peak = v.stats.peakBitsPerSecond + (audio?.stats.peakBitsPerSecond ?? 0);
    const avg = v.stats.averageBitsPerSecond + (audio?.stats.averageBitsPerSecond ?? 0);
    const codecs = audio ? `${v.codec},${AAC_LC_CODEC}` : v.codec;
    lines.push(
      `#EXT-X-STREAM-INF:BANDWIDTH=${peak},AVERAGE-BANDWIDTH=${avg},RESOLUTION=${v.width}x${v.height},CODECS="${codecs}"${audio ? `,AUDIO="${AUDIO_GROUP_ID}"` : ''}`,
      v.uri,
    );
  }
  if (audio) {
    lines.push(
      `#EXT-X-STREAM-INF:BANDWIDTH=${audio.stats.peakBitsPerSecond},AVERAGE-BANDWIDTH=${audio.stats.averageBitsPerSecond},CODECS="${AAC_LC_CODEC}"`,
      audio.uri,
    );
  }
  return `${lines.join('\n')}\n`;
}
