import { spawn, spawnSync } from 'node:child_process';
import { appendFileSync, existsSync, readFileSync, readdirSync, readlinkSync, statSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/cli.js';
import { makeTmpDir } from '../helpers/tmp.js';

/**
 * scripts/install.sh and scripts/uninstall.sh for real, into a temporary root (DESTDIR) with a
 * non-default prefix: everything but the user account and systemctl, which would change this
 * shared machine (and systemd is not PID 1 here). Run twice, the install changes nothing the
 * second time and keeps a locally edited configuration. shellcheck (scripts/test-peers/
 * shellcheck.apt) lints every script.
 */

const PREFIX = '/srv/lectern-app';
const tmp = makeTmpDir('lectern-install-');
const destdir = path.join(tmp.dir, 'root');

afterAll(() => tmp.cleanup());

function run(script: string, args: string[] = []): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn('bash', [path.join(ROOT, 'scripts', script), ...args], {
      env: { ...process.env, DESTDIR: destdir },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('close', (code) => resolve({ code, out }));
  });
}

const at = (p: string): string => path.join(destdir, p);
const mode = (p: string): string => (statSync(at(p)).mode & 0o7777).toString(8);

describe('install.sh and uninstall.sh', () => {
  it('pass bash -n and shellcheck', () => {
    for (const script of ['install.sh', 'uninstall.sh', 'setup.sh']) {
      const file = path.join(ROOT, 'scripts', script);
      expect(spawnSync('bash', ['-n', file]).status, script).toBe(0);
      const lint = spawnSync('shellcheck', ['--severity=style', file], { encoding: 'utf8' });
      if (lint.error) throw new Error(`shellcheck is not installed: bash scripts/setup.sh --test (scripts/test-peers/shellcheck.apt)`);
      expect(lint.stdout + lint.stderr, script).toBe('');
      expect(lint.status).toBe(0);
    }
  });

  it('installs the app, configuration, folders and unit, and a second run changes nothing', async () => {
    const first = await run('install.sh', ['--prefix', PREFIX]);
    expect(first.code, first.out).toBe(0);
    expect(first.out).toContain(`app: installing into ${PREFIX}`);
    expect(first.out).toContain('wrote /etc/lectern/config.yaml');

    // The app with production packages only; the native SQLite module is there and loads.
    const app = at(PREFIX);
    expect(readdirSync(app).sort()).toEqual(['.install-stamp', 'README.md', 'bin', 'dist', 'node_modules', 'package-lock.json', 'package.json', 'schemas', 'systemd']);
    expect(existsSync(path.join(app, 'node_modules/better-sqlite3'))).toBe(true);
    expect(existsSync(path.join(app, 'node_modules/vitest'))).toBe(false);
    expect(existsSync(path.join(app, 'node_modules/typescript'))).toBe(false);
    expect(readlinkSync(at('/usr/local/bin/lectern'))).toBe(`${PREFIX}/bin/lectern`);

    // The installed CLI runs with its own node_modules and accepts the configuration it wrote,
    // which keeps its data where the unit's StateDirectory is.
    const installed = path.join(app, 'bin/lectern');
    const check = spawnSync(installed, ['--config', at('/etc/lectern/config.yaml'), 'config', 'check'], { encoding: 'utf8', cwd: tmp.dir });
    expect(check.status, check.stdout + check.stderr).toBe(0);
    expect(check.stdout).toContain('data in /var/lib/lectern');
    const sqlite = spawnSync(process.execPath, ['-e', "const D=require('better-sqlite3'); console.log(new D(':memory:').prepare('select 41+1 as x').get().x)"], {
      cwd: app,
      encoding: 'utf8',
    });
    expect(sqlite.stdout.trim()).toBe('42');

    expect(mode('/etc/lectern')).toBe('750');
    expect(mode('/etc/lectern/config.yaml')).toBe('640');
    expect(mode('/etc/lectern/secrets')).toBe('700');
    expect(mode('/var/lib/lectern')).toBe('750');

    // The unit is the shipped one with the prefix put into ExecStart (and Documentation) only.
    const shipped = readFileSync(path.join(ROOT, 'systemd/lectern.service'), 'utf8');
    const unit = readFileSync(at('/etc/systemd/system/lectern.service'), 'utf8');
    expect(unit).toContain(`\nExecStart=${PREFIX}/bin/lectern daemon\n`);
    expect(unit.replaceAll(PREFIX, '/opt/lectern')).toBe(shipped);

    // A second run: nothing to copy, the edited configuration is kept byte for byte.
    appendFileSync(at('/etc/lectern/config.yaml'), '# edited by IT staff\n');
    const edited = readFileSync(at('/etc/lectern/config.yaml'), 'utf8');
    const stampBefore = statSync(path.join(app, '.install-stamp')).mtimeMs;
    const second = await run('install.sh', ['--prefix', PREFIX]);
    expect(second.code, second.out).toBe(0);
    expect(second.out).toContain(`app: ${PREFIX} is up to date`);
    expect(second.out).toContain('keeping the existing /etc/lectern/config.yaml');
    expect(second.out).toContain('(unchanged)');
    expect(readFileSync(at('/etc/lectern/config.yaml'), 'utf8')).toBe(edited);
    expect(statSync(path.join(app, '.install-stamp')).mtimeMs).toBe(stampBefore);
    expect(existsSync(`${app}.new`) || existsSync(`${app}.old`)).toBe(false);
  });

  it('uninstalls the app but keeps recordings and configuration, unless --purge', async () => {
    const removed = await run('uninstall.sh', ['--prefix', PREFIX]);
    expect(removed.code, removed.out).toBe(0);
    expect(existsSync(at(PREFIX))).toBe(false);
    expect(existsSync(at('/etc/systemd/system/lectern.service'))).toBe(false);
    expect(existsSync(at('/usr/local/bin/lectern'))).toBe(false);
    expect(readFileSync(at('/etc/lectern/config.yaml'), 'utf8')).toContain('# edited by IT staff');
    expect(existsSync(at('/var/lib/lectern'))).toBe(true);
    expect(removed.out).toContain('kept /var/lib/lectern');

    const purged = await run('uninstall.sh', ['--prefix', PREFIX, '--purge']);
    expect(purged.code, purged.out).toBe(0);
    expect(existsSync(at('/etc/lectern'))).toBe(false);
    expect(existsSync(at('/var/lib/lectern'))).toBe(false);
  });
});
