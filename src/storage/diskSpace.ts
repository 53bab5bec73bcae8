import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { Logger } from '../log/logger.js';
import { LecternError } from '../util/errors.js';
import { formatBytes } from '../util/units.js';

/** The two fields of statfs(2) that matter here; numbers or bigints as Node returns them. */
export interface StatfsResult {
  bavail: number | bigint;
  bsize: number | bigint;
}

export type StatfsFn = (path: string) => Promise<StatfsResult>;

const defaultStatfs: StatfsFn = (p) => fs.statfs(p);

/**
 * Bytes available to an unprivileged process on the filesystem holding `target` (bavail, not
 * bfree: the root-reserved blocks are no use to the daemon). A path that does not exist yet,
 * such as a data directory before the first start, is measured at its nearest existing ancestor.
 */
export async function freeDiskBytes(target: string, statfs: StatfsFn = defaultStatfs): Promise<number> {
  let current = path.resolve(target);
  for (;;) {
    try {
      const st = await statfs(current);
      return Number(st.bavail) * Number(st.bsize);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException | null)?.code;
      const parent = path.dirname(current);
      if ((code !== 'ENOENT' && code !== 'ENOTDIR') || parent === current) throw err;
      current = parent;
    }
  }
}

export interface DiskGuardOptions {
  path: string;
  minFreeBytes: number;
  logger: Logger;
  /** Injectable for tests. */
  statfs?: StatfsFn;
}

/**
 * Refuses new work (a recording, a package build) when free space is below the threshold, so a
 * lecture stops gracefully instead of dying on ENOSPC halfway through.
 */
export class DiskGuard {
  readonly #o: DiskGuardOptions;
  readonly #log: Logger;

  constructor(options: DiskGuardOptions) {
    this.#o = options;
    this.#log = options.logger.child({ scope: 'disk' });
  }

  freeBytes(): Promise<number> {
    return freeDiskBytes(this.#o.path, this.#o.statfs);
  }

  /** Throws DISK_LOW when less than minFreeBytes are free; `what` names the refused work. */
  async check(what: string): Promise<void> {
    let free: number;
    try {
      free = await this.freeBytes();
    } catch (err) {
      // A guard that cannot measure must not cost a teacher the lecture: let the work start and
      // rely on the recorder's own handling of a full disk.
      this.#log.warn(`cannot measure free space on ${this.#o.path}; allowing ${what} anyway`, { error: err });
      return;
    }
    if (free < this.#o.minFreeBytes) {
      throw new LecternError(
        'DISK_LOW',
        `refusing ${what}: only ${formatBytes(free)} free on ${this.#o.path}, at least ${formatBytes(this.#o.minFreeBytes)} required`,
        { details: { freeBytes: free, minFreeBytes: this.#o.minFreeBytes, path: this.#o.path } },
      );
    }
  }
}
