import { buildLoudnessMeasureArgs, LOUDNESS_TARGET, loudnessGain, loudnessSecondPassFilter, parseEbur128Summary } from '../ffmpeg/loudnessArgs.js';
import { runFfmpeg } from '../ffmpeg/run.js';
import type { Logger } from '../log/logger.js';
import type { ManifestLoudness } from './manifest.js';

// Silence measures around -70 LUFS or lower; amplifying it would only raise the noise floor.
const SILENCE_LUFS = -60;

/**
 * Pass one of the loudness normalisation: measure the whole recording's audio (EBU R128). Pass
 * two is a linear gain in the audio rendition's encode, so speech ends at -16 LUFS whether the room's
 * mic was quiet or loud, without pumping.
 */
export async function measureLoudness(opts: {
  concatPath: string;
  lectureId: string;
  logger: Logger;
  niceness: number;
  signal?: AbortSignal;
}): Promise<{ filter?: string; manifest: ManifestLoudness }> {
  const exit = await runFfmpeg({
    args: buildLoudnessMeasureArgs(opts.concatPath),
    label: `loudness ${opts.lectureId}`,
    logger: opts.logger,
    niceness: opts.niceness,
    ...(opts.signal ? { signal: opts.signal } : {}),
  });
  const m = parseEbur128Summary(exit.stderrTail);
  const target = LOUDNESS_TARGET.integratedLufs;
  if (!m || m.inputIntegratedLufs < SILENCE_LUFS) {
    opts.logger.warn(`lecture ${opts.lectureId}: the audio is silent or could not be measured; it is packaged without loudness normalisation`);
    return {
      manifest: { targetLufs: target, normalization: 'none', inputIntegratedLufs: m?.inputIntegratedLufs ?? null, inputTruePeakDbtp: m?.inputTruePeakDbtp ?? null, inputLra: m?.inputLra ?? null },
    };
  }
  // One gain for the whole lecture, unless it would push the true peak over the limit: then loudnorm compresses.
  const { linear } = loudnessGain(m);
  return {
    filter: loudnessSecondPassFilter(m),
    manifest: {
      targetLufs: target,
      normalization: linear ? 'linear' : 'dynamic',
      inputIntegratedLufs: m.inputIntegratedLufs,
      inputTruePeakDbtp: m.inputTruePeakDbtp,
      inputLra: m.inputLra,
    },
  };
}
