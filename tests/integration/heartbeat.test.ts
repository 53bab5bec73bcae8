import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Heartbeat, newestJobError, packagedBytesWaiting, readHeartbeatVersions, type HeartbeatDocument, type HeartbeatOptions } from '../../src/agent/heartbeat.js';
import { StatusAggregator } from '../../src/agent/status.js';
import type { ControllerStatus } from '../../src/capture/recordingController.js';
import { closeDatabase, openDatabase, type Db } from '../../src/db/index.js';
import { toolVersion } from '../../src/ffmpeg/version.js';
import { createMemoryLogger, silentLogger } from '../../src/log/logger.js';
import { JobQueue } from '../../src/queue/queue.js';
import { freeDiskBytes } from '../../src/storage/diskSpace.js';
import { FileStore } from '../../src/storage/fileStore.js';
import { S3Store } from '../../src/storage/s3Store.js';
import type { Store } from '../../src/storage/store.js';
import { sleep, waitFor } from '../../src/util/sleep.js';
import { adminClient, awsCli, createTestBucket } from '../helpers/s3.js';
import { makeTmpDir } from '../helpers/tmp.js';
import { startRgw, type RgwPeer } from '../peers/rgw.js';

/**
 * The heartbeat with real parts: a real StatusAggregator over a real SQLite job queue and the
 * temp dir's real free space, a real FileStore, S3Store (the real AWS SDK) against small HTTP
 * servers on 127.0.0.1 that hang or answer like an S3 server with a skewed clock, and one beat to
 * the real Ceph RGW peer. The recording controller is the one plain object here: it is idle (or
 * says it records) without ffmpeg, because the heartbeat only reads the status the aggregator
 * composes from it.
 */

const AGENT_ID = 'pc-12';
const PREFIX = 'lectern';
const KEY = `${PREFIX}/agents/${AGENT_ID}/status.json`;

interface Rig {
  dir: string;
  dataDir: string;
  db: Db;
  queue: JobQueue;
  status: StatusAggregator;
  setController(c: ControllerStatus): void;
}

const cleanups: Array<() => Promise<void> | void> = [];

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function rig(): Rig {
  const tmp = makeTmpDir('lectern-heartbeat-');
  const dataDir = path.join(tmp.dir, 'data');
  mkdirSync(dataDir, { recursive: true });
  const db = openDatabase(path.join(dataDir, 'state.db'), { logger: silentLogger });
  const queue = new JobQueue({ db, logger: silentLogger, backoff: { baseMs: 60_000, capMs: 60_000, jitter: 0 } });
  let controller: ControllerStatus = { state: 'idle', segments: 0, restarts: 0, sources: [], alerts: [] };
  const status = new StatusAggregator({
    identity: { id: AGENT_ID, site: 'uni', room: 'r12', version: '9.9.9' },
    controller: { status: () => controller },
    recording: (id) => (id === 'rec1' ? { title: 'Optics', course: 'PHYS2' } : undefined),
    queueCounts: () => queue.counts(),
    pendingLectures: () => queue.activeCount(['transcode', 'publish']),
    freeDiskBytes: () => freeDiskBytes(dataDir),
    disk: { minFreeBytes: 0, stopFreeBytes: 0 },
    kioskPinRequired: false,
    logger: silentLogger,
  });
  cleanups.push(() => {
    status.stop();
    closeDatabase(db);
    tmp.cleanup();
  });
  return { dir: tmp.dir, dataDir, db, queue, status, setController: (c) => (controller = c) };
}

function heartbeat(r: Rig, store: Pick<Store, 'putBytes' | 'description'>, over: Partial<HeartbeatOptions> = {}): Heartbeat {
  const hb = new Heartbeat({
    status: () => r.status.current(),
    store,
    storePrefix: PREFIX,
    agentId: AGENT_ID,
    dataDir: r.dataDir,
    intervalMs: 150,
    logger: silentLogger,
    versions: { lectern: '9.9.9', node: process.versions.node, ffmpeg: 'test' },
    ...over,
  });
  cleanups.push(() => hb.stop());
  return hb;
}

const readLocal = (hb: Heartbeat): HeartbeatDocument => JSON.parse(readFileSync(hb.localPath, 'utf8')) as HeartbeatDocument;

function tryReadLocal(hb: Heartbeat): HeartbeatDocument | undefined {
  try {
    return readLocal(hb);
  } catch {
    return undefined;
  }
}

async function storedBeat(store: Store): Promise<HeartbeatDocument | undefined> {
  if (!(await store.head(KEY))) return undefined;
  return JSON.parse((await store.getBytes(KEY)).toString('utf8')) as HeartbeatDocument;
}

describe('the heartbeat', () => {
  it('puts beats at agents/{id}/status.json every interval, with the whole documented shape', async () => {
    const r = rig();
    await r.status.start();
    // A published lecture (done), one packaged lecture waiting to publish (its manifest lists
    // 3345 bytes), one waiting to be packaged, and one whose publish failed and waits to retry.
    const packages = path.join(r.dataDir, 'packages');
    mkdirSync(path.join(packages, 'L1'), { recursive: true });
    writeFileSync(path.join(packages, 'L1', 'lecture.json'), JSON.stringify({ files: [{ bytes: 1000 }, { bytes: 2345 }] }));
    const done = r.queue.enqueue('publish', { lectureId: 'L0' }, { key: 'L0' }).job;
    expect(r.queue.claim(['publish'], 'w')?.id).toBe(done.id);
    r.queue.complete(done.id, 'w');
    r.queue.enqueue('publish', { lectureId: 'L1' }, { key: 'L1' });
    r.queue.enqueue('transcode', { recordingId: 'R2' }, { key: 'R2' });
    const failing = r.queue.enqueue('publish', { lectureId: 'L3' }, { key: 'L3', priority: -1 }).job;
    expect(r.queue.claim(['publish'], 'w')?.id).toBe(failing.id);
    r.queue.fail(failing.id, 'w', new Error('the storage said 503 to s3://user:hunter2@s3.example.edu/x'));

    const store = new FileStore({ root: path.join(r.dir, 'store'), logger: silentLogger });
    await store.start();
    const versions = await readHeartbeatVersions('9.9.9');
    const intervalMs = 200;
    const hb = heartbeat(r, store, {
      intervalMs,
      versions,
      pendingBytes: () => packagedBytesWaiting(r.queue.list({ kind: 'publish', state: 'queued' }).map((j) => (j.payload as { lectureId: string }).lectureId), (id) => path.join(packages, id, 'lecture.json')),
      lastError: () => newestJobError(r.queue.list({ limit: 200 })),
    });
    const startedMs = Date.now();
    await hb.start();
    // The first beat goes out at once, not an interval later.
    const first = await waitFor(() => storedBeat(store), { timeoutMs: 5_000, what: 'the first beat' });
    expect(first.beatAtMs - startedMs).toBeLessThan(intervalMs / 2);
    const beat = await waitFor(async () => ((await storedBeat(store))?.sequence ?? 0) >= 4 ? storedBeat(store) : undefined, { timeoutMs: 10_000, what: 'four beats' });
    const elapsedMs = Date.now() - startedMs;
    // Four beats take three intervals: neither faster (a busy loop) nor much slower (drift).
    expect(elapsedMs).toBeGreaterThanOrEqual(3 * intervalMs - 20);
    expect(elapsedMs).toBeLessThan(3 * intervalMs + 1_500);
    console.warn(`heartbeat: 4 beats in ${elapsedMs} ms at intervalMs ${intervalMs}; first beat after ${first.beatAtMs - startedMs} ms`);

    const ffmpeg = await toolVersion('ffmpeg');
    const free = await freeDiskBytes(r.dataDir);
    expect(beat).toEqual({
      schemaVersion: 1,
      agent: { id: AGENT_ID, site: 'uni', room: 'r12', startedAtMs: expect.any(Number) },
      beatAtMs: expect.any(Number),
      beatAt: new Date(beat.beatAtMs).toISOString(),
      sequence: 4,
      intervalMs,
      lifecycle: 'running',
      uptimeSeconds: expect.any(Number),
      hostUptimeSeconds: expect.any(Number),
      versions: { lectern: '9.9.9', node: process.versions.node, ffmpeg: ffmpeg.version },
      state: 'idle',
      recording: null,
      disk: { freeBytes: expect.any(Number), minFreeBytes: 0, low: false },
      // L1 and R2 are waiting; L3 waits for its retry; the done job is no longer queue depth.
      queue: { depth: 3, queued: 3, running: 0, dead: 0 },
      uploads: { pendingLectures: 3, pendingBytes: 3345, etaSeconds: null },
      alerts: [],
      next: null,
      clock: { skewMs: null, measuredAtMs: null },
      lastError: { message: expect.stringContaining('publish L3: the storage said 503') as string, atMs: expect.any(Number) },
      link: { store: store.description, lastSentAtMs: expect.any(Number), failedBeats: 0, lastError: null },
      history: [expect.objectContaining({ sent: true }), expect.objectContaining({ sent: true }), expect.objectContaining({ sent: true })],
    });
    expect(beat.lastError?.message).not.toContain('hunter2');
    expect(Math.abs((beat.disk.freeBytes ?? 0) - free)).toBeLessThan(1024 ** 3);
    expect(beat.beatAtMs - first.beatAtMs).toBeGreaterThanOrEqual(3 * intervalMs - 20);
    expect(beat.history.map((h) => h.atMs)).toEqual([...beat.history.map((h) => h.atMs)].sort((a, b) => a - b));
    expect(beat.history[0]).toEqual({ atMs: first.beatAtMs, state: 'idle', queueDepth: 3, pendingLectures: 3, pendingBytes: 3345, freeBytes: expect.any(Number), alerts: 0, sent: true });
    // The platform reads it as JSON by its Content-Type (FileStore has none; the RGW test checks it).
    expect(readFileSync(path.join(r.dir, 'store', KEY), 'utf8')).toMatch(/^\{\n {2}"schemaVersion": 1,/);

    // A live recording with an alert shows in the next beat.
    r.setController({
      state: 'recording',
      recordingId: 'rec1',
      startedAtMs: Date.now() - 65_000,
      plannedEndMs: null,
      segments: 6,
      restarts: 1,
      sources: [{ name: 'front', status: 'recording', run: 2, pid: 42, mediaStartedAtMs: Date.now(), lastAdvanceAtMs: Date.now(), audioLevelDb: -20, segments: 6, restarts: 1 }],
      alerts: [{ kind: 'no_audio', source: 'front', message: 'no sound from front for 30 s', startedAtMs: Date.now() - 30_000 }],
    } as ControllerStatus);
    const live = await waitFor(async () => {
      const b = await storedBeat(store);
      return b?.state === 'recording' ? b : undefined;
    }, { timeoutMs: 5_000, what: 'a beat of the live recording' });
    expect(live.recording).toEqual({ id: 'rec1', title: 'Optics', course: 'PHYS2', startedAtMs: expect.any(Number), elapsedMs: expect.any(Number), sources: [{ name: 'front', status: 'recording', restarts: 1 }] });
    expect(live.recording?.elapsedMs).toBeGreaterThanOrEqual(65_000);
    expect(live.alerts).toEqual([expect.objectContaining({ kind: 'no_audio', source: 'front' })]);

    // The last beat of a clean stop says so, and the local copy is the same bytes as the stored one.
    await hb.stop();
    const last = await storedBeat(store);
    expect(last?.lifecycle).toBe('stopping');
    expect(readFileSync(hb.localPath, 'utf8')).toBe((await store.getBytes(KEY)).toString('utf8'));
    const seq = last?.sequence;
    // No beats after stop: an absence can only be watched for a while (three intervals).
    await sleep(3 * intervalMs);
    expect((await storedBeat(store))?.sequence).toBe(seq);
  });

  it('keeps beating locally while the store fails, never throws, and sends the latest beat when it works again', async () => {
    const r = rig();
    await r.status.start();
    const root = path.join(r.dir, 'store');
    // A real filesystem failure: 'lectern/agents' is a file, so the FileStore cannot make the
    // agent's folder (ENOTDIR). The tests run as root, so a chmod would not stop a write.
    mkdirSync(path.join(root, PREFIX), { recursive: true });
    writeFileSync(path.join(root, PREFIX, 'agents'), 'in the way');
    const store = new FileStore({ root, logger: silentLogger });
    await store.start();
    const { logger, lines } = createMemoryLogger('debug');
    const unhandled: unknown[] = [];
    const onUnhandled = (err: unknown): void => void unhandled.push(err);
    process.on('unhandledRejection', onUnhandled);
    cleanups.push(() => void process.off('unhandledRejection', onUnhandled));
    const hb = heartbeat(r, store, { logger });
    await hb.start();

    const offline = await waitFor(() => ((tryReadLocal(hb)?.sequence ?? 0) >= 4 ? readLocal(hb) : undefined), { timeoutMs: 10_000, what: 'four local beats' });
    expect(await storedBeat(store)).toBeUndefined();
    expect(offline.link).toEqual({ store: store.description, lastSentAtMs: null, failedBeats: offline.sequence - 1, lastError: expect.stringContaining('STORE_WRITE_FAILED') as string });
    expect(offline.history.every((h) => h.sent === false)).toBe(true);
    // One warning for the outage, not one per beat.
    expect(lines.filter((l) => l.includes('WARN') && l.includes('cannot send the heartbeat'))).toHaveLength(1);
    // No temp files left beside the local copy.
    expect(readdirNames(path.dirname(hb.localPath))).toEqual(['status.json']);

    // While offline the state changes: the beat that reaches the store must carry the new state.
    r.queue.enqueue('publish', { lectureId: 'L9' }, { key: 'L9' });
    rmSync(path.join(root, PREFIX, 'agents'));
    const back = await waitFor(() => storedBeat(store), { timeoutMs: 5_000, what: 'a beat in the store once it works again' });
    expect(back.queue.depth).toBe(1);
    expect(back.sequence).toBeGreaterThan(offline.sequence);
    expect(back.link.lastSentAtMs).toBeNull();
    expect(back.link.failedBeats).toBe(back.sequence - 1);
    // The outage's beats are in the history as not sent.
    expect(back.history.filter((h) => h.sent === false).length).toBeGreaterThanOrEqual(Math.min(3, back.sequence - 1));
    expect(lines.some((l) => l.includes('reaches the storage again'))).toBe(true);

    const after = await waitFor(async () => {
      const b = await storedBeat(store);
      return b && b.sequence > back.sequence ? b : undefined;
    }, { timeoutMs: 5_000, what: 'the beat after the link returned' });
    expect(after.link).toMatchObject({ failedBeats: 0, lastError: null, lastSentAtMs: expect.any(Number) });
    expect(after.history.at(-1)).toMatchObject({ atMs: back.beatAtMs, sent: true });
    await hb.stop();
    expect(unhandled).toEqual([]);
  });

  it('keeps its history across a restart of the agent', async () => {
    const r = rig();
    await r.status.start();
    const root = path.join(r.dir, 'store');
    mkdirSync(path.join(root, PREFIX), { recursive: true });
    writeFileSync(path.join(root, PREFIX, 'agents'), 'offline');
    const store = new FileStore({ root, logger: silentLogger });
    const first = heartbeat(r, store);
    await first.start();
    await waitFor(() => ((tryReadLocal(first)?.sequence ?? 0) >= 2 ? true : undefined), { timeoutMs: 5_000 });
    await first.stop();
    const before = readLocal(first);
    rmSync(path.join(root, PREFIX, 'agents'));

    const second = heartbeat(r, store);
    await second.start();
    const beat = await waitFor(() => storedBeat(store), { timeoutMs: 5_000, what: 'the first beat of the new run' });
    expect(beat.sequence).toBe(1);
    // The previous run's beats, its last one included (whether that one was sent is unknown).
    expect(beat.history.at(-1)).toMatchObject({ atMs: before.beatAtMs, sent: null });
    expect(beat.history.slice(0, -1).map((h) => h.atMs)).toEqual(before.history.map((h) => h.atMs));
    await second.stop();
  });
});

// ---- S3 over HTTP on 127.0.0.1: a server that hangs, and one that says our clock is off -------

interface FakeS3 {
  endpoint: string;
  requests: number;
  mode: 'hang' | 'skewed' | 'ok';
  skewMs: number;
  bodies: string[];
  close(): Promise<void>;
}

/** Answers like an S3 server (PutObject only) on 127.0.0.1; 'hang' reads the request and never answers. */
async function fakeS3(): Promise<FakeS3> {
  const sockets = new Set<Socket>();
  const state: FakeS3 = {
    endpoint: '',
    requests: 0,
    mode: 'ok',
    skewMs: 0,
    bodies: [],
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    state.requests += 1;
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (state.mode === 'hang') return;
      const serverDate = new Date(Date.now() + state.skewMs);
      if (state.mode === 'skewed') {
        res.writeHead(403, { 'content-type': 'application/xml', date: serverDate.toUTCString() });
        res.end(
          `<?xml version="1.0" encoding="UTF-8"?><Error><Code>RequestTimeTooSkewed</Code><Message>The difference between the request time and the current time is too large.</Message><ServerTime>${serverDate.toISOString()}</ServerTime><MaxAllowedSkewMilliseconds>900000</MaxAllowedSkewMilliseconds></Error>`,
        );
        return;
      }
      state.bodies.push(Buffer.concat(chunks).toString('utf8'));
      res.writeHead(200, { etag: '"0"', date: serverDate.toUTCString() });
      res.end();
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  state.endpoint = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  return state;
}

function s3Store(endpoint: string): S3Store {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
  return new S3Store({
    endpoint,
    region: 'us-east-1',
    bucket: 'beats',
    forcePathStyle: true,
    credentials: { accessKeyId: 'AKIDTEST', secretAccessKey: 'not-a-real-secret' },
    logger: silentLogger,
    requestTimeoutMs: 60_000,
    retry: { maxAttempts: 1 },
  });
}

describe('the heartbeat against S3 over HTTP', () => {
  it('returns from stop() within its budget while a put hangs, and starts no second put beside it', async () => {
    const r = rig();
    await r.status.start();
    const s3 = await fakeS3();
    s3.mode = 'hang';
    const store = s3Store(s3.endpoint);
    cleanups.push(async () => {
      await store.stop();
      await s3.close();
    });
    // A put may take up to a minute here, as on a slow uplink: only stop() cuts the wait short.
    const hb = heartbeat(r, store, { putTimeoutMs: 60_000, intervalMs: 100 });
    await hb.start();
    await waitFor(() => (s3.requests >= 1 ? true : undefined), { timeoutMs: 5_000, what: 'the first put to arrive' });
    // The beat is stuck in its put; the timer waits for it rather than stacking beats.
    const stuck = readLocal(hb);
    expect(stuck.sequence).toBe(1);

    const stopStartedMs = Date.now();
    await hb.stop();
    const stopMs = Date.now() - stopStartedMs;
    console.warn(`heartbeat: stop() during a hanging put took ${stopMs} ms (budget 2000 ms)`);
    expect(stopMs).toBeLessThan(2_000 + 500);
    expect(stopMs).toBeGreaterThanOrEqual(1_900);
    // The final beat was written locally and not sent beside the hanging put.
    const last = readLocal(hb);
    expect(last).toMatchObject({ lifecycle: 'stopping', sequence: 2, link: { failedBeats: 1 } });
    expect(last.link.lastError).toContain('2000 ms');
    expect(s3.requests).toBe(1);
  });

  it('cuts a hanging put at putTimeoutMs and keeps the local beats coming', async () => {
    const r = rig();
    await r.status.start();
    const s3 = await fakeS3();
    s3.mode = 'hang';
    const store = s3Store(s3.endpoint);
    cleanups.push(async () => {
      await store.stop();
      await s3.close();
    });
    const hb = heartbeat(r, store, { putTimeoutMs: 200, intervalMs: 100, stopTimeoutMs: 300 });
    await hb.start();
    const beat = await waitFor(() => ((tryReadLocal(hb)?.sequence ?? 0) >= 4 ? readLocal(hb) : undefined), { timeoutMs: 10_000, what: 'four local beats' });
    expect(beat.link.lastError).toMatch(/did not answer within 200 ms|has not finished yet/);
    // The first put still hangs in the background: no later beat was put beside it.
    expect(s3.requests).toBe(1);
    const stopStartedMs = Date.now();
    await hb.stop();
    expect(Date.now() - stopStartedMs).toBeLessThan(300 + 200);
  });

  it('reports the clock skew the storage measured when it refused a put, and sends it once the clock is accepted', async () => {
    const r = rig();
    await r.status.start();
    const s3 = await fakeS3();
    s3.mode = 'skewed';
    s3.skewMs = 20 * 60_000;
    const store = s3Store(s3.endpoint);
    cleanups.push(async () => {
      await store.stop();
      await s3.close();
    });
    const hb = heartbeat(r, store, { intervalMs: 150 });
    await hb.start();
    const local = await waitFor(() => ((tryReadLocal(hb)?.sequence ?? 0) >= 2 ? readLocal(hb) : undefined), { timeoutMs: 5_000, what: 'a beat after the refusal' });
    expect(Math.abs((local.clock.skewMs ?? 0) - 20 * 60_000)).toBeLessThan(2_000);
    expect(local.link.lastError).toContain('STORE_CLOCK_SKEW');
    // Say, NTP fixed the clock: the storage takes the beat, which still carries the skew it was refused for.
    s3.mode = 'ok';
    const sent = await waitFor(() => (s3.bodies.length >= 2 ? s3.bodies.map((b) => JSON.parse(b) as HeartbeatDocument) : undefined), { timeoutMs: 5_000, what: 'two beats accepted' });
    expect(Math.abs((sent[0]?.clock.skewMs ?? 0) - 20 * 60_000)).toBeLessThan(2_000);
    expect(sent[1]?.clock).toEqual({ skewMs: null, measuredAtMs: null });
    await hb.stop();
  });
});

describe('the heartbeat against Ceph RGW', () => {
  let rgw: RgwPeer;

  beforeAll(async () => {
    rgw = await startRgw();
  }, 120_000);

  afterAll(async () => {
    await rgw?.stop();
  });

  it('puts a beat the platform reads as JSON', async () => {
    const r = rig();
    await r.status.start();
    const admin = adminClient(rgw);
    const bucket = await createTestBucket(admin, 'hb');
    admin.destroy();
    const store = new S3Store({
      endpoint: rgw.endpoint,
      region: rgw.region,
      bucket,
      forcePathStyle: true,
      credentials: { accessKeyId: rgw.accessKeyId, secretAccessKey: rgw.secretAccessKey },
      logger: silentLogger,
    });
    await store.start();
    cleanups.push(() => store.stop());
    const hb = heartbeat(r, store, { intervalMs: 60_000 });
    await hb.start();
    const head = await waitFor(async () => (await store.head(KEY)) ?? undefined, { timeoutMs: 15_000, what: 'the beat in the bucket' });
    await hb.stop();
    const seen = (await awsCli(rgw, ['s3api', 'head-object', '--bucket', bucket, '--key', KEY])) as { ContentType?: string; LastModified?: string };
    expect(seen.ContentType).toBe('application/json');
    const beat = JSON.parse((await store.getBytes(KEY)).toString('utf8')) as HeartbeatDocument;
    expect(beat).toMatchObject({ schemaVersion: 1, agent: { id: AGENT_ID }, lifecycle: 'stopping', link: { store: store.description, failedBeats: 0 } });
    expect(head.sizeBytes).toBeGreaterThan(500);
    // The platform's view of skew: the object's Last-Modified (server clock) against beatAtMs (ours).
    const serverMs = Date.parse(seen.LastModified ?? '');
    expect(Math.abs(serverMs - beat.beatAtMs)).toBeLessThan(5_000);
  });
});

function readdirNames(dir: string): string[] {
  return readdirSync(dir).sort();
}
