import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { LECTERN_BIN, ROOT } from '../helpers/cli.js';

/**
 * `bin/lectern` started by its first line, as the systemd unit's ExecStart and a shell start it
 * (the other tests run `node bin/lectern`, which skips that line). A module preloaded through
 * NODE_OPTIONS reports what the process was started with, and what its children would inherit.
 */
describe('bin/lectern started as the service starts it', () => {
  it('runs Node with the memory settings of a long-running daemon, and gives its children glibc defaults', async () => {
    const probe = [
      "const seen = { execArgv: process.execArgv, tunablesAtStart: process.env.GLIBC_TUNABLES ?? null };",
      "process.on('exit', () => process.stderr.write('PROBE ' + JSON.stringify({ ...seen, tunablesForChildren: process.env.GLIBC_TUNABLES ?? null }) + '\\n'));",
    ].join('');
    const env: NodeJS.ProcessEnv = { ...process.env, NODE_OPTIONS: `--import=data:text/javascript,${encodeURIComponent(probe)}` };
    delete env.GLIBC_TUNABLES;
    const child = spawn(LECTERN_BIN, ['--version'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(code, err).toBe(0);
    expect(out.trim()).toMatch(/^\d+\.\d+\.\d+/);
    const line = err.split('\n').find((l) => l.startsWith('PROBE '));
    expect(line, err).toBeDefined();
    const seen = JSON.parse((line as string).slice('PROBE '.length)) as { execArgv: string[]; tunablesAtStart: string | null; tunablesForChildren: string | null };
    // V8 keeps its heap compact (the chaos run's RSS check rests on it).
    expect(seen.execArgv).toContain('--optimize-for-size');
    // glibc's malloc thresholds are fixed for the daemon ...
    expect(seen.tunablesAtStart).toBe('glibc.malloc.mmap_threshold=131072:glibc.malloc.trim_threshold=131072');
    // ... and taken out of the environment that ffmpeg and other children inherit.
    expect(seen.tunablesForChildren).toBeNull();
  });
});
