import { vttTime } from './thumbnails.js';

/**
 * chapters.vtt: the teacher's markers as a WebVTT chapters track (`<track kind="chapters">`),
 * each chapter from its marker to the next, the last to the end of the lecture. A lecture without
 * markers gets no file: a single chapter spanning the whole lecture would tell a player nothing.
 */

export const CHAPTERS_FILE_NAME = 'chapters.vtt';

export interface Chapter {
  startSeconds: number;
  endSeconds: number;
  title: string;
}

/**
 * Markers (already positions in the packaged video) to chapters. Markers at the same position
 * (several pressed during one pause) would be empty chapters: the last one set wins. Positions
 * are clamped to the lecture, and a marker at its very end starts nothing.
 */
export function chaptersFromMarkers(markers: ReadonlyArray<{ atSeconds: number; title: string }>, durationSeconds: number): Chapter[] {
  const sorted = markers
    .map((m, i) => ({ at: Math.min(Math.max(0, m.atSeconds), durationSeconds), title: m.title, i }))
    .sort((a, b) => a.at - b.at || a.i - b.i);
  const chapters: Chapter[] = [];
  for (const [i, m] of sorted.entries()) {
    const next = sorted[i + 1];
    const end = next ? next.at : durationSeconds;
    // Compared in the file's millisecond resolution, so no cue ends where it starts.
    if (Math.round(end * 1000) <= Math.round(m.at * 1000)) continue;
    chapters.push({ startSeconds: m.at, endSeconds: end, title: m.title });
  }
  return chapters;
}

/** The WebVTT text; cue text is escaped (&, <, >) so a title cannot inject markup. */
export function buildChaptersVtt(chapters: readonly Chapter[]): string {
  const lines = ['WEBVTT', ''];
  for (const [i, c] of chapters.entries()) {
    lines.push(`chapter-${i + 1}`, `${vttTime(c.startSeconds)} --> ${vttTime(c.endSeconds)}`, escapeCueText(c.title), '');
  }
  return lines.join('\n');
}

function escapeCueText(text: string): string {
  // One line: a blank line would end the cue and "-->" would start a new timing line.
  return text
    .replace(/\s+/g, ' ')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;');
}
