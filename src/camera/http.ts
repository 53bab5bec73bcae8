import http, { type IncomingHttpHeaders } from 'node:http';
import https from 'node:https';
import { LecternError } from '../util/errors.js';
import { authorizationHeader, parseWwwAuthenticate, pickChallenge } from './digestAuth.js';

/**
 * One HTTP exchange with a camera: a fresh connection (camera firmwares mishandle keep-alive),
 * one deadline for the whole exchange (connect, request, reply), a cap on the reply size, and
 * network errors turned into CAMERA_UNREACHABLE / CAMERA_TIMEOUT with the host named and no
 * credentials or query strings in the message.
 */

export interface HttpRequest {
  url: URL;
  method: 'GET' | 'POST';
  headers?: Record<string, string>;
  body?: Buffer;
  timeoutMs: number;
  maxBytes: number;
  /** What is being asked, for error messages ("GetProfiles", "the snapshot"). */
  what: string;
  signal?: AbortSignal;
}

export interface HttpResponse {
  status: number;
  headers: IncomingHttpHeaders;
  wwwAuthenticate: string[];
  body: Buffer;
}

const UNREACHABLE_CODES = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'ECONNRESET', 'EPIPE', 'ECONNABORTED', 'EADDRNOTAVAIL']);

/** The URL without credentials or query, for messages. */
export function describeUrl(url: URL): string {
  return `${url.protocol}//${url.host}${url.pathname}`;
}

export function httpRequest(req: HttpRequest): Promise<HttpResponse> {
  const where = describeUrl(req.url);
  return new Promise<HttpResponse>((resolve, reject) => {
    if (req.signal?.aborted) {
      reject(req.signal.reason);
      return;
    }
    const transport = req.url.protocol === 'https:' ? https : http;
    let settled = false;
    const finish = (err: unknown, res?: HttpResponse): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.signal?.removeEventListener('abort', onAbort);
      if (err !== undefined) reject(err);
      else resolve(res as HttpResponse);
    };
    const request = transport.request(
      req.url,
      {
        method: req.method,
        agent: false,
        headers: { ...req.headers, ...(req.body ? { 'content-length': String(req.body.length) } : {}), connection: 'close' },
      },
      (res) => {
        const chunks: Buffer[] = [];
        let bytes = 0;
        res.on('data', (chunk: Buffer) => {
          bytes += chunk.length;
          if (bytes > req.maxBytes) {
            request.destroy();
            finish(new LecternError('CAMERA_BAD_REPLY', `${req.what}: the reply from ${where} is larger than ${req.maxBytes} bytes`));
            return;
          }
          chunks.push(chunk);
        });
        res.on('end', () =>
          finish(undefined, {
            status: res.statusCode ?? 0,
            headers: res.headers,
            wwwAuthenticate: res.headersDistinct['www-authenticate'] ?? [],
            body: Buffer.concat(chunks),
          }),
        );
        res.on('error', (err) => finish(networkError(err, req.what, where)));
        res.on('close', () => {
          if (!res.complete) finish(new LecternError('CAMERA_UNREACHABLE', `${req.what}: ${where} closed the connection in the middle of its reply`));
        });
      },
    );
    const timer = setTimeout(() => {
      finish(new LecternError('CAMERA_TIMEOUT', `${req.what}: no complete answer from ${where} within ${req.timeoutMs} ms`));
      request.destroy();
    }, req.timeoutMs);
    const onAbort = (): void => {
      finish(req.signal?.reason);
      request.destroy();
    };
    req.signal?.addEventListener('abort', onAbort, { once: true });
    request.on('error', (err) => finish(networkError(err, req.what, where)));
    request.end(req.body);
  });
}

function networkError(err: unknown, what: string, where: string): LecternError {
  const code = (err as NodeJS.ErrnoException).code ?? '';
  if (UNREACHABLE_CODES.has(code) || code === '') {
    return new LecternError('CAMERA_UNREACHABLE', `${what}: cannot reach ${where} (${code || (err instanceof Error ? err.message : String(err))})`, { cause: err });
  }
  if (code === 'ETIMEDOUT') return new LecternError('CAMERA_TIMEOUT', `${what}: ${where} did not answer (ETIMEDOUT)`, { cause: err });
  return new LecternError('CAMERA_UNREACHABLE', `${what}: request to ${where} failed (${code})`, { cause: err });
}

export interface HttpCredentials {
  username: string;
  password: string;
}

/**
 * Sends the request; when the camera answers 401 with a challenge we can meet, answers it once.
 * The caller sees the final response (a second 401 means the credentials are wrong).
 */
export async function httpRequestWithAuth(
  req: HttpRequest,
  credentials: HttpCredentials | undefined,
  /** A fresh body for the second request (a SOAP envelope must not repeat its WS-Security nonce). */
  bodyForRetry?: () => Buffer,
): Promise<HttpResponse & { authScheme?: string }> {
  const first = await httpRequest(req);
  if (first.status !== 401 || !credentials) return first;
  const challenge = pickChallenge(parseWwwAuthenticate(first.wwwAuthenticate));
  if (!challenge) return first;
  const body = bodyForRetry ? bodyForRetry() : req.body;
  const authorization = authorizationHeader(challenge, {
    username: credentials.username,
    password: credentials.password,
    method: req.method,
    uri: `${req.url.pathname}${req.url.search}`,
    ...(body ? { body } : {}),
  });
  const second = await httpRequest({ ...req, ...(body ? { body } : {}), headers: { ...req.headers, authorization } });
  return { ...second, authScheme: challenge.scheme };
}
