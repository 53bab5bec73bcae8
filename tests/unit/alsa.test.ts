import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { listAlsaCaptureDevices, parseAsoundCards, parseAsoundPcm } from '../../src/capture/alsa.js';
import { makeTmpDir } from '../helpers/tmp.js';

// /proc/asound as a classroom PC with onboard sound and a USB microphone shows it.
const CARDS = ` 0 [PCH            ]: HDA-Intel - HDA Intel PCH
                      HDA Intel PCH at 0xf7f10000 irq 32
 1 [Mic            ]: USB-Audio - Blue Snowball
                      BLUE Blue Snowball at usb-0000:00:14.0-2, full speed
`;
const PCM = `00-00: ALC3232 Analog : ALC3232 Analog : playback 1 : capture 1
00-03: HDMI 0 : HDMI 0 : playback 1
01-00: USB Audio : USB Audio : capture 1
`;

describe('ALSA capture devices', () => {
  let tmp: ReturnType<typeof makeTmpDir>;
  beforeEach(() => (tmp = makeTmpDir()));
  afterEach(() => tmp.cleanup());

  it('parses cards and pcm devices', () => {
    expect(parseAsoundCards(CARDS)).toEqual([
      { index: 0, id: 'PCH', name: 'HDA Intel PCH' },
      { index: 1, id: 'Mic', name: 'Blue Snowball' },
    ]);
    expect(parseAsoundPcm(PCM).map((p) => [p.card, p.device, p.capture])).toEqual([
      [0, 0, true],
      [0, 3, false],
      [1, 0, true],
    ]);
  });

  it('names capture devices by card id, which survives a reboot, and skips playback-only ones', async () => {
    const dir = path.join(tmp.dir, 'asound');
    mkdirSync(dir);
    writeFileSync(path.join(dir, 'cards'), CARDS);
    writeFileSync(path.join(dir, 'pcm'), PCM);
    const listing = await listAlsaCaptureDevices(dir);
    expect(listing.available && listing.devices.map((d) => d.name)).toEqual(['plughw:CARD=PCH,DEV=0', 'plughw:CARD=Mic,DEV=0']);
  });

  it('says plainly when there is no sound card', async () => {
    const listing = await listAlsaCaptureDevices(path.join(tmp.dir, 'absent'));
    expect(listing).toEqual({ available: false, reason: expect.stringContaining('no sound card') as unknown as string });
  });
});
