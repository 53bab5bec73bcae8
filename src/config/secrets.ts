import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { LecternError } from '../util/errors.js';

/**
 * Reads a secret (a camera password, later storage keys) from a file only its owner can read, a
 * systemd credential, or an environment variable. The value never appears in an error or a log
 * line: messages name the file or variable and the fix.
 */
export interface SecretRef {
  file?: string | undefined;
  env?: string | undefined;
}

export function readSecret(ref: SecretRef, opts: { env: NodeJS.ProcessEnv; what: string }): string {
  if (ref.file !== undefined) return readSecretFile(ref.file, opts);
  if (ref.env !== undefined) {
    const value = opts.env[ref.env];
    if (value === undefined || value === '') {
      throw new LecternError('SECRET_UNREADABLE', `${opts.what}: the environment variable ${ref.env} is not set or empty`);
    }
    return value;
  }
  throw new LecternError('SECRET_UNREADABLE', `${opts.what}: no secret file or environment variable is configured`);
}

function readSecretFile(file: string, opts: { env: NodeJS.ProcessEnv; what: string }): string {
  // A bare name is a systemd credential (LoadCredential=); systemd already restricts its mode.
  const credentials = opts.env.CREDENTIALS_DIRECTORY;
  if (!file.includes('/') && credentials) {
    const credential = path.join(credentials, file);
    try {
      return trimNewline(readFileSync(credential, 'utf8'));
    } catch {
      // Not a credential after all: fall through to the plain file rules.
    }
  }
  let mode: number;
  try {
    const st = statSync(file);
    if (!st.isFile()) throw new LecternError('SECRET_UNREADABLE', `${opts.what}: ${file} is not a regular file`);
    mode = st.mode;
  } catch (err) {
    if (err instanceof LecternError) throw err;
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new LecternError('SECRET_UNREADABLE', `${opts.what}: cannot read ${file} (${code})`);
  }
  if ((mode & 0o077) !== 0) {
    throw new LecternError(
      'SECRET_INSECURE',
      `${opts.what}: ${file} can be read by other users (mode ${(mode & 0o777).toString(8).padStart(3, '0')}); run: chmod 600 ${file}`,
    );
  }
  try {
    return trimNewline(readFileSync(file, 'utf8'));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new LecternError('SECRET_UNREADABLE', `${opts.what}: cannot read ${file} (${code})`);
  }
}

function trimNewline(text: string): string {
  return text.replace(/\r?\n$/, '');
}
