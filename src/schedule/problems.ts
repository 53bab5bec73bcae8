import { LecternError } from '../util/errors.js';
import type { LineProblem } from './icsLex.js';

/** SCHEDULE_INVALID with one `file:line: message` per problem, in line order. */
export function invalidTimetable(source: string, problems: readonly LineProblem[]): LecternError {
  const lines = [...problems].sort((a, b) => a.line - b.line).map((p) => `${source}:${p.line}: ${p.message}`);
  const count = `${lines.length} problem${lines.length === 1 ? '' : 's'}`;
  return new LecternError('SCHEDULE_INVALID', `the timetable ${source} has ${count}; the previous timetable stays in force\n${lines.map((l) => `  ${l}`).join('\n')}`, {
    details: { source, problems: lines },
  });
}
