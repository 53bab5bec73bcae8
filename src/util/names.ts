import { LecternError } from './errors.js';

/**
 * Names that become path segments (site, room, source, rendition) are restricted so that a
 * config value or API field can never escape its directory or produce an odd storage key.
 */
const SAFE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export function isSafeName(name: string): boolean {
  return SAFE_NAME.test(name) && !name.includes('..');
}

export function assertSafeName(name: string, what: string): string {
  if (!isSafeName(name)) {
    throw new LecternError('INVALID_NAME', `${what} "${name}" must be 1-64 characters of letters, digits, '.', '_' or '-' and start with a letter or digit`);
  }
  return name;
}
