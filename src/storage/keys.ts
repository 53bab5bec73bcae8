import { LecternError } from '../util/errors.js';
import { assertSafeName } from '../util/names.js';
import { assertValidKey } from './store.js';

/**
 * The storage layout the central platform relies on (DESIGN §3.1). Changing a string here moves
 * where every agent publishes, so each one is pinned by tests/unit/keys.test.ts.
 *
 *   {prefix}/lectures/{site}/{room}/{YYYY}/{MM}/{DD}/{lectureId}/   one lecture package
 *   {prefix}/ready/{YYYY}/{MM}/{DD}/{lectureId}.json                 written after lecture.json
 *   {prefix}/agents/{agentId}/status.json                            heartbeat
 *
 * Dates are the lecture's start in UTC, so agents in different time zones file a lecture under
 * the same day the platform lists.
 */

/** `prefix` from the config ('' or 'a/b', a trailing '/' tolerated) as a key head: '' or 'a/b/'. */
function prefixHead(prefix: string): string {
  const trimmed = prefix.replace(/\/+$/, '');
  if (trimmed === '') return '';
  assertValidKey(trimmed);
  return `${trimmed}/`;
}

function utcDateParts(startedAtMs: number): [string, string, string] {
  const date = new Date(startedAtMs);
  if (!Number.isFinite(startedAtMs) || Number.isNaN(date.getTime()) || date.getUTCFullYear() < 1970 || date.getUTCFullYear() > 9999) {
    throw new LecternError('INVALID_NAME', `a lecture start time of ${startedAtMs} ms cannot be turned into a storage date`);
  }
  return [
    String(date.getUTCFullYear()).padStart(4, '0'),
    String(date.getUTCMonth() + 1).padStart(2, '0'),
    String(date.getUTCDate()).padStart(2, '0'),
  ];
}

export interface LecturePrefixInput {
  prefix: string;
  site: string;
  room: string;
  startedAtMs: number;
  lectureId: string;
}

/** `{prefix}/lectures/{site}/{room}/{YYYY}/{MM}/{DD}/{lectureId}/`, ending with '/'. */
export function lecturePrefix(input: LecturePrefixInput): string {
  assertSafeName(input.site, 'site');
  assertSafeName(input.room, 'room');
  assertSafeName(input.lectureId, 'lecture id');
  const [yyyy, mm, dd] = utcDateParts(input.startedAtMs);
  return `${prefixHead(input.prefix)}lectures/${input.site}/${input.room}/${yyyy}/${mm}/${dd}/${input.lectureId}/`;
}

/** `{prefix}/ready/{YYYY}/{MM}/{DD}/{lectureId}.json`: the pointer the platform lists by day. */
export function readyKey(input: { prefix: string; startedAtMs: number; lectureId: string }): string {
  assertSafeName(input.lectureId, 'lecture id');
  const [yyyy, mm, dd] = utcDateParts(input.startedAtMs);
  return `${prefixHead(input.prefix)}ready/${yyyy}/${mm}/${dd}/${input.lectureId}.json`;
}

/** `{prefix}/ready/{YYYY}/{MM}/{DD}/` for `dateUtc` = 'YYYY-MM-DD'. */
export function readyDayPrefix(input: { prefix: string; dateUtc: string }): string {
  const match = /^(\d{4})-(\d{2})-(\d{2})$/.exec(input.dateUtc);
  const ms = match ? Date.UTC(Number(match[1]), Number(match[2]) - 1, Number(match[3])) : Number.NaN;
  // Date.UTC rolls 2026-02-30 over to March; a round trip catches such days.
  if (!match || Number.isNaN(ms) || new Date(ms).toISOString().slice(0, 10) !== input.dateUtc) {
    throw new LecternError('INVALID_NAME', `"${input.dateUtc}" is not a calendar date in the form YYYY-MM-DD`);
  }
  return `${prefixHead(input.prefix)}ready/${match[1]}/${match[2]}/${match[3]}/`;
}

/** `{prefix}/ready/`: under it, one pointer per published lecture, by day. */
export function readyRootPrefix(prefix: string): string {
  return `${prefixHead(prefix)}ready/`;
}

/** The lecture id of a ready pointer key (`.../ready/YYYY/MM/DD/{id}.json`), or undefined for any other key. */
export function lectureIdOfReadyKey(key: string): string | undefined {
  const match = /(?:^|\/)ready\/\d{4}\/\d{2}\/\d{2}\/([^/]+)\.json$/.exec(key);
  return match?.[1];
}

/** `{prefix}/agents/{agentId}/status.json`: the heartbeat. */
export function agentStatusKey(input: { prefix: string; agentId: string }): string {
  assertSafeName(input.agentId, 'agent id');
  return `${prefixHead(input.prefix)}agents/${input.agentId}/status.json`;
}
