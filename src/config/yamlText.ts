import { isNode, LineCounter, parseDocument } from 'yaml';

/**
 * YAML text with positions, for files other modules read (the timetable): config/ is the one
 * importer of the yaml library, so the parse lives here and callers get plain values and lines.
 */
export function parseYamlText(text: string): {
  value: unknown;
  problems: Array<{ line: number; message: string }>;
  lineOf(path: readonly (string | number)[]): number | undefined;
} {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter });
  return {
    value: doc.errors.length > 0 ? undefined : (doc.toJS() as unknown),
    problems: doc.errors.map((e) => ({ line: e.linePos?.[0].line ?? 1, message: e.message.split('\n')[0] ?? e.message })),
    lineOf: (p) => {
      const node = p.length === 0 ? doc.contents : doc.getIn(p, true);
      const offset = isNode(node) ? node.range?.[0] : undefined;
      return offset === undefined ? undefined : lineCounter.linePos(offset).line;
    },
  };
}
