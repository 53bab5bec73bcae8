import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '../log/logger.js';
import { sleep } from '../util/sleep.js';

/**
 * ffmpeg processes left behind by a daemon that was killed. Each ffmpeg runs in its own process
 * group (so a Ctrl-C reaches the stop ladder first), which also means `kill -9` of the daemon
 * outside systemd's cgroup cleanup leaves it running: still recording into an old run folder, or
 * still encoding into a package that will be rebuilt. They are found by a path in their argv,
 * which is unique to the run or package, so a recycled pid can never be mistaken for one.
 */
export async function findFfmpegProcesses(pathFragment: string, procDir = '/proc'): Promise<number[]> {
  let entries: string[];
  try {
    entries = await readdir(procDir);
  } catch {
    return []; // no /proc (not Linux): nothing to find
  }
  const pids: number[] = [];
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const argv = (await readFile(path.join(procDir, entry, 'cmdline'), 'utf8')).split('\0');
      if (path.basename(argv[0] ?? '') === 'ffmpeg' && argv.some((a) => a.includes(pathFragment))) pids.push(Number(entry));
    } catch {
      // The process exited while we looked, or is not ours to read.
    }
  }
  return pids;
}

/** SIGINT (ffmpeg then finishes its current segment), then SIGKILL after `graceMs`. */
export async function stopOrphans(pathFragment: string, opts: { logger: Logger; graceMs: number }): Promise<number> {
  const pids = await findFfmpegProcesses(pathFragment);
  if (pids.length === 0) return 0;
  opts.logger.warn(`stopping ${pids.length} ffmpeg process(es) left by a previous run`, { pids: pids.join(',') });
  const signal = (pid: number, sig: NodeJS.Signals): void => {
    try {
      process.kill(pid, sig);
    } catch {
      // Already exited.
    }
  };
  for (const pid of pids) signal(pid, 'SIGINT');
  const deadline = Date.now() + opts.graceMs;
  while (Date.now() < deadline && (await findFfmpegProcesses(pathFragment)).length > 0) await sleep(100);
  for (const pid of await findFfmpegProcesses(pathFragment)) signal(pid, 'SIGKILL');
  return pids.length;
}
