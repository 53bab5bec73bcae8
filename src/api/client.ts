import http from 'node:http';
import { ERROR_CODES, LecternError, type ErrorCode } from '../util/errors.js';

/**
 * The small client the CLI uses to talk to a running daemon: JSON over HTTP on loopback or the
 * unix socket. A daemon that is not there is DAEMON_NOT_RUNNING (the CLI gives it its own exit
 * code); an API error comes back as a LecternError with the API's code, message and HTTP status.
 */

export interface ApiClientOptions {
  /** e.g. http://127.0.0.1:8750 */
  baseUrl: string;
  /** When set, requests go to this unix socket instead (the Host header still names baseUrl). */
  socketPath?: string;
  token?: string;
  timeoutMs?: number;
}

const DEFAULT_TIMEOUT_MS = 30_000;
const MAX_REPLY_BYTES = 4 * 1024 * 1024;

export class ApiClient {
  readonly #o: ApiClientOptions;
  readonly #base: URL;

  constructor(options: ApiClientOptions) {
    this.#o = options;
    this.#base = new URL(options.baseUrl);
  }

  /** Where requests go, for messages. */
  get target(): string {
    return this.#o.socketPath ?? this.#base.origin;
  }

  get<T>(path: string): Promise<T> {
    return this.#request<T>('GET', path, undefined);
  }

  post<T>(path: string, body: Record<string, unknown> = {}): Promise<T> {
    return this.#request<T>('POST', path, body);
  }

  #request<T>(method: 'GET' | 'POST', path: string, body: Record<string, unknown> | undefined): Promise<T> {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const headers: Record<string, string> = { host: this.#base.host, accept: 'application/json' };
    if (payload !== undefined) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = String(Buffer.byteLength(payload));
    }
    if (this.#o.token !== undefined) headers.authorization = `Bearer ${this.#o.token}`;
    const where = this.#o.socketPath !== undefined ? { socketPath: this.#o.socketPath } : { hostname: this.#base.hostname.replace(/^\[|\]$/g, ''), port: this.#base.port || 80 };
    return new Promise<T>((resolve, reject) => {
      const req = http.request({ ...where, method, path, headers, timeout: this.#o.timeoutMs ?? DEFAULT_TIMEOUT_MS }, (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > MAX_REPLY_BYTES) req.destroy(new Error('the reply is too large'));
          else chunks.push(c);
        });
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: unknown;
          try {
            json = JSON.parse(text);
          } catch {
            reject(new LecternError('INTERNAL', `${this.target} answered ${method} ${path} with ${res.statusCode ?? '?'} and no JSON; is it a lectern daemon?`));
            return;
          }
          const status = res.statusCode ?? 0;
          if (status >= 200 && status < 300) resolve(json as T);
          else reject(apiError(json, status));
        });
        res.on('error', reject);
      });
      req.on('timeout', () => req.destroy(new LecternError('DAEMON_NOT_RUNNING', `the daemon at ${this.target} did not answer within ${this.#o.timeoutMs ?? DEFAULT_TIMEOUT_MS} ms`)));
      req.on('error', (err: NodeJS.ErrnoException) => {
        if (err instanceof LecternError) reject(err);
        else if (['ECONNREFUSED', 'ENOENT', 'ECONNRESET', 'EHOSTUNREACH', 'EADDRNOTAVAIL'].includes(err.code ?? '')) {
          reject(new LecternError('DAEMON_NOT_RUNNING', `the lectern daemon is not running (nothing answers at ${this.target}); start it with: systemctl start lectern (or lectern daemon)`, { cause: err }));
        } else reject(new LecternError('DAEMON_NOT_RUNNING', `cannot reach the daemon at ${this.target}: ${err.message}`, { cause: err }));
      });
      req.end(payload);
    });
  }
}

function apiError(json: unknown, status: number): LecternError {
  const e = (json as { error?: { code?: unknown; message?: unknown } } | null)?.error;
  const code = typeof e?.code === 'string' && e.code in ERROR_CODES ? (e.code as ErrorCode) : 'INTERNAL';
  const message = typeof e?.message === 'string' ? e.message : `the API answered ${status}`;
  return new LecternError(code, message, { details: { status } });
}
