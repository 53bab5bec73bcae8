import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { createMemoryLogger, silentLogger } from '../../src/log/logger.js';
import { DiskGuard, freeDiskBytes, type StatfsFn } from '../../src/storage/diskSpace.js';
import { LocalLayout } from '../../src/storage/localLayout.js';
import { isLecternError } from '../../src/util/errors.js';

const ID = '01JDQ8ZK4R6W1V7X9Y2B3C4D5E';

function codeOf(fn: () => unknown): string {
  try {
    fn();
    return 'returned';
  } catch (err) {
    return isLecternError(err) ? err.code : `not a LecternError: ${String(err)}`;
  }
}

describe('LocalLayout', () => {
  const layout = new LocalLayout('/var/lib/lectern');

  it('places everything under the data directory', () => {
    expect(layout.dataDir).toBe('/var/lib/lectern');
    expect(layout.dbPath).toBe('/var/lib/lectern/state.db');
    expect(layout.storeDefaultRoot).toBe('/var/lib/lectern/store');
    expect(layout.recordingDir(ID)).toBe(`/var/lib/lectern/recordings/${ID}`);
    expect(layout.packageDir(ID)).toBe(`/var/lib/lectern/packages/${ID}`);
    expect(layout.packageStagingDir(ID)).toBe(`/var/lib/lectern/packages/.${ID}.building`);
  });

  it('numbers run folders from 1, zero-padded to four digits', () => {
    expect(layout.sourceRunDir(ID, 'presenter', 1)).toBe(`/var/lib/lectern/recordings/${ID}/presenter/run-0001`);
    expect(layout.sourceRunDir(ID, 'presenter', 42)).toBe(`/var/lib/lectern/recordings/${ID}/presenter/run-0042`);
    expect(layout.sourceRunDir(ID, 'presenter', 12345)).toBe(`/var/lib/lectern/recordings/${ID}/presenter/run-12345`);
    for (const run of [0, -1, 1.5, Number.NaN]) {
      expect({ run, code: codeOf(() => layout.sourceRunDir(ID, 'presenter', run)) }).toEqual({ run, code: 'INVALID_NAME' });
    }
  });

  it('rejects ids and source names that could leave their folder', () => {
    expect(codeOf(() => layout.recordingDir('../etc'))).toBe('INVALID_NAME');
    expect(codeOf(() => layout.packageDir('a/b'))).toBe('INVALID_NAME');
    expect(codeOf(() => layout.packageStagingDir('..'))).toBe('INVALID_NAME');
    expect(codeOf(() => layout.sourceRunDir(ID, '../other', 1))).toBe('INVALID_NAME');
    expect(codeOf(() => layout.sourceRunDir('', 'presenter', 1))).toBe('INVALID_NAME');
  });

  it('makes a relative data directory absolute', () => {
    const relative = new LocalLayout('lectern-data');
    expect(relative.dataDir).toBe(path.resolve('lectern-data'));
    expect(path.isAbsolute(relative.dbPath)).toBe(true);
  });
});

describe('freeDiskBytes', () => {
  it('multiplies available blocks by the block size', async () => {
    const statfs: StatfsFn = async () => ({ bavail: 1_000, bsize: 4_096 });
    expect(await freeDiskBytes('/data', statfs)).toBe(4_096_000);
  });

  it('measures a path that does not exist yet at its nearest existing ancestor', async () => {
    const asked: string[] = [];
    const statfs: StatfsFn = async (p) => {
      asked.push(p);
      if (p !== '/srv') throw Object.assign(new Error(`ENOENT: ${p}`), { code: 'ENOENT' });
      return { bavail: 10n, bsize: 512n };
    };
    expect(await freeDiskBytes('/srv/lectern/data', statfs)).toBe(5_120);
    expect(asked).toEqual(['/srv/lectern/data', '/srv/lectern', '/srv']);
  });

  it('passes other errors on', async () => {
    const statfs: StatfsFn = async () => {
      throw Object.assign(new Error('EACCES'), { code: 'EACCES' });
    };
    await expect(freeDiskBytes('/srv/x', statfs)).rejects.toThrow('EACCES');
  });

  it('reads a real filesystem', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lectern-'));
    try {
      expect(await freeDiskBytes(path.join(dir, 'not', 'yet'))).toBeGreaterThan(0);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('DiskGuard', () => {
  const GiB = 1024 ** 3;
  const withFree = (bytes: number): StatfsFn => async () => ({ bavail: bytes / 4_096, bsize: 4_096 });

  it('refuses work below the threshold, saying what was refused, in human units', async () => {
    const guard = new DiskGuard({ path: '/data', minFreeBytes: 5 * GiB, logger: silentLogger, statfs: withFree(GiB) });
    const err = await guard.check('a new recording').then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isLecternError(err, 'DISK_LOW')).toBe(true);
    expect((err as Error).message).toBe('refusing a new recording: only 1.0 GiB free on /data, at least 5.0 GiB required');
  });

  it('allows work at or above the threshold', async () => {
    const guard = new DiskGuard({ path: '/data', minFreeBytes: 5 * GiB, logger: silentLogger, statfs: withFree(5 * GiB) });
    await expect(guard.check('a new recording')).resolves.toBeUndefined();
    expect(await guard.freeBytes()).toBe(5 * GiB);
  });

  it('lets work start, with a warning, when free space cannot be measured', async () => {
    const { logger, lines } = createMemoryLogger();
    const statfs: StatfsFn = async () => {
      throw Object.assign(new Error('EIO'), { code: 'EIO' });
    };
    const guard = new DiskGuard({ path: '/data', minFreeBytes: GiB, logger, statfs });
    await expect(guard.check('a new recording')).resolves.toBeUndefined();
    expect(lines.some((l) => l.includes('WARN') && l.includes('cannot measure free space on /data'))).toBe(true);
  });
});
