import { chmodSync, copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import net, { type AddressInfo } from 'node:net';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AgentStatus } from '../../src/api/types.js';
import { waitFor } from '../../src/util/sleep.js';
import { launchChromium } from '../helpers/browser.js';
import { ROOT, startCli, type CliRun } from '../helpers/cli.js';
import { smallDemoConfig } from '../helpers/config.js';
import { makeTmpDir } from '../helpers/tmp.js';
import { startRtspCamera, type RtspCamera } from '../peers/rtspCamera.js';

/**
 * The kiosk page in real Chromium (Debian's, through playwright-core) against a real `lectern
 * daemon` recording a real RTSP camera (GStreamer; the synthetic source is not level-metered, so
 * the audio meter would have nothing to show). A teacher's path: the PIN, type a course and title,
 * press Record, see the time and the sound meter move and the camera picture, press Stop (twice:
 * the second press confirms, here from the keyboard as a USB big button sends it), and see the
 * lecture in the list. Screenshots are kept in the test's tmp dir and the final ones are copied to
 * test-results/kiosk/.
 */

const PIN = '2468';
const SHOTS_DIR = path.join(ROOT, 'test-results', 'kiosk');

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

describe('the kiosk page', () => {
  const tmp = makeTmpDir('lectern-kiosk-');
  const shots: string[] = [];
  let camera: RtspCamera;
  let daemon: CliRun;
  let browser: Browser;
  let page: Page;
  let url: string;

  const shot = async (name: string): Promise<void> => {
    const file = path.join(tmp.dir, 'shots', `${String(shots.length + 1).padStart(2, '0')}-${name}.png`);
    await page.screenshot({ path: file });
    shots.push(file);
  };

  beforeAll(async () => {
    const port = await freePort();
    url = `http://127.0.0.1:${port}/`;
    camera = await startRtspCamera({ audio: 'aac', width: 320, height: 240 });
    const pinFile = path.join(tmp.dir, 'kiosk.pin');
    writeFileSync(pinFile, `${PIN}\n`);
    chmodSync(pinFile, 0o600);
    const synthetic = '  - { name: presenter, kind: synthetic, width: 320, height: 240 }';
    const config = smallDemoConfig(['api:', `  port: ${port}`, `  kioskPinFile: ${pinFile}`]).replace(synthetic, `  - { name: presenter, kind: rtsp, url: "${camera.url}" }`);
    expect(config).toContain('kind: rtsp');
    writeFileSync(path.join(tmp.dir, 'lectern.yaml'), config);
    mkdirSync(path.join(tmp.dir, 'shots'));
    daemon = startCli(['--config', path.join(tmp.dir, 'lectern.yaml'), 'daemon'], { cwd: tmp.dir });
    await waitFor(
      async () => {
        if (daemon.child.exitCode !== null) throw new Error(`the daemon exited: ${daemon.stderr()}`);
        const res = await fetch(`${url}api/status`).catch(() => undefined);
        return res?.ok ? true : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 200, what: 'the daemon API' },
    );
    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1024, height: 600 } });
  });

  afterAll(async () => {
    await browser?.close();
    if (daemon && daemon.child.exitCode === null) {
      daemon.child.kill('SIGTERM');
      await daemon.exit;
    }
    await camera?.stop();
    mkdirSync(SHOTS_DIR, { recursive: true });
    for (const file of shots) copyFileSync(file, path.join(SHOTS_DIR, path.basename(file)));
    tmp.cleanup();
  });

  it('records a lecture from Record to Stop and shows it in the list', async () => {
    const errors: string[] = [];
    page.on('pageerror', (err) => errors.push(err.message));
    page.on('console', (msg) => {
      if (msg.type() === 'error') errors.push(msg.text());
    });
    await page.goto(url);
    await page.locator('#link-text', { hasText: 'Connected' }).waitFor();
    expect(await page.locator('#record-label').textContent()).toBe('Record');
    expect(await page.locator('#state').textContent()).toBe('Ready');
    expect(await page.locator('#room').textContent()).toContain('demo-room');
    // The big button is big on the 1024x600 screen and entirely on it.
    const box = await page.locator('#record-button').boundingBox();
    expect(box?.width).toBeGreaterThanOrEqual(200);
    expect((box?.y ?? 0) + (box?.height ?? 0)).toBeLessThanOrEqual(600);
    await shot('idle');

    await page.locator('#course').fill('MATH201');
    await page.locator('#title').fill('Linear algebra, lecture 3');
    await page.locator('#record-button').click();
    // The PIN comes first; a wrong one is refused.
    await page.locator('#pin.show').waitFor();
    await shot('pin');
    for (const d of '1111') await page.locator(`#pin [data-digit="${d}"]`).click();
    await page.locator('#pin-ok').click();
    await page.locator('#message.show', { hasText: 'PIN is wrong' }).waitFor();
    for (const d of PIN) await page.locator(`#pin [data-digit="${d}"]`).click();
    await page.locator('#pin-ok').click();
    // The right PIN closes the pad and carries out the press that asked for it.
    await page.locator('#pin.show').waitFor({ state: 'hidden' });

    await page.locator('#state', { hasText: 'Recording' }).waitFor({ timeout: 20_000 });
    expect(await page.locator('#record-label').textContent()).toBe('Stop');
    expect(await page.locator('#current-title').textContent()).toBe('MATH201 · Linear algebra, lecture 3');
    const status = (await (await fetch(`${url}api/status`)).json()) as AgentStatus;
    expect(status.recording).toMatchObject({ state: 'recording', course: 'MATH201', title: 'Linear algebra, lecture 3' });

    // The elapsed time moves.
    const t1 = await page.locator('#elapsed').textContent();
    await waitFor(async () => ((await page.locator('#elapsed').textContent()) !== t1 ? true : undefined), { timeoutMs: 5_000, what: 'the elapsed time to move' });
    // The meter moves from nothing to the camera's tone, with its level in dB.
    const widthOf = async (): Promise<number> => Number((await page.locator('#meter-fill').evaluate((e) => (e as HTMLElement).style.width)).replace('%', '') || 0);
    const levels = await waitFor(
      async () => {
        const text = (await page.locator('#meter-db').textContent()) ?? '';
        const width = await widthOf();
        return /^-?\d+ dB$/.test(text) && width > 0 ? { text, width } : undefined;
      },
      { timeoutMs: 20_000, intervalMs: 200, what: 'the audio meter' },
    );
    expect(Number(levels.text.replace(' dB', ''))).toBeGreaterThan(-40);
    expect(levels.width).toBeGreaterThan(30);
    // The camera picture arrives once a segment is closed.
    await page.locator('#preview img').waitFor({ timeout: 20_000 });
    await waitFor(async () => ((await page.locator('#preview img').evaluate((img) => (img as HTMLImageElement).naturalWidth)) > 0 ? true : undefined), { timeoutMs: 10_000, what: 'the preview image' });
    const t2 = await page.locator('#elapsed').textContent();
    expect(t2).toMatch(/^0:00:\d\d$/);
    await shot('recording');

    // The camera drops off the network: a clear alert, gone when the picture is back.
    await camera.reboot();
    const lost = page.locator('#alerts .alert[data-kind="source_lost"]');
    await lost.waitFor({ timeout: 15_000 });
    expect(await lost.locator('strong').textContent()).toBe('Camera lost — reconnecting');
    await shot('camera-lost');
    await camera.up();
    await lost.waitFor({ state: 'detached', timeout: 30_000 });

    // Stop from the keyboard (a USB big button sends F9): the first press asks, the second stops.
    await page.keyboard.press('F9');
    await page.locator('#record-label', { hasText: 'Press again' }).waitFor();
    await shot('stop-confirm');
    // The second press counts once the bounce window of the first has passed.
    await page.locator('#record-button.armed').waitFor();
    await page.keyboard.press('F9');
    await page.locator('#state', { hasText: 'Ready' }).waitFor({ timeout: 30_000 });
    expect(await page.locator('#record-label').textContent()).toBe('Record');

    // The lecture is in the list, and goes on to be uploaded (packaged and published by the daemon).
    const item = page.locator(`#lectures li[data-id="${status.recording.recordingId}"]`);
    await item.waitFor({ timeout: 10_000 });
    expect(await item.textContent()).toContain('MATH201 · Linear algebra, lecture 3');
    await shot('stopped');
    await page.locator(`#lectures li[data-id="${status.recording.recordingId}"][data-stage="published"]`).waitFor({ timeout: 90_000 });
    expect(await item.locator('.s').textContent()).toBe('uploaded ✓');
    await shot('published');
    // The one console error is the browser's note of the wrong PIN's 403; the page itself had none.
    expect(errors).toEqual(['Failed to load resource: the server responded with a status of 403 (Forbidden)']);
  });
});
