import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { LecternError } from '../util/errors.js';
import { parseIcs } from './ics.js';
import type { Timetable } from './timetable.js';
import { parseYamlTimetable, type YamlParser } from './yamlTimetable.js';

/** Where a timetable comes from; the Scheduler reloads it periodically and on change. */
export interface TimetableSource {
  /** For logs and status; never holds a secret (a URL's path and query are left out). */
  readonly description: string;
  /** A local file whose changes should trigger a reload. */
  readonly watchPath?: string;
  /**
   * The current timetable. Throws SCHEDULE_INVALID / SCHEDULE_UNREADABLE / SCHEDULE_UNAVAILABLE
   * when there is none to give; `problem` is set when an older copy was given instead of a newer
   * one that failed (the cache used while offline).
   */
  load(signal?: AbortSignal): Promise<{ timetable: Timetable; problem?: LecternError }>;
}

export interface FileSourceOptions {
  path: string;
  /** The zone of floating ICS times and of YAML entries without timeZone. */
  timeZone: string;
  /** Needed for .yaml/.yml files (config/ owns the YAML library). */
  parseYaml?: YamlParser;
}

/** Reads the timetable from a local .ics or .yaml/.yml file on every load. */
export class FileTimetableSource implements TimetableSource {
  readonly description: string;
  readonly watchPath: string;
  readonly #o: FileSourceOptions;

  constructor(options: FileSourceOptions) {
    this.#o = options;
    this.description = options.path;
    this.watchPath = options.path;
  }

  async load(): Promise<{ timetable: Timetable }> {
    let text: string;
    try {
      text = await readFile(this.#o.path, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'error';
      throw new LecternError('SCHEDULE_UNREADABLE', `cannot read the timetable ${this.#o.path} (${code})`, { cause: err, details: { source: this.#o.path } });
    }
    return { timetable: parseTimetableText(text, this.#o.path, this.#o) };
  }
}

/** Picks the format by extension, else by content (an ICS file starts with BEGIN:VCALENDAR). */
export function parseTimetableText(text: string, source: string, opts: { timeZone: string; parseYaml?: YamlParser | undefined }): Timetable {
  const ext = path.extname(source).toLowerCase();
  const looksIcs = /^\uFEFF?\s*BEGIN:VCALENDAR/i.test(text);
  if (ext === '.yaml' || ext === '.yml' || (ext !== '.ics' && !looksIcs)) {
    if (!opts.parseYaml) throw new LecternError('SCHEDULE_UNREADABLE', `cannot read the YAML timetable ${source}: no YAML parser was given to the scheduler`, { details: { source } });
    return parseYamlTimetable(text, opts.parseYaml, { timeZone: opts.timeZone, source });
  }
  return parseIcs(text, { timeZone: opts.timeZone, source });
}
