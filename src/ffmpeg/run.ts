import { LecternError } from '../util/errors.js';
import { FfmpegProcess } from './process.js';
import type { FfmpegExit, FfmpegProcessOptions } from './process.js';

/** Options for a one-shot ffmpeg job (transcode, poster, loudness pass). */
export interface RunFfmpegOptions extends FfmpegProcessOptions {
  /** Aborting runs the stop ladder; the call then rejects with the signal's reason. */
  signal?: AbortSignal;
}

// Enough of the tail to name the cause (ffmpeg's real error is usually in the last 1–3 lines).
const ERROR_TAIL_LINES = 5;

/**
 * Runs ffmpeg to completion. Resolves with the exit when it ended with code 0; otherwise rejects
 * with FFMPEG_FAILED (or FFMPEG_STALLED) naming the label, the exit and the redacted stderr tail.
 */
export async function runFfmpeg(options: RunFfmpegOptions): Promise<FfmpegExit> {
  const { signal, ...processOptions } = options;
  signal?.throwIfAborted();
  const proc = new FfmpegProcess(processOptions);
  const onAbort = (): void => {
    void proc.stop();
  };
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    await proc.start();
    // An abort between the check above and the listener taking effect must still stop it.
    if (signal?.aborted) void proc.stop();
    const exit = await proc.wait();
    // Even a clean exit after an abort is a cancelled job, not a finished output.
    signal?.throwIfAborted();
    if (exit.stalled) {
      throw new LecternError('FFMPEG_STALLED', `${options.label}: ffmpeg made no progress for ${options.stallTimeoutMs ?? 0} ms and was stopped${formatTail(exit)}`, {
        details: exitDetails(exit),
      });
    }
    if (exit.code !== 0) {
      const how = exit.signal !== null ? `was killed by ${exit.signal}` : `exited with code ${exit.code}`;
      throw new LecternError('FFMPEG_FAILED', `${options.label}: ffmpeg ${how}${formatTail(exit)}`, { details: exitDetails(exit) });
    }
    return exit;
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
}

function formatTail(exit: FfmpegExit): string {
  const tail = exit.stderrTail.slice(-ERROR_TAIL_LINES);
  return tail.length === 0 ? '' : `: ${tail.join(' | ')}`;
}

function exitDetails(exit: FfmpegExit): Record<string, unknown> {
  return { code: exit.code, signal: exit.signal, escalation: exit.escalation, durationMs: exit.durationMs };
}
