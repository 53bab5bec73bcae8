import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SHUTDOWN_DEADLINE_MS } from '../../src/agent/shutdown.js';
import { DEFAULT_STOP_LADDER } from '../../src/ffmpeg/process.js';
import { LECTERN_BIN, ROOT } from '../helpers/cli.js';
import { makeTmpDir } from '../helpers/tmp.js';

// The shipped unit, checked by systemd's own tools (systemd 252 from Debian): it must parse
// without a single warning and score at most 2.0 in `systemd-analyze security`.

const UNIT = path.join(ROOT, 'systemd/lectern.service');
const INSTALLED_BIN = '/opt/lectern/bin/lectern';
const MAX_EXPOSURE = 2.0;

/** Every value of `key=` in the unit, in order (systemd allows repeated keys). */
function directive(text: string, key: string): string[] {
  return [...text.matchAll(new RegExp(`^${key}=(.*)$`, 'gm'))].map((m) => (m[1] as string).trim());
}

/** A systemd time span such as "75s", "3min" or "1min 30s", in ms. */
function timeSpanMs(value: string): number {
  const units: Record<string, number> = { ms: 1, s: 1000, sec: 1000, min: 60_000, m: 60_000, h: 3_600_000 };
  let total = 0;
  for (const m of value.matchAll(/(\d+(?:\.\d+)?)\s*([a-z]*)/g)) total += Number(m[1]) * (units[m[2] || 's'] ?? Number.NaN);
  return total;
}

describe('systemd/lectern.service', () => {
  let tmp: ReturnType<typeof makeTmpDir>;
  const text = readFileSync(UNIT, 'utf8');
  beforeEach(() => {
    tmp = makeTmpDir();
  });
  afterEach(() => tmp.cleanup());

  it('passes systemd-analyze verify without a warning, with ExecStart at a real lectern binary', () => {
    // verify checks that ExecStart is executable; /opt/lectern exists only after install.sh, so a
    // copy points at this checkout's bin/lectern. Nothing else is changed.
    expect(text).toContain(`ExecStart=${INSTALLED_BIN} daemon`);
    const copy = path.join(tmp.dir, 'lectern.service');
    writeFileSync(copy, text.replace(INSTALLED_BIN, LECTERN_BIN));
    const res = spawnSync('systemd-analyze', ['verify', copy], { encoding: 'utf8' });
    // verify exits 0 even for unknown keys and unparsable values; those are warnings on stderr.
    expect(res.stderr).toBe('');
    expect(res.status).toBe(0);

    // The check is not vacuous: a misspelt directive in the same copy is reported.
    writeFileSync(copy, text.replace(INSTALLED_BIN, LECTERN_BIN).replace('ProtectHome=yes', 'ProtectHome=yess'));
    const broken = spawnSync('systemd-analyze', ['verify', copy], { encoding: 'utf8' });
    expect(broken.stderr).toMatch(/ProtectHome|protect home/i);
  });

  it(`scores at most ${MAX_EXPOSURE} in systemd-analyze security --offline=true`, () => {
    const res = spawnSync('systemd-analyze', ['security', '--offline=true', '--no-pager', UNIT], { encoding: 'utf8' });
    const match = /Overall exposure level for lectern\.service: (\d+(?:\.\d+)?)/.exec(res.stdout);
    expect(match, res.stdout + res.stderr).not.toBeNull();
    const exposure = Number(match?.[1]);
    console.log(`systemd-analyze security exposure: ${exposure}`);
    expect(exposure).toBeLessThanOrEqual(MAX_EXPOSURE);
  });

  it('is Type=notify with a watchdog, and keeps V8 alive (no MemoryDenyWriteExecute)', () => {
    expect(directive(text, 'Type')).toEqual(['notify']);
    // The notifications come from a systemd-notify child (src/agent/systemd.ts): "main" would drop them.
    expect(directive(text, 'NotifyAccess')).toEqual(['all']);
    expect(timeSpanMs(directive(text, 'WatchdogSec')[0] ?? '')).toBeGreaterThanOrEqual(10_000);
    expect(directive(text, 'Restart')).toEqual(['always']);
    expect(directive(text, 'MemoryDenyWriteExecute')).toEqual([]);
    expect(directive(text, 'ProtectSystem')).toEqual(['strict']);
    expect(directive(text, 'ProtectProc')).toEqual(['invisible']);
    expect(directive(text, 'CapabilityBoundingSet')).toEqual(['']);
    expect(directive(text, 'RestrictAddressFamilies')).toEqual(['AF_UNIX AF_INET AF_INET6 AF_NETLINK']);
    expect(directive(text, 'User')).toEqual(['lectern']);
  });

  it('gives the daemon longer to stop than its own shutdown deadline and the ffmpeg stop ladder', () => {
    expect(directive(text, 'KillMode')).toEqual(['mixed']);
    const stopMs = timeSpanMs(directive(text, 'TimeoutStopSec')[0] ?? '');
    const ladderMs = DEFAULT_STOP_LADDER.quitGraceMs + DEFAULT_STOP_LADDER.interruptGraceMs;
    // The daemon exits by its installShutdown deadline at the latest (src/agent/shutdown.ts);
    // systemd must not SIGKILL it before that, or a lecture's last segment can be cut.
    expect(stopMs).toBeGreaterThan(ladderMs);
    expect(SHUTDOWN_DEADLINE_MS).toBeGreaterThan(ladderMs);
    expect(stopMs).toBeGreaterThan(SHUTDOWN_DEADLINE_MS);
  });
});
