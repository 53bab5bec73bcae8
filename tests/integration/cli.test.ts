import { readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { makeTmpDir } from '../helpers/tmp.js';

// The built CLI as IT staff use it: real processes, real files, exit codes and printed text.

describe('lectern CLI', () => {
  const tmp = makeTmpDir();
  afterAll(() => tmp.cleanup());
  const env = { LECTERN_CONFIG: '' };

  it('config check lists all three mistakes of a file with their paths and exits 2', async () => {
    const file = path.join(tmp.dir, 'bad.yaml');
    writeFileSync(file, 'capture:\n  segmentSeconds: 0\ntranscode:\n  foo: 1\nsources:\n  - name: cam\n    kind: usb\n');
    const run = await runCli(['config', 'check', file], { cwd: tmp.dir, env });
    expect(run.code).toBe(2);
    expect(run.stderr).toContain(`${file}: 3 problems`);
    expect(run.stderr).toContain('capture.segmentSeconds: must be an integer between 2 and 300, got 0');
    expect(run.stderr).toContain('transcode.foo: unknown key');
    expect(run.stderr).toContain('sources.0.kind: unknown source kind "usb"; expected one of synthetic, rtsp');
  });

  it('config init writes the commented example, which config check accepts; it will not overwrite', async () => {
    const file = path.join(tmp.dir, 'lectern.yaml');
    const init = await runCli(['config', 'init', file], { cwd: tmp.dir, env });
    expect(init.code).toBe(0);
    expect(statSync(file).mode & 0o777).toBe(0o644);
    expect(readFileSync(file, 'utf8')).toContain('# length of each recorded segment in seconds');
    const check = await runCli(['config', 'check', file], { cwd: tmp.dir, env });
    expect(check.code).toBe(0);
    expect(check.stdout).toContain(`ok: ${file}`);
    const again = await runCli(['config', 'init', file], { cwd: tmp.dir, env });
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('already exists; use --force');
  });

  it('a daemon command with a broken configuration fails with the list, not a stack trace', async () => {
    const file = path.join(tmp.dir, 'broken.yaml');
    writeFileSync(file, 'agent:\n  room: "../etc"\n');
    const run = await runCli(['--config', file, 'demo'], { cwd: tmp.dir, env });
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/agent\.room: must be 1-64 letters/);
    expect(run.stderr).not.toMatch(/\bat .*\.js:\d+/);
  });

  it('queue ls explains an empty state and rejects a bad filter', async () => {
    const empty = await runCli(['queue', 'ls'], { cwd: tmp.dir, env });
    expect(empty.code).toBe(0);
    expect(empty.stdout).toMatch(/No jobs yet: there is no state database at .*state\.db/);
    const bad = await runCli(['queue', 'ls', '--state', 'exploded'], { cwd: tmp.dir, env });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('unknown state "exploded"');
  });

  it('demo rejects a nonsense duration before recording anything', async () => {
    const run = await runCli(['demo', '--seconds', 'soon'], { cwd: tmp.dir, env });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('--seconds must be a number from 2 to 3600, got "soon"');
  });

  it('mics list answers plainly on a machine without a sound card, and lists the sources\' audio', async () => {
    const run = await runCli(['mics', 'list'], { cwd: tmp.dir, env });
    expect(run.code).toBe(0);
    // This machine (like CI) has no ALSA driver; a classroom PC shows its devices here instead.
    expect(run.stdout).toMatch(/^(No ALSA capture devices: this machine has no sound card|ALSA capture devices)/m);
    expect(run.stdout).toContain('presenter (synthetic): a test tone');
    const json = JSON.parse((await runCli(['mics', 'list', '--json'], { cwd: tmp.dir, env })).stdout) as { alsa: { available: boolean }; sources: unknown[] };
    expect(typeof json.alsa.available).toBe('boolean');
    expect(json.sources).toHaveLength(1);
  });
});
