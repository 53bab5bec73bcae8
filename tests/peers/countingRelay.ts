import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';

/**
 * A TCP relay of our own that counts the bytes clients send through it, with a timeline, so a
 * test measures an upload's rate where the bytes arrive, not where the uploader says it sent
 * them. It listens on 127.0.0.1 (or a unix socket, the end of a link into a network namespace)
 * and forwards to a TCP upstream on 127.0.0.1 — or, with `sink`, swallows what it gets and
 * answers each HTTP request with 200 once its body is in (a foreground transfer's receiver).
 */

export interface CountingRelay {
  /** TCP port on 127.0.0.1, when listening on TCP. */
  port: number;
  /** The unix socket, when listening on one. */
  socketPath: string | undefined;
  /** Client-to-upstream bytes so far. */
  bytesIn(): number;
  /** Client-to-upstream bytes between two moments, from the timeline (epoch ms). */
  bytesBetween(fromMs: number, toMs: number): number;
  close(): Promise<void>;
}

export async function startCountingRelay(opts: { listen: { port: 0 } | { path: string }; upstream: { host: string; port: number } | 'httpSink' }): Promise<CountingRelay> {
  let total = 0;
  // Cumulative bytes at each arrival, coarsened to 20 ms steps: enough to cut a window anywhere.
  const timeline: { atMs: number; total: number }[] = [];
  const sockets = new Set<Socket>();
  const count = (n: number): void => {
    total += n;
    const now = Date.now();
    const last = timeline.at(-1);
    if (last && now - last.atMs < 20) last.total = total;
    else timeline.push({ atMs: now, total });
  };
  const server: Server = createServer((client) => {
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    client.on('error', () => client.destroy());
    if (opts.upstream === 'httpSink') {
      sinkHttp(client, count);
      return;
    }
    const upstream = connect(opts.upstream.port, opts.upstream.host);
    sockets.add(upstream);
    upstream.on('close', () => {
      sockets.delete(upstream);
      client.destroy();
    });
    upstream.on('error', () => upstream.destroy());
    client.on('close', () => upstream.destroy());
    client.on('data', (chunk: Buffer) => {
      count(chunk.length);
      if (!upstream.write(chunk)) client.pause();
    });
    upstream.on('drain', () => client.resume());
    upstream.pipe(client);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    if ('path' in opts.listen) server.listen(opts.listen.path, resolve);
    else server.listen(0, '127.0.0.1', resolve);
  });
  const address = server.address();
  const valueAt = (ms: number): number => {
    let v = 0;
    for (const p of timeline) {
      if (p.atMs > ms) break;
      v = p.total;
    }
    return v;
  };
  return {
    port: typeof address === 'object' && address !== null ? (address as AddressInfo).port : 0,
    socketPath: 'path' in opts.listen ? opts.listen.path : undefined,
    bytesIn: () => total,
    bytesBetween: (fromMs, toMs) => valueAt(toMs) - valueAt(fromMs),
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/**
 * Minimal HTTP/1.1 receiver: reads a request head, then Content-Length bytes of body (counted),
 * answers 200, repeats on the same connection.
 */
function sinkHttp(socket: Socket, count: (n: number) => void): void {
  let head = '';
  let bodyLeft = -1;
  socket.on('data', (chunk: Buffer) => {
    let rest = chunk;
    while (rest.length > 0) {
      if (bodyLeft < 0) {
        head += rest.toString('latin1');
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) return;
        const length = /content-length:\s*(\d+)/i.exec(head.slice(0, end));
        const consumed = Buffer.byteLength(head.slice(0, end + 4), 'latin1') - (Buffer.byteLength(head, 'latin1') - rest.length);
        rest = rest.subarray(Math.max(0, consumed));
        head = '';
        bodyLeft = length ? Number(length[1]) : 0;
      }
      const take = Math.min(bodyLeft, rest.length);
      count(take);
      bodyLeft -= take;
      rest = rest.subarray(take);
      if (bodyLeft === 0) {
        bodyLeft = -1;
        socket.write('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n');
      }
    }
  });
}
