import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { LecternError } from '../util/errors.js';

/**
 * Reads a secret (a camera password, a storage key) from a file only its owner can read, a
 * systemd credential, or an environment variable. The value never appears in an error or a log
 * line: messages name the file or variable and the fix, nothing else.
 */

/** Where a secret comes from; the configuration schema allows one of the two. */
export interface SecretRef {
  file?: string | undefined;
  env?: string | undefined;
}

export function readSecret(ref: SecretRef, opts: { env: NodeJS.ProcessEnv; what: string }): string {
  if (ref.file !== undefined) return readSecretFile(ref.file, opts);
  if (ref.env !== undefined) {
    const value = opts.env[ref.env];
    if (value === undefined || value === '') {
      throw new LecternError('SECRET_UNREADABLE', `${opts.what}: the environment variable ${ref.env} is not set or empty`, { details: { env: ref.env } });
    }
    return value;
  }
  throw new LecternError('SECRET_UNREADABLE', `${opts.what}: no secret file or environment variable is configured`);
}

function readSecretFile(file: string, opts: { env: NodeJS.ProcessEnv; what: string }): string {
  // A bare name may be a systemd credential (LoadCredential=); systemd already restricts its mode.
  const credentials = opts.env.CREDENTIALS_DIRECTORY;
  if (!file.includes('/') && credentials) {
    const credential = path.join(credentials, file);
    const value = readOrMissing(credential, opts.what);
    if (value !== undefined) return nonEmpty(value, credential, opts.what);
  }

  let mode: number;
  try {
    const st = statSync(file);
    // A FIFO or device would block or stream; a directory is a typo.
    if (!st.isFile()) throw new LecternError('SECRET_UNREADABLE', `${opts.what}: ${file} is not a regular file`, { details: { file } });
    mode = st.mode;
  } catch (err) {
    if (err instanceof LecternError) throw err;
    throw unreadable(file, opts.what, err);
  }
  if ((mode & 0o077) !== 0) {
    throw new LecternError(
      'SECRET_INSECURE',
      `${opts.what}: ${file} can be read by other users (mode ${(mode & 0o777).toString(8).padStart(3, '0')}); run: chmod 600 ${file}`,
      { details: { file } },
    );
  }
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw unreadable(file, opts.what, err);
  }
  return nonEmpty(trimNewline(text), file, opts.what);
}

/** The file's text, or undefined when it does not exist (a bare name that is not a credential). */
function readOrMissing(file: string, what: string): string | undefined {
  try {
    return trimNewline(readFileSync(file, 'utf8'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw unreadable(file, what, err);
  }
}

// Editors and `echo` add one newline; anything else is part of the secret.
function trimNewline(text: string): string {
  return text.replace(/\r?\n$/, '');
}

function nonEmpty(value: string, file: string, what: string): string {
  if (value === '') throw new LecternError('SECRET_UNREADABLE', `${what}: ${file} is empty`, { details: { file } });
  return value;
}

function unreadable(file: string, what: string, err: unknown): LecternError {
  const code = (err as NodeJS.ErrnoException).code ?? 'error';
  const hint = code === 'EACCES' ? ' (the service user must own it: chown it to that user, then chmod 600)' : '';
  return new LecternError('SECRET_UNREADABLE', `${what}: cannot read ${file} (${code})${hint}`, { details: { file } });
}
