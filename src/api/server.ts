import { createHash, timingSafeEqual } from 'node:crypto';
import { chmodSync, lstatSync, unlinkSync } from 'node:fs';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../log/logger.js';
import { describeError, isLecternError } from '../util/errors.js';
import { EventStreams } from './events.js';
import { RequestGuard } from './guard.js';
import { ApiError, readJsonObject, sendBody, sendError, sendJson } from './http.js';
import { loadKioskPage, type KioskPage } from './kioskPage.js';
import { METRICS_CONTENT_TYPE, readProcessMemory, renderMetrics, type ApiCounters } from './metrics.js';
import type { ApiBackend } from './types.js';
import { parseEmpty, parseExtend, parseMarker, parsePin, parseStart } from './validate.js';

/**
 * The local HTTP API on node:http: JSON in and out, server-sent events, the kiosk page and
 * Prometheus metrics. Every request passes the guard (Host header, token off loopback, Origin on
 * state changes) before any route runs; state changes are POST with a JSON body only; every body
 * is validated strictly; every failure is a 4xx/5xx with `{error: {code, message}}`, and no request
 * can take the server down (each handler's errors end in that one reply).
 */

export interface ApiServerOptions {
  backend: ApiBackend;
  logger: Logger;
  /** TCP address; default 127.0.0.1. */
  host?: string;
  /** TCP port; 0 picks a free one (tests). */
  port: number;
  /** Also listen on this unix socket (mode 0660: the service user and its group). */
  socketPath?: string;
  /** Bearer token for requests that are not from loopback. */
  token?: string;
  allowedHosts?: readonly string[];
  /** The kiosk PIN; when set, the kiosk asks for it before Record/Stop. */
  kioskPin?: string;
  bodyLimitBytes?: number;
  maxEventClients?: number;
  keepAliveMs?: number;
  /**
   * The peer address of a request. The default is the socket's remote address; tests inject an
   * off-loopback one here because this machine has no second, non-loopback address to use.
   */
  peerAddress?: (req: IncomingMessage) => string | undefined;
  /** The kiosk page (default: src/api/kiosk/index.html). */
  kioskPage?: KioskPage;
}

const DEFAULT_BODY_LIMIT_BYTES = 16 * 1024;
const DEFAULT_MAX_EVENT_CLIENTS = 32;
const DEFAULT_KEEPALIVE_MS = 15_000;
const SNAPSHOT_TIMEOUT_MS = 10_000;
// A 4-digit PIN has 10,000 values: 5 tries a minute makes guessing it take more than a day.
const PIN_TRIES_PER_WINDOW = 5;
const PIN_WINDOW_MS = 60_000;
const CAMERA_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

type Handler = (req: IncomingMessage, res: ServerResponse, params: string[]) => Promise<void> | void;

interface Route {
  method: 'GET' | 'POST';
  pattern: RegExp;
  handler: Handler;
}

export class ApiServer {
  readonly #o: ApiServerOptions;
  readonly #log: Logger;
  readonly #guard: RequestGuard;
  readonly #events: EventStreams;
  readonly #routes: Route[];
  readonly #counters: ApiCounters = { requests: new Map(), sseClients: 0 };
  readonly #kiosk: KioskPage;
  readonly #pinDigest: Buffer | undefined;
  #pinFailures: number[] = [];
  #tcp: http.Server | undefined;
  #unix: http.Server | undefined;
  #port = 0;

  constructor(options: ApiServerOptions) {
    this.#o = options;
    this.#log = options.logger.child({ scope: 'api' });
    this.#guard = new RequestGuard({ port: () => this.#port, allowedHosts: options.allowedHosts ?? [], token: options.token });
    this.#events = new EventStreams({
      subscribe: (l) => options.backend.subscribe(l),
      current: () => options.backend.status(),
      maxClients: options.maxEventClients ?? DEFAULT_MAX_EVENT_CLIENTS,
      keepAliveMs: options.keepAliveMs ?? DEFAULT_KEEPALIVE_MS,
    });
    this.#kiosk = options.kioskPage ?? loadKioskPage();
    this.#pinDigest = options.kioskPin === undefined ? undefined : digest(options.kioskPin);
    this.#routes = this.#buildRoutes();
  }

  /** The TCP port actually listened on. */
  get port(): number {
    return this.#port;
  }

  get url(): string {
    const host = this.#o.host ?? '127.0.0.1';
    return `http://${host.includes(':') ? `[${host}]` : host}:${this.#port}`;
  }

  async start(): Promise<void> {
    this.#events.start();
    const tcp = this.#createServer(false);
    await listen(tcp, (done) => tcp.listen(this.#o.port, this.#o.host ?? '127.0.0.1', done));
    this.#tcp = tcp;
    this.#port = (tcp.address() as AddressInfo).port;
    if (this.#o.socketPath !== undefined) {
      const socketPath = this.#o.socketPath;
      removeStaleSocket(socketPath);
      const unix = this.#createServer(true);
      await listen(unix, (done) => unix.listen(socketPath, done));
      chmodSync(socketPath, 0o660);
      this.#unix = unix;
    }
    this.#log.info(`local API listening on ${this.url}${this.#o.socketPath ? ` and ${this.#o.socketPath}` : ''}`);
  }

  async stop(): Promise<void> {
    this.#events.stop();
    await Promise.all([this.#tcp, this.#unix].filter((s) => s !== undefined).map((s) => close(s)));
    this.#tcp = undefined;
    this.#unix = undefined;
  }

  #createServer(unixSocket: boolean): http.Server {
    const server = http.createServer((req, res) => {
      void this.#handle(req, res, unixSocket);
    });
    server.headersTimeout = 5_000;
    server.requestTimeout = 15_000;
    // A peer that sends garbage instead of HTTP gets a 400 from node and is dropped.
    server.on('clientError', (_err, socket) => {
      if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
      else socket.destroy();
    });
    return server;
  }

  async #handle(req: IncomingMessage, res: ServerResponse, unixSocket: boolean): Promise<void> {
    res.on('finish', () => this.#count(res.statusCode));
    try {
      // Unix socket peers are local processes with rights on the socket file; no browser can
      // reach it, so neither the Host check nor the token applies there.
      if (!unixSocket) {
        this.#guard.checkHost(req.headers.host);
        const peer = this.#o.peerAddress ? this.#o.peerAddress(req) : req.socket.remoteAddress;
        this.#guard.checkAuth(peer, req.headers.authorization);
      }
      const url = new URL(req.url ?? '/', 'http://api.invalid');
      const method = req.method === 'HEAD' ? 'GET' : req.method;
      let pathMatched = false;
      for (const route of this.#routes) {
        const m = route.pattern.exec(url.pathname);
        if (!m) continue;
        pathMatched = true;
        if (route.method !== method) continue;
        if (route.method === 'POST' && !unixSocket) this.#guard.checkOrigin(req.headers.origin);
        await route.handler(req, res, m.slice(1));
        return;
      }
      if (pathMatched) {
        const allowed = this.#routes.filter((r) => r.pattern.test(url.pathname)).map((r) => r.method);
        sendError(res, new ApiError(405, 'API_METHOD_NOT_ALLOWED', `${url.pathname} accepts ${allowed.join(', ')} only${allowed.includes('POST') ? ' (state changes are POST with a JSON body)' : ''}`), {
          allow: allowed.join(', '),
        });
        return;
      }
      throw new ApiError(404, 'API_NOT_FOUND', `no route ${url.pathname.slice(0, 100)}`);
    } catch (err) {
      this.#fail(req, res, err);
    }
  }

  #fail(req: IncomingMessage, res: ServerResponse, err: unknown): void {
    const apiErr = toApiError(err);
    if (apiErr.status >= 500 && apiErr.status !== 501) this.#log.error(`${req.method} ${req.url}: ${describeError(err)}`);
    else this.#log.debug(`${req.method} ${req.url}: ${apiErr.status} ${apiErr.code}`);
    // After a refused body the rest of it is not read: close the connection rather than parse it.
    sendError(res, apiErr, apiErr.status === 413 ? { connection: 'close' } : {});
  }

  #count(status: number): void {
    const key = `${Math.floor(status / 100)}xx`;
    this.#counters.requests.set(key, (this.#counters.requests.get(key) ?? 0) + 1);
  }

  #buildRoutes(): Route[] {
    const b = this.#o.backend;
    const limit = this.#o.bodyLimitBytes ?? DEFAULT_BODY_LIMIT_BYTES;
    const body = (req: IncomingMessage): Promise<Record<string, unknown>> => readJsonObject(req, limit);
    const get = (path: string, handler: Handler): Route => ({ method: 'GET', pattern: new RegExp(`^${path}$`), handler });
    const post = (path: string, handler: Handler): Route => ({ method: 'POST', pattern: new RegExp(`^${path}$`), handler });
    return [
      get('/', (_req, res) => sendBody(res, 200, 'text/html; charset=utf-8', this.#kiosk.html, { 'content-security-policy': this.#kiosk.csp })),
      get('/favicon.ico', (_req, res) => {
        res.writeHead(204).end();
      }),
      get('/api/status', (_req, res) => sendJson(res, 200, b.status())),
      post('/api/record/start', async (req, res) => {
        const request = parseStart(await body(req));
        const result = await b.startRecording(request);
        sendJson(res, result.created ? 201 : 200, result);
      }),
      post('/api/record/stop', async (req, res) => {
        parseEmpty(await body(req));
        sendJson(res, 200, await b.stopRecording());
      }),
      post('/api/record/pause', async (req, res) => {
        parseEmpty(await body(req));
        sendJson(res, 200, await b.pauseRecording());
      }),
      post('/api/record/resume', async (req, res) => {
        parseEmpty(await body(req));
        sendJson(res, 200, await b.resumeRecording());
      }),
      post('/api/record/extend', async (req, res) => {
        const minutes = parseExtend(await body(req));
        sendJson(res, 200, await b.extendRecording(minutes));
      }),
      post('/api/record/marker', async (req, res) => {
        const title = parseMarker(await body(req));
        sendJson(res, 200, await b.addMarker(title));
      }),
      post('/api/kiosk/unlock', async (req, res) => {
        const pin = parsePin(await body(req));
        this.#checkPin(pin);
        sendJson(res, 200, { ok: true });
      }),
      get('/api/cameras', (_req, res) => sendJson(res, 200, { cameras: b.cameras() })),
      get('/api/cameras/([^/]+)/snapshot\\.jpg', async (_req, res, [raw]) => {
        const name = decodeURIComponent(raw ?? '');
        if (!CAMERA_NAME.test(name) || !b.cameras().some((c) => c.name === name)) throw new ApiError(404, 'API_NOT_FOUND', 'no camera by that name');
        const shot = await b.snapshot(name, AbortSignal.timeout(SNAPSHOT_TIMEOUT_MS));
        if (!shot) throw new ApiError(404, 'API_NOT_FOUND', `no picture of ${name} is available now (pictures come from the recording while it runs)`);
        sendBody(res, 200, shot.contentType, shot.body);
      }),
      get('/api/alerts', (_req, res) => sendJson(res, 200, { alerts: b.status().alerts })),
      get('/api/queue', (_req, res) => sendJson(res, 200, b.queue())),
      get('/api/events', (req, res) => {
        if (this.#events.full) throw new ApiError(503, 'API_BUSY', 'too many open event streams; close another kiosk tab');
        this.#events.open(req, res);
        this.#counters.sseClients = this.#events.count;
        res.on('close', () => (this.#counters.sseClients = this.#events.count));
      }),
      get('/metrics', (_req, res) => {
        this.#counters.sseClients = this.#events.count;
        sendBody(res, 200, METRICS_CONTENT_TYPE, renderMetrics(b.status(), this.#counters, readProcessMemory()));
      }),
    ];
  }

  #checkPin(pin: string): void {
    if (this.#pinDigest === undefined) return;
    const now = Date.now();
    this.#pinFailures = this.#pinFailures.filter((t) => now - t < PIN_WINDOW_MS);
    if (this.#pinFailures.length >= PIN_TRIES_PER_WINDOW) throw new ApiError(429, 'PIN_WRONG', 'too many wrong PINs; wait a minute and try again');
    if (!timingSafeEqual(digest(pin), this.#pinDigest)) {
      this.#pinFailures.push(now);
      throw new ApiError(403, 'PIN_WRONG', 'the PIN is wrong');
    }
  }
}

function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  if (isLecternError(err)) {
    switch (err.code) {
      case 'DISK_LOW':
        return new ApiError(507, err.code, err.message);
      case 'RECORDING_ACTIVE':
      case 'RECORDING_NOT_ACTIVE':
      case 'RECORDING_NO_PLANNED_END':
        return new ApiError(409, err.code, err.message);
      case 'RECORDING_END_IN_PAST':
      case 'MARKER_TITLE_INVALID':
        return new ApiError(400, err.code, err.message);
      case 'NOT_IMPLEMENTED':
        return new ApiError(501, err.code, err.message);
      default:
        return new ApiError(500, err.code, err.message);
    }
  }
  if (err instanceof Error && err.name === 'TimeoutError') return new ApiError(504, 'CAMERA_TIMEOUT', 'the camera did not give a picture in time');
  return new ApiError(500, 'INTERNAL', `internal error: ${describeError(err)}`);
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

function listen(server: http.Server, start: (done: () => void) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    start(() => {
      server.off('error', reject);
      resolve();
    });
  });
}

function close(server: http.Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    // Idle keep-alive connections would hold close() open until they time out.
    server.closeAllConnections();
  });
}

/** A socket file left by a killed daemon would make listen() fail with EADDRINUSE. */
function removeStaleSocket(socketPath: string): void {
  try {
    if (lstatSync(socketPath).isSocket()) unlinkSync(socketPath);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}
