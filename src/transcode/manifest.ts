/**
 * lecture.json, the manifest the central platform reads (DESIGN §3.1). It is written last: its
 * presence in the store means every file it lists is there. The JSON Schema is
 * schemas/lecture.schema.json; bump MANIFEST_SCHEMA_VERSION on any incompatible change.
 */

export const MANIFEST_SCHEMA_VERSION = 1;
export const MANIFEST_FILE_NAME = 'lecture.json';

export interface ManifestFile {
  /** Relative to the lecture folder, '/'-separated. */
  path: string;
  bytes: number;
  sha256: string;
}

export interface ManifestRendition {
  name: string;
  kind: 'video' | 'audio';
  playlist: string;
  bandwidth: number;
  codecs?: string;
  width?: number;
  height?: number;
  durationSeconds: number;
}

export interface ManifestGap {
  /** Position in the packaged timeline where media is missing. */
  atSeconds: number;
  /** Wall-clock length of the gap. */
  durationSeconds: number;
  reason: string;
}

/** A pause the teacher made: nothing was recorded, on purpose (gaps are the losses). */
export interface ManifestPause {
  /** Position in the packaged timeline where the lecture was paused. */
  atSeconds: number;
  /** Wall-clock length of the pause. */
  durationSeconds: number;
  startedAt: string;
  endedAt: string;
}

export interface ManifestLoudness {
  targetLufs: number;
  /** linear: one gain for the whole lecture; dynamic: loudnorm had to compress to respect the peak limit; none: silent or unmeasurable. */
  normalization: 'linear' | 'dynamic' | 'none';
  inputIntegratedLufs: number | null;
  inputTruePeakDbtp: number | null;
  inputLra: number | null;
}

export interface ManifestThumbnails {
  /** WebVTT mapping times to sprite tiles. */
  vtt: string;
  intervalSeconds: number;
  width: number;
  height: number;
  sprites: string[];
}

/**
 * Another video source of the room (the board, the slides): its own video-only ladder under
 * sources/{name}/hls/, whose master playlist takes the audio from the presenter's hls/audio.
 */
export interface ManifestSource {
  name: string;
  role: 'presenter' | 'presentation';
  master: string;
  renditions: ManifestRendition[];
  segments: number;
  recordedSeconds: number;
  gaps: ManifestGap[];
}

export interface LectureManifest {
  schemaVersion: typeof MANIFEST_SCHEMA_VERSION;
  lectureId: string;
  /** 1 = audio and the lowest rendition; 2 = the full ladder. */
  tier: 1 | 2;
  agent: { id: string; version: string };
  site: string;
  room: string;
  title: string;
  course: string | null;
  teacher: string | null;
  startedAt: string;
  endedAt: string;
  durationSeconds: number;
  source: { name: string; role: 'presenter' | 'presentation'; segments: number; recordedSeconds: number };
  master: string;
  renditions: ManifestRendition[];
  gaps: ManifestGap[];
  /** Added in schema version 1 without a bump (optional there): absent in manifests written before pauses existed. */
  pauses?: ManifestPause[];
  /** Loudness normalisation of the audio; null when the recording has no audio. */
  loudness: ManifestLoudness | null;
  poster: string | null;
  thumbnails: ManifestThumbnails | null;
  /** Added in schema version 1 without a bump (optional there): the other video sources, each packaged on its own (tier 2 only). */
  sources?: ManifestSource[];
  /** The teacher's chapter markers, by position in the packaged timeline. */
  markers: Array<{ atSeconds: number; title: string }>;
  /** The WebVTT chapters track made from the markers; null without markers (optional like `pauses`). */
  chapters?: string | null;
  alerts: Array<{ kind: string; startedAt: string; endedAt: string | null; message: string }>;
  files: ManifestFile[];
  createdAt: string;
}

/** The small pointer under ready/ that the platform lists by day. */
export interface ReadyPointer {
  schemaVersion: typeof MANIFEST_SCHEMA_VERSION;
  lectureId: string;
  manifestKey: string;
  manifestSha256: string;
  site: string;
  room: string;
  title: string;
  startedAt: string;
  durationSeconds: number;
  tier: 1 | 2;
  /** When the package was built (the manifest's createdAt): the pointer is the same bytes on every retry. */
  packagedAt: string;
}

/** Serialised the same way everywhere, so its sha256 is stable. */
export function serializeJson(value: unknown): string {
  return `${JSON.stringify(value, null, 2)}\n`;
}

/**
 * Reads the parts of a manifest the publisher depends on, rejecting anything malformed with a
 * message that names the problem (a hand-edited or truncated file must not publish half a lecture).
 */
export function parseManifest(text: string): LectureManifest {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new Error(`lecture.json is not valid JSON: ${(err as Error).message}`);
  }
  const m = value as Partial<LectureManifest> | null;
  if (!m || typeof m !== 'object') throw new Error('lecture.json is not an object');
  if (m.schemaVersion !== MANIFEST_SCHEMA_VERSION) throw new Error(`lecture.json has schemaVersion ${String(m.schemaVersion)}, expected ${MANIFEST_SCHEMA_VERSION}`);
  if (typeof m.lectureId !== 'string' || typeof m.startedAt !== 'string' || !Array.isArray(m.files)) {
    throw new Error('lecture.json lacks lectureId, startedAt or files');
  }
  for (const f of m.files) {
    if (!f || typeof f.path !== 'string' || typeof f.bytes !== 'number' || !/^[0-9a-f]{64}$/.test(String(f.sha256))) {
      throw new Error(`lecture.json lists a malformed file entry: ${JSON.stringify(f)}`);
    }
  }
  return m as LectureManifest;
}
