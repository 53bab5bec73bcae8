/**
 * The few ISO-BMFF fields progressive packaging has to know about. Each chunk is encoded on its
 * own, so its media segments start their timeline at 0 and their fragment numbers at 1; moving
 * them to where they sit in the lecture (tfdt, sidx and mfhd) makes them the fragments one encode
 * of the whole lecture would have written. The init segment of the first chunk then serves all.
 */

interface Box {
  type: string;
  start: number;
  size: number;
  /** Where the payload begins (after size, type and any 64-bit size). */
  body: number;
}

function* boxes(buf: Buffer, from: number, to: number): Generator<Box> {
  let at = from;
  while (at + 8 <= to) {
    let size = buf.readUInt32BE(at);
    const type = buf.toString('latin1', at + 4, at + 8);
    let body = at + 8;
    if (size === 1) {
      size = Number(buf.readBigUInt64BE(at + 8));
      body = at + 16;
    } else if (size === 0) {
      size = to - at;
    }
    if (size < body - at || at + size > to) throw new Error(`malformed ${type} box at byte ${at}`);
    yield { type, start: at, size, body };
    at += size;
  }
}

function child(buf: Buffer, parent: Box, type: string): Box | undefined {
  for (const b of boxes(buf, parent.body, parent.start + parent.size)) if (b.type === type) return b;
  return undefined;
}

function addToField(buf: Buffer, at: number, version: number, delta: bigint): void {
  if (version === 1) buf.writeBigUInt64BE(buf.readBigUInt64BE(at) + delta, at);
  else {
    const v = BigInt(buf.readUInt32BE(at)) + delta;
    if (v > 0xffffffffn) throw new Error('a 32-bit media time overflows; the segment cannot be moved');
    buf.writeUInt32BE(Number(v), at);
  }
}

/**
 * Shifts a media segment in place: decode times by `ticks` (in the track's timescale), the
 * segment index's presentation time by the same span in its own timescale, and fragment
 * sequence numbers by `sequenceOffset`.
 */
export function shiftMediaSegment(buf: Buffer, shift: { seconds: number; trackTimescale: number; sequenceOffset: number }): void {
  const ticksFor = (timescale: number): bigint => BigInt(Math.round(shift.seconds * timescale));
  for (const box of boxes(buf, 0, buf.length)) {
    if (box.type === 'sidx') {
      // version/flags, reference_ID, timescale, then earliest_presentation_time (32 or 64 bits).
      const version = buf.readUInt8(box.body);
      addToField(buf, box.body + 12, version, ticksFor(buf.readUInt32BE(box.body + 8)));
    } else if (box.type === 'moof') {
      const mfhd = child(buf, box, 'mfhd');
      if (mfhd) buf.writeUInt32BE(buf.readUInt32BE(mfhd.body + 4) + shift.sequenceOffset, mfhd.body + 4);
      for (const traf of boxes(buf, box.body, box.start + box.size)) {
        if (traf.type !== 'traf') continue;
        const tfdt = child(buf, traf, 'tfdt');
        if (!tfdt) throw new Error('a fragment has no tfdt box');
        addToField(buf, tfdt.body + 4, buf.readUInt8(tfdt.body), ticksFor(shift.trackTimescale));
      }
    }
  }
}

/** The path of nested boxes, e.g. ['moov', 'trak', 'mdia', 'mdhd']. */
function find(buf: Buffer, pathTypes: readonly string[]): Box | undefined {
  let range: { from: number; to: number } = { from: 0, to: buf.length };
  let found: Box | undefined;
  for (const type of pathTypes) {
    found = undefined;
    for (const b of boxes(buf, range.from, range.to)) {
      if (b.type === type) {
        found = b;
        break;
      }
    }
    if (!found) return undefined;
    range = { from: found.body, to: found.start + found.size };
  }
  return found;
}

/** The video track's timescale (mdhd) of an init segment. */
export function initTimescale(init: Buffer): number | undefined {
  const mdhd = find(init, ['moov', 'trak', 'mdia', 'mdhd']);
  if (!mdhd) return undefined;
  // version 1: creation and modification times are 64-bit.
  return init.readUInt32BE(mdhd.body + (init.readUInt8(mdhd.body) === 1 ? 20 : 12));
}

/**
 * What a chunk's init segment must share with the first chunk's to be replaced by it: the
 * sample description (codec, SPS/PPS, picture size) and the timescale. Only the edit list may
 * differ (a later chunk's has an empty edit for the time before it, which the shift replaces).
 */
export function initSignature(init: Buffer): string | undefined {
  const stsd = find(init, ['moov', 'trak', 'mdia', 'minf', 'stbl', 'stsd']);
  const timescale = initTimescale(init);
  if (!stsd || timescale === undefined) return undefined;
  return `${timescale}:${init.subarray(stsd.start, stsd.start + stsd.size).toString('base64')}`;
}
