import { describe, expect, it } from 'vitest';
import { classifyProbe, isIgnoredName, isSidecarName, parseImportName, parseSidecar, sidecarNameFor } from '../../src/capture/importMeta.js';
import type { ProbeResult } from '../../src/ffmpeg/ffprobe.js';
import { isLecternError } from '../../src/util/errors.js';

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return isLecternError(err) ? err.code : 'not a LecternError';
  }
  return undefined;
}

describe('import folder names', () => {
  it('ignores hidden, temporary and system files until they are renamed', () => {
    for (const name of ['.DS_Store', '.lecture.mp4', 'lecture.mp4.part', 'lecture.mp4.PARTIAL', 'a.tmp', 'a.crdownload', 'a.filepart', 'lecture.mp4~', 'Thumbs.db', 'desktop.ini']) {
      expect(isIgnoredName(name), name).toBe(true);
    }
    for (const name of ['lecture.mp4', 'CS101_2026-11-30_0900.mkv', 'notes.txt', 'part.mp4', 'tmp.mov']) expect(isIgnoredName(name), name).toBe(false);
  });

  it('pairs a media file with the sidecar of the same stem', () => {
    expect(sidecarNameFor('CS101_2026-11-30_0900.mp4')).toBe('CS101_2026-11-30_0900.json');
    expect(sidecarNameFor('no-extension')).toBe('no-extension.json');
    expect(isSidecarName('a.JSON')).toBe(true);
    expect(isSidecarName('a.mp4')).toBe(false);
  });

  it('reads course, start time (local) and title from COURSE_YYYY-MM-DD_HHMM[_TITLE]', () => {
    expect(parseImportName('CS101_2026-11-30_0900.mp4')).toEqual({
      course: 'CS101',
      title: 'CS101 2026-11-30 09:00',
      recordedAtMs: new Date(2026, 10, 30, 9, 0).getTime(),
    });
    expect(parseImportName('MATH-2_2026-12-01_1415_Linear_maps.mkv')).toEqual({
      course: 'MATH-2',
      title: 'Linear maps',
      recordedAtMs: new Date(2026, 11, 1, 14, 15).getTime(),
    });
  });

  it('takes the stem as the title when the name does not follow the pattern or is not a real date', () => {
    expect(parseImportName('VID_20261130_090012.mp4')).toEqual({ title: 'VID_20261130_090012' });
    expect(parseImportName('CS101_2026-02-30_0900.mp4')).toEqual({ title: 'CS101_2026-02-30_0900' });
    expect(parseImportName('CS101_2026-11-30_2500.mp4')).toEqual({ title: 'CS101_2026-11-30_2500' });
  });
});

describe('sidecar JSON', () => {
  it('reads course, title, teacher and recordedAt, ignoring other keys', () => {
    const meta = parseSidecar(
      JSON.stringify({ course: ' PHY200 ', title: 'Waves', teacher: 'Dr. Ada', recordedAt: '2026-12-01T14:15:00+01:00', camera: 'X' }),
      'a.json',
    );
    expect(meta).toEqual({ course: 'PHY200', title: 'Waves', teacher: 'Dr. Ada', recordedAtMs: Date.UTC(2026, 11, 1, 13, 15) });
    expect(parseSidecar('{}', 'a.json')).toEqual({});
  });

  it('rejects broken JSON, wrong types and unreadable dates with IMPORT_SIDECAR_INVALID', () => {
    for (const text of ['{"title": "Waves"', '[]', '{"title": 5}', '{"recordedAt": "yesterday"}', '{"recordedAt": 1764493200000}', `{"title": "${'x'.repeat(201)}"}`]) {
      expect(codeOf(() => parseSidecar(text, 'a.json')), text).toBe('IMPORT_SIDECAR_INVALID');
    }
  });
});

describe('which probed files are recordings', () => {
  const probe = (formatName: string, streams: ProbeResult['streams'], durationSeconds?: number): ProbeResult => ({ formatName, streams, durationSeconds });
  const h264 = { index: 0, codecType: 'video' as const, codecName: 'h264', width: 640, height: 360, durationSeconds: 36 };
  const aac = { index: 1, codecType: 'audio' as const, codecName: 'aac', durationSeconds: 36.02 };

  it('accepts a video recording in any container and takes the video length', () => {
    expect(classifyProbe(probe('mov,mp4,m4a,3gp,3g2,mj2', [h264, aac], 36.02), 'a.mp4')).toEqual({ durationSeconds: 36 });
    expect(classifyProbe(probe('matroska,webm', [{ ...h264, durationSeconds: undefined }, aac], 12.5), 'a.mkv')).toEqual({ durationSeconds: 12.5 });
  });

  it('rejects text, pictures, audio-only and empty recordings with a code', () => {
    expect(codeOf(() => classifyProbe(probe('tty', [{ index: 0, codecType: 'video', codecName: 'ansi' }], 0.2), 'notes.txt'))).toBe('IMPORT_NOT_MEDIA');
    expect(codeOf(() => classifyProbe(probe('image2', [{ index: 0, codecType: 'video', codecName: 'mjpeg' }], 0.04), 'p.jpg'))).toBe('IMPORT_NOT_MEDIA');
    expect(codeOf(() => classifyProbe(probe('mov,mp4,m4a,3gp,3g2,mj2', [{ index: 0, codecType: 'video', codecName: 'mjpeg' }], 0.04), 'p.mov'))).toBe('IMPORT_UNSUPPORTED');
    expect(codeOf(() => classifyProbe(probe('mov,mp4,m4a,3gp,3g2,mj2', [aac], 36), 'a.m4a'))).toBe('IMPORT_UNSUPPORTED');
    expect(codeOf(() => classifyProbe(probe('mpegts', [{ ...h264, durationSeconds: 0.2 }], 0.2), 'a.ts'))).toBe('IMPORT_NOT_MEDIA');
    expect(codeOf(() => classifyProbe(probe('srt', [{ index: 0, codecType: 'subtitle', codecName: 'subrip' }], 10), 'a.srt'))).toBe('IMPORT_NOT_MEDIA');
  });
});
