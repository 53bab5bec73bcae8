/**
 * Pure argv builders and parsers for two-pass loudness normalisation. Pass one measures with
 * ffmpeg's EBU R128 meter (`ebur128`); pass two is a plain gain in the audio rendition's encode
 * whenever that keeps the true peak under the limit, and `loudnorm` only when it would not.
 *
 * Why not `loudnorm` for both passes: loudnorm works at 192 kHz in both of them, even when all
 * it ends up applying is one constant gain. For a 10-minute lecture that was 17 s of measuring
 * against 3 s with ebur128, and the encode with loudnorm took twice the CPU of one with `volume`.
 * After Stop this audio work is what the teacher's lecture waits for.
 */

/** Lecture speech for web and mobile players: -16 LUFS integrated (EBU R128 broadcast is -23). */
export const LOUDNESS_TARGET = { integratedLufs: -16, truePeakDbtp: -1.5, lra: 11 } as const;

export function buildLoudnessMeasureArgs(concatListPath: string): string[] {
  return [
    '-hide_banner', '-nostats',
    // The summary is printed at info level; framelog=verbose keeps the ten lines a second of
    // running values out of it. The progress pipe is unused but keeps the runner's parser fed.
    '-loglevel', 'info', '-progress', 'pipe:1', '-stats_period', '1',
    '-f', 'concat', '-safe', '0', '-i', concatListPath,
    '-vn', '-map', '0:a:0',
    '-af', 'ebur128=peak=true:framelog=verbose',
    '-f', 'null', '-',
  ];
}

/** What pass one measured. */
export interface LoudnessMeasurement {
  inputIntegratedLufs: number;
  /** True peak (4x oversampled), dBTP. */
  inputTruePeakDbtp: number;
  inputLra: number;
  /** The relative gate of the integrated measurement (integrated - 10 LU). */
  inputThresholdLufs: number;
}

/**
 * Reads the ebur128 summary from the end of stderr:
 *
 *     Integrated loudness:
 *       I:         -20.1 LUFS
 *       Threshold: -30.4 LUFS
 *     Loudness range:
 *       LRA:         0.0 LU
 *     ...
 *     True peak:
 *       Peak:       -5.4 dBFS
 *
 * Returns undefined when the summary is missing or incomplete, or for digital silence (the meter
 * reports -inf or -70), where no gain could make the recording audible.
 */
export function parseEbur128Summary(stderrLines: readonly string[]): LoudnessMeasurement | undefined {
  const start = stderrLines.findLastIndex((l) => l.includes('Summary:'));
  if (start < 0) return undefined;
  const summary = stderrLines.slice(start);
  const valueAfter = (heading: string, key: string): number => {
    const from = summary.findIndex((l) => l.trim().startsWith(heading));
    if (from < 0) return Number.NaN;
    const line = summary.slice(from + 1).find((l) => l.trim().startsWith(`${key}:`));
    const m = line ? /:\s*(-?(?:\d+(?:\.\d+)?|inf))\s/.exec(`${line} `) : null;
    return m?.[1] === undefined ? Number.NaN : Number(m[1].replace('inf', 'Infinity'));
  };
  const m: LoudnessMeasurement = {
    inputIntegratedLufs: valueAfter('Integrated loudness:', 'I'),
    inputThresholdLufs: valueAfter('Integrated loudness:', 'Threshold'),
    inputLra: valueAfter('Loudness range:', 'LRA'),
    inputTruePeakDbtp: valueAfter('True peak:', 'Peak'),
  };
  return Object.values(m).every(Number.isFinite) ? m : undefined;
}

/** The gain (dB) that brings the measured programme to the target, and whether the peak allows it. */
export function loudnessGain(m: LoudnessMeasurement): { gainDb: number; linear: boolean } {
  const gainDb = Math.round((LOUDNESS_TARGET.integratedLufs - m.inputIntegratedLufs) * 100) / 100;
  return { gainDb, linear: m.inputTruePeakDbtp + gainDb <= LOUDNESS_TARGET.truePeakDbtp };
}

/**
 * The audio filter of pass two. A linear gain is `volume` alone; when that would push the true
 * peak over the limit, loudnorm compresses with the measurement (and outputs 192 kHz, hence the
 * resample back to 48 kHz).
 */
export function loudnessSecondPassFilter(m: LoudnessMeasurement): string {
  const { gainDb, linear } = loudnessGain(m);
  if (linear) return `volume=${gainDb}dB`;
  const { integratedLufs, truePeakDbtp, lra } = LOUDNESS_TARGET;
  return (
    `loudnorm=I=${integratedLufs}:TP=${truePeakDbtp}:LRA=${lra}` +
    `:measured_I=${m.inputIntegratedLufs}:measured_TP=${m.inputTruePeakDbtp}:measured_LRA=${m.inputLra}` +
    `:measured_thresh=${m.inputThresholdLufs}:linear=false,aresample=48000`
  );
}
