import { createWriteStream, readFileSync, type WriteStream } from 'node:fs';
import path from 'node:path';
import { sleep, waitFor } from '../../src/util/sleep.js';
import { killGroup, type CliRun } from '../helpers/cli.js';
import { startLectern } from './lectern.js';

/**
 * `lectern daemon` as systemd runs it (systemd/lectern.service: Restart=always, RestartSec=2s):
 * every exit, asked for or not, is followed by a new start after the restart delay. Each run's
 * output goes to its own log file, so a loss can be traced to the lines of the run that caused it.
 * The RSS of the running daemon is sampled from /proc for the report.
 */

export interface SupervisorOptions {
  configFile: string;
  cwd: string;
  env: NodeJS.ProcessEnv;
  logDir: string;
  apiPort: number;
  restartDelayMs: number;
  rssIntervalMs: number;
  /** How long a start may take until the API answers. */
  startTimeoutMs: number;
  /** What the daemon is doing at each RSS sample (e.g. "busy" while it packages or publishes). */
  rssTag?: () => string;
  /** How often the daemon's memory gauges are read from its /metrics (what its RSS is made of); 0: never. */
  metricsIntervalMs?: number;
}

export interface DaemonRun {
  n: number;
  pid: number;
  startedAtMs: number;
  /** When the API first answered. */
  readyAtMs?: number;
  exitedAtMs?: number;
  exit?: { code: number | null; signal: NodeJS.Signals | null };
  /** Killed by the harness (a chaos event), as opposed to an exit nobody asked for. */
  killedBy?: string;
  logFile: string;
  /** VmRSS samples in KiB, in order. */
  rssKiB: number[];
  /** The same samples with their time and rssTag's answer (and the anonymous and file-backed parts, KiB). */
  rssSamples: Array<{ atMs: number; kib: number; tag: string; anonKiB?: number; fileKiB?: number }>;
  /** The daemon's process_* and nodejs_* gauges from /metrics, by name with labels, in bytes. */
  memorySamples: Array<{ atMs: number; tag: string; gauges: Record<string, number> }>;
}

export interface KillRecord {
  what: string;
  killedAtMs: number;
  /** When the next run's API answered: the outage the kill caused. */
  backAtMs?: number;
}

export class DaemonSupervisor {
  readonly #o: SupervisorOptions;
  readonly runs: DaemonRun[] = [];
  readonly kills: KillRecord[] = [];
  #current: { run: DaemonRun; cli: CliRun; log: WriteStream; ready: Promise<void> } | undefined;
  #stopping = false;
  #busy: Promise<void> = Promise.resolve();
  #rssTimer: NodeJS.Timeout | undefined;
  #metricsTimer: NodeJS.Timeout | undefined;

  constructor(options: SupervisorOptions) {
    this.#o = options;
  }

  async start(): Promise<void> {
    this.#spawn();
    await this.ready();
    this.#rssTimer = setInterval(() => this.#sampleRss(), this.#o.rssIntervalMs);
    if (this.#o.metricsIntervalMs) this.#metricsTimer = setInterval(() => void this.#sampleMetrics(), this.#o.metricsIntervalMs);
  }

  /** Resolves once the current run's API answers (after a restart, the new run's). */
  async ready(): Promise<void> {
    for (;;) {
      const current = this.#current;
      if (!current) throw new Error('the daemon is not running');
      await current.ready;
      if (this.#current === current && current.run.exit === undefined) return;
      // It exited: wait for the restart (systemd's delay, then a new run) and its API.
      await waitFor(() => (this.#current !== current ? true : undefined), {
        timeoutMs: this.#o.restartDelayMs + this.#o.startTimeoutMs,
        intervalMs: 50,
        what: `the restart after daemon run ${current.run.n}`,
      });
    }
  }

  get pid(): number | undefined {
    return this.#current?.run.pid;
  }

  /**
   * kill -9 of the daemon's process group, as in a crash; the restart follows as under systemd.
   * `clear` is awaited right before the kill (after an earlier kill's restart): what must not be
   * interrupted, such as a teacher's press.
   */
  kill(what: string, clear?: () => Promise<void>): Promise<KillRecord> {
    const step = this.#busy.then(async () => {
      await this.ready();
      if (clear) {
        await clear();
        await this.ready();
      }
      const current = this.#current;
      if (!current) throw new Error('the daemon is not running');
      const record: KillRecord = { what, killedAtMs: Date.now() };
      current.run.killedBy = what;
      this.kills.push(record);
      killGroup(current.cli);
      await current.cli.exit;
      await this.ready();
      record.backAtMs = this.#current?.run.readyAtMs;
      return record;
    });
    this.#busy = step.then(
      () => undefined,
      () => undefined,
    );
    return step;
  }

  /** SIGTERM, as `systemctl stop`: the daemon stops cleanly, and is not restarted. */
  async stop(): Promise<void> {
    this.#stopping = true;
    await this.#busy;
    if (this.#rssTimer) clearInterval(this.#rssTimer);
    if (this.#metricsTimer) clearInterval(this.#metricsTimer);
    const current = this.#current;
    if (!current || current.run.exit) return;
    current.cli.child.kill('SIGTERM');
    // systemd's TimeoutStopSec is 90 s; the recording stop ladder fits well inside.
    const timer = setTimeout(() => killGroup(current.cli), 90_000);
    await current.cli.exit;
    clearTimeout(timer);
  }

  /** Exits nobody asked for (a crash of the daemon itself), with their log tails. */
  unexpectedExits(): Array<{ run: DaemonRun; tail: string }> {
    return this.runs
      .filter((r) => r.exit !== undefined && r.killedBy === undefined && !(this.#stopping && r === this.runs[this.runs.length - 1]))
      .map((run) => ({ run, tail: readFileSync(run.logFile, 'utf8').trimEnd().split('\n').slice(-15).join('\n') }));
  }

  #spawn(): void {
    const n = this.runs.length + 1;
    const logFile = path.join(this.#o.logDir, `daemon-${String(n).padStart(2, '0')}.log`);
    const log = createWriteStream(logFile);
    const cli = startLectern(['--config', this.#o.configFile, 'daemon'], { cwd: this.#o.cwd, env: this.#o.env });
    const run: DaemonRun = { n, pid: cli.child.pid ?? -1, startedAtMs: Date.now(), logFile, rssKiB: [], rssSamples: [], memorySamples: [] };
    this.runs.push(run);
    cli.child.stdout?.on('data', (d: Buffer) => log.write(d));
    cli.child.stderr?.on('data', (d: Buffer) => log.write(d));
    const ready = waitFor(
      async () => {
        if (run.exit) throw new Error(`daemon run ${n} exited during start (${run.exit.code ?? run.exit.signal}): see ${logFile}`);
        const res = await fetch(`http://127.0.0.1:${this.#o.apiPort}/api/status`, { signal: AbortSignal.timeout(2_000) }).catch(() => undefined);
        if (res) await res.arrayBuffer();
        return res?.ok ? true : undefined;
      },
      { timeoutMs: this.#o.startTimeoutMs, intervalMs: 100, what: `daemon run ${n} to answer on its API` },
    ).then(() => {
      run.readyAtMs = Date.now();
    });
    // A start that fails is seen by whoever waits on ready(); never an unhandled rejection here.
    ready.catch(() => undefined);
    this.#current = { run, cli, log, ready };
    void cli.exit.then(async (exit) => {
      run.exit = exit;
      run.exitedAtMs = Date.now();
      log.end();
      if (this.#stopping && run.killedBy === undefined) return;
      await sleep(this.#o.restartDelayMs);
      if (this.#stopping && run.killedBy === undefined) return;
      this.#spawn();
    });
  }

  #sampleRss(): void {
    const current = this.#current;
    if (!current || current.run.exit) return;
    try {
      const status = readFileSync(`/proc/${current.run.pid}/status`, 'utf8');
      const match = /^VmRSS:\s+(\d+) kB/m.exec(status);
      if (match) {
        const kib = Number(match[1]);
        const anon = /^RssAnon:\s+(\d+) kB/m.exec(status);
        const file = /^RssFile:\s+(\d+) kB/m.exec(status);
        current.run.rssKiB.push(kib);
        current.run.rssSamples.push({ atMs: Date.now(), kib, tag: this.#o.rssTag?.() ?? '', ...(anon ? { anonKiB: Number(anon[1]) } : {}), ...(file ? { fileKiB: Number(file[1]) } : {}) });
      }
    } catch {
      // The process ended between the check and the read; its exit handler takes over.
    }
  }

  async #sampleMetrics(): Promise<void> {
    const current = this.#current;
    if (!current || current.run.exit || current.run.readyAtMs === undefined) return;
    const atMs = Date.now();
    const tag = this.#o.rssTag?.() ?? '';
    try {
      const res = await fetch(`http://127.0.0.1:${this.#o.apiPort}/metrics`, { signal: AbortSignal.timeout(2_000) });
      const text = await res.text();
      if (!res.ok) return;
      const gauges: Record<string, number> = {};
      for (const line of text.split('\n')) {
        const m = /^((?:process|nodejs)_[a-z_]+(?:\{[^}]*\})?) (\S+)$/.exec(line);
        if (m) gauges[m[1] as string] = Number(m[2]);
      }
      current.run.memorySamples.push({ atMs, tag, gauges });
    } catch {
      // Killed or restarting: a missing sample is fine, the RSS samples carry on.
    }
  }
}
