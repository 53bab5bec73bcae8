import { readFile } from 'node:fs/promises';
import path from 'node:path';

/**
 * ALSA capture devices, read from /proc/asound (no extra package, no process to spawn). Each is
 * named by its card's id (`plughw:CARD=USB,DEV=0`), which stays the same across reboots; card
 * numbers do not (they follow the order in which USB devices appear).
 */

export interface AlsaCaptureDevice {
  /** The stable name for the configuration and for ffmpeg's `-f alsa -i`. */
  name: string;
  cardIndex: number;
  cardId: string;
  cardName: string;
  device: number;
  deviceName: string;
}

export type AlsaListing = { available: false; reason: string } | { available: true; devices: AlsaCaptureDevice[] };

/** ` 0 [PCH            ]: HDA-Intel - HDA Intel PCH` -> index 0, id PCH, name "HDA Intel PCH". */
export function parseAsoundCards(text: string): Array<{ index: number; id: string; name: string }> {
  const cards: Array<{ index: number; id: string; name: string }> = [];
  for (const line of text.split('\n')) {
    // "driver - long name"; the driver itself may contain '-' (HDA-Intel, USB-Audio).
    const m = /^\s*(\d+)\s+\[([^\]]+)\]:\s*.*? - (.*)$/.exec(line);
    if (m) cards.push({ index: Number(m[1]), id: (m[2] ?? '').trim(), name: (m[3] ?? '').trim() });
  }
  return cards;
}

/** `01-00: USB Audio : USB Audio : capture 1` -> card 1, device 0, capture. */
export function parseAsoundPcm(text: string): Array<{ card: number; device: number; name: string; capture: boolean }> {
  const out: Array<{ card: number; device: number; name: string; capture: boolean }> = [];
  for (const line of text.split('\n')) {
    const m = /^(\d+)-(\d+):\s*([^:]*):/.exec(line);
    if (m) out.push({ card: Number(m[1]), device: Number(m[2]), name: (m[3] ?? '').trim(), capture: /\bcapture \d+/.test(line) });
  }
  return out;
}

export async function listAlsaCaptureDevices(asoundDir = '/proc/asound'): Promise<AlsaListing> {
  let cardsText: string;
  let pcmText: string;
  try {
    cardsText = await readFile(path.join(asoundDir, 'cards'), 'utf8');
    pcmText = await readFile(path.join(asoundDir, 'pcm'), 'utf8').catch(() => '');
  } catch {
    return { available: false, reason: `this machine has no sound card (${asoundDir} does not exist: no ALSA driver is loaded)` };
  }
  const cards = parseAsoundCards(cardsText);
  if (cards.length === 0) return { available: false, reason: 'ALSA is loaded but reports no sound card' };
  const devices = parseAsoundPcm(pcmText)
    .filter((p) => p.capture)
    .flatMap((p) => {
      const card = cards.find((c) => c.index === p.card);
      return card
        ? [{ name: `plughw:CARD=${card.id},DEV=${p.device}`, cardIndex: card.index, cardId: card.id, cardName: card.name, device: p.device, deviceName: p.name }]
        : [];
    });
  return { available: true, devices };
}
