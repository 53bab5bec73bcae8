import { existsSync } from 'node:fs';
import type { Command } from 'commander';
import { ApiClient } from '../../api/client.js';
import type { AgentStatus, QueueView, StartResult, StopResult } from '../../api/types.js';
import type { ApiEndpoint } from '../../config/endpoint.js';
import { describeError, isLecternError } from '../../util/errors.js';
import { formatBytes, formatDuration } from '../../util/units.js';
import type { CliIo } from '../io.js';

/**
 * `lectern record start|stop|status|pause|resume|extend|mark` and `lectern status`. They change
 * state only through the running daemon's API, so the daemon stays the single writer of the
 * database and the single owner of ffmpeg. When no daemon answers, they say so and exit with
 * EXIT_DAEMON_NOT_RUNNING, which scripts can tell apart from a refused command.
 */

/** Exit codes of these commands (the others are main.ts's: 1 usage or refused command, 2 configuration, 3 runtime). */
export const EXIT_DAEMON_NOT_RUNNING = 4;

export function registerRecordCommands(program: Command, io: CliIo, endpoint: () => Promise<ApiEndpoint>): void {
  const run = (json: boolean | undefined, action: (client: ApiClient) => Promise<void>) => async (): Promise<void> => {
    let client: ApiClient;
    try {
      client = clientFor(await endpoint());
    } catch (err) {
      io.err(describeError(err));
      process.exitCode = 2;
      return;
    }
    try {
      await action(client);
    } catch (err) {
      reportError(err, io, json === true);
    }
  };

  const record = program.command('record').description('start, stop and inspect recordings through the running daemon');

  record
    .command('start')
    .description('start recording (pressing it twice starts one recording)')
    .option('--title <text>', 'lecture title (default: "Lecture <date> <time> UTC")')
    .option('--course <text>', 'course name or code')
    .option('--teacher <text>', 'teacher name')
    .option('--minutes <n>', 'stop by itself after this many minutes')
    .option('--json', 'print JSON')
    .action((opts: { title?: string; course?: string; teacher?: string; minutes?: string; json?: boolean }) =>
      run(opts.json, async (client) => {
        const body: Record<string, unknown> = {};
        if (opts.title !== undefined) body.title = opts.title;
        if (opts.course !== undefined) body.course = opts.course;
        if (opts.teacher !== undefined) body.teacher = opts.teacher;
        if (opts.minutes !== undefined) {
          const minutes = Number(opts.minutes);
          if (!Number.isInteger(minutes) || minutes < 1) return usage(io, `--minutes must be a positive whole number, got "${opts.minutes}"`);
          body.durationMinutes = minutes;
        }
        const result = await client.post<StartResult>('/api/record/start', body);
        if (opts.json) io.out(JSON.stringify(result));
        else io.out(result.created ? `Recording started: ${result.recordingId}` : `Already recording: ${result.recordingId} (nothing changed)`);
      })(),
    );

  record
    .command('stop')
    .description('stop the recording; it is then packaged and published')
    .option('--json', 'print JSON')
    .action((opts: { json?: boolean }) =>
      run(opts.json, async (client) => {
        const result = await client.post<StopResult>('/api/record/stop', {});
        if (opts.json) io.out(JSON.stringify(result));
        else io.out(result.recordingId ? `Recording stopped: ${result.recordingId}; it will be packaged and published.` : 'Nothing was recording.');
      })(),
    );

  const simple = (name: string, description: string, path: string, done: (recordingId: string) => string): void => {
    record
      .command(name)
      .description(description)
      .option('--json', 'print JSON')
      .action((opts: { json?: boolean }) =>
        run(opts.json, async (client) => {
          const result = await client.post<{ recordingId: string }>(path, {});
          io.out(opts.json ? JSON.stringify(result) : done(result.recordingId));
        })(),
      );
  };
  simple('pause', 'pause the recording (nothing is recorded until resume; the pause is not part of the lecture)', '/api/record/pause', (id) => `Recording paused: ${id}; nothing is recorded until \`lectern record resume\`.`);
  simple('resume', 'resume a paused recording', '/api/record/resume', (id) => `Recording resumed: ${id}.`);

  record
    .command('extend <minutes>')
    .description('move the planned end of the recording later')
    .option('--json', 'print JSON')
    .action((minutesText: string, opts: { json?: boolean }) =>
      run(opts.json, async (client) => {
        const minutes = Number(minutesText);
        if (!Number.isInteger(minutes) || minutes < 1) return usage(io, `minutes must be a positive whole number, got "${minutesText}"`);
        const result = await client.post<{ recordingId: string; plannedEndMs: number }>('/api/record/extend', { minutes });
        io.out(opts.json ? JSON.stringify(result) : `Recording extended by ${minutes} min: it stops by itself at ${new Date(result.plannedEndMs).toLocaleTimeString()}.`);
      })(),
    );

  record
    .command('mark [title]')
    .description('put a chapter marker at this moment of the recording (default title "Chapter N")')
    .option('--json', 'print JSON')
    .action((title: string | undefined, opts: { json?: boolean }) =>
      run(opts.json, async (client) => {
        const result = await client.post<{ recordingId: string; atSeconds: number; title: string }>('/api/record/marker', title === undefined ? {} : { title });
        io.out(opts.json ? JSON.stringify(result) : `Marker "${result.title}" at ${formatDuration(result.atSeconds)} of the lecture.`);
      })(),
    );

  const statusCommand = (cmd: Command): void => {
    cmd.option('--json', 'print JSON').action((opts: { json?: boolean }) =>
      run(opts.json, async (client) => {
        const status = await client.get<AgentStatus>('/api/status');
        if (opts.json) {
          io.out(JSON.stringify(status, null, 2));
          return;
        }
        const queue = await client.get<QueueView>('/api/queue');
        io.out(formatStatus(status, queue));
      })(),
    );
  };
  statusCommand(record.command('status').description('what the daemon is doing: recording, alerts, queue, disk'));
  statusCommand(program.command('status').description('what the daemon is doing: recording, alerts, queue, disk (same as record status)'));
}

/** The daemon's address from the configuration: the unix socket when it exists, else TCP on loopback. */
export function clientFor(api: ApiEndpoint): ApiClient {
  // A daemon listening on every address is still reached on loopback, where no token is needed.
  const host = api.host === '0.0.0.0' ? '127.0.0.1' : api.host === '::' ? '::1' : api.host;
  const baseUrl = `http://${host.includes(':') ? `[${host}]` : host}:${api.port}`;
  const socketPath = api.socketPath !== undefined && existsSync(api.socketPath) ? api.socketPath : undefined;
  return new ApiClient({ baseUrl, ...(socketPath ? { socketPath } : {}) });
}

function usage(io: CliIo, message: string): void {
  io.err(message);
  process.exitCode = 1;
}

function reportError(err: unknown, io: CliIo, json: boolean): void {
  const code = isLecternError(err) ? err.code : 'INTERNAL';
  const message = isLecternError(err) ? err.message : describeError(err);
  if (json) io.out(JSON.stringify({ error: { code, message } }));
  io.err(code === 'DAEMON_NOT_RUNNING' ? message : `${code}: ${message}`);
  const status = isLecternError(err) && typeof err.details.status === 'number' ? err.details.status : undefined;
  if (code === 'DAEMON_NOT_RUNNING') process.exitCode = EXIT_DAEMON_NOT_RUNNING;
  else if (status !== undefined && status >= 400 && status < 500) process.exitCode = 1;
  else process.exitCode = 3;
}

export function formatStatus(s: AgentStatus, queue: QueueView): string {
  const lines: string[] = [];
  const r = s.recording;
  const title = r.title ? `"${r.title}"${r.course ? ` (${r.course})` : ''}` : '';
  if (r.state === 'idle') lines.push(`Idle${s.next ? `; next: "${s.next.title}" at ${new Date(s.next.startsAtMs).toLocaleString()}` : ''}.`);
  else {
    const level = s.audioLevelDb === null ? 'no level yet' : `audio ${s.audioLevelDb.toFixed(0)} dBFS`;
    lines.push(`${capitalise(r.state)} ${title} for ${formatDuration(r.elapsedMs / 1000)} — ${r.segments} segment(s), ${level}${r.restarts ? `, ${r.restarts} reconnect(s)` : ''}.`);
    if (r.plannedEndMs !== null) lines.push(`  Stops by itself at ${new Date(r.plannedEndMs).toLocaleTimeString()}.`);
  }
  for (const a of s.alerts) lines.push(`  ALERT ${a.kind}${a.source ? ` (${a.source})` : ''}: ${a.message}`);
  const pending = s.uploads.pendingLectures;
  lines.push(`Queue: ${pending === 0 ? 'nothing waiting' : `${pending} lecture(s) being packaged or published`}${s.uploads.etaSeconds !== null ? `, about ${formatDuration(s.uploads.etaSeconds)} to go` : ''}${s.queue.dead ? `; ${s.queue.dead} failed job(s) (lectern queue ls --state dead)` : ''}.`);
  if (s.disk.freeBytes !== null) lines.push(`Disk: ${formatBytes(s.disk.freeBytes)} free${s.disk.low ? ' — LOW, new recordings are refused' : ''}.`);
  if (queue.lectures.length > 0) {
    lines.push('Recent lectures:');
    for (const l of queue.lectures) lines.push(`  ${l.id}  ${l.stage.padEnd(10)}  ${l.title}${l.problem ? `  (${l.problem.slice(0, 80)})` : ''}`);
  }
  return lines.join('\n');
}

function capitalise(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}
