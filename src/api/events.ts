import type { IncomingMessage, ServerResponse } from 'node:http';
import { commonHeaders } from './http.js';
import type { AgentStatus } from './types.js';

/**
 * Server-sent events: each kiosk keeps one stream open and gets the whole status as an `status`
 * event whenever it changes (about once a second while recording, which carries the audio level),
 * plus a comment line every `keepAliveMs` so proxies and dead peers are noticed.
 */

export interface EventStreamsOptions {
  subscribe: (listener: (status: AgentStatus) => void) => () => void;
  current: () => AgentStatus;
  maxClients: number;
  keepAliveMs: number;
}

// The browser reconnects after this long when the stream drops (daemon restarted).
const RETRY_MS = 2_000;

export class EventStreams {
  readonly #o: EventStreamsOptions;
  readonly #clients = new Set<ServerResponse>();
  #unsubscribe: (() => void) | undefined;
  #keepAlive: NodeJS.Timeout | undefined;

  constructor(options: EventStreamsOptions) {
    this.#o = options;
  }

  get count(): number {
    return this.#clients.size;
  }

  get full(): boolean {
    return this.#clients.size >= this.#o.maxClients;
  }

  start(): void {
    this.#unsubscribe = this.#o.subscribe((status) => this.#broadcast('status', status));
    this.#keepAlive = setInterval(() => {
      for (const res of this.#clients) res.write(': keep-alive\n\n');
    }, this.#o.keepAliveMs);
    this.#keepAlive.unref();
  }

  /** Takes over the response; the stream lasts until the client goes or stop() is called. */
  open(req: IncomingMessage, res: ServerResponse): void {
    res.writeHead(200, {
      ...commonHeaders,
      'content-type': 'text/event-stream; charset=utf-8',
      connection: 'keep-alive',
      // Stops nginx-style proxies from buffering the stream.
      'x-accel-buffering': 'no',
    });
    res.write(`retry: ${RETRY_MS}\n\n`);
    this.#clients.add(res);
    const drop = (): void => {
      this.#clients.delete(res);
    };
    req.on('close', drop);
    res.on('close', drop);
    res.on('error', drop);
    this.#send(res, 'status', this.#o.current());
  }

  stop(): void {
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
    if (this.#keepAlive) clearInterval(this.#keepAlive);
    for (const res of this.#clients) res.end();
    this.#clients.clear();
  }

  #broadcast(event: string, data: unknown): void {
    for (const res of this.#clients) this.#send(res, event, data);
  }

  #send(res: ServerResponse, event: string, data: unknown): void {
    // JSON.stringify never emits a raw newline, so one data line holds the whole event.
    res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  }
}
