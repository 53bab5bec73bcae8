import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/**
 * A fault-injecting HTTP proxy of our own, on 127.0.0.1, in front of a real S3 server (the RGW
 * peer). It forwards requests untouched — Host header included, so SigV4 signatures stay valid —
 * and by per-request rules answers instead of the server, or lets the server act and then lies
 * about the reply, the way real servers and networks rarely but surely do:
 *
 *   status             an S3 error reply (500 InternalError, 503 SlowDown, 403 AccessDenied...)
 *   completeErrorBody  200 OK whose body is an <Error> (CompleteMultipartUpload's documented trap)
 *   forwardThenFail    the server does the work, the client gets an error (a lost reply)
 *   reset              the connection is reset after N bytes of the request body
 *   stall              the reply is held back (the client's idle timeout fires)
 *   slowBody           the reply's body trickles out with pauses
 *
 * In pass-through mode it counts every request body byte it forwards, per request, which is how
 * tests measure what an uploader really sent. Hooks let a test act at an exact point of the
 * exchange (kill the client mid-part, or right after the server confirmed a part).
 */

export type S3Op =
  | 'CreateMultipartUpload'
  | 'UploadPart'
  | 'CompleteMultipartUpload'
  | 'AbortMultipartUpload'
  | 'ListParts'
  | 'ListMultipartUploads'
  | 'PutObject'
  | 'GetObject'
  | 'HeadObject'
  | 'DeleteObject'
  | 'ListObjectsV2'
  | 'HeadBucket'
  | 'Other';

export interface ProxiedRequest {
  /** 1, 2, 3... in arrival order. */
  seq: number;
  method: string;
  path: string;
  query: URLSearchParams;
  op: S3Op;
  /** For UploadPart. */
  partNumber?: number;
  /** Request body bytes forwarded to the server so far. */
  forwardedBytes: number;
  /** The status the client was sent (undefined until then). */
  status?: number;
  /** The fault applied, if any. */
  fault?: Fault['kind'];
}

export type Fault =
  | { kind: 'status'; status: number; code: string; message?: string; headers?: Record<string, string>; extraXml?: string }
  | { kind: 'completeErrorBody'; code?: string; trailing?: string }
  | { kind: 'forwardThenFail'; status: number; code: string }
  | { kind: 'reset'; afterBodyBytes: number }
  | { kind: 'stall'; ms: number }
  | { kind: 'slowBody'; chunkBytes: number; pauseMs: number };

export interface FaultRule {
  op?: S3Op;
  match?: (req: ProxiedRequest) => boolean;
  fault: Fault;
  /** How many matching requests get the fault (default 1). */
  times?: number;
}

export interface FaultProxy {
  /** http://127.0.0.1:PORT */
  endpoint: string;
  /** Every request seen, in order. */
  readonly requests: ProxiedRequest[];
  /** Rules are tried in the order added; a used-up rule no longer matches. */
  addRule(rule: FaultRule): void;
  clearRules(): void;
  /** Rules not yet used up. */
  pendingRules(): number;
  /**
   * Called for every request body chunk before it is forwarded; returning 'drop' cuts the
   * exchange at once (nothing more reaches the server, the client's connection is destroyed).
   */
  onRequestBody?: (req: ProxiedRequest, chunkBytes: number) => 'drop' | void;
  /** Awaited after the server answered, before the client hears; 'drop' cuts the exchange. */
  beforeReply?: (req: ProxiedRequest, upstreamStatus: number) => Promise<'drop' | void> | 'drop' | void;
  /** Sum of forwarded request body bytes, optionally only of one operation. */
  forwardedBytes(op?: S3Op): number;
  close(): Promise<void>;
}

export function s3ErrorXml(code: string, message = code, extraXml = ''): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message>${extraXml}<RequestId>fault-proxy</RequestId></Error>`;
}

function operationOf(method: string, pathname: string, query: URLSearchParams): S3Op {
  const hasKey = pathname.replace(/^\/+/, '').includes('/');
  if (method === 'POST' && query.has('uploads')) return 'CreateMultipartUpload';
  if (method === 'POST' && query.has('uploadId')) return 'CompleteMultipartUpload';
  if (method === 'PUT' && query.has('partNumber') && query.has('uploadId')) return 'UploadPart';
  if (method === 'PUT' && hasKey) return 'PutObject';
  if (method === 'DELETE' && query.has('uploadId')) return 'AbortMultipartUpload';
  if (method === 'DELETE' && hasKey) return 'DeleteObject';
  if (method === 'GET' && query.has('uploadId')) return 'ListParts';
  if (method === 'GET' && query.has('uploads')) return 'ListMultipartUploads';
  if (method === 'GET' && query.get('list-type') === '2') return 'ListObjectsV2';
  if (method === 'GET' && hasKey) return 'GetObject';
  if (method === 'HEAD' && hasKey) return 'HeadObject';
  if (method === 'HEAD') return 'HeadBucket';
  return 'Other';
}

export async function startFaultProxy(upstream: string): Promise<FaultProxy> {
  const target = new URL(upstream);
  const rules: Array<FaultRule & { left: number }> = [];
  const requests: ProxiedRequest[] = [];
  const sockets = new Set<Socket>();
  let seq = 0;

  const take = (req: ProxiedRequest): Fault | undefined => {
    for (const rule of rules) {
      if (rule.left <= 0) continue;
      if (rule.op !== undefined && rule.op !== req.op) continue;
      if (rule.match && !rule.match(req)) continue;
      rule.left--;
      return rule.fault;
    }
    return undefined;
  };

  const cut = (clientReq: IncomingMessage, upstreamReq?: ReturnType<typeof httpRequest>): void => {
    upstreamReq?.destroy();
    clientReq.socket.resetAndDestroy();
  };

  const replyError = (res: ServerResponse, r: ProxiedRequest, status: number, code: string, opts: { message?: string; headers?: Record<string, string>; extraXml?: string } = {}): void => {
    const body = s3ErrorXml(code, opts.message ?? code, opts.extraXml ?? '');
    r.status = status;
    res.writeHead(status, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(body), 'x-amz-request-id': 'fault-proxy', ...(opts.headers ?? {}) });
    res.end(r.method === 'HEAD' ? undefined : body);
  };

  const proxy: FaultProxy = {
    endpoint: '',
    requests,
    addRule: (rule) => rules.push({ ...rule, left: rule.times ?? 1 }),
    clearRules: () => void rules.splice(0),
    pendingRules: () => rules.filter((r) => r.left > 0).length,
    forwardedBytes: (op) => requests.filter((r) => op === undefined || r.op === op).reduce((sum, r) => sum + r.forwardedBytes, 0),
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };

  const server: Server = createServer((clientReq, res) => {
    const url = new URL(clientReq.url ?? '/', 'http://proxy');
    const method = clientReq.method ?? 'GET';
    const op = operationOf(method, url.pathname, url.searchParams);
    const partNumber = url.searchParams.get('partNumber');
    const r: ProxiedRequest = { seq: ++seq, method, path: url.pathname, query: url.searchParams, op, forwardedBytes: 0, ...(partNumber ? { partNumber: Number(partNumber) } : {}) };
    requests.push(r);
    const fault = take(r);
    if (fault) r.fault = fault.kind;

    // Faults answered by the proxy alone: the request body is read and thrown away.
    if (fault?.kind === 'status' || fault?.kind === 'completeErrorBody') {
      clientReq.resume();
      clientReq.once('end', () => {
        if (fault.kind === 'status') {
          replyError(res, r, fault.status, fault.code, fault);
          return;
        }
        const body = `<?xml version="1.0" encoding="UTF-8"?>\n\n${s3ErrorXml(fault.code ?? 'InternalError', 'We encountered an internal error. Please try again.').replace(/^<\?xml[^>]*>\n/, '')}${fault.trailing ?? ''}`;
        r.status = 200;
        res.writeHead(200, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(body) });
        res.end(body);
      });
      return;
    }

    const headers = { ...clientReq.headers };
    const upstreamReq = httpRequest({ host: target.hostname, port: target.port, method, path: clientReq.url, headers });
    let dropped = false;
    const drop = (): void => {
      if (dropped) return;
      dropped = true;
      cut(clientReq, upstreamReq);
    };
    upstreamReq.on('error', () => {
      if (!dropped) drop();
    });
    clientReq.on('error', () => drop());
    clientReq.on('data', (chunk: Buffer) => {
      if (dropped) return;
      let data = chunk;
      if (fault?.kind === 'reset' && r.forwardedBytes + data.length >= fault.afterBodyBytes) {
        data = data.subarray(0, Math.max(0, fault.afterBodyBytes - r.forwardedBytes));
        if (data.length > 0) upstreamReq.write(data);
        r.forwardedBytes += data.length;
        drop();
        return;
      }
      r.forwardedBytes += data.length;
      if (proxy.onRequestBody?.(r, data.length) === 'drop') {
        r.forwardedBytes -= data.length;
        drop();
        return;
      }
      if (!upstreamReq.write(data)) {
        clientReq.pause();
        upstreamReq.once('drain', () => clientReq.resume());
      }
    });
    clientReq.on('end', () => {
      if (!dropped) upstreamReq.end();
    });

    upstreamReq.on('response', (upstreamRes) => {
      void (async () => {
        if (dropped) {
          upstreamRes.resume();
          return;
        }
        const verdict = await proxy.beforeReply?.(r, upstreamRes.statusCode ?? 0);
        if (verdict === 'drop') {
          upstreamRes.resume();
          drop();
          return;
        }
        if (fault?.kind === 'forwardThenFail') {
          // The server did the work; its reply is lost and the client hears an error instead.
          upstreamRes.resume();
          upstreamRes.once('end', () => replyError(res, r, fault.status, fault.code));
          return;
        }
        if (fault?.kind === 'stall') await new Promise((resolve) => setTimeout(resolve, fault.ms));
        if (res.destroyed || clientReq.socket.destroyed) {
          upstreamRes.resume();
          return;
        }
        r.status = upstreamRes.statusCode ?? 502;
        res.writeHead(r.status, upstreamRes.headers);
        if (fault?.kind === 'slowBody') {
          for await (const chunk of upstreamRes) {
            const buf = chunk as Buffer;
            for (let at = 0; at < buf.length; at += fault.chunkBytes) {
              if (res.destroyed) break;
              res.write(buf.subarray(at, at + fault.chunkBytes));
              await new Promise((resolve) => setTimeout(resolve, fault.pauseMs));
            }
          }
          res.end();
          return;
        }
        upstreamRes.pipe(res);
      })().catch(() => drop());
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  proxy.endpoint = `http://127.0.0.1:${port}`;
  return proxy;
}
