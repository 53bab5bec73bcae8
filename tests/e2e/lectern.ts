import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CliRun } from '../helpers/cli.js';

/**
 * Runs the built `lectern` CLI like tests/helpers/cli.ts does, but finds the repository from
 * either place this code runs: the source tree (vitest) or dist-bench/tests/e2e (compiled for
 * `npm run chaos`), where helpers/cli.ts's fixed '../..' would point into dist-bench.
 */

function findRepoRoot(from: string): string {
  for (let dir = from; ; dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, 'bin', 'lectern')) && existsSync(path.join(dir, 'package.json'))) return dir;
    if (path.dirname(dir) === dir) throw new Error(`no lectern checkout above ${from}`);
  }
}

export const REPO_ROOT = findRepoRoot(path.dirname(fileURLToPath(import.meta.url)));

/**
 * `lectern ...args` in its own process group (so a kill -9 can take the group, as a power cut),
 * started as systemd's ExecStart starts it: bin/lectern itself, through its `#!/usr/bin/env`
 * line (which sets the daemon's malloc tunables), with this node first on PATH as install.sh does.
 */
export function startLectern(args: string[], opts: { cwd: string; env: NodeJS.ProcessEnv }): CliRun {
  const child = spawn(path.join(REPO_ROOT, 'bin', 'lectern'), args, {
    cwd: opts.cwd,
    env: { ...process.env, ...opts.env, PATH: `${path.dirname(process.execPath)}${path.delimiter}${process.env.PATH ?? ''}` },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let out = '';
  let err = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('close', (code, signal) => resolve({ code, signal })));
  return { child, stdout: () => out, stderr: () => err, exit };
}

export async function runLectern(args: string[], opts: { cwd: string; env: NodeJS.ProcessEnv }): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const run = startLectern(args, opts);
  const { code } = await run.exit;
  return { code, stdout: run.stdout(), stderr: run.stderr() };
}
