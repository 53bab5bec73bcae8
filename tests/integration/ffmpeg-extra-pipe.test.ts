import { describe, expect, it } from 'vitest';
import { EXTRA_PIPE_FD, FfmpegProcess } from '../../src/ffmpeg/process.js';
import { createMemoryLogger } from '../../src/log/logger.js';
import { waitFor } from '../../src/util/sleep.js';

// FfmpegProcess's extra pipe (fd 3): lines a filter prints arrive while ffmpeg runs, apart from
// -progress on stdout. Real ffmpeg; a node one-liner stands in where exact bytes matter.

describe('FfmpegProcess extra pipe', () => {
  it('hands over the lines ffmpeg filters print to pipe:3 while it runs, and progress still works', async () => {
    const { logger } = createMemoryLogger();
    const levels: Array<{ atMs: number; line: string }> = [];
    let progressBlocks = 0;
    const proc = new FfmpegProcess({
      args: [
        '-hide_banner', '-nostats', '-loglevel', 'warning', '-progress', 'pipe:1', '-stats_period', '0.5',
        '-re', '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=16000',
        '-af', `asetnsamples=n=8000:p=0,astats=metadata=1:reset=1:measure_perchannel=none:measure_overall=RMS_level,ametadata=mode=print:key=lavfi.astats.Overall.RMS_level:file='pipe\\:${EXTRA_PIPE_FD}':direct=1`,
        '-f', 'null', '-',
      ],
      logger,
      label: 'extra pipe test',
      onProgress: () => progressBlocks++,
      onExtraLine: (line) => {
        if (line.startsWith('lavfi.astats')) levels.push({ atMs: Date.now(), line });
      },
    });
    await proc.start();
    // Two levels half a second apart, while ffmpeg still runs: the lines are not held back until exit.
    await waitFor(() => (levels.length >= 3 ? true : undefined), { timeoutMs: 10_000, what: 'three level lines' });
    expect(proc.status).toBe('running');
    const exit = await proc.stop();
    expect(exit.requested).toBe(true);
    expect(exit.code).toBe(0);
    expect(levels[0]?.line).toMatch(/^lavfi\.astats\.Overall\.RMS_level=-\d+\.\d+$/);
    expect((levels[2]?.atMs ?? 0) - (levels[0]?.atMs ?? 0)).toBeGreaterThan(600);
    expect(progressBlocks).toBeGreaterThan(0);
  });

  it('delivers a last line without its newline, and survives a listener that throws', async () => {
    const { logger, lines: logLines } = createMemoryLogger();
    const seen: string[] = [];
    const proc = new FfmpegProcess({
      command: process.execPath,
      args: ['-e', `const fs = require('fs'); fs.writeSync(${EXTRA_PIPE_FD}, 'one\\ntw'); setTimeout(() => fs.writeSync(${EXTRA_PIPE_FD}, 'o\\nthree'), 50);`],
      logger,
      label: 'extra pipe test',
      onExtraLine: (line) => {
        seen.push(line);
        if (line === 'one') throw new Error('listener bug');
      },
    });
    await proc.start();
    const exit = await proc.wait();
    expect(exit.code).toBe(0);
    expect(seen).toEqual(['one', 'two', 'three']);
    expect(logLines.some((l) => l.includes('extra pipe listener failed'))).toBe(true);
  });

  it('opens no fourth pipe without a listener', async () => {
    const { logger } = createMemoryLogger();
    const proc = new FfmpegProcess({
      // sh opens no descriptors of its own here (node would: its event loop takes fd 3).
      command: '/bin/sh',
      args: ['-c', `if ( : >&${EXTRA_PIPE_FD} ) 2>/dev/null; then exit 1; else exit 0; fi`],
      logger,
      label: 'extra pipe test',
    });
    await proc.start();
    expect((await proc.wait()).code).toBe(0);
  });
});
