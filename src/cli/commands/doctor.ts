import { constants, promises as fs } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { Command } from 'commander';
import { timeSyncState } from '../../agent/systemd.js';
import { OnvifCamera } from '../../camera/index.js';
import { formatProblems, readSecret, type Config, type LoadedConfig, type SourceConfig } from '../../config/index.js';
import { toolVersion } from '../../ffmpeg/version.js';
import { createMemoryLogger, silentLogger } from '../../log/logger.js';
import { freeDiskBytes } from '../../storage/diskSpace.js';
import { describeError, isLecternError } from '../../util/errors.js';
import { redactUrl } from '../../util/redact.js';
import { formatBytes } from '../../util/units.js';
import type { CliIo } from '../io.js';

/**
 * `lectern doctor`: one line per thing a room needs, each OK, WARN or FAIL, for the person who
 * installs the PC or answers the phone when a room did not record. It only reads, except for one
 * small probe object written to the storage and deleted at once (the only proof that the
 * credentials may publish). Exit 0 without a FAIL, 2 when the configuration cannot be read, 3
 * otherwise.
 */

export type CheckLevel = 'ok' | 'warn' | 'fail';

export interface DoctorCheck {
  /** What was checked, e.g. 'ffmpeg', 'source front', 'storage'. */
  name: string;
  level: CheckLevel;
  message: string;
  details?: Record<string, unknown>;
}

export interface DoctorOptions {
  config: Config;
  env: NodeJS.ProcessEnv;
  /** How long one network check may take. Default 20 s. */
  timeoutMs?: number;
}

// A camera clock further off than this is wrong enough to fix (same bound the ONVIF client warns at).
const CAMERA_CLOCK_WARN_MS = 5 * 60_000;
// S3 signatures are refused beyond 15 minutes (RequestTimeTooSkewed); warn well before that.
const STORE_CLOCK_WARN_MS = 60_000;
const STORE_CLOCK_FAIL_MS = 15 * 60_000;
// Room for about one more 2-hour lecture from a 1080p camera (~30 MB a minute) above the floor.
const DISK_HEADROOM_BYTES = 4 * 1024 ** 3;
const DEFAULT_TIMEOUT_MS = 20_000;
const EXIT = { config: 2, runtime: 3 } as const;

export function registerDoctorCommand(program: Command, io: CliIo, load: () => LoadedConfig): void {
  program
    .command('doctor')
    .description('check ffmpeg, the cameras, the storage, free disk and the clock; one line each: OK, WARN or FAIL')
    .option('--json', 'print JSON')
    .option('--timeout-ms <ms>', 'how long each network check may take', String(DEFAULT_TIMEOUT_MS))
    .action(async (opts: { json?: boolean; timeoutMs: string }) => {
      const timeoutMs = Number(opts.timeoutMs);
      if (!Number.isInteger(timeoutMs) || timeoutMs < 100 || timeoutMs > 600_000) {
        io.err(`--timeout-ms must be a whole number of ms from 100 to 600000, got "${opts.timeoutMs}"`);
        process.exitCode = 1;
        return;
      }
      let loaded: LoadedConfig | undefined;
      let checks: DoctorCheck[];
      try {
        loaded = load();
        checks = await runDoctor({ config: loaded.config, env: process.env, timeoutMs });
      } catch (err) {
        if (!isLecternError(err, 'CONFIG_INVALID') && !isLecternError(err, 'CONFIG_UNREADABLE')) throw err;
        const problems = err.details.problems;
        const source = typeof err.details.source === 'string' ? err.details.source : 'configuration';
        const message = Array.isArray(problems) ? formatProblems(problems as string[], source) : err.message;
        checks = [{ name: 'configuration', level: 'fail', message }, ...(await Promise.all([checkTool('ffmpeg'), checkTool('ffprobe'), checkTimeSync(process.env)]))];
      }
      const fails = checks.filter((c) => c.level === 'fail').length;
      const warns = checks.filter((c) => c.level === 'warn').length;
      if (opts.json) {
        io.out(JSON.stringify({ ok: fails === 0, configuration: loaded?.source ?? null, checks }, null, 2));
      } else {
        if (loaded) io.out(`lectern doctor — configuration: ${loaded.source}`);
        for (const c of checks) io.out(`${c.level.toUpperCase().padEnd(4)}  ${c.name.padEnd(16)}  ${c.message.replaceAll('\n', '\n' + ' '.repeat(24))}`);
        io.out(fails + warns === 0 ? 'All checks passed.' : `${fails} failed, ${warns} warning${warns === 1 ? '' : 's'}.`);
      }
      if (fails > 0) process.exitCode = loaded ? EXIT.runtime : EXIT.config;
    });
}

/** Every check, run in parallel, listed in a fixed order. A check that throws is a FAIL. */
export async function runDoctor(opts: DoctorOptions): Promise<DoctorCheck[]> {
  const { config, env } = opts;
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const groups = await Promise.all([
    guard('ffmpeg', () => checkTool('ffmpeg')),
    guard('ffprobe', () => checkTool('ffprobe')),
    ...config.sources.map((s) => guard(`source ${s.name}`, () => checkSource(s, env, timeoutMs))),
    guard('storage', () => checkStorage(config, env, timeoutMs)),
    guard('disk', () => checkDisk(config)),
    guard('time sync', () => checkTimeSync(env)),
  ]);
  return groups.flat();
}

async function guard(name: string, run: () => Promise<DoctorCheck | DoctorCheck[]>): Promise<DoctorCheck[]> {
  try {
    const result = await run();
    return Array.isArray(result) ? result : [result];
  } catch (err) {
    return [{ name, level: 'fail', message: describeError(err) }];
  }
}

async function checkTool(command: 'ffmpeg' | 'ffprobe'): Promise<DoctorCheck> {
  try {
    const v = await toolVersion(command);
    return { name: command, level: 'ok', message: `${command} ${v.version}`, details: { version: v.version } };
  } catch (err) {
    const fix = isLecternError(err, 'FFMPEG_NOT_FOUND') ? ' (install it: apt-get install ffmpeg)' : '';
    return { name: command, level: 'fail', message: `${describeError(err)}${fix}` };
  }
}

// ---- cameras ----------------------------------------------------------------------------------

function formatSpan(abs: number): string {
  if (abs < 2000) return `${(abs / 1000).toFixed(1)} s`;
  if (abs < 120_000) return `${Math.round(abs / 1000)} s`;
  if (abs < 5_400_000) return `${Math.round(abs / 60_000)} min`;
  return `${(abs / 3_600_000).toFixed(1)} h`;
}

/** A camera's clock relative to this PC's. */
function describeOffset(ms: number): string {
  const abs = Math.abs(ms);
  return abs < 1000 ? `within ${formatSpan(abs)} of this PC` : `${formatSpan(abs)} ${ms > 0 ? 'ahead of' : 'behind'} this PC`;
}

function clockLevel(offsetMs: number | undefined): CheckLevel {
  return offsetMs !== undefined && Math.abs(offsetMs) > CAMERA_CLOCK_WARN_MS ? 'warn' : 'ok';
}

async function checkSource(source: SourceConfig, env: NodeJS.ProcessEnv, timeoutMs: number): Promise<DoctorCheck> {
  const name = `source ${source.name}`;
  switch (source.kind) {
    case 'synthetic':
      return { name, level: 'ok', message: `synthetic ${source.width}x${source.height} test pattern (no camera to reach)` };
    case 'v4l2':
      return (await fs.access(source.device).then(() => true, () => false))
        ? { name, level: 'ok', message: `video device ${source.device} is present` }
        : { name, level: 'fail', message: `video device ${source.device} does not exist (unplugged? ls /dev/v4l/by-id/ lists the connected ones)` };
    case 'rtsp': {
      const url = new URL(source.url);
      const reply = await rtspOptions(url, timeoutMs);
      const where = redactUrl(source.url);
      if (!reply.ok) return { name, level: 'fail', message: `${where}: ${reply.error}` };
      const auth = reply.status === 401 ? ', asks for credentials (they are checked when a recording starts)' : '';
      const clock = reply.clockOffsetMs === undefined ? 'clock not reported' : `clock ${describeOffset(reply.clockOffsetMs)}`;
      return {
        name,
        level: clockLevel(reply.clockOffsetMs),
        message: `${where} answers RTSP (${reply.status})${auth}; ${clock}`,
        details: { rtspStatus: reply.status, clockOffsetMs: reply.clockOffsetMs ?? null },
      };
    }
    case 'onvif': {
      const hasPassword = source.passwordFile !== undefined || source.passwordEnv !== undefined;
      const password = hasPassword ? readSecret({ file: source.passwordFile, env: source.passwordEnv }, { env, what: `the password of source ${source.name}` }) : undefined;
      const camera = new OnvifCamera({
        address: source.address,
        ...(source.username !== undefined ? { username: source.username } : {}),
        ...(password !== undefined ? { password } : {}),
        timeoutMs: source.timeoutMs,
        ...(source.profile !== undefined ? { profile: source.profile } : {}),
        name: source.name,
        logger: silentLogger,
      });
      const signal = AbortSignal.timeout(timeoutMs);
      try {
        await camera.connect(signal);
        const stream = await camera.streamUri(undefined, signal);
        const info = camera.deviceInfo();
        const offset = camera.clockOffsetMs();
        const level = clockLevel(offset);
        const fix = level === 'warn' ? ' (lectern signs with the camera\'s time; set up NTP on the camera)' : '';
        return {
          name,
          level,
          message: `${[info.manufacturer, info.model].filter(Boolean).join(' ') || 'ONVIF camera'} at ${camera.deviceUrl}, profile ${stream.profile.name}; clock ${describeOffset(offset)}${fix}`,
          details: { clockOffsetMs: offset, profile: stream.profile.token },
        };
      } catch (err) {
        return { name, level: 'fail', message: `${camera.deviceUrl}: ${describeError(err)}` };
      }
    }
  }
}

type RtspReply = { ok: true; status: number; clockOffsetMs?: number } | { ok: false; error: string };

/**
 * An RTSP OPTIONS request without credentials: proves the camera's RTSP server answers, and its
 * Date header (most cameras send one) gives its clock. rtsps:// is only connected to.
 */
function rtspOptions(url: URL, timeoutMs: number): Promise<RtspReply> {
  const tls = url.protocol === 'rtsps:';
  const port = url.port ? Number(url.port) : tls ? 322 : 554;
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const target = `rtsp://${url.host}${url.pathname}${url.search}`;
  return new Promise((resolve) => {
    const sentAtMs = Date.now();
    const socket = net.connect({ host, port });
    let buffer = '';
    const done = (reply: RtspReply): void => {
      socket.destroy();
      resolve(reply);
    };
    socket.setTimeout(timeoutMs, () => done({ ok: false, error: `no answer within ${timeoutMs} ms` }));
    socket.on('error', (err: NodeJS.ErrnoException) => done({ ok: false, error: `cannot connect to ${url.host} (${err.code ?? err.message})` }));
    socket.on('connect', () => {
      if (tls) done({ ok: true, status: 0 });
      else socket.write(`OPTIONS ${target} RTSP/1.0\r\nCSeq: 1\r\nUser-Agent: lectern-doctor\r\n\r\n`);
    });
    socket.setEncoding('latin1').on('data', (chunk: string) => {
      buffer += chunk;
      const end = buffer.indexOf('\r\n\r\n');
      if (end < 0) {
        if (buffer.length > 16 * 1024) done({ ok: false, error: 'the reply is not RTSP' });
        return;
      }
      const receivedAtMs = Date.now();
      const [statusLine = '', ...headers] = buffer.slice(0, end).split('\r\n');
      const status = /^RTSP\/1\.\d (\d{3})/.exec(statusLine);
      if (!status) {
        done({ ok: false, error: `the reply is not RTSP: ${JSON.stringify(statusLine.slice(0, 60))}` });
        return;
      }
      const date = headers.find((h) => /^date:/i.test(h))?.slice(5).trim();
      const cameraMs = date ? Date.parse(date) : Number.NaN;
      // Date has whole seconds, truncated: on average the camera's clock is half a second later.
      const clockOffsetMs = Number.isFinite(cameraMs) ? Math.round(cameraMs + 500 - (sentAtMs + receivedAtMs) / 2) : undefined;
      done({ ok: true, status: Number(status[1]), ...(clockOffsetMs !== undefined ? { clockOffsetMs } : {}) });
    });
    socket.on('end', () => done({ ok: false, error: `${url.host} closed the connection without an RTSP answer` }));
  });
}

// ---- storage ----------------------------------------------------------------------------------

async function checkStorage(config: Config, env: NodeJS.ProcessEnv, timeoutMs: number): Promise<DoctorCheck[]> {
  const storage = config.storage;
  if (storage.kind === 'file') return [await checkFolderStore(storage.root ?? path.join(config.agent.dataDir, 'store'))];
  const checks: DoctorCheck[] = [];
  const clock = storeClockCheck(storage.endpoint ?? `https://s3.${storage.region}.amazonaws.com`, timeoutMs);
  // The store's own warnings (e.g. "cannot reach the storage at start") are kept, not printed.
  const { logger } = createMemoryLogger('warn');
  // Loaded here, not at the top: the S3 client is heavy and most commands never need it.
  const { createStore } = await import('../../agent/store.js');
  const store = await createStore(config, { logger, env, defaultRoot: path.join(config.agent.dataDir, 'store') });
  try {
    const probeKey = [storage.prefix, 'agents', config.agent.id, 'doctor-probe.txt'].filter(Boolean).join('/');
    await withTimeout(
      (async () => {
        await store.start();
        await store.putBytes(probeKey, `lectern doctor ${new Date().toISOString()}\n`, { contentType: 'text/plain' });
        if (!(await store.head(probeKey))) throw new Error(`the probe object ${probeKey} was written but cannot be read back`);
        await store.delete(probeKey);
      })(),
      timeoutMs,
      `${store.description} did not answer within ${timeoutMs} ms`,
    );
    checks.push({ name: 'storage', level: 'ok', message: `${store.description}: credentials accepted; wrote, read and deleted ${probeKey}` });
  } catch (err) {
    checks.push({ name: 'storage', level: 'fail', message: `${store.description}: ${describeError(err)}` });
  } finally {
    await store.stop().catch(() => undefined);
  }
  checks.push(await clock);
  return checks;
}

/** A folder store must be a writable folder (or creatable by the agent at start). Nothing is left behind. */
async function checkFolderStore(root: string): Promise<DoctorCheck> {
  const name = 'storage';
  let existing = root;
  while (!(await exists(existing))) {
    const parent = path.dirname(existing);
    if (parent === existing) break;
    existing = parent;
  }
  const stat = await fs.stat(existing).catch(() => undefined);
  if (!stat?.isDirectory()) {
    return { name, level: 'fail', message: `folder ${root}: ${existing} is not a folder, so the store cannot be created there (fix storage.root)` };
  }
  try {
    await fs.access(existing, constants.W_OK | constants.X_OK);
  } catch {
    return { name, level: 'fail', message: `folder ${root}: ${existing} is not writable by ${userName()} (fix the owner or mode, or storage.root)` };
  }
  if (existing !== root) return { name, level: 'ok', message: `folder ${root} does not exist yet; the agent creates it in ${existing}, which is writable` };
  const probe = path.join(root, `.doctor-probe-${process.pid}.tmp-doctor`);
  try {
    await fs.writeFile(probe, 'lectern doctor\n', { flag: 'wx' });
  } catch (err) {
    return { name, level: 'fail', message: `folder ${root}: cannot write a file (${(err as NodeJS.ErrnoException).code ?? describeError(err)})` };
  } finally {
    await fs.rm(probe, { force: true });
  }
  return { name, level: 'ok', message: `folder ${root} is writable by ${userName()}` };
}

/** The storage server's clock from its Date header; S3 refuses signatures beyond 15 minutes of skew. */
async function storeClockCheck(endpoint: string, timeoutMs: number): Promise<DoctorCheck> {
  const name = 'storage clock';
  const sentAtMs = Date.now();
  let date: string | null;
  try {
    const res = await fetch(endpoint, { method: 'HEAD', redirect: 'manual', signal: AbortSignal.timeout(timeoutMs) });
    date = res.headers.get('date');
  } catch (err) {
    const cause = (err as { cause?: { code?: string } }).cause?.code;
    return { name, level: 'warn', message: `unknown: ${redactUrl(endpoint)} did not answer (${cause ?? describeError(err)})` };
  }
  const serverMs = date ? Date.parse(date) : Number.NaN;
  if (!Number.isFinite(serverMs)) return { name, level: 'warn', message: `unknown: ${redactUrl(endpoint)} sent no Date header` };
  const skewMs = Math.round(serverMs + 500 - (sentAtMs + Date.now()) / 2);
  const abs = Math.abs(skewMs);
  const text = abs < 1000 ? `this PC's clock is within ${formatSpan(abs)} of the storage's` : `this PC's clock is ${formatSpan(abs)} ${skewMs > 0 ? 'behind' : 'ahead of'} the storage's`;
  const details = { clockSkewMs: skewMs };
  if (abs > STORE_CLOCK_FAIL_MS) return { name, level: 'fail', message: `${text}: the storage refuses requests signed more than 15 min off (RequestTimeTooSkewed); set the clock (NTP)`, details };
  if (abs > STORE_CLOCK_WARN_MS) return { name, level: 'warn', message: `${text}; requests fail beyond 15 min, set up NTP`, details };
  return { name, level: 'ok', message: text, details };
}

// ---- disk and clock ---------------------------------------------------------------------------

async function checkDisk(config: Config): Promise<DoctorCheck> {
  const dir = config.agent.dataDir;
  const free = await freeDiskBytes(dir);
  const floor = config.capture.minFreeDiskBytes;
  const details = { freeBytes: free, minFreeBytes: floor, path: dir };
  const text = `${formatBytes(free)} free for ${dir}`;
  if (free < floor) return { name: 'disk', level: 'fail', message: `${text}: below capture.minFreeDiskBytes (${formatBytes(floor)}), so recordings are refused`, details };
  if (free < floor + DISK_HEADROOM_BYTES) return { name: 'disk', level: 'warn', message: `${text}: less than ${formatBytes(DISK_HEADROOM_BYTES)} above the ${formatBytes(floor)} floor, about one long lecture`, details };
  return { name: 'disk', level: 'ok', message: `${text} (recordings are refused below ${formatBytes(floor)})`, details };
}

async function checkTimeSync(env: NodeJS.ProcessEnv): Promise<DoctorCheck> {
  const state = await timeSyncState({ env });
  if (state.synchronized === 'unknown') return { name: 'time sync', level: 'warn', message: `unknown (${state.reason})` };
  if (state.synchronized) return { name: 'time sync', level: 'ok', message: 'the clock is synchronized (NTP)' };
  return { name: 'time sync', level: 'warn', message: 'the clock is not synchronized: enable NTP (timedatectl set-ntp true) so lectures carry the right time' };
}

// ---- helpers ----------------------------------------------------------------------------------

async function exists(p: string): Promise<boolean> {
  try {
    await fs.lstat(p);
    return true;
  } catch {
    return false;
  }
}

function userName(): string {
  try {
    return os.userInfo().username;
  } catch {
    return `uid ${process.getuid?.() ?? '?'}`;
  }
}

async function withTimeout<T>(work: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
