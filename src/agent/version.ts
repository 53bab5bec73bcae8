import { readFileSync } from 'node:fs';

/** The package version, read once from package.json (two levels above both src/agent and dist/agent). */
export function readVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : '0.0.0';
  } catch {
    // A broken install still records lectures; the manifest then says 0.0.0.
    return '0.0.0';
  }
}
