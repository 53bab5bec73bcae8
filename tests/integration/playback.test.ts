/// <reference lib="dom" />
import { cpSync } from 'node:fs';
import path from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/log/logger.js';
import { Packager } from '../../src/transcode/packager.js';
import { launchChromium } from '../helpers/browser.js';
import { currentTime, HLS_JS_DIR, openPlayer as openPlayerAt, PLAYER_PAGE, playedMedia, playedPast } from '../helpers/hlsPlayer.js';
import { recordSegments, testPackagerSettings } from '../helpers/media.js';
import { serveStatic } from '../helpers/staticServer.js';
import { makeTmpDir } from '../helpers/tmp.js';

// The platform's player, for real: Debian's Chromium with hls.js plays a package lectern built,
// served from 127.0.0.1. Playback must advance on the master playlist, on every rendition
// forced in turn (checking its frame size), on the audio-only rendition alone, and on the master
// of a tier-1 package (audio and the lowest rendition: what the platform gets first).

describe('HLS playback in Chromium with hls.js', () => {
  const tmp = makeTmpDir();
  let browser: Browser;
  let server: Awaited<ReturnType<typeof serveStatic>>;

  beforeAll(async () => {
    const segments = await recordSegments(path.join(tmp.dir, 'rec'), { seconds: 16, width: 640, height: 360 });
    const out = path.join(tmp.dir, 'pkg');
    const tier1 = path.join(tmp.dir, 'pkg-tier1');
    const packager = new Packager({
      logger: silentLogger,
      settings: testPackagerSettings({
        renditions: [
          { name: '360p', height: 360, videoBitrateKbps: 600, crf: 26 },
          { name: '180p', height: 180, videoBitrateKbps: 150, crf: 28 },
        ],
      }),
    });
    const input = {
      lectureId: '01JPLAYBACK00000000000000A',
      agent: { id: 'test', version: '0' },
      site: 's',
      room: 'r',
      title: 't',
      course: null,
      teacher: null,
      startedAtMs: Date.now(),
      endedAtMs: Date.now(),
      source: { name: 'presenter', role: 'presenter' as const },
      segments,
      runs: [],
    };
    // As the agent does it: tier 1, then tier 2 on top of it. A copy keeps tier 1 as it was published.
    const dirs = { stagingDir: `${out}.building`, finalDir: out };
    expect((await packager.build(input, dirs, undefined, { tier: 1 })).manifest.tier).toBe(1);
    cpSync(out, tier1, { recursive: true });
    expect((await packager.build(input, dirs, undefined, { tier: 2 })).manifest.tier).toBe(2);
    server = await serveStatic({ '/pkg/': out, '/tier1/': tier1, '/hlsjs/': HLS_JS_DIR }, { '/': PLAYER_PAGE });
    browser = await launchChromium();
  });

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    tmp.cleanup();
  });

  const openPlayer = (src: string) => openPlayerAt(browser, `${server.url}/`, src);

  it('plays the master playlist, and every rendition when forced', async () => {
    const { page, levels } = await openPlayer(`${server.url}/pkg/hls/master.m3u8`);
    // hls.js sorts levels by bitrate, lowest first, and drops the audio-only variant when video exists.
    expect(levels.map((l) => [l.width, l.height])).toEqual([
      [320, 180],
      [640, 360],
    ]);
    await playedPast(page, 2);
    for (const [i, level] of levels.entries()) {
      await page.evaluate((n) => ((window as unknown as { hls: { currentLevel: number } }).hls.currentLevel = n), i);
      await page.waitForFunction(
        ([w, h]) => {
          const v = document.getElementById('v') as HTMLVideoElement;
          return v.videoWidth === w && v.videoHeight === h;
        },
        [level.width, level.height],
        { timeout: 30_000 },
      );
    }
    const before = await currentTime(page);
    await playedPast(page, before + 1);
    await page.close();
  });

  it('plays the master of a tier-1 package: the lowest rendition with its sound', async () => {
    const { page, levels } = await openPlayer(`${server.url}/tier1/hls/master.m3u8`);
    expect(levels.map((l) => [l.width, l.height])).toEqual([[320, 180]]);
    await playedPast(page, 1);
    const played = await playedMedia(page);
    expect(played).toMatchObject({ width: 320, height: 180, audioTracks: 1 });
    expect(played.audioBytes).toBeGreaterThan(0);
    await page.close();
  });

  it('plays the audio-only rendition on its own', async () => {
    const { page } = await openPlayer(`${server.url}/pkg/hls/audio/index.m3u8`);
    await playedPast(page, 2);
    expect(await page.evaluate(() => (document.getElementById('v') as HTMLVideoElement).videoWidth)).toBe(0);
    await page.close();
  });
});
