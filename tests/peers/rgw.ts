import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { waitFor } from '../../src/util/sleep.js';

/**
 * A real S3 server for the tests: a single-node Ceph cluster (one monitor, one OSD keeping its
 * data in memory, one RADOS Gateway) on 127.0.0.1 with free ports, in a temp dir, following
 * TESTING.md ("An S3 server: Ceph RADOS Gateway"). Starting it takes about 15 s; start it once
 * per test file (beforeAll) and always stop() it (afterAll).
 *
 * Needs the Debian packages in scripts/test-peers/s3.apt.
 *
 * The daemons run in the foreground (-f) as our children rather than forking themselves: we know
 * their pids from the first moment, notice at once when one dies during start, and reap them, so
 * nothing is left behind even when a start fails half-way.
 */

export interface RgwPeer {
  /** http://127.0.0.1:PORT */
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
  region: string;
  /** How long the start took, for reports. */
  startMs: number;
  /** Kills the daemons and removes the temp dir. Safe to call twice. */
  stop(): Promise<void>;
}

const REGION = 'us-east-1';
const COMMAND_TIMEOUT_MS = 30_000;
const STOP_GRACE_MS = 10_000;

interface Daemon {
  name: string;
  child: ChildProcess;
  exited: Promise<void>;
  stderr: () => string;
}

/** A port free on 127.0.0.1 right now (the kernel picks it). */
async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => (port > 0 ? resolve(port) : reject(new Error('no free port'))));
    });
  });
}

function cephConf(dir: string, fsid: string, monPort: number, rgwPort: number): string {
  return [
    '[global]',
    `fsid = ${fsid}`,
    `mon host = v1:127.0.0.1:${monPort}`,
    'mon initial members = a',
    'public addr = 127.0.0.1',
    'auth cluster required = none',
    'auth service required = none',
    'auth client required = none',
    'osd pool default size = 1',
    'osd pool default min size = 1',
    'osd pool default pg num = 8',
    'osd pool default pgp num = 8',
    'mon allow pool size one = true',
    'mon warn on pool no redundancy = false',
    'mon max pg per osd = 1000',
    // A test machine's disk may be fuller than a monitor likes; it must not shut down over it.
    'mon data avail crit = 1',
    'osd crush chooseleaf type = 0',
    `run dir = ${dir}/run`,
    `pid file = ${dir}/run/$name.pid`,
    // $pid: the short-lived `ceph` and `radosgw-admin` clients must not fight over one socket.
    `admin socket = ${dir}/run/$name.$pid.asok`,
    `log file = ${dir}/log/$name.log`,
    '[mon.a]',
    `mon data = ${dir}/mon`,
    '[osd.0]',
    `osd data = ${dir}/osd`,
    'osd objectstore = memstore',
    // A plain number: a unit such as "4 GiB" is silently ignored and 1 GiB stays.
    'memstore device bytes = 4294967296',
    // Placed in the CRUSH map by the OSD itself at boot (it knows its uuid, see start below).
    'crush location = root=default host=localhost',
    '[client.rgw]',
    `rgw frontends = beast endpoint=127.0.0.1:${rgwPort}`,
    `rgw data = ${dir}/rgw`,
    // Give up (and exit, which start() notices) long before the 5-minute default.
    'rgw init timeout = 60',
    '',
  ].join('\n');
}

/** Runs a one-shot tool; rejects with its output when it fails or outlives the timeout. */
function run(cmd: string, args: string[], timeoutMs = COMMAND_TIMEOUT_MS): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 4 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(' ')} failed: ${err.message}\n${stderr.slice(-2000)}${stdout.slice(-1000)}`));
      else resolve(stdout);
    });
  });
}

function startDaemon(name: string, cmd: string, args: string[]): Daemon {
  const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr?.on('data', (d: Buffer) => {
    err = (err + d.toString()).slice(-4000);
  });
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
  child.once('error', (e) => (err += `\n${e.message}`));
  return { name, child, exited, stderr: () => err };
}

function isRunning(d: Daemon): boolean {
  return d.child.exitCode === null && d.child.signalCode === null && d.child.pid !== undefined;
}

async function stopDaemon(d: Daemon): Promise<void> {
  if (!isRunning(d)) return;
  d.child.kill('SIGTERM');
  const timer = setTimeout(() => d.child.kill('SIGKILL'), STOP_GRACE_MS);
  try {
    await d.exited;
  } finally {
    clearTimeout(timer);
  }
}

function tail(file: string, lines: number): string {
  if (!existsSync(file)) return '(no log)';
  return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
}

/** The randomly generated keys: letters and digits, as RGW generates them itself. */
function randomKey(chars: number): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  return [...randomBytes(chars)].map((b) => alphabet[b % alphabet.length]).join('');
}

/**
 * Starts the gateway, trying up to three times. The ports are free when chosen but bound only
 * later by the daemons, so another cluster starting on this machine at the same moment (a second
 * test run) can take one in between; the OSD then registers with the wrong monitor ("wrong
 * fsid"). A fresh directory and fresh ports make the next attempt independent.
 */
export async function startRgw(opts: { deadlineMs?: number } = {}): Promise<RgwPeer> {
  let lastError: unknown;
  for (let attempt = 1; attempt <= 3; attempt++) {
    try {
      return await startRgwOnce(opts);
    } catch (err) {
      lastError = err;
      console.warn(`RGW start attempt ${attempt} failed: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`);
    }
  }
  throw lastError;
}

async function startRgwOnce(opts: { deadlineMs?: number }): Promise<RgwPeer> {
  const tools = ['monmaptool', 'ceph-mon', 'ceph', 'ceph-osd', 'radosgw', 'radosgw-admin'];
  const missing = tools.filter((t) => !existsSync(`/usr/bin/${t}`));
  if (missing.length > 0) {
    throw new Error(`the S3 test peer needs ${missing.join(', ')}: install the packages in scripts/test-peers/s3.apt (bash scripts/setup.sh --test)`);
  }
  const started = Date.now();
  const deadline = started + (opts.deadlineMs ?? 90_000);
  const left = (): number => Math.max(1_000, deadline - Date.now());
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lectern-rgw-'));
  for (const sub of ['mon', 'osd', 'rgw', 'run', 'log']) mkdirSync(path.join(dir, sub));
  const conf = path.join(dir, 'ceph.conf');
  const daemons: Daemon[] = [];
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    // Gateway first (it is the client), then the OSD, then the monitor.
    for (const d of [...daemons].reverse()) await stopDaemon(d);
    rmSync(dir, { recursive: true, force: true });
  };

  const failure = (what: string, cause?: unknown): Error => {
    const logs = ['mon.a', 'osd.0', 'client.rgw']
      .map((n) => `--- ${n}.log (last lines)\n${tail(path.join(dir, 'log', `${n}.log`), 15)}`)
      .join('\n');
    const dead = daemons.filter((d) => !isRunning(d)).map((d) => `${d.name} exited (${d.child.exitCode ?? d.child.signalCode}): ${d.stderr().slice(-800)}`);
    const reason = cause instanceof Error ? cause.message : cause === undefined ? '' : String(cause);
    return new Error(`the Ceph RADOS Gateway did not start: ${what}${reason ? `: ${reason}` : ''}\n${dead.join('\n')}\n${logs}`);
  };

  try {
    const [monPort, rgwPort] = [await freePort(), await freePort()];
    const fsid = randomUUID();
    const osdUuid = randomUUID();
    writeFileSync(conf, cephConf(dir, fsid, monPort, rgwPort));
    const c = ['-c', conf];

    const monmap = path.join(dir, 'monmap');
    // A monitor port other than 6789 needs --addv with an explicit v1 address.
    await run('monmaptool', ['--create', '--clobber', '--addv', 'a', `[v1:127.0.0.1:${monPort}]`, '--fsid', fsid, monmap]);
    await run('ceph-mon', [...c, '--mkfs', '-i', 'a', '--monmap', monmap]);
    daemons.push(startDaemon('ceph-mon', 'ceph-mon', [...c, '-f', '-i', 'a']));

    // The OSD must be created with the uuid it is made with; otherwise the monitor refuses its
    // boot-time registration ("wrong fsid") and it never comes up.
    const timeoutSec = String(Math.ceil(Math.min(left(), COMMAND_TIMEOUT_MS) / 1000));
    await run('ceph', [...c, '--connect-timeout', timeoutSec, 'osd', 'create', osdUuid]);
    await run('ceph-osd', [...c, '-i', '0', '--mkfs', '--osd-uuid', osdUuid]);
    daemons.push(startDaemon('ceph-osd', 'ceph-osd', [...c, '-f', '-i', '0']));
    daemons.push(startDaemon('radosgw', 'radosgw', [...c, '-f', '-n', 'client.rgw']));

    // Health stays HEALTH_WARN (no mgr, msgr v1 only): never wait for HEALTH_OK. The gateway
    // opens its port once it has created its pools, which needs the OSD up.
    const endpoint = `http://127.0.0.1:${rgwPort}`;
    await waitFor(
      async () => {
        const dead = daemons.find((d) => !isRunning(d));
        if (dead) throw failure(`${dead.name} exited during start`);
        try {
          const res = await fetch(`${endpoint}/`, { signal: AbortSignal.timeout(2_000) });
          await res.arrayBuffer();
          return true;
        } catch {
          return undefined;
        }
      },
      { timeoutMs: left(), intervalMs: 200, what: `the gateway to answer on ${endpoint}` },
    );

    const accessKeyId = randomKey(20).toUpperCase();
    const secretAccessKey = randomKey(40);
    await run('radosgw-admin', [...c, 'user', 'create', '--uid=lectern-test', '--display-name=lectern test', `--access-key=${accessKeyId}`, `--secret=${secretAccessKey}`]);
    return { endpoint, accessKeyId, secretAccessKey, region: REGION, startMs: Date.now() - started, stop };
  } catch (err) {
    const error = err instanceof Error && err.message.startsWith('the Ceph RADOS Gateway did not start') ? err : failure('a start step failed', err);
    await stop();
    throw error;
  }
}
