import type { AgentStatus } from '../api/types.js';
import type { Logger } from '../log/logger.js';
import { describeError } from '../util/errors.js';
import { systemdNotify } from './systemd.js';

/**
 * Tells systemd how the daemon is doing (sd_notify(3)): READY=1 once the agent is up, a STATUS
 * line a person reads in `systemctl status lectern` ("Recording CS101 (12:03)"), WATCHDOG=1
 * every WATCHDOG_USEC/2 but only while the injected health check passes, so a wedged work loop
 * gets the service restarted (sd_watchdog_enabled(3)), and STOPPING=1 when shutdown begins.
 * Without NOTIFY_SOCKET (not under systemd, or Type= is not notify) every call is a no-op.
 *
 * Each tick sends one message (WATCHDOG=1 and the STATUS line when it changed), and a tick never
 * starts while the previous one is still sending, so a slow systemd cannot pile up children.
 * How a message reaches systemd is in ./systemd.ts.
 */

export type NotifySend = (fields: string[]) => Promise<void>;

export interface NotifierOptions {
  /** NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID are read from here. */
  env: NodeJS.ProcessEnv;
  logger: Logger;
  /** True while the work loop is healthy; false or a throw (its message is logged) pauses the pings. */
  healthy: () => boolean | Promise<boolean>;
  /** The current status line; read at every tick and sent when it changed. */
  status?: () => string;
  /** How often the status is read when there is no watchdog. Default 10 s. */
  statusIntervalMs?: number;
  /** Default: the systemd-notify binary with `env`. */
  send?: NotifySend;
  /** Default process.pid; WATCHDOG_PID names the process the watchdog is meant for. */
  pid?: number;
}

const DEFAULT_STATUS_INTERVAL_MS = 10_000;
// systemctl shows one line; a longer status is a bug upstream, not something to pass on.
const MAX_STATUS_CHARS = 200;

/** The watchdog period systemd expects, or undefined when the watchdog is off for this process. */
export function watchdogTimeoutMs(env: NodeJS.ProcessEnv, pid: number): number | undefined {
  const usec = Number(env.WATCHDOG_USEC);
  if (!env.WATCHDOG_USEC || !Number.isSafeInteger(usec) || usec <= 0) return undefined;
  if (env.WATCHDOG_PID && Number(env.WATCHDOG_PID) !== pid) return undefined;
  return Math.max(1, Math.floor(usec / 1000));
}

/** One line of printable text, as the STATUS field needs (fields are newline-separated). */
export function cleanStatus(line: string): string {
  const flat = line.replace(/[\u0000-\u001f\u007f]+/g, ' ').replace(/ {2,}/g, ' ').trim();
  return flat.length > MAX_STATUS_CHARS ? `${flat.slice(0, MAX_STATUS_CHARS - 1)}…` : flat;
}

export class Notifier {
  readonly #o: NotifierOptions;
  readonly #log: Logger;
  readonly #send: NotifySend;
  readonly #watchdogMs: number | undefined;
  readonly #enabled: boolean;
  #timer: NodeJS.Timeout | undefined;
  #tick: Promise<void> | undefined;
  #chain: Promise<void> = Promise.resolve();
  #lastStatus: string | undefined;
  #pinging = true;
  #sendFailing = false;
  #state: 'new' | 'running' | 'stopped' = 'new';

  constructor(options: NotifierOptions) {
    this.#o = options;
    this.#log = options.logger.child({ scope: 'sd-notify' });
    this.#enabled = Boolean(options.env.NOTIFY_SOCKET);
    this.#watchdogMs = this.#enabled ? watchdogTimeoutMs(options.env, options.pid ?? process.pid) : undefined;
    this.#send = options.send ?? ((fields) => systemdNotify(fields, { env: options.env }));
  }

  /** Whether systemd listens (NOTIFY_SOCKET is set). */
  get enabled(): boolean {
    return this.#enabled;
  }

  /** How often WATCHDOG=1 is sent while healthy (half of WATCHDOG_USEC), or undefined. */
  get watchdogIntervalMs(): number | undefined {
    return this.#watchdogMs === undefined ? undefined : Math.max(1, Math.floor(this.#watchdogMs / 2));
  }

  /** Sends READY=1 with the first status and starts the periodic ticks. Never throws. */
  async start(): Promise<void> {
    if (!this.#enabled || this.#state !== 'new') return;
    this.#state = 'running';
    const fields = ['READY=1'];
    const status = this.#readStatus();
    if (status !== undefined) fields.push(`STATUS=${status}`);
    await this.#enqueue(fields);
    const intervalMs = this.watchdogIntervalMs ?? this.#o.statusIntervalMs ?? DEFAULT_STATUS_INTERVAL_MS;
    this.#timer = setInterval(() => {
      if (this.#tick) {
        this.#log.debug('previous notification still in flight; skipping this tick');
        return;
      }
      this.#tick = this.#runTick().finally(() => {
        this.#tick = undefined;
      });
    }, intervalMs);
    // The daemon lives for its other handles; this timer must not keep a stopping process alive.
    this.#timer.unref();
    this.#log.debug('notifying systemd', { watchdogMs: this.#watchdogMs, intervalMs });
  }

  /** Sends a status line now (when it differs from the last one), e.g. when a recording starts. */
  async setStatus(line: string): Promise<void> {
    if (this.#state !== 'running') return;
    const status = cleanStatus(line);
    if (status === this.#lastStatus) return;
    this.#lastStatus = status;
    await this.#enqueue([`STATUS=${status}`]);
  }

  /** STOPPING=1 (systemd stops expecting pings and starts TimeoutStopSec); call when shutdown begins. */
  async stop(statusLine = 'Stopping'): Promise<void> {
    if (this.#state !== 'running') {
      this.#state = 'stopped';
      return;
    }
    this.#state = 'stopped';
    clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#tick;
    await this.#enqueue(['STOPPING=1', `STATUS=${cleanStatus(statusLine)}`]);
  }

  async #runTick(): Promise<void> {
    const fields: string[] = [];
    if (this.#watchdogMs !== undefined && (await this.#checkHealth())) fields.push('WATCHDOG=1');
    if (this.#state !== 'running') return;
    const status = this.#readStatus();
    if (status !== undefined) fields.push(`STATUS=${status}`);
    await this.#enqueue(fields);
  }

  async #checkHealth(): Promise<boolean> {
    let ok: boolean;
    let reason = 'the health check failed';
    try {
      ok = (await this.#o.healthy()) === true;
    } catch (err) {
      ok = false;
      reason = `the health check threw: ${describeError(err)}`;
    }
    if (ok !== this.#pinging) {
      this.#pinging = ok;
      if (ok) this.#log.info('healthy again; watchdog pings resumed');
      else this.#log.warn(`${reason}; watchdog pings paused (systemd restarts the service after WatchdogSec)`);
    }
    return ok;
  }

  /** The status when it changed since the last one sent, else undefined. */
  #readStatus(): string | undefined {
    if (!this.#o.status) return undefined;
    let status: string;
    try {
      status = cleanStatus(this.#o.status());
    } catch (err) {
      this.#log.debug(`cannot read the status line: ${describeError(err)}`);
      return undefined;
    }
    if (status === '' || status === this.#lastStatus) return undefined;
    this.#lastStatus = status;
    return status;
  }

  /** Sends in order; a failure is logged (once until it works again), never thrown. */
  #enqueue(fields: string[]): Promise<void> {
    if (fields.length === 0) return this.#chain;
    const next = this.#chain.then(async () => {
      try {
        await this.#send(fields);
        if (this.#sendFailing) this.#log.info('notifications reach systemd again');
        this.#sendFailing = false;
      } catch (err) {
        if (!this.#sendFailing) this.#log.warn(`cannot notify systemd (${fields.map((f) => f.split('=')[0]).join(', ')}): ${describeError(err)}`);
        this.#sendFailing = true;
      }
    });
    this.#chain = next;
    return next;
  }
}

/** 12:03 or 1:02:03. */
function formatElapsed(ms: number): string {
  const total = Math.max(0, Math.floor(ms / 1000));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const sec = String(total % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${sec}` : `${m}:${sec}`;
}

/**
 * The STATUS line for `systemctl status lectern`, e.g. "Recording CS101 (12:03)" or "Idle, 3
 * lectures waiting to publish, next CS102 at 14:00", with the open alerts' kinds at the end.
 * Clock times are in this PC's time zone (or `timeZone`).
 */
export function formatStatusLine(status: AgentStatus, timeZone?: string): string {
  const rec = status.recording;
  const name = rec.course ?? rec.title;
  const what = name ? ` ${name}` : '';
  let line: string;
  switch (rec.state) {
    case 'recording':
      line = `Recording${what} (${formatElapsed(rec.elapsedMs)})`;
      break;
    case 'starting':
      line = `Starting a recording${what}`;
      break;
    case 'stopping':
      line = `Stopping the recording${what} (${formatElapsed(rec.elapsedMs)})`;
      break;
    default: {
      const waiting = status.uploads.pendingLectures;
      line = waiting > 0 ? `Idle, ${waiting} lecture${waiting === 1 ? '' : 's'} waiting to publish` : 'Idle';
      if (status.next) {
        const at = new Intl.DateTimeFormat('en-GB', { hour: '2-digit', minute: '2-digit', hour12: false, ...(timeZone ? { timeZone } : {}) }).format(status.next.startsAtMs);
        line += `, next ${status.next.course ?? status.next.title} at ${at}`;
      }
    }
  }
  if (status.alerts.length > 0) line += `; alerts: ${[...new Set(status.alerts.map((a) => a.kind))].join(', ')}`;
  return cleanStatus(line);
}
