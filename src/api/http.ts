import type { IncomingMessage, ServerResponse } from 'node:http';
import { ERROR_CODES, LecternError, type ErrorCode } from '../util/errors.js';

/**
 * The small HTTP vocabulary of the API: JSON replies, errors as `{error: {code, message}}` with a
 * stable code, and reading a JSON body with a size limit. Nothing here knows any route.
 */

/** An error the API answers with `status`; `code` is one of util/errors.ts. */
export class ApiError extends LecternError {
  readonly status: number;

  constructor(status: number, code: ErrorCode, message?: string) {
    super(code, message ?? ERROR_CODES[code]);
    this.status = status;
  }
}

// Pages and JSON alike: no sniffing, no framing by other sites, no referrer leaking the path.
const COMMON_HEADERS = {
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
};

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = `${JSON.stringify(body)}\n`;
  res.writeHead(status, { ...COMMON_HEADERS, 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

export function sendError(res: ServerResponse, err: ApiError, extraHeaders: Record<string, string> = {}): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  for (const [k, v] of Object.entries(extraHeaders)) res.setHeader(k, v);
  sendJson(res, err.status, { error: { code: err.code, message: err.message } });
}

export function sendBody(res: ServerResponse, status: number, contentType: string, body: Buffer | string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { ...COMMON_HEADERS, ...headers, 'content-type': contentType, 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

export const commonHeaders = COMMON_HEADERS;

/**
 * Reads a JSON object body. Only `Content-Type: application/json` is accepted: an HTML form or a
 * `text/plain` fetch from another site cannot send it without a CORS preflight, which this API
 * never grants. The body is cut off at `limitBytes` without reading the rest.
 */
export async function readJsonObject(req: IncomingMessage, limitBytes: number): Promise<Record<string, unknown>> {
  const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
  if (type !== 'application/json') {
    throw new ApiError(415, 'API_UNSUPPORTED_MEDIA_TYPE', `the request body must be JSON with Content-Type: application/json, got ${type ? JSON.stringify(type.slice(0, 60)) : 'no Content-Type'}`);
  }
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limitBytes) throw tooLarge(limitBytes);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limitBytes) throw tooLarge(limitBytes);
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') throw new ApiError(400, 'API_BAD_JSON', 'the request body is empty; send a JSON object, e.g. {}');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new ApiError(400, 'API_BAD_JSON', `the request body is not valid JSON: ${(err as Error).message.slice(0, 120)}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ApiError(400, 'API_INVALID_BODY', `the request body must be a JSON object, got ${Array.isArray(value) ? 'an array' : value === null ? 'null' : typeof value}`);
  }
  return value as Record<string, unknown>;
}

function tooLarge(limitBytes: number): ApiError {
  return new ApiError(413, 'API_BODY_TOO_LARGE', `the request body is larger than ${limitBytes} bytes`);
}
