import { writeFileSync } from 'node:fs';
import net, { type AddressInfo } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AgentStatus } from '../../src/api/types.js';
import { waitFor } from '../../src/util/sleep.js';
import { runCli, startCli, type CliRun } from '../helpers/cli.js';
import { smallDemoConfig } from '../helpers/config.js';
import { makeTmpDir } from '../helpers/tmp.js';

/**
 * `lectern record ...` and `lectern status` as separate processes against a real `lectern daemon`
 * (synthetic camera, real ffmpeg and SQLite), through its local API; then with the daemon gone.
 */

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

describe('lectern record through the daemon', () => {
  const tmp = makeTmpDir('lectern-record-cli-');
  const configFile = path.join(tmp.dir, 'lectern.yaml');
  let daemon: CliRun;
  let port: number;
  const cli = (...args: string[]) => runCli(['--config', configFile, ...args], { cwd: tmp.dir });

  beforeAll(async () => {
    port = await freePort();
    writeFileSync(configFile, smallDemoConfig(['api:', `  port: ${port}`, `  socketPath: ${path.join(tmp.dir, 'api.sock')}`]));
    daemon = startCli(['--config', configFile, 'daemon'], { cwd: tmp.dir });
    await waitFor(
      async () => {
        if (daemon.child.exitCode !== null) throw new Error(`the daemon exited: ${daemon.stderr()}`);
        const res = await fetch(`http://127.0.0.1:${port}/api/status`).catch(() => undefined);
        return res?.ok ? true : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 200, what: 'the daemon API' },
    );
  });

  afterAll(async () => {
    if (daemon && daemon.child.exitCode === null) {
      daemon.child.kill('SIGTERM');
      await daemon.exit;
    }
    tmp.cleanup();
  });

  it('starts, reports, pauses, marks, resumes, extends, refuses bad input, and stops a recording', async () => {
    const idle = await cli('status');
    expect(idle.code, idle.stderr).toBe(0);
    expect(idle.stdout).toMatch(/^Idle/);

    const start = await cli('record', 'start', '--title', 'Thermodynamics 1', '--course', 'PHYS110', '--minutes', '30', '--json');
    expect(start.code, start.stderr).toBe(0);
    const started = JSON.parse(start.stdout) as { recordingId: string; created: boolean };
    expect(started.created).toBe(true);
    // Pressing it twice starts one recording.
    const again = await cli('record', 'start');
    expect(again.code).toBe(0);
    expect(again.stdout).toBe(`Already recording: ${started.recordingId} (nothing changed)\n`);

    const json = await cli('record', 'status', '--json');
    expect(json.code).toBe(0);
    const status = JSON.parse(json.stdout) as AgentStatus;
    expect(status.recording).toMatchObject({ recordingId: started.recordingId, title: 'Thermodynamics 1', course: 'PHYS110' });
    expect(['starting', 'recording']).toContain(status.recording.state);
    // Waiting is done on the API itself (each CLI run is a node start-up on a busy 2-core machine).
    const api = async (): Promise<AgentStatus> => (await (await fetch(`http://127.0.0.1:${port}/api/status`)).json()) as AgentStatus;
    await waitFor(async () => ((await api()).recording.segments >= 1 ? true : undefined), { timeoutMs: 20_000, intervalMs: 200, what: 'a recorded segment' });
    const human = await cli('status');
    expect(human.stdout).toMatch(/^Recording "Thermodynamics 1" \(PHYS110\) for \d+:\d\d/);
    expect(human.stdout).toMatch(/segment\(s\)/);
    expect(human.stdout).toMatch(/Disk: [\d.]+ \w+ free/);

    // (These three run side by side: each CLI run is a node start-up.)
    const [pause, extend, longTitle] = await Promise.all([cli('record', 'pause'), cli('record', 'extend', '0'), cli('record', 'mark', 'x'.repeat(300), '--json')]);
    expect(pause.code, pause.stderr).toBe(0);
    expect(pause.stdout).toBe(`Recording paused: ${started.recordingId}; nothing is recorded until \`lectern record resume\`.\n`);
    expect((await api()).recording.state).toBe('paused');
    const paused = await cli('status');
    expect(paused.stdout).toMatch(/^Paused "Thermodynamics 1"/);
    const mark = await cli('record', 'mark', 'Second law');
    expect(mark.code, mark.stderr).toBe(0);
    expect(mark.stdout).toMatch(/^Marker "Second law" at \d+:\d\d of the lecture\.\n$/);
    const resume = await cli('record', 'resume', '--json');
    expect(resume.code, resume.stderr).toBe(0);
    expect(JSON.parse(resume.stdout)).toEqual({ recordingId: started.recordingId });
    expect((await api()).recording.state).toBe('recording');
    const plannedEndMs = (await api()).recording.plannedEndMs ?? 0;
    const extended = await cli('record', 'extend', '10', '--json');
    expect(extended.code, extended.stderr).toBe(0);
    expect(JSON.parse(extended.stdout)).toEqual({ recordingId: started.recordingId, plannedEndMs: plannedEndMs + 600_000 });
    expect((await api()).recording.plannedEndMs).toBe(plannedEndMs + 600_000);
    // Input the API refuses is a usage error, with the API's message.
    expect(extend.code).toBe(1);
    expect(extend.stderr).toContain('minutes must be a positive whole number');
    expect(longTitle.code).toBe(1);
    expect(JSON.parse(longTitle.stdout)).toEqual({ error: { code: 'API_INVALID_BODY', message: 'invalid request: title must be at most 200 characters, got 300' } });

    const stop = await cli('record', 'stop');
    expect(stop.code, stop.stderr).toBe(0);
    expect(stop.stdout).toBe(`Recording stopped: ${started.recordingId}; it will be packaged and published.\n`);
    const stopAgain = await cli('record', 'stop', '--json');
    expect(JSON.parse(stopAgain.stdout)).toEqual({ recordingId: null });
    const after = await cli('status');
    expect(after.stdout).toMatch(/^Idle/);
    expect(after.stdout).toContain(started.recordingId);
  });

  it('says clearly when the daemon is not running, with exit code 4', async () => {
    daemon.child.kill('SIGTERM');
    const { code } = await daemon.exit;
    expect(code).toBe(0);
    const commands = [['status'], ['record', 'start'], ['record', 'stop', '--json']];
    const results = await Promise.all(commands.map((args) => cli(...args)));
    for (const [i, args] of commands.entries()) {
      const r = results[i] as Awaited<ReturnType<typeof cli>>;
      expect(r.code, args.join(' ')).toBe(4);
      expect(r.stderr, args.join(' ')).toMatch(/^the lectern daemon is not running \(nothing answers at http:\/\/127\.0\.0\.1:\d+\); start it with: systemctl start lectern/);
    }
    // --json callers get the error as JSON on stdout too.
    const r = await cli('status', '--json');
    expect(JSON.parse(r.stdout)).toMatchObject({ error: { code: 'DAEMON_NOT_RUNNING' } });
  });
});
