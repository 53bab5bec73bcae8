import type { ThumbnailSpec } from '../ffmpeg/hlsArgs.js';

/**
 * The WebVTT track that maps each moment of the lecture to its tile in the thumbnail sprites
 * (`sprite_001.jpg#xywh=x,y,w,h`), the form players such as video.js and hls.js plugins read.
 */

/** Thumbnail size for a source, keeping its aspect ratio, with even sides for the JPEG encoder. */
export function thumbnailSize(sourceWidth: number, sourceHeight: number, width = 160): { width: number; height: number } {
  const height = Math.max(2, Math.round((width * sourceHeight) / sourceWidth / 2) * 2);
  return { width, height };
}

/** How many sprite files ffmpeg writes for a duration (the tile filter emits a last, partial sheet). */
export function spriteCount(durationSeconds: number, spec: Pick<ThumbnailSpec, 'intervalSeconds' | 'columns' | 'rows'>): number {
  return Math.ceil(thumbnailCount(durationSeconds, spec.intervalSeconds) / (spec.columns * spec.rows));
}

export function thumbnailCount(durationSeconds: number, intervalSeconds: number): number {
  return Math.max(1, Math.ceil(durationSeconds / intervalSeconds));
}

export function buildThumbnailsVtt(opts: {
  durationSeconds: number;
  spec: Pick<ThumbnailSpec, 'intervalSeconds' | 'columns' | 'rows' | 'width' | 'height'>;
  /** Sprite file name for a 1-based sheet number, relative to the VTT file. */
  spriteName: (sheet: number) => string;
}): string {
  const { spec } = opts;
  const perSheet = spec.columns * spec.rows;
  const lines = ['WEBVTT', ''];
  const count = thumbnailCount(opts.durationSeconds, spec.intervalSeconds);
  for (let i = 0; i < count; i++) {
    const start = i * spec.intervalSeconds;
    const end = Math.min(opts.durationSeconds, start + spec.intervalSeconds);
    const sheet = Math.floor(i / perSheet) + 1;
    const cell = i % perSheet;
    const x = (cell % spec.columns) * spec.width;
    const y = Math.floor(cell / spec.columns) * spec.height;
    lines.push(`${vttTime(start)} --> ${vttTime(end)}`, `${opts.spriteName(sheet)}#xywh=${x},${y},${spec.width},${spec.height}`, '');
  }
  return lines.join('\n');
}

export function vttTime(seconds: number): string {
  const ms = Math.round(seconds * 1000);
  const h = Math.floor(ms / 3_600_000);
  const m = Math.floor((ms % 3_600_000) / 60_000);
  const s = Math.floor((ms % 60_000) / 1000);
  const rest = ms % 1000;
  return `${String(h).padStart(2, '0')}:${String(m).padStart(2, '0')}:${String(s).padStart(2, '0')}.${String(rest).padStart(3, '0')}`;
}
