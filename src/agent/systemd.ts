import { spawn } from 'node:child_process';

/**
 * The agent's two conversations with systemd's own tools, the only processes spawned outside
 * src/ffmpeg/ (tests/unit/architecture.test.ts allows exactly this file):
 *
 * - sd_notify. The protocol is one AF_UNIX SOCK_DGRAM datagram to $NOTIFY_SOCKET, and Node has
 *   no unix datagram sockets (nodejs/node#29339, #30059, #61933). The choices were a native addon
 *   (npm sd-notify: a C++ build against libsystemd-dev on every classroom PC, and a dependency
 *   that owns no other function here), a long-lived helper in python3 or socat (one more runtime
 *   to install and supervise), or the `systemd-notify` binary, which is on every machine that has
 *   systemd at all. We spawn `systemd-notify` once per message: a few ms every WatchdogSec/2. It
 *   waits until the manager has read the message (BARRIER=1, systemd >= 246), so the manager can
 *   still map its PID to our unit; a child's message is accepted only with NotifyAccess=all.
 * - Time sync: `timedatectl show -p NTPSynchronized` asks timedated, which reads the kernel's
 *   sync flag (adjtimex), whichever NTP client set it; Node cannot call adjtimex itself.
 *
 * No shell, argument arrays only, and a timeout that SIGKILLs a hung tool.
 */

export interface ToolResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

const MAX_OUTPUT_CHARS = 64 * 1024;

function runTool(command: string, args: readonly string[], opts: { env: NodeJS.ProcessEnv; timeoutMs: number }): Promise<ToolResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env: opts.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      if (stdout.length < MAX_OUTPUT_CHARS) stdout += d;
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      if (stderr.length < MAX_OUTPUT_CHARS) stderr += d;
    });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, opts.timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (timedOut) reject(new Error(`${command} did not finish within ${opts.timeoutMs} ms`));
      else resolve({ code, signal, stdout, stderr });
    });
  });
}

export interface SystemdNotifyOptions {
  /** Must hold NOTIFY_SOCKET; passed whole to the child. */
  env: NodeJS.ProcessEnv;
  /** systemd-notify's own barrier wait is 5 s; a little more before we give up on it. */
  timeoutMs?: number;
  /** Default 'systemd-notify'. */
  command?: string;
}

/**
 * Sends one notification, e.g. ['READY=1', 'STATUS=Idle']. Values must not contain newlines
 * (the protocol separates fields by them). Rejects when systemd-notify is missing, fails or hangs.
 */
export async function systemdNotify(fields: readonly string[], opts: SystemdNotifyOptions): Promise<void> {
  if (fields.length === 0) return;
  const command = opts.command ?? 'systemd-notify';
  const res = await runTool(command, fields, { env: opts.env, timeoutMs: opts.timeoutMs ?? 8_000 });
  if (res.code !== 0) {
    const how = res.signal !== null ? `was killed by ${res.signal}` : `exited with code ${res.code}`;
    throw new Error(`${command} ${how}${res.stderr.trim() ? `: ${res.stderr.trim().split('\n').slice(-2).join(' | ')}` : ''}`);
  }
}

export type TimeSyncState = { synchronized: boolean } | { synchronized: 'unknown'; reason: string };

/** Whether the kernel clock is NTP-synchronized, as timedatectl reports it; 'unknown' without timedated. */
export async function timeSyncState(opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number; command?: string } = {}): Promise<TimeSyncState> {
  const command = opts.command ?? 'timedatectl';
  let res: ToolResult;
  try {
    res = await runTool(command, ['show', '-p', 'NTPSynchronized', '--value'], { env: opts.env ?? process.env, timeoutMs: opts.timeoutMs ?? 5_000 });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return { synchronized: 'unknown', reason: code === 'ENOENT' ? `${command} is not installed` : (err as Error).message };
  }
  const value = res.stdout.trim();
  if (res.code === 0 && (value === 'yes' || value === 'no')) return { synchronized: value === 'yes' };
  const why = res.stderr.trim().split('\n')[0] || `${command} exited with code ${String(res.code)}`;
  return { synchronized: 'unknown', reason: why };
}
