import type { StartRequest } from './types.js';
import { ApiError } from './http.js';

/**
 * Strict validation of request bodies: every field is checked for type and bounds, unknown fields
 * are errors (a misspelt "titel" must not start a lecture without its title), and every problem is
 * named in one message. Hand-written because zod belongs to config/ and the bodies are tiny.
 */

type Body = Record<string, unknown>;

const MAX_TEXT_CHARS = 200;
const MAX_EXTEND_MINUTES = 240;
const MAX_DURATION_MINUTES = 720;
// Control characters would end up in lecture.json, logs and the kiosk; tabs and newlines too.
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;

class Problems {
  readonly list: string[] = [];

  constructor(readonly body: Body, allowed: readonly string[]) {
    for (const key of Object.keys(body)) {
      if (!allowed.includes(key)) {
        this.list.push(`unknown field ${JSON.stringify(key.slice(0, 40))}${allowed.length ? ` (allowed: ${allowed.join(', ')})` : ' (this request takes an empty object {})'}`);
      }
    }
  }

  text(key: string, opts: { nullable: boolean }): string | null | undefined {
    const v = this.body[key];
    if (v === undefined) return undefined;
    if (v === null && opts.nullable) return null;
    if (typeof v !== 'string') {
      this.list.push(`${key} must be a string${opts.nullable ? ' or null' : ''}, got ${kindOf(v)}`);
      return undefined;
    }
    const trimmed = v.trim();
    if (trimmed === '') this.list.push(`${key} must not be empty`);
    else if (trimmed.length > MAX_TEXT_CHARS) this.list.push(`${key} must be at most ${MAX_TEXT_CHARS} characters, got ${trimmed.length}`);
    else if (CONTROL.test(trimmed)) this.list.push(`${key} must not contain control characters or line breaks`);
    else return trimmed;
    return undefined;
  }

  integer(key: string, min: number, max: number, opts: { nullable: boolean; required: boolean }): number | null | undefined {
    const v = this.body[key];
    if (v === undefined) {
      if (opts.required) this.list.push(`${key} is required (an integer from ${min} to ${max})`);
      return undefined;
    }
    if (v === null && opts.nullable) return null;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
      this.list.push(`${key} must be an integer from ${min} to ${max}${opts.nullable ? ' or null' : ''}, got ${kindOf(v)}`);
      return undefined;
    }
    return v;
  }

  done(): void {
    if (this.list.length > 0) throw new ApiError(400, 'API_INVALID_BODY', `invalid request: ${this.list.join('; ')}`);
  }
}

function kindOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return `a string of ${v.length} characters`;
  if (typeof v === 'number') return Number.isFinite(v) ? String(v) : 'a non-finite number';
  return typeof v === 'object' ? 'an object' : `a ${typeof v}`;
}

export function parseStart(body: Body): StartRequest {
  const p = new Problems(body, ['title', 'course', 'teacher', 'durationMinutes']);
  const title = p.text('title', { nullable: false });
  const course = p.text('course', { nullable: true });
  const teacher = p.text('teacher', { nullable: true });
  const durationMinutes = p.integer('durationMinutes', 1, MAX_DURATION_MINUTES, { nullable: true, required: false });
  p.done();
  const out: StartRequest = {};
  if (typeof title === 'string') out.title = title;
  if (course !== undefined) out.course = course;
  if (teacher !== undefined) out.teacher = teacher;
  if (durationMinutes !== undefined) out.durationMinutes = durationMinutes;
  return out;
}

/** stop, pause, resume: nothing to say but `{}`. */
export function parseEmpty(body: Body): void {
  new Problems(body, []).done();
}

export function parseExtend(body: Body): number {
  const p = new Problems(body, ['minutes']);
  const minutes = p.integer('minutes', 1, MAX_EXTEND_MINUTES, { nullable: false, required: true });
  p.done();
  return minutes as number;
}

export function parseMarker(body: Body): string | null {
  const p = new Problems(body, ['title']);
  const title = p.text('title', { nullable: true });
  p.done();
  return title ?? null;
}

export function parsePin(body: Body): string {
  const p = new Problems(body, ['pin']);
  const pin = body.pin;
  if (typeof pin !== 'string' || !/^[0-9]{4,12}$/.test(pin)) p.list.push('pin must be a string of 4 to 12 digits');
  p.done();
  return pin as string;
}
