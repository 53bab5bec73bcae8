import { chmodSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent } from '../../src/agent/agent.js';
import { createApiBackend } from '../../src/agent/apiBackend.js';
import { ApiServer } from '../../src/api/server.js';
import type { AgentStatus } from '../../src/api/types.js';
import { loadConfig, type Config } from '../../src/config/index.js';
import { silentLogger } from '../../src/log/logger.js';
import { ERROR_CODES } from '../../src/util/errors.js';
import { waitFor } from '../../src/util/sleep.js';
import { smallDemoConfig } from '../helpers/config.js';
import { startRtspCamera, type RtspCamera } from '../peers/rtspCamera.js';
import { makeTmpDir } from '../helpers/tmp.js';

/**
 * The local API of a real agent (real SQLite, real ffmpeg recording a real RTSP camera: GStreamer's
 * RTSP server, see tests/peers/rtspCamera.ts; the synthetic source is not level-metered, so it
 * could not show the audio level moving), over real HTTP on 127.0.0.1 and a unix socket. The only thing not real is the peer address in the "remote"
 * checks: this machine has no second, non-loopback address a test may use (every 127.x address is
 * loopback), so a second server is given `peerAddress: () => '192.0.2.50'` at the request edge.
 */

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  json: unknown;
}

function request(target: { port?: number; socketPath?: string }, opts: { method?: string; path: string; headers?: Record<string, string>; body?: string | Buffer }): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        ...(target.socketPath ? { socketPath: target.socketPath } : { host: '127.0.0.1', port: target.port }),
        method: opts.method ?? 'GET',
        path: opts.path,
        headers: { ...(target.port ? { host: `127.0.0.1:${target.port}` } : {}), ...opts.headers },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (text += d));
        res.on('end', () => {
          let json: unknown;
          try {
            json = JSON.parse(text);
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
        });
      },
    );
    req.on('error', reject);
    req.end(opts.body);
  });
}

function postJson(port: number, p: string, body: unknown, headers: Record<string, string> = {}): Promise<Reply> {
  return request({ port }, { method: 'POST', path: p, headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
}

/** The small demo configuration with the RTSP camera as its one source. */
function rtspDemoConfig(url: string, extra: readonly string[]): string {
  const synthetic = '  - { name: presenter, kind: synthetic, width: 320, height: 240 }';
  const text = smallDemoConfig(extra);
  if (!text.includes(synthetic)) throw new Error('smallDemoConfig changed its source line');
  return text.replace(synthetic, `  - { name: presenter, kind: rtsp, url: "${url}" }`);
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/** An error reply as the API promises it: a 4xx with a known code and a message that says something. */
function expectClearError(reply: Reply, status: number | 'any4xx', what: string): void {
  if (status === 'any4xx') expect(reply.status, `${what}: ${reply.text}`).toBeGreaterThanOrEqual(400);
  else expect(reply.status, `${what}: ${reply.text}`).toBe(status);
  expect(reply.status, what).toBeLessThan(500);
  expect(reply.headers['content-type'], what).toMatch(/^application\/json/);
  const err = (reply.json as { error?: { code?: string; message?: string } } | undefined)?.error;
  expect(Object.keys(ERROR_CODES), what).toContain(err?.code);
  expect(err?.message?.length ?? 0, what).toBeGreaterThan(10);
}

/** A strict reader of the Prometheus text format 0.0.4: throws on any line it does not accept. */
function parsePrometheus(text: string): Map<string, { type: string; samples: Array<{ labels: Record<string, string>; value: number }> }> {
  const families = new Map<string, { type: string; samples: Array<{ labels: Record<string, string>; value: number }> }>();
  const helped = new Set<string>();
  if (!text.endsWith('\n')) throw new Error('the exposition must end with a newline');
  for (const line of text.slice(0, -1).split('\n')) {
    let m = /^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/.exec(line);
    if (m) {
      if (helped.has(m[1] as string)) throw new Error(`second HELP for ${m[1]}`);
      helped.add(m[1] as string);
      continue;
    }
    m = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$/.exec(line);
    if (m) {
      if (families.has(m[1] as string)) throw new Error(`second TYPE for ${m[1]}`);
      families.set(m[1] as string, { type: m[2] as string, samples: [] });
      continue;
    }
    m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{((?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\n"])*",?)*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`not a valid line: ${JSON.stringify(line)}`);
    const family = families.get(m[1] as string);
    if (!family) throw new Error(`sample of ${m[1]} before its TYPE`);
    const value = m[3] === '+Inf' ? Infinity : m[3] === '-Inf' ? -Infinity : m[3] === 'NaN' ? NaN : Number(m[3]);
    if (Number.isNaN(value) && m[3] !== 'NaN') throw new Error(`bad value in ${JSON.stringify(line)}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1] as string] = (l[2] as string).replace(/\\(.)/g, (_s, c: string) => (c === 'n' ? '\n' : c));
    family.samples.push({ labels, value });
  }
  for (const name of families.keys()) if (!helped.has(name)) throw new Error(`${name} has no HELP`);
  return families;
}

/** Reads server-sent events from a stream and keeps the parsed `status` events. */
function openEvents(port: number): Promise<{ events: AgentStatus[]; close: () => void; contentType: string | undefined }> {
  return new Promise((resolve, reject) => {
    const events: AgentStatus[] = [];
    const req = http.get({ host: '127.0.0.1', port, path: '/api/events', headers: { host: `127.0.0.1:${port}`, accept: 'text/event-stream' } }, (res) => {
      let buffer = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buffer += chunk;
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const lines = block.split('\n');
          if (lines.includes('event: status')) {
            const data = lines.find((l) => l.startsWith('data: '));
            if (data) events.push(JSON.parse(data.slice(6)) as AgentStatus);
          }
        }
      });
      resolve({ events, close: () => req.destroy(), contentType: res.headers['content-type'] });
    });
    req.on('error', (err) => {
      if (!req.destroyed) reject(err);
    });
  });
}

describe('the local API', () => {
  const tmp = makeTmpDir('lectern-api-');
  let agent: Agent;
  let config: Config;
  let port: number;
  let remote: ApiServer;
  let remotePort: number;
  let camera: RtspCamera;
  const socketPath = path.join(tmp.dir, 'api.sock');
  const TOKEN = 'room12-token-9f8e7d6c5b4a';

  beforeAll(async () => {
    port = await freePort();
    camera = await startRtspCamera({ audio: 'aac', width: 320, height: 240 });
    const file = path.join(tmp.dir, 'lectern.yaml');
    writeFileSync(file, rtspDemoConfig(camera.url, ['api:', `  port: ${port}`, `  socketPath: ${socketPath}`, '  allowedHosts: [kiosk.room12.example]']));
    config = loadConfig({ path: file }).config;
    agent = new Agent({ config, logger: silentLogger, version: '0.0.0-test', serveApi: true });
    await agent.start();

    // The same agent seen from "another machine": token required.
    const tokenFile = path.join(tmp.dir, 'api.token');
    writeFileSync(tokenFile, `${TOKEN}\n`);
    chmodSync(tokenFile, 0o600);
    const p = agent.parts;
    remote = new ApiServer({
      backend: createApiBackend({ config, controller: p.controller, recordings: p.recordings, queue: p.queue, layout: p.layout, status: p.status, logger: silentLogger }),
      logger: silentLogger,
      port: 0,
      token: TOKEN,
      peerAddress: () => '192.0.2.50',
    });
    await remote.start();
    remotePort = remote.port;
  });

  afterAll(async () => {
    await remote?.stop();
    await agent?.stop();
    await camera?.stop();
    tmp.cleanup();
  });

  it('answers only for its own host names (DNS rebinding)', async () => {
    const ok = await request({ port }, { path: '/api/status' });
    expect(ok.status).toBe(200);
    expect((ok.json as AgentStatus).recording.state).toBe('idle');
    for (const host of ['localhost', '[::1]']) expect((await request({ port }, { path: '/api/status', headers: { host: `${host}:${port}` } })).status, host).toBe(200);
    expect((await request({ port }, { path: '/api/status', headers: { host: 'kiosk.room12.example' } })).status).toBe(200);

    for (const host of ['evil.example', `evil.example:${port}`, `127.0.0.1:${port + 1}`, `localhost.evil.example:${port}`, '127.0.0.1', `127.0.0.2:${port}`]) {
      const reply = await request({ port }, { path: '/api/status', headers: { host } });
      expectClearError(reply, 421, `Host: ${host}`);
      expect((reply.json as { error: { code: string } }).error.code).toBe('API_HOST_REJECTED');
      expect(reply.text).not.toContain('evil');
    }
    // The kiosk page and the metrics are guarded the same way, and so is a state change.
    expectClearError(await request({ port }, { path: '/', headers: { host: 'evil.example' } }), 421, 'kiosk');
    expectClearError(await request({ port }, { path: '/metrics', headers: { host: 'evil.example' } }), 421, 'metrics');
    expectClearError(await postJson(port, '/api/record/start', {}, { host: `evil.example:${port}` }), 421, 'start');

    // HTTP/1.0 without any Host header.
    const raw = await new Promise<string>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => s.write('GET /api/status HTTP/1.0\r\n\r\n'));
      let text = '';
      s.on('data', (d) => (text += d.toString()));
      s.on('end', () => resolve(text));
    });
    expect(raw).toMatch(/^HTTP\/1\.1 400/);
    expect(raw).toContain('API_HOST_REJECTED');
  });

  it('refuses a state change from a page of another origin', async () => {
    const reply = await postJson(port, '/api/record/start', {}, { origin: 'http://evil.example' });
    expectClearError(reply, 403, 'foreign origin');
    expect((await request({ port }, { path: '/api/status' })).json).toMatchObject({ recording: { state: 'idle' } });
  });

  it('asks a token of anyone not on loopback, and compares it', async () => {
    for (const authorization of [undefined, 'Bearer wrong-token', `Bearer ${TOKEN}x`, `Basic ${Buffer.from(`x:${TOKEN}`).toString('base64')}`, `bearer ${TOKEN}`]) {
      const reply = await request({ port: remotePort }, { path: '/api/status', headers: authorization ? { authorization } : {} });
      expectClearError(reply, 401, `authorization ${authorization ?? 'none'}`);
      expect((reply.json as { error: { code: string } }).error.code).toBe('API_UNAUTHORIZED');
      expect(reply.text).not.toContain(TOKEN);
    }
    expectClearError(await postJson(remotePort, '/api/record/start', {}), 401, 'start without token');
    const ok = await request({ port: remotePort }, { path: '/api/status', headers: { authorization: `Bearer ${TOKEN}` } });
    expect(ok.status).toBe(200);
    expect((ok.json as AgentStatus).agent.room).toBe('demo-room');
    // The real listener, on loopback, needs none.
    expect((await request({ port }, { path: '/api/status' })).status).toBe(200);
  });

  it('serves the unix socket without Host or token checks (its file mode guards it)', async () => {
    const reply = await request({ socketPath }, { path: '/api/status', headers: { host: 'anything' } });
    expect(reply.status).toBe(200);
    expect((reply.json as AgentStatus).recording.state).toBe('idle');
  });

  it('answers 30 malformed requests each with a clear 4xx and keeps serving', async () => {
    const big = JSON.stringify({ title: 'a'.repeat(20_000) });
    const cases: Array<{ what: string; path?: string; method?: string; type?: string | null; body: string | Buffer; status: number }> = [
      { what: 'no content type', type: null, body: '{}', status: 415 },
      { what: 'text/plain', type: 'text/plain', body: '{}', status: 415 },
      { what: 'a form', type: 'application/x-www-form-urlencoded', body: 'title=x', status: 415 },
      { what: 'multipart', type: 'multipart/form-data; boundary=x', body: '--x--', status: 415 },
      { what: 'empty body', body: '', status: 400 },
      { what: 'truncated JSON', body: '{"title": "x"', status: 400 },
      { what: 'not JSON', body: 'nul', status: 400 },
      { what: 'invalid UTF-8', body: Buffer.from([0xff, 0xfe, 0x7b, 0x7d]), status: 400 },
      { what: 'an array', body: '[]', status: 400 },
      { what: 'a string', body: '"start"', status: 400 },
      { what: 'a number', body: '42', status: 400 },
      { what: 'null', body: 'null', status: 400 },
      { what: 'title a number', body: '{"title": 5}', status: 400 },
      { what: 'title empty', body: '{"title": ""}', status: 400 },
      { what: 'title blank', body: '{"title": "   "}', status: 400 },
      { what: 'title too long', body: JSON.stringify({ title: 'x'.repeat(201) }), status: 400 },
      { what: 'title with a line break', body: '{"title": "a\\nb"}', status: 400 },
      { what: 'misspelt field', body: '{"titel": "Algebra"}', status: 400 },
      { what: '__proto__ field', body: '{"__proto__": {"admin": true}}', status: 400 },
      { what: 'course an object', body: '{"course": {"code": 1}}', status: 400 },
      { what: 'duration zero', body: '{"durationMinutes": 0}', status: 400 },
      { what: 'duration fractional', body: '{"durationMinutes": 1.5}', status: 400 },
      { what: 'duration a string', body: '{"durationMinutes": "10"}', status: 400 },
      { what: 'duration huge', body: '{"durationMinutes": 1e9}', status: 400 },
      { what: 'body over the limit', body: big, status: 413 },
      { what: 'stop with a field', path: '/api/record/stop', body: '{"now": true}', status: 400 },
      { what: 'extend without minutes', path: '/api/record/extend', body: '{}', status: 400 },
      { what: 'extend negative', path: '/api/record/extend', body: '{"minutes": -5}', status: 400 },
      { what: 'marker title a list', path: '/api/record/marker', body: '{"title": ["a"]}', status: 400 },
      { what: 'PIN too short', path: '/api/kiosk/unlock', body: '{"pin": "12"}', status: 400 },
      { what: 'start by GET', path: '/api/record/start', method: 'GET', body: '', status: 405 },
      { what: 'unknown route', path: '/api/record/explode', body: '{}', status: 404 },
    ];
    expect(cases.length).toBeGreaterThanOrEqual(30);
    for (const c of cases) {
      const headers: Record<string, string> = {};
      if (c.type !== null) headers['content-type'] = c.type ?? 'application/json';
      const reply = await request({ port }, { method: c.method ?? 'POST', path: c.path ?? '/api/record/start', headers, body: c.body });
      expectClearError(reply, c.status, c.what);
      // Still serving, and nothing was started by a request it refused.
      const status = await request({ port }, { path: '/api/status' });
      expect(status.status, `after ${c.what}`).toBe(200);
      expect((status.json as AgentStatus).recording.state, `after ${c.what}`).toBe('idle');
    }
    const message = (await postJson(port, '/api/record/start', { titel: 'x', durationMinutes: 0 })).json as { error: { message: string } };
    expect(message.error.message).toContain('unknown field "titel"');
    expect(message.error.message).toContain('durationMinutes must be an integer from 1 to 720');
    // Garbage that is not HTTP at all gets a 400 from node and the server carries on.
    await new Promise<void>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => s.write('\x00\x01\x02 garbage\r\n\r\n'));
      s.on('data', () => undefined);
      s.on('close', () => resolve());
    });
    expect(agent.parts.recordings.list()).toEqual([]);
  });

  it('delivers status changes over server-sent events, with the audio level each second', async () => {
    const stream = await openEvents(port);
    try {
      expect(stream.contentType).toMatch(/^text\/event-stream/);
      await waitFor(() => (stream.events.length > 0 ? true : undefined), { timeoutMs: 5_000, what: 'the first status event' });
      expect(stream.events[0]?.recording.state).toBe('idle');

      const start = await postJson(port, '/api/record/start', { title: 'Linear Algebra 3', course: 'MATH201' });
      expect(start.status).toBe(201);
      const { recordingId } = start.json as { recordingId: string };
      // Pressing Record twice starts one recording.
      const again = await postJson(port, '/api/record/start', {});
      expect(again.status).toBe(200);
      expect(again.json).toEqual({ recordingId, created: false });

      const recording = await waitFor(() => stream.events.find((e) => e.recording.state === 'recording'), { timeoutMs: 15_000, what: 'a recording event' });
      expect(recording.recording).toMatchObject({ recordingId, title: 'Linear Algebra 3', course: 'MATH201' });
      // Several events with a level (the meter moves once a second), over at least two seconds.
      const withLevel = await waitFor(
        () => {
          const levels = stream.events.filter((e) => e.audioLevelDb !== null);
          return levels.length >= 3 ? levels : undefined;
        },
        { timeoutMs: 20_000, intervalMs: 200, what: 'three events with an audio level' },
      );
      // The synthetic camera's tone is loud: well above silence.
      expect(withLevel.at(-1)?.audioLevelDb).toBeGreaterThan(-40);
      const elapsed = withLevel.map((e) => e.recording.elapsedMs);
      expect(Math.max(...elapsed)).toBeGreaterThan(Math.min(...elapsed));

      // Metrics while recording: a strict parse, and the values agree with the status.
      const metrics = await request({ port }, { path: '/metrics' });
      expect(metrics.status).toBe(200);
      expect(metrics.headers['content-type']).toBe('text/plain; version=0.0.4; charset=utf-8');
      const families = parsePrometheus(metrics.text);
      const sample = (name: string, labels: Record<string, string> = {}): number | undefined =>
        families.get(name)?.samples.find((s) => Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
      expect(sample('lectern_recording_state', { state: 'recording' })).toBe(1);
      expect(sample('lectern_recording_state', { state: 'idle' })).toBe(0);
      expect(sample('lectern_source_audio_level_dbfs', { source: 'presenter' })).toBeGreaterThan(-40);
      expect(sample('lectern_api_requests_total', { code: '4xx' })).toBeGreaterThanOrEqual(30);
      expect(families.get('lectern_api_requests_total')?.type).toBe('counter');
      expect(sample('lectern_api_event_clients')).toBe(1);
      expect(sample('lectern_build_info', { version: '0.0.0-test', room: 'demo-room' })).toBe(1);
      // The process's memory, under prom-client's names: the agent runs in this process, so its
      // RSS is this process's, and the parts nest (used heap within the heap, heap within the RSS).
      const rssBytes = sample('process_resident_memory_bytes') ?? 0;
      expect(Math.abs(rssBytes - process.memoryUsage().rss)).toBeLessThan(0.25 * rssBytes);
      const heapTotal = sample('nodejs_heap_size_total_bytes') ?? 0;
      const heapUsed = sample('nodejs_heap_size_used_bytes') ?? 0;
      expect(heapUsed).toBeGreaterThan(5 * 2 ** 20);
      expect(heapTotal).toBeGreaterThanOrEqual(heapUsed);
      expect(rssBytes).toBeGreaterThan(heapTotal);
      expect(sample('nodejs_array_buffers_bytes')).toBeLessThanOrEqual(sample('nodejs_external_memory_bytes') ?? 0);
      const spaces = families.get('nodejs_heap_space_size_total_bytes')?.samples ?? [];
      expect(spaces.map((x) => x.labels.space)).toEqual(expect.arrayContaining(['new', 'old', 'code', 'large_object']));
      // The spaces add up to the heap (both read within the same request; a GC between them moves little).
      const spacesTotal = spaces.reduce((sum, x) => sum + x.value, 0);
      expect(Math.abs(spacesTotal - heapTotal)).toBeLessThan(0.25 * heapTotal);
      expect(sample('nodejs_heap_space_size_used_bytes', { space: 'old' })).toBeLessThanOrEqual(sample('nodejs_heap_space_size_total_bytes', { space: 'old' }) ?? 0);

      // A preview picture from the recording (a JPEG), once a segment is closed.
      await waitFor(async () => ((await request({ port }, { path: '/api/cameras' })).json as { cameras: Array<{ snapshot: boolean }> }).cameras[0]?.snapshot || undefined, {
        timeoutMs: 15_000,
        what: 'a closed segment',
      });
      const jpeg = await new Promise<Buffer>((resolve, reject) => {
        http.get({ host: '127.0.0.1', port, path: '/api/cameras/presenter/snapshot.jpg', headers: { host: `127.0.0.1:${port}` } }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => (res.statusCode === 200 && res.headers['content-type'] === 'image/jpeg' ? resolve(Buffer.concat(chunks)) : reject(new Error(`snapshot: ${res.statusCode}`))));
        });
      });
      expect(jpeg.subarray(0, 3)).toEqual(Buffer.from([0xff, 0xd8, 0xff]));
      expectClearError(await request({ port }, { path: '/api/cameras/nosuch/snapshot.jpg' }), 404, 'unknown camera');

      // The teacher's controls: pause (twice is one pause), visible on the event stream; a marker;
      // resume. This recording has no planned end, so extending it is a clear refusal.
      const pause = await postJson(port, '/api/record/pause', {});
      expect(pause.status).toBe(200);
      const { pausedSinceMs } = pause.json as { pausedSinceMs: number };
      expect(pause.json).toEqual({ recordingId, pausedSinceMs });
      expect((await postJson(port, '/api/record/pause', {})).json).toEqual({ recordingId, pausedSinceMs });
      await waitFor(() => stream.events.find((e) => e.recording.state === 'paused'), { timeoutMs: 10_000, what: 'a paused event' });
      expect(agent.parts.recordings.openPause(recordingId)?.startedAtMs).toBe(pausedSinceMs);
      const marker = await postJson(port, '/api/record/marker', { title: ' Proof of theorem 2 ' });
      expect(marker.status).toBe(200);
      expect(marker.json).toMatchObject({ recordingId, title: 'Proof of theorem 2' });
      expect((marker.json as { atSeconds: number }).atSeconds).toBeGreaterThan(0);
      expectClearError(await postJson(port, '/api/record/marker', { title: '  ' }), 400, 'blank marker title');
      const resume = await postJson(port, '/api/record/resume', {});
      expect(resume.status).toBe(200);
      expect(resume.json).toEqual({ recordingId });
      await waitFor(() => stream.events.findLast((e) => e.recording.state === 'recording' && e.atMs > pausedSinceMs), { timeoutMs: 15_000, what: 'a recording event after the resume' });
      const extend = await postJson(port, '/api/record/extend', { minutes: 10 });
      expectClearError(extend, 409, 'extend without a planned end');
      expect((extend.json as { error: { code: string } }).error.code).toBe('RECORDING_NO_PLANNED_END');
      expect(agent.parts.recordings.markers(recordingId).map((m) => m.title)).toEqual(['Proof of theorem 2']);

      const stop = await postJson(port, '/api/record/stop', {});
      expect(stop.json).toEqual({ recordingId });
      await waitFor(() => stream.events.findLast((e) => e.recording.state === 'idle' && e.atMs > recording.atMs), { timeoutMs: 30_000, what: 'the idle event after stop' });
      expect((await postJson(port, '/api/record/stop', {})).json).toEqual({ recordingId: null });
      const queue = (await request({ port }, { path: '/api/queue' })).json as { lectures: Array<{ id: string; stage: string }> };
      expect(queue.lectures[0]?.id).toBe(recordingId);
      expect(['waiting', 'packaging', 'publishing', 'published']).toContain(queue.lectures[0]?.stage);
    } finally {
      stream.close();
    }
  });

  it('serves the kiosk page with a strict content security policy', async () => {
    const page = await request({ port }, { path: '/' });
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
    const csp = page.headers['content-security-policy'] ?? '';
    expect(csp).toContain("default-src 'none'");
    expect(csp).toMatch(/script-src 'sha256-[A-Za-z0-9+/=]+'/);
    expect(csp).not.toContain('unsafe-inline');
    // Works offline: nothing is loaded from another host.
    expect(page.text).not.toMatch(/(?:src|href)=["']?(?:https?:)?\/\//);
  });
});
