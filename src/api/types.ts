/**
 * The contract between the local API and the agent. api/ knows the agent only through these
 * types: agent/ builds an ApiBackend (agent/apiBackend.ts) over its parts and hands it to the
 * server, so the HTTP layer never touches the RecordingController, the database or ffmpeg.
 * The same AgentStatus is what the CLI prints, the kiosk shows and /metrics exports.
 */

/**
 * - `idle`: nothing is recorded.
 * - `starting`: a recording exists and its sources are being started.
 * - `recording`: every source has a running (or restarting) recorder.
 * - `paused`: a recording is live but nothing is recorded until it is resumed (or stopped, or reaches its planned end).
 * - `stopping`: sources are finishing their last segment.
 */
export type RecordingState = 'idle' | 'starting' | 'recording' | 'paused' | 'stopping';

export interface SourceStatus {
  name: string;
  /** The recorder's state: starting, recording, restarting, stopping, stopped. */
  status: string;
  /** Last measured audio level in dBFS (about once a second); null when unknown. */
  audioLevelDb: number | null;
  /** When ffmpeg last reported that the media advanced; null before the first report. */
  lastAdvanceAtMs: number | null;
  segments: number;
  restarts: number;
}

export interface AlertStatus {
  /** source_lost, no_audio, frozen_picture, black_picture, disk_low, ... */
  kind: string;
  /** The source it is about; null for the whole agent. */
  source: string | null;
  message: string;
  startedAtMs: number;
}

export interface NextEvent {
  title: string;
  course: string | null;
  startsAtMs: number;
  endsAtMs: number;
}

export interface AgentStatus {
  agent: { id: string; site: string; room: string; version: string; startedAtMs: number };
  /** When this status was composed. */
  atMs: number;
  recording: {
    state: RecordingState;
    recordingId: string | null;
    title: string | null;
    course: string | null;
    startedAtMs: number | null;
    plannedEndMs: number | null;
    /** Wall time since the start; 0 when idle. */
    elapsedMs: number;
    segments: number;
    restarts: number;
    sources: SourceStatus[];
  };
  /** The presenter source's last audio level (dBFS); null when idle or not measured yet. */
  audioLevelDb: number | null;
  /** Everything a person should know now, oldest first. */
  alerts: AlertStatus[];
  disk: { freeBytes: number | null; minFreeBytes: number; stopFreeBytes: number; low: boolean };
  queue: { queued: number; running: number; done: number; dead: number; cancelled: number };
  uploads: {
    /** Lectures recorded but not yet published (packaging or publishing). */
    pendingLectures: number;
    /** Bytes still to send, when known. */
    pendingBytes: number | null;
    /** Seconds until the backlog is sent at the measured rate, when known. */
    etaSeconds: number | null;
    /** The bandwidth policy (DESIGN §4), when the store has one: bytes/s measured over the last 10 s. */
    rateBytesPerSecond?: number;
    /** The cap in force in bytes/s (window or configured cap, lowered by yield); null = uncapped, 0 = paused. */
    capBytesPerSecond?: number | null;
    /** The upload window in force, as configured; null outside every window. */
    window?: string | null;
    /** Why uploads wait: 'recording', 'window' or 'link_down'; null while they may run. */
    pausedReason?: string | null;
  };
  /** The next scheduled lecture, when a timetable knows one. */
  next: NextEvent | null;
  kiosk: { pinRequired: boolean };
}

export interface StartRequest {
  title?: string;
  course?: string | null;
  teacher?: string | null;
  /** Stop by itself after this many minutes (null: until stopped). */
  durationMinutes?: number | null;
}

export interface StartResult {
  recordingId: string;
  /** False when a recording was already live (Record pressed twice starts one recording). */
  created: boolean;
}

export interface StopResult {
  /** The recording that was stopped; null when nothing was recording. */
  recordingId: string | null;
}

/** A lecture as the kiosk's queue view and `lectern record status` show it. */
export interface LectureView {
  id: string;
  title: string;
  course: string | null;
  startedAtMs: number;
  stoppedAtMs: number | null;
  /**
   * recording, waiting, packaging, publishing, published, failed, in this order. With tiers a
   * lecture is `publishing` from its tier-1 publish until its final publish (the full ladder).
   */
  stage: string;
  /** Where it is, in words: "packaging tier 1", "publishing tier 1", "tier 1 published, packaging the full ladder", "publishing the full ladder", "published". */
  step: string;
  /** The highest tier in the storage (1: audio and the lowest rendition, 2: the full ladder); null before the first publish. */
  tier: 1 | 2 | null;
  /** Why it failed or is retrying, when it is. */
  problem: string | null;
}

export interface JobView {
  id: number;
  kind: string;
  key: string;
  state: string;
  attempts: number;
  maxAttempts: number;
  lastError: string | null;
  updatedAtMs: number;
}

export interface QueueView {
  lectures: LectureView[];
  jobs: JobView[];
}

export interface CameraView {
  name: string;
  kind: string;
  role: string;
  /** Whether GET /api/cameras/:name/snapshot.jpg can answer now. */
  snapshot: boolean;
}

/** What the agent gives the API server. Every method may throw a LecternError. */
export interface ApiBackend {
  status(): AgentStatus;
  /** Called with each new status (at least once a second while recording); returns the unsubscribe. */
  subscribe(listener: (status: AgentStatus) => void): () => void;
  startRecording(request: StartRequest): Promise<StartResult>;
  stopRecording(): Promise<StopResult>;
  /** Idempotent; RECORDING_NOT_ACTIVE when nothing is live. */
  pauseRecording(): Promise<{ recordingId: string; pausedSinceMs: number }>;
  /** Idempotent; RECORDING_NOT_ACTIVE when nothing is live. */
  resumeRecording(): Promise<{ recordingId: string }>;
  /** Moves the planned end `minutes` later; RECORDING_NO_PLANNED_END for a recording that runs until stopped. */
  extendRecording(minutes: number): Promise<{ recordingId: string; plannedEndMs: number }>;
  /** A chapter at the current position of the packaged video (seconds); a null title becomes "Chapter N". */
  addMarker(title: string | null): Promise<{ recordingId: string; atSeconds: number; title: string }>;
  cameras(): CameraView[];
  /** A JPEG of the source now; undefined when it has none (not recording, no camera control). */
  snapshot(name: string, signal: AbortSignal): Promise<{ contentType: string; body: Buffer } | undefined>;
  queue(): QueueView;
}
