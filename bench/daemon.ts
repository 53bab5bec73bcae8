/**
 * Daemon footprint benchmark (issue: the daemon in the room). In one run:
 *   1. `lectern daemon` on the built-in defaults (synthetic camera, folder store, API on a free
 *      port), idle for N minutes: its RSS (VmRSS of the process) sampled each minute; target at
 *      10 minutes <= 80 MB;
 *   2. `lectern status` against that running daemon, against `node -e 0` (the floor any Node CLI
 *      pays), alternating, medians; target <= 3x.
 *
 * Run: npm run bench:daemon [-- --minutes 10 --runs 15]
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { sleep, waitFor } from '../src/util/sleep.js';

function numberArg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
}
const MINUTES = numberArg('minutes', 10);
const RUNS = numberArg('runs', 15);
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const BIN = path.join(ROOT, 'bin', 'lectern');
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

function rssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/^VmRSS:\s+(\d+) kB$/m.exec(status)?.[1] ?? NaN);
  return kb / 1024;
}

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as { port: number }).port;
      server.close(() => resolve(port));
    });
  });
}

function timedMs(cmd: string, args: string[], env: NodeJS.ProcessEnv): number {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { env, stdio: 'ignore' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited with ${r.status}`);
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lectern-bench-daemon-'));
  const port = await freePort();
  const config = path.join(dir, 'config.yaml');
  writeFileSync(config, `agent:\n  dataDir: ${dir}/data\napi:\n  port: ${port}\n`);
  const env = { ...process.env, LECTERN_CONFIG: config };
  // Started by bin/lectern's first line, as the systemd unit starts it (its Node flags and malloc
  // settings are part of the footprint); `node bin/lectern` would skip them.
  const daemon = spawn(BIN, ['daemon'], { env, stdio: ['ignore', 'ignore', 'inherit'] });
  try {
    const pid = daemon.pid ?? 0;
    await waitFor(() => (spawnSync(BIN, ['status'], { env, stdio: 'ignore' }).status === 0 ? true : undefined), { timeoutMs: 60_000, intervalMs: 500, what: 'the daemon to answer' });
    console.log(`daemon bench: lectern daemon pid ${pid} on the built-in defaults, ${MINUTES} min idle, ${RUNS} CLI runs each; ${os.cpus().length} cores, Node ${process.version}`);
    const samples: number[] = [rssMiB(pid)];
    console.log(`RSS at start: ${samples[0]?.toFixed(1)} MiB`);
    for (let m = 1; m <= MINUTES; m++) {
      // The idle time is the measurement itself.
      await sleep(60_000);
      samples.push(rssMiB(pid));
      console.log(`RSS after ${m} min: ${samples.at(-1)?.toFixed(1)} MiB`);
    }
    const node: number[] = [];
    const status: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      node.push(timedMs(process.execPath, ['-e', '0'], env));
      status.push(timedMs(BIN, ['status'], env));
    }
    const n = median(node);
    const s = median(status);
    console.log(`idle RSS after ${MINUTES} min: ${samples.at(-1)?.toFixed(1)} MiB (target <= 80 MB); growth over the run ${((samples.at(-1) ?? 0) - (samples[0] ?? 0)).toFixed(1)} MiB`);
    console.log(`CLI start-up: lectern status ${s.toFixed(0)} ms, node -e 0 ${n.toFixed(0)} ms, ratio ${(s / n).toFixed(2)} (target <= 3)`);
  } finally {
    daemon.kill('SIGTERM');
    await new Promise((r) => daemon.once('exit', r));
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
