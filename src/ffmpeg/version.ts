import { spawn } from 'node:child_process';
import { LecternError } from '../util/errors.js';

/**
 * `ffmpeg -version` / `ffprobe -version`, for `lectern doctor` and the heartbeat: which build
 * records this room matters when a camera's stream only breaks on one ffmpeg release.
 */

export interface ToolVersion {
  /** e.g. '5.1.9-0+deb12u1' (Debian) or 'n7.1' (a git build). */
  version: string;
  /** The whole first line, e.g. 'ffmpeg version 5.1.9-0+deb12u1 Copyright (c) ...'. */
  banner: string;
}

const MAX_OUTPUT_CHARS = 64 * 1024;

/** Throws FFMPEG_NOT_FOUND when the tool is missing, FFMPEG_FAILED when it does not answer as ffmpeg does. */
export function toolVersion(command: 'ffmpeg' | 'ffprobe' | (string & {}), opts: { timeoutMs?: number } = {}): Promise<ToolVersion> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  return new Promise((resolve, reject) => {
    const child = spawn(command, ['-version'], { shell: false, stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      if (out.length < MAX_OUTPUT_CHARS) out += d;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(
        err.code === 'ENOENT'
          ? new LecternError('FFMPEG_NOT_FOUND', `${command} is not installed or not on PATH`, { cause: err, details: { command } })
          : new LecternError('FFMPEG_FAILED', `${command} could not be started: ${err.message}`, { cause: err, details: { command } }),
      );
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const banner = out.split('\n', 1)[0]?.trim() ?? '';
      const match = /^\S+ version (\S+)/.exec(banner);
      if (code === 0 && match) {
        resolve({ version: match[1] as string, banner });
        return;
      }
      const how = signal !== null ? `was killed by ${signal} (no answer within ${timeoutMs} ms?)` : `exited with code ${code}`;
      reject(new LecternError('FFMPEG_FAILED', `${command} -version ${code === 0 ? `printed no version line` : how}`, { details: { command, code, signal } }));
    });
  });
}
