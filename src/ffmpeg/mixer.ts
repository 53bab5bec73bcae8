import { spawn } from 'node:child_process';

/**
 * The capture gain of a local microphone, set through the ALSA mixer with `amixer` (Debian's
 * alsa-utils). It lives here because only ffmpeg/ spawns processes. The argv builder is pure and
 * tested as data; the runner never throws: a PC without amixer or without the card still records,
 * so the caller turns a failure into one warning.
 */

export interface GainSetting {
  /** The card's stable id (`USB` of `plughw:CARD=USB,DEV=0`), never its number. */
  cardId: string;
  /** The mixer control that sets the capture level: `Capture` on most cards, `Mic` on many USB microphones. */
  control: string;
  percent: number;
}

export type GainResult = { ok: true } | { ok: false; reason: string };

/**
 * The card id of an ALSA device name (`plughw:CARD=USB,DEV=0` -> `USB`), or undefined for a name
 * without one (`default`, or a PCM defined in asound.conf): the mixer of those is not known.
 */
export function alsaCardId(device: string): string | undefined {
  return /(?:^|[:,])CARD=([A-Za-z0-9_-]+)/.exec(device)?.[1];
}

/**
 * `amixer -q -D hw:CARD=USB sset Capture 80% cap`: the level, and `cap` turns capture on, since a
 * capture switch left off is a microphone that records silence at any level.
 */
export function buildGainArgs(setting: GainSetting): string[] {
  return ['-q', '-D', `hw:CARD=${setting.cardId}`, 'sset', setting.control, `${Math.round(setting.percent)}%`, 'cap'];
}

const DEFAULT_TIMEOUT_MS = 5_000;
const MAX_OUTPUT_CHARS = 4_096;

/** Runs amixer once; resolves with why it failed instead of rejecting. */
export function setCaptureGain(setting: GainSetting, opts: { command?: string; timeoutMs?: number } = {}): Promise<GainResult> {
  const command = opts.command ?? 'amixer';
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  return new Promise((resolve) => {
    const child = spawn(command, buildGainArgs(setting), { shell: false, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      if (stderr.length < MAX_OUTPUT_CHARS) stderr += d;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      resolve({
        ok: false,
        reason: err.code === 'ENOENT' ? `${command} is not installed (Debian package alsa-utils)` : `${command} could not be started: ${err.message}`,
      });
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) {
        resolve({ ok: true });
        return;
      }
      const detail = stderr.split('\n').map((l) => l.trim()).filter(Boolean).slice(0, 2).join('; ');
      const how = signal !== null ? `was stopped after ${timeoutMs} ms` : `exited with code ${code}`;
      resolve({ ok: false, reason: `${command} ${buildGainArgs(setting).slice(1).join(' ')} ${how}${detail ? `: ${detail}` : ''}` });
    });
  });
}
