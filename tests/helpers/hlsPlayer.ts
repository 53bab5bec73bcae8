/// <reference lib="dom" />
import { createRequire } from 'node:module';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';

/**
 * The platform's player for tests: a page with hls.js (the npm package's own build) and one
 * muted <video>. Serve HLS_JS_DIR at `/hlsjs/` and PLAYER_PAGE at `/` (tests/helpers/staticServer.ts).
 */
export const HLS_JS_DIR = path.dirname(createRequire(import.meta.url).resolve('hls.js'));

export const PLAYER_PAGE = `<!doctype html><html><body>
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

export interface Level {
  width: number;
  height: number;
  bitrate: number;
}

/** Opens the player page at `pageUrl` and starts `src`; resolves once playback started, with hls.js's levels. */
export async function openPlayer(browser: Browser, pageUrl: string, src: string): Promise<{ page: Page; levels: Level[] }> {
  const page = await browser.newPage();
  await page.goto(pageUrl);
  const levels = await page.evaluate(async (s) => (window as unknown as { play: (src: string) => Promise<Level[]> }).play(s), src);
  return { page, levels };
}

export const currentTime = (page: Page): Promise<number> => page.evaluate(() => (document.getElementById('v') as HTMLVideoElement).currentTime);

/** Waits until playback is past `seconds`. */
export async function playedPast(page: Page, seconds: number, timeoutMs = 30_000): Promise<void> {
  await page.waitForFunction((t) => (document.getElementById('v') as HTMLVideoElement).currentTime > t, seconds, { timeout: timeoutMs });
}

/** What the <video> decoded so far: frame size and audio bytes (Chromium's counter), and hls.js's audio tracks. */
export function playedMedia(page: Page): Promise<{ width: number; height: number; audioBytes: number; audioTracks: number }> {
  return page.evaluate(() => {
    const v = document.getElementById('v') as HTMLVideoElement & { webkitAudioDecodedByteCount?: number };
    return { width: v.videoWidth, height: v.videoHeight, audioBytes: v.webkitAudioDecodedByteCount ?? -1, audioTracks: (window as unknown as { hls: { audioTracks: unknown[] } }).hls.audioTracks.length };
  });
}
