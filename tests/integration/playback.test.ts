/// <reference lib="dom" />
import { cpSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/log/logger.js';
import { Packager } from '../../src/transcode/packager.js';
import { launchChromium } from '../helpers/browser.js';
import { recordSegments, testPackagerSettings } from '../helpers/media.js';
import { serveStatic } from '../helpers/staticServer.js';
import { makeTmpDir } from '../helpers/tmp.js';

// The platform's player, for real: Debian's Chromium with hls.js plays a package lectern built,
// served from 127.0.0.1. Playback must advance on the master playlist, on every rendition
// forced in turn (checking its frame size), on the audio-only rendition alone, and on the master
// of a tier-1 package (audio and the lowest rendition: what the platform gets first).

const HLS_JS = path.join(path.dirname(createRequire(import.meta.url).resolve('hls.js')), 'hls.min.js');

const PAGE = `<!doctype html><html><body>
<video id="v" muted playsinline width="640" height="360"></video>
<script src="/hlsjs/hls.min.js"></script>
<script>
  window.play = (src) => new Promise((resolve, reject) => {
    const video = document.getElementById('v');
    const hls = new Hls({ capLevelToPlayerSize: false, startLevel: 0 });
    window.hls = hls;
    hls.on(Hls.Events.ERROR, (_, data) => { if (data.fatal) reject(new Error(data.type + ': ' + data.details)); });
    hls.on(Hls.Events.MANIFEST_PARSED, () => { video.play().then(() => resolve(hls.levels.map((l) => ({ width: l.width, height: l.height, bitrate: l.bitrate })))).catch(reject); });
    hls.loadSource(src);
    hls.attachMedia(video);
  });
</script></body></html>`;

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
    server = await serveStatic({ '/pkg/': out, '/tier1/': tier1, '/hlsjs/': path.dirname(HLS_JS) }, { '/': PAGE });
    browser = await launchChromium();
  });

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    tmp.cleanup();
  });

  async function openPlayer(src: string): Promise<{ page: Page; levels: Array<{ width: number; height: number; bitrate: number }> }> {
    const page = await browser.newPage();
    await page.goto(`${server.url}/`);
    const levels = await page.evaluate(async (s) => (window as unknown as { play: (src: string) => Promise<Array<{ width: number; height: number; bitrate: number }>> }).play(s), src);
    return { page, levels };
  }

  const currentTime = (page: Page): Promise<number> => page.evaluate(() => (document.getElementById('v') as HTMLVideoElement).currentTime);

  it('plays the master playlist, and every rendition when forced', async () => {
    const { page, levels } = await openPlayer(`${server.url}/pkg/hls/master.m3u8`);
    // hls.js sorts levels by bitrate, lowest first, and drops the audio-only variant when video exists.
    expect(levels.map((l) => [l.width, l.height])).toEqual([
      [320, 180],
      [640, 360],
    ]);
    await page.waitForFunction(() => (document.getElementById('v') as HTMLVideoElement).currentTime > 2, undefined, { timeout: 30_000 });
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
    await page.waitForFunction((t) => (document.getElementById('v') as HTMLVideoElement).currentTime > t + 1, before, { timeout: 30_000 });
    await page.close();
  });

  it('plays the master of a tier-1 package: the lowest rendition with its sound', async () => {
    const { page, levels } = await openPlayer(`${server.url}/tier1/hls/master.m3u8`);
    expect(levels.map((l) => [l.width, l.height])).toEqual([[320, 180]]);
    await page.waitForFunction(() => (document.getElementById('v') as HTMLVideoElement).currentTime > 1, undefined, { timeout: 30_000 });
    const played = await page.evaluate(() => {
      const v = document.getElementById('v') as HTMLVideoElement & { webkitAudioDecodedByteCount?: number };
      return { width: v.videoWidth, height: v.videoHeight, audioBytes: v.webkitAudioDecodedByteCount ?? -1, audioTracks: (window as unknown as { hls: { audioTracks: unknown[] } }).hls.audioTracks.length };
    });
    expect(played).toMatchObject({ width: 320, height: 180, audioTracks: 1 });
    expect(played.audioBytes).toBeGreaterThan(0);
    await page.close();
  });

  it('plays the audio-only rendition on its own', async () => {
    const { page } = await openPlayer(`${server.url}/pkg/hls/audio/index.m3u8`);
    await page.waitForFunction(() => (document.getElementById('v') as HTMLVideoElement).currentTime > 2, undefined, { timeout: 30_000 });
    expect(await page.evaluate(() => (document.getElementById('v') as HTMLVideoElement).videoWidth)).toBe(0);
    await page.close();
  });
});
