import { access } from 'node:fs/promises';

/**
 * Whether a path can be reached, following symlinks: a dangling link (an unplugged device under
 * /dev/v4l/by-id/, a sound card gone from /proc/asound) does not exist.
 */
export async function pathExists(p: string): Promise<boolean> {
  try {
    await access(p);
    return true;
  } catch {
    return false;
  }
}
