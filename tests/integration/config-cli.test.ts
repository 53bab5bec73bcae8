import { readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Command } from 'commander';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { registerConfigCommands } from '../../src/cli/commands/config.js';
import { renderExampleConfig } from '../../src/config/index.js';
import { makeTmpDir } from '../helpers/tmp.js';

// `lectern config init|check` run in-process on real files, with the output captured.

describe('lectern config', () => {
  let tmp: ReturnType<typeof makeTmpDir>;
  let out: string[];
  let err: string[];
  beforeEach(() => {
    tmp = makeTmpDir();
    out = [];
    err = [];
    process.exitCode = undefined;
  });
  afterEach(() => {
    process.exitCode = undefined;
    tmp.cleanup();
  });

  const run = async (...args: string[]): Promise<number> => {
    const program = new Command('lectern').option('-c, --config <file>').exitOverride();
    registerConfigCommands(program, { out: (s) => out.push(s), err: (s) => err.push(s) });
    process.exitCode = undefined;
    await program.parseAsync(args, { from: 'user' });
    return Number(process.exitCode ?? 0);
  };

  it('init writes the example with mode 0644 whatever the umask, and check accepts it', async () => {
    const file = path.join(tmp.dir, 'lectern.yaml');
    const previousUmask = process.umask(0o077);
    try {
      expect(await run('config', 'init', file)).toBe(0);
    } finally {
      process.umask(previousUmask);
    }
    expect(statSync(file).mode & 0o777).toBe(0o644);
    expect(readFileSync(file, 'utf8')).toBe(renderExampleConfig());
    expect(out).toEqual([`wrote ${file}; edit it, then run: lectern config check ${file}`]);

    out = [];
    expect(await run('config', 'check', file)).toBe(0);
    expect(err).toEqual([]);
    expect(out[0]).toBe(`ok: ${file}`);
    expect(out).toContain('  sources: presenter (synthetic, presenter)');
    expect(out).toContain(`  storage: file ${path.join(tmp.dir, 'lectern-data', 'store')}`);
  });

  it('init will not overwrite a file without --force', async () => {
    const file = path.join(tmp.dir, 'lectern.yaml');
    writeFileSync(file, 'agent:\n  room: mine\n');
    expect(await run('config', 'init', file)).toBe(1);
    expect(err).toEqual([`${file} already exists; use --force to overwrite it`]);
    expect(readFileSync(file, 'utf8')).toBe('agent:\n  room: mine\n');
    expect(await run('config', 'init', '--force', file)).toBe(0);
    expect(readFileSync(file, 'utf8')).toBe(renderExampleConfig());
  });

  it('check lists every problem of a file, one per line, and exits 2', async () => {
    const file = path.join(tmp.dir, 'bad.yaml');
    writeFileSync(file, 'capture:\n  segmentSeconds: 0\ntranscode:\n  foo: 1\nsources:\n  - name: cam\n    kind: usb\n');
    expect(await run('config', 'check', file)).toBe(2);
    expect(out).toEqual([]);
    expect(err.join('\n').split('\n')).toEqual([
      `${file}: 3 problems`,
      '  sources.0.kind: unknown source kind "usb"; expected one of synthetic, rtsp, onvif, v4l2',
      '  capture.segmentSeconds: must be an integer between 2 and 300, got 0',
      '  transcode.foo: unknown key',
    ]);
  });

  it('check without a file argument checks the file of --config, and says when it is missing', async () => {
    const file = path.join(tmp.dir, 'site.yaml');
    writeFileSync(file, 'agent:\n  site: campus-a\n  room: r101\nstorage:\n  root: /srv/lectures\n  prefix: campus-a\n');
    expect(await run('--config', file, 'config', 'check')).toBe(0);
    expect(out).toContain(`ok: ${file}`);
    expect(out.some((l) => l.includes('at campus-a/r101'))).toBe(true);
    expect(out).toContain('  storage: file /srv/lectures prefix campus-a');

    const missing = path.join(tmp.dir, 'missing.yaml');
    expect(await run('--config', missing, 'config', 'check')).toBe(2);
    expect(err.join('\n')).toContain(`CONFIG_UNREADABLE: cannot read the configuration file ${missing} (ENOENT)`);
  });
});
