import type { Logger } from '../log/logger.js';
import { LecternError } from '../util/errors.js';
import { describeUrl, httpRequestWithAuth } from './http.js';
import { envelopeBody, faultError, readFault, SOAP12_NS } from './parse.js';
import { securityHeader } from './wsse.js';

/**
 * SOAP 1.2 over HTTP for ONVIF. The caller builds the operation's body from escaped values
 * (see xml.ts xmlEscape) and parses the reply with parse.ts; this file sends the envelope with
 * the WS-Security token, answers an HTTP Digest challenge when a camera asks for one, and turns
 * HTTP-level trouble into camera errors.
 */

/** SOAP replies larger than this are refused. */
export const MAX_SOAP_REPLY_BYTES = 4 * 1024 * 1024;

export interface SoapCredentials {
  username: string;
  password: string;
  /** The camera's clock minus ours, in ms, for the token's Created. */
  clockOffsetMs: number;
}

export interface SoapRequest {
  url: string;
  /** The operation's namespace, e.g. http://www.onvif.org/ver10/media/wsdl. */
  ns: string;
  /** e.g. GetProfiles. */
  operation: string;
  /** The operation element's content, already escaped. */
  body?: string;
  /** Without credentials the request is sent unauthenticated (GetSystemDateAndTime). */
  credentials?: SoapCredentials;
  timeoutMs: number;
  logger: Logger;
  signal?: AbortSignal;
  now?: () => number;
}

export interface SoapReply {
  /** The reply document, for the parse.ts function of the operation. */
  xml: string;
  /** When the request was sent and the reply had fully arrived (our clock, epoch ms). */
  sentAtMs: number;
  receivedAtMs: number;
}

export function buildEnvelope(req: Pick<SoapRequest, 'ns' | 'operation' | 'body' | 'credentials' | 'now'>): string {
  const header = req.credentials
    ? `<s:Header>${securityHeader({ username: req.credentials.username, password: req.credentials.password, clockOffsetMs: req.credentials.clockOffsetMs, ...(req.now ? { now: req.now } : {}) }, 's')}</s:Header>`
    : '';
  const content = req.body ?? '';
  const op = content === '' ? `<${req.operation} xmlns="${req.ns}"/>` : `<${req.operation} xmlns="${req.ns}">${content}</${req.operation}>`;
  return `<?xml version="1.0" encoding="UTF-8"?><s:Envelope xmlns:s="${SOAP12_NS}" xmlns:tt="http://www.onvif.org/ver10/schema">${header}<s:Body>${op}</s:Body></s:Envelope>`;
}

export async function soapCall(req: SoapRequest): Promise<SoapReply> {
  const now = req.now ?? Date.now;
  let url: URL;
  try {
    url = new URL(req.url);
  } catch {
    throw new LecternError('CAMERA_BAD_REPLY', `${req.operation}: the service address "${req.url}" is not a URL`);
  }
  const body = Buffer.from(buildEnvelope(req), 'utf8');
  const sentAtMs = now();
  const res = await httpRequestWithAuth(
    {
      url,
      method: 'POST',
      headers: { 'content-type': `application/soap+xml; charset=utf-8; action="${req.ns}/${req.operation}"` },
      body,
      timeoutMs: req.timeoutMs,
      maxBytes: MAX_SOAP_REPLY_BYTES,
      what: req.operation,
      ...(req.signal ? { signal: req.signal } : {}),
    },
    req.credentials ? { username: req.credentials.username, password: req.credentials.password } : undefined,
    () => Buffer.from(buildEnvelope(req), 'utf8'),
  );
  const receivedAtMs = now();
  req.logger.debug(`${req.operation} -> HTTP ${res.status}`, { url: describeUrl(url), ms: receivedAtMs - sentAtMs, authenticated: req.credentials !== undefined });
  const xml = res.body.toString('utf8');

  if (res.status === 401) {
    // A SOAP fault in the body may say more; either way the credentials were not accepted.
    const fault = tryFault(xml, req.operation);
    const detail = fault ? ` (${fault.codes.join(' / ')}${fault.reason ? `: ${fault.reason}` : ''})` : '';
    throw new LecternError('CAMERA_AUTH_FAILED', `${req.operation}: ${describeUrl(url)} answered HTTP 401${detail}: the user name or password is wrong, or not allowed to use ONVIF`);
  }
  if (res.status < 200 || res.status >= 300) {
    const fault = tryFault(xml, req.operation);
    if (fault) throw faultError(req.operation, fault);
    throw new LecternError('CAMERA_FAULT', `${req.operation}: ${describeUrl(url)} answered HTTP ${res.status} without a SOAP fault`);
  }
  return { xml, sentAtMs, receivedAtMs };
}

function tryFault(xml: string, operation: string): ReturnType<typeof readFault> {
  if (xml.trim() === '') return undefined;
  try {
    return readFault(envelopeBody(xml, operation));
  } catch {
    return undefined;
  }
}
