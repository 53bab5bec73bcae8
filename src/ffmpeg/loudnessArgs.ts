/**
 * Pure argv builder for the first pass of two-pass loudness normalisation: decode the audio
 * only (cheap next to the video encode) and let loudnorm print its measurement as JSON.
 */

/** Lecture speech for web and mobile players: -16 LUFS integrated (EBU R128 broadcast is -23). */
export const LOUDNESS_TARGET = { integratedLufs: -16, truePeakDbtp: -1.5, lra: 11 } as const;

export function buildLoudnessMeasureArgs(concatListPath: string): string[] {
  const { integratedLufs, truePeakDbtp, lra } = LOUDNESS_TARGET;
  return [
    '-hide_banner', '-nostats',
    // loudnorm prints its JSON at info level; the progress pipe is unused but keeps the runner's parser fed.
    '-loglevel', 'info', '-progress', 'pipe:1', '-stats_period', '1',
    '-f', 'concat', '-safe', '0', '-i', concatListPath,
    '-vn', '-map', '0:a:0',
    '-af', `loudnorm=I=${integratedLufs}:TP=${truePeakDbtp}:LRA=${lra}:print_format=json`,
    '-f', 'null', '-',
  ];
}

/** What pass one measured, as loudnorm reports it. */
export interface LoudnessMeasurement {
  inputIntegratedLufs: number;
  inputTruePeakDbtp: number;
  inputLra: number;
  inputThresholdLufs: number;
  targetOffsetLu: number;
}

/** The audio filter of pass two: linear gain from the measurement, then back to 48 kHz (loudnorm outputs 192 kHz). */
export function loudnormSecondPassFilter(m: LoudnessMeasurement): string {
  const { integratedLufs, truePeakDbtp, lra } = LOUDNESS_TARGET;
  return (
    `loudnorm=I=${integratedLufs}:TP=${truePeakDbtp}:LRA=${lra}` +
    `:measured_I=${m.inputIntegratedLufs}:measured_TP=${m.inputTruePeakDbtp}:measured_LRA=${m.inputLra}` +
    `:measured_thresh=${m.inputThresholdLufs}:offset=${m.targetOffsetLu}:linear=true,aresample=48000`
  );
}

/**
 * Finds loudnorm's JSON block in stderr lines and reads the measurement. Returns undefined when
 * the block is missing or malformed, or for silence (loudnorm reports -inf), where no gain
 * could make the recording audible.
 */
export function parseLoudnormOutput(stderrLines: readonly string[]): LoudnessMeasurement | undefined {
  const text = stderrLines.join('\n');
  const start = text.lastIndexOf('{');
  const end = text.lastIndexOf('}');
  if (start < 0 || end < start) return undefined;
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(text.slice(start, end + 1)) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  const num = (key: string): number => Number(json[key]);
  const m: LoudnessMeasurement = {
    inputIntegratedLufs: num('input_i'),
    inputTruePeakDbtp: num('input_tp'),
    inputLra: num('input_lra'),
    inputThresholdLufs: num('input_thresh'),
    targetOffsetLu: num('target_offset'),
  };
  return Object.values(m).every(Number.isFinite) ? m : undefined;
}
