import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { API_DEFAULT_HOST, API_DEFAULT_PORT } from './apiDefaults.js';
import { DEFAULT_CONFIG_PATH } from './paths.js';

/**
 * Where the running daemon's API is, read without the full configuration schema: `lectern status`
 * and `lectern record` only need the address, and loading the schema (zod) was most of their
 * start-up time. The file is chosen exactly as loadConfig chooses it. Anything unexpected in the
 * `api` section returns undefined, and the caller falls back to the full load, which explains the
 * problem with its path.
 */
export interface ApiEndpoint {
  host: string;
  port: number;
  socketPath?: string;
}

export async function readApiEndpoint(opts: { path?: string | undefined; env: NodeJS.ProcessEnv; cwd: string }): Promise<ApiEndpoint | undefined> {
  const explicit = opts.path ?? (opts.env.LECTERN_CONFIG ? opts.env.LECTERN_CONFIG : undefined);
  const file = explicit ?? (existsSync(DEFAULT_CONFIG_PATH) ? DEFAULT_CONFIG_PATH : undefined);
  if (file === undefined) return { host: API_DEFAULT_HOST, port: API_DEFAULT_PORT };
  const source = path.resolve(opts.cwd, file);
  let raw: unknown;
  try {
    const { parse } = await import('yaml');
    raw = parse(readFileSync(source, 'utf8'));
  } catch {
    return undefined;
  }
  if (raw === null || raw === undefined) return { host: API_DEFAULT_HOST, port: API_DEFAULT_PORT };
  if (!isMapping(raw)) return undefined;
  const api = raw.api ?? {};
  if (api === null) return { host: API_DEFAULT_HOST, port: API_DEFAULT_PORT };
  if (!isMapping(api)) return undefined;
  const host = api.host ?? API_DEFAULT_HOST;
  const port = api.port ?? API_DEFAULT_PORT;
  const socketPath = api.socketPath;
  if (typeof host !== 'string' || host === '' || !Number.isInteger(port) || (port as number) < 1 || (port as number) > 65535) return undefined;
  if (socketPath !== undefined && socketPath !== null && (typeof socketPath !== 'string' || socketPath === '')) return undefined;
  return {
    host,
    port: port as number,
    ...(typeof socketPath === 'string' ? { socketPath: path.resolve(path.dirname(source), socketPath) } : {}),
  };
}

function isMapping(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
