/**
 * The seeded plan of a chaos run: the timetable (lecture lengths, back-to-back or with gaps) and
 * the moments of every fault. Pure: the same seed and options give the same plan on any machine,
 * so a failing run is reproduced by its seed (event-driven faults — a kill "during packaging" —
 * fire when the harness sees that phase, so their exact instant still depends on the machine).
 */

export interface ChaosPlanOptions {
  seed: number;
  lectures: number;
  /** Each lecture lasts between these, in seconds. */
  lectureSeconds: readonly [number, number];
  /** A pause between two lectures lasts between these, in seconds (some lectures are back to back). */
  gapSeconds: readonly [number, number];
  /** A camera outage lasts between these, in seconds. */
  outageSeconds: readonly [number, number];
  /** How many lectures lose their camera once (at most one outage per lecture). */
  cameraOutages: number;
  /** kill -9 of the daemon's process group while a lecture records. */
  killsDuringRecording: number;
  /** kill -9 while a lecture is being packaged (its transcode job runs). */
  killsDuringTranscode: number;
  /** kill -9 while a lecture is being published (its publish job runs). */
  killsDuringPublish: number;
  /** A teacher presses Record twice at once in a pause between lectures, and Stop before the next one. */
  teacherDoublePress: boolean;
  /** One camera outage ends with the camera's clock this far off (after a power cut); 0 = none. */
  wrongClockMs: number;
  /** The link to the storage is cut for between these, in seconds (once); [0, 0] = never. */
  networkOutageSeconds: readonly [number, number];
  /** The link to the storage runs at SLOW_LINK_KBIT for between these, in seconds (once); [0, 0] = never. */
  slowLinkSeconds: readonly [number, number];
  /** The disk fills to just above the free-space threshold during a lecture for between these, in seconds; [0, 0] = never. */
  diskFullSeconds: readonly [number, number];
  /** A teacher starts recording shortly before a slot and records into it (the slot is skipped, by design). */
  manualOverlap: boolean;
}

export interface PlannedLecture {
  index: number;
  title: string;
  /** From the start of the first lecture, in ms. */
  startOffsetMs: number;
  durationMs: number;
}

export type PlannedEvent =
  | { kind: 'camera-outage'; lecture: number; atOffsetMs: number; offMs: number }
  | { kind: 'kill-recording'; lecture: number; atOffsetMs: number }
  | { kind: 'kill-transcode'; lecture: number; delayMs: number }
  | { kind: 'kill-publish'; lecture: number; delayMs: number }
  | { kind: 'teacher-double-press'; title: string; atOffsetMs: number; stopOffsetMs: number }
  | { kind: 'camera-wrong-clock'; lecture: number; atOffsetMs: number; offMs: number; clockOffsetMs: number }
  | { kind: 'network-outage'; atOffsetMs: number; offMs: number }
  | { kind: 'slow-link'; atOffsetMs: number; forMs: number; rateKbit: number }
  | { kind: 'disk-full'; lecture: number; atOffsetMs: number; forMs: number }
  | { kind: 'manual-overlap'; lecture: number; title: string; atOffsetMs: number; stopOffsetMs: number };

export interface ChaosPlan {
  options: ChaosPlanOptions;
  lectures: PlannedLecture[];
  events: PlannedEvent[];
  /** From the start of the first lecture to the end of the last one, in ms. */
  spanMs: number;
}

// A teacher's manual recording needs a pause long enough to press Record, record a little and
// press Stop well before the next slot (a manual recording running at a slot's start makes the
// timetable skip that slot, by design).
const TEACHER_GAP_MS = 16_000;
const TEACHER_START_AFTER_MS = 2_000;
const TEACHER_STOP_BEFORE_MS = 5_000;
// Faults keep clear of a lecture's first and last seconds: a camera that is off when a lecture
// starts is a different case (the start itself fails) from one lost during it.
const EDGE_MARGIN_MS = 5_000;
/** The slowed link's rate, as issue 7 asks. */
export const SLOW_LINK_KBIT = 1_000;
// The overlapping manual recording starts this long before its slot and is stopped this long
// before the slot's end (so a back-to-back successor starts on time, not skipped as well).
const OVERLAP_START_BEFORE_MS = 6_000;
const OVERLAP_STOP_BEFORE_END_MS = 3_000;
// Before the first lecture the daemon has the harness's lead time; other slots need a pause this long.
const OVERLAP_MIN_PAUSE_MS = 10_000;

/** mulberry32: a small, well-mixed 32-bit PRNG; good enough to pick moments, and reproducible. */
export class Prng {
  #state: number;

  constructor(seed: number) {
    this.#state = seed >>> 0;
  }

  /** A float in [0, 1). */
  next(): number {
    this.#state = (this.#state + 0x6d2b79f5) >>> 0;
    let t = this.#state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** An integer in [min, max]. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }

  /** `count` distinct items, in random order. */
  sample<T>(items: readonly T[], count: number): T[] {
    const pool = [...items];
    for (let i = pool.length - 1; i > 0; i--) {
      const j = this.int(0, i);
      [pool[i], pool[j]] = [pool[j] as T, pool[i] as T];
    }
    return pool.slice(0, Math.min(count, pool.length));
  }
}

/** The short version (CI, a few minutes) and the long one (1–2 minute lectures, as issue 7 asks). */
export function chaosOptions(seed: number, lectures: number, short: boolean): ChaosPlanOptions {
  return short
    ? {
        seed,
        lectures,
        lectureSeconds: [20, 30],
        gapSeconds: [5, 8],
        outageSeconds: [5, 10],
        cameraOutages: Math.ceil(lectures / 2),
        killsDuringRecording: 1,
        killsDuringTranscode: 1,
        killsDuringPublish: 1,
        teacherDoublePress: true,
        wrongClockMs: 3 * 3_600_000,
        networkOutageSeconds: [8, 15],
        slowLinkSeconds: [15, 25],
        diskFullSeconds: [6, 10],
        manualOverlap: true,
      }
    : {
        seed,
        lectures,
        lectureSeconds: [60, 120],
        gapSeconds: [10, 40],
        outageSeconds: [10, 30],
        cameraOutages: Math.ceil(lectures / 2),
        killsDuringRecording: Math.max(1, Math.floor(lectures / 4)),
        killsDuringTranscode: Math.max(1, Math.floor(lectures / 4)),
        killsDuringPublish: Math.max(1, Math.floor(lectures / 4)),
        teacherDoublePress: true,
        wrongClockMs: 3 * 3_600_000,
        networkOutageSeconds: [30, 120],
        slowLinkSeconds: [90, 180],
        diskFullSeconds: [20, 40],
        manualOverlap: true,
      };
}

export function planChaos(options: ChaosPlanOptions): ChaosPlan {
  if (options.lectures < 1) throw new Error('a chaos run needs at least one lecture');
  const rng = new Prng(options.seed);
  // Whole seconds: the timetable is written in wall time to the second.
  const sec = (range: readonly [number, number]): number => rng.int(range[0], range[1]) * 1000;

  // Pauses: at least one pair back to back and one with a pause when there are enough lectures;
  // the teacher's pause, when asked for, is one of them made long enough.
  const boundaries = options.lectures - 1;
  const backToBack = new Set(boundaries >= 2 ? rng.sample([...Array(boundaries).keys()], Math.max(1, Math.floor(boundaries / 3))) : []);
  const gapIndexes = [...Array(boundaries).keys()].filter((i) => !backToBack.has(i));
  const teacherGap = options.teacherDoublePress && gapIndexes.length > 0 ? rng.sample(gapIndexes, 1)[0] : undefined;

  const lectures: PlannedLecture[] = [];
  const gapAfter: number[] = [];
  let offsetMs = 0;
  for (let i = 0; i < options.lectures; i++) {
    const durationMs = sec(options.lectureSeconds);
    lectures.push({ index: i + 1, title: `Chaos lecture ${i + 1} (seed ${options.seed})`, startOffsetMs: offsetMs, durationMs });
    const gapMs = i === options.lectures - 1 || backToBack.has(i) ? 0 : i === teacherGap ? Math.max(TEACHER_GAP_MS, sec(options.gapSeconds)) : sec(options.gapSeconds);
    gapAfter.push(gapMs);
    offsetMs += durationMs + gapMs;
  }
  const last = lectures[lectures.length - 1] as PlannedLecture;
  const spanMs = last.startOffsetMs + last.durationMs;

  const events: PlannedEvent[] = [];
  const all = lectures.map((l) => l.index);
  const outaged = rng.sample(all, options.cameraOutages);
  for (const index of outaged) {
    const lecture = lectures[index - 1] as PlannedLecture;
    const offMs = Math.min(sec(options.outageSeconds), lecture.durationMs - 2 * EDGE_MARGIN_MS);
    if (offMs <= 0) continue;
    events.push({ kind: 'camera-outage', lecture: index, atOffsetMs: lecture.startOffsetMs + rng.int(EDGE_MARGIN_MS, lecture.durationMs - EDGE_MARGIN_MS - offMs), offMs });
  }
  // Kills during recording prefer lectures whose camera stays on, so each gap has one cause.
  const calm = all.filter((i) => !outaged.includes(i));
  const killed = rng.sample(calm.length >= options.killsDuringRecording ? calm : all, options.killsDuringRecording);
  for (const index of killed) {
    const lecture = lectures[index - 1] as PlannedLecture;
    events.push({ kind: 'kill-recording', lecture: index, atOffsetMs: lecture.startOffsetMs + rng.int(EDGE_MARGIN_MS, Math.max(EDGE_MARGIN_MS, lecture.durationMs - EDGE_MARGIN_MS)) });
  }
  for (const index of rng.sample(all, options.killsDuringTranscode)) events.push({ kind: 'kill-transcode', lecture: index, delayMs: rng.int(0, 2_000) });
  for (const index of rng.sample(all, options.killsDuringPublish)) events.push({ kind: 'kill-publish', lecture: index, delayMs: rng.int(0, 1_000) });
  if (teacherGap !== undefined) {
    const before = lectures[teacherGap] as PlannedLecture;
    const gapStart = before.startOffsetMs + before.durationMs;
    events.push({
      kind: 'teacher-double-press',
      title: `Chaos manual recording (seed ${options.seed})`,
      atOffsetMs: gapStart + TEACHER_START_AFTER_MS,
      stopOffsetMs: gapStart + (gapAfter[teacherGap] ?? 0) - TEACHER_STOP_BEFORE_MS,
    });
  }

  // Issue 7's second set of faults. Drawn after the first set, so a seed keeps its earlier
  // timetable, outages and kills.
  // A camera that comes back with the wrong clock: one of the outages, with a seeded sign.
  const firstOutage = events.findIndex((e) => e.kind === 'camera-outage');
  const outage = events[firstOutage];
  if (options.wrongClockMs !== 0 && outage?.kind === 'camera-outage') {
    const sign = rng.next() < 0.5 ? -1 : 1;
    events[firstOutage] = { kind: 'camera-wrong-clock', lecture: outage.lecture, atOffsetMs: outage.atOffsetMs, offMs: outage.offMs, clockOffsetMs: sign * options.wrongClockMs };
  }
  // The network: an outage in the first half of the day, then the slowed link after it.
  if (options.networkOutageSeconds[1] > 0) {
    const offMs = sec(options.networkOutageSeconds);
    events.push({ kind: 'network-outage', atOffsetMs: rng.int(Math.floor(spanMs / 10), Math.max(Math.floor(spanMs / 10), Math.floor(spanMs / 2) - offMs)), offMs });
  }
  if (options.slowLinkSeconds[1] > 0) {
    const forMs = sec(options.slowLinkSeconds);
    const cut = events.find((e) => e.kind === 'network-outage');
    const after = cut?.kind === 'network-outage' ? cut.atOffsetMs + cut.offMs + 5_000 : Math.floor(spanMs / 4);
    events.push({ kind: 'slow-link', atOffsetMs: rng.int(after, Math.max(after, spanMs - forMs)), forMs, rateKbit: SLOW_LINK_KBIT });
  }
  // The manual recording that runs into a slot: a slot with a pause before it (or the first),
  // whose recording is not killed and that is not the teacher's double press's next slot.
  const killedLectures = new Set(events.flatMap((e) => (e.kind === 'kill-recording' ? [e.lecture] : [])));
  const overlapCandidates = lectures.filter(
    (l) => !killedLectures.has(l.index) && (l.index === 1 || (gapAfter[l.index - 2] ?? 0) >= OVERLAP_MIN_PAUSE_MS) && teacherGap !== l.index - 2,
  );
  const overlap = options.manualOverlap ? rng.sample(overlapCandidates, 1)[0] : undefined;
  if (overlap) {
    events.push({
      kind: 'manual-overlap',
      lecture: overlap.index,
      title: `Chaos manual recording into lecture ${overlap.index} (seed ${options.seed})`,
      atOffsetMs: overlap.startOffsetMs - OVERLAP_START_BEFORE_MS,
      stopOffsetMs: overlap.startOffsetMs + overlap.durationMs - OVERLAP_STOP_BEFORE_END_MS,
    });
  }
  // The disk filling up: inside a lecture the timetable records, clear of its edges and outage.
  if (options.diskFullSeconds[1] > 0) {
    const forMs = sec(options.diskFullSeconds);
    const fits = lectures.filter((l) => l.index !== overlap?.index && l.durationMs - 2 * EDGE_MARGIN_MS > forMs);
    const lecture = rng.sample(fits, 1)[0];
    if (lecture) events.push({ kind: 'disk-full', lecture: lecture.index, atOffsetMs: lecture.startOffsetMs + rng.int(EDGE_MARGIN_MS, lecture.durationMs - EDGE_MARGIN_MS - forMs), forMs });
  }
  return { options, lectures, events, spanMs };
}
