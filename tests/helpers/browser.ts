import { chromium, type Browser } from 'playwright-core';

/**
 * Debian's Chromium, headless, as TESTING.md describes: no sandbox (root), no background
 * networking (this machine has no internet), autoplay allowed so play() needs no gesture.
 */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--autoplay-policy=no-user-gesture-required',
    ],
  });
}
