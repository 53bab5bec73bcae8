import { existsSync, readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log/logger.js';
import { Scheduler, UrlTimetableSource, type ScheduleIntent } from '../../src/schedule/index.js';
import { makeTmpDir } from '../helpers/tmp.js';

/** A calendar server on 127.0.0.1 that answers If-None-Match like a real one. */
async function calendarServer() {
  const state = { body: '', etag: '"v1"', status: 200, requests: [] as { ifNoneMatch: string | undefined; path: string }[] };
  const server = http.createServer((req, res) => {
    state.requests.push({ ifNoneMatch: req.headers['if-none-match'], path: req.url ?? '' });
    if (state.status !== 200) {
      res.writeHead(state.status).end('server error');
      return;
    }
    if (req.headers['if-none-match'] === state.etag) {
      res.writeHead(304, { etag: state.etag }).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'text/calendar; charset=utf-8', etag: state.etag }).end(state.body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    state,
    port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

const T0 = Date.parse('2025-06-02T08:00:00Z');

function calendar(uid: string, summary: string): string {
  return ['BEGIN:VCALENDAR', 'VERSION:2.0', 'BEGIN:VEVENT', `UID:${uid}`, 'DTSTART;TZID=Europe/Berlin:20250602T100000', 'DTEND;TZID=Europe/Berlin:20250602T113000', `SUMMARY:${summary}`, 'END:VEVENT', 'END:VCALENDAR', ''].join('\r\n');
}

const ids = (t: { slotsBetween(a: number, b: number): { id: string }[] }): string[] => t.slotsBetween(T0 - 86_400_000, T0 + 86_400_000).map((s) => s.id);

describe('timetable from a URL', () => {
  const tmp = makeTmpDir('lectern-schedule-url-');
  afterAll(() => tmp.cleanup());
  const lines: string[] = [];
  const logger = createLogger({ level: 'debug', sink: { write: (l) => lines.push(l) } });

  it('fetches (200), revalidates with ETag (304), keeps the last good copy on a broken file, and works from the cache offline', async () => {
    const server = await calendarServer();
    // Calendar services put a secret in the URL: it must not reach logs or errors.
    const url = `http://127.0.0.1:${server.port}/feeds/secret-token-4711/room.ics?key=hunter2`;
    const cacheDir = `${tmp.dir}/cache`;
    const source = new UrlTimetableSource({ url, cacheDir, timeZone: 'UTC', logger });

    server.state.body = calendar('first', 'CS101: Algorithms');
    const first = await source.load();
    expect(ids(first.timetable)).toEqual(['first']);
    expect(first.problem).toBeUndefined();
    expect(server.state.requests.at(-1)?.ifNoneMatch).toBeUndefined();
    expect(existsSync(source.cachePath)).toBe(true);
    expect(JSON.parse(readFileSync(source.cachePath, 'utf8'))).toMatchObject({ etag: '"v1"', body: server.state.body });

    const second = await source.load();
    expect(server.state.requests.at(-1)?.ifNoneMatch).toBe('"v1"');
    expect(ids(second.timetable)).toEqual(['first']);
    expect(second.problem).toBeUndefined();

    // A new version replaces the cache.
    server.state.body = calendar('second', 'CS102: Databases');
    server.state.etag = '"v2"';
    expect(ids((await source.load()).timetable)).toEqual(['second']);
    expect(JSON.parse(readFileSync(source.cachePath, 'utf8'))).toMatchObject({ etag: '"v2"' });

    // A broken version: the last good timetable stays, and the cache and its ETag are kept.
    server.state.body = 'BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nDTSTART:2025-06-02\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n';
    server.state.etag = '"v3"';
    const broken = await source.load();
    expect(ids(broken.timetable)).toEqual(['second']);
    expect(broken.problem?.code).toBe('SCHEDULE_INVALID');
    expect(broken.problem?.message).toContain(':3: DTSTART "2025-06-02" is not a date-time');
    expect(JSON.parse(readFileSync(source.cachePath, 'utf8'))).toMatchObject({ etag: '"v2"' });

    // An HTTP error: the cache again.
    server.state.status = 500;
    const failing = await source.load();
    expect(ids(failing.timetable)).toEqual(['second']);
    expect(failing.problem?.message).toContain('answered HTTP 500; recording from the cached timetable fetched at');

    // The server is gone and the agent restarts: a new source instance reads the disk cache.
    await server.close();
    const afterRestart = new UrlTimetableSource({ url, cacheDir, timeZone: 'UTC', logger });
    const offline = await afterRestart.load();
    expect(ids(offline.timetable)).toEqual(['second']);
    expect(offline.problem?.code).toBe('SCHEDULE_UNAVAILABLE');
    expect(offline.problem?.message).toMatch(/cannot reach http:\/\/127\.0\.0\.1:\d+\/… \(ECONNREFUSED\)/);

    // And the scheduler records from that cached timetable: the PC boots at 10:20 Berlin, offline.
    const intents: ScheduleIntent[] = [];
    const scheduler = new Scheduler({
      source: afterRestart,
      clock: { now: () => Date.parse('2025-06-02T08:20:00Z') },
      onIntent: (i) => void intents.push(i),
      isManualRecordingActive: () => false,
      logger,
      refreshIntervalMs: 300_000,
    });
    await scheduler.start();
    await scheduler.stop();
    expect(intents).toEqual([
      {
        kind: 'start',
        eventId: 'second',
        meta: { title: 'Databases', course: 'CS102', teacher: null, preset: null, location: null },
        slotStartMs: Date.parse('2025-06-02T08:00:00Z'),
        plannedEndMs: Date.parse('2025-06-02T09:30:00Z'),
        late: true,
      },
    ]);
    expect(scheduler.status().lastError).toContain('ECONNREFUSED');

    const everything = [...lines, offline.problem?.message ?? '', broken.problem?.message ?? '', failing.problem?.message ?? ''].join('\n');
    expect(everything).not.toContain('secret-token-4711');
    expect(everything).not.toContain('hunter2');
  });

  it('without a cache, an unreachable server is SCHEDULE_UNAVAILABLE', async () => {
    const server = await calendarServer();
    const port = server.port;
    await server.close();
    const source = new UrlTimetableSource({ url: `http://127.0.0.1:${port}/room.ics`, cacheDir: `${tmp.dir}/empty`, timeZone: 'UTC', logger, timeoutMs: 2_000 });
    await expect(source.load()).rejects.toMatchObject({ code: 'SCHEDULE_UNAVAILABLE', message: expect.stringContaining('no cached copy') as unknown });
  });
});
