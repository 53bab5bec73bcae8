/**
 * The lexical layer of iCalendar (RFC 5545 §3.1): unfolding and content lines. Every property
 * keeps the number of the physical line it starts on, so every message can point at the file.
 */

export interface IcsProperty {
  /** Upper-case name (DTSTART, X-LECTERN-PRESET). */
  name: string;
  /** Upper-case parameter names to their values (quotes removed). */
  params: Map<string, string[]>;
  value: string;
  line: number;
}

export interface IcsComponent {
  name: string;
  line: number;
  properties: IcsProperty[];
  children: IcsComponent[];
}

/** A problem at a line of the file. */
export interface LineProblem {
  line: number;
  message: string;
}

/** Logical lines: a physical line starting with a space or tab continues the one before it. */
export function unfold(text: string): { line: number; text: string }[] {
  const physical = text.replace(/^\uFEFF/, '').split(/\r\n|\n|\r/);
  const out: { line: number; text: string }[] = [];
  physical.forEach((raw, i) => {
    const last = out.at(-1);
    if ((raw.startsWith(' ') || raw.startsWith('\t')) && last) {
      last.text += raw.slice(1);
      return;
    }
    // Blank lines are not allowed by the RFC but are common at the end of files; they carry nothing.
    if (raw.trim() === '') return;
    out.push({ line: i + 1, text: raw });
  });
  return out;
}

const NAME = /^[A-Za-z0-9-]+/;

/** Parses `NAME;PARAM=a,"b:c";P2=x:value`; throws a message on malformed input. */
export function parseContentLine(text: string, line: number): IcsProperty {
  const name = NAME.exec(text)?.[0];
  if (!name) throw new Error(`expected a property name at the start of "${excerpt(text)}"`);
  const params = new Map<string, string[]>();
  let i = name.length;
  while (text[i] === ';') {
    const pname = NAME.exec(text.slice(i + 1))?.[0];
    if (!pname || text[i + 1 + pname.length] !== '=') throw new Error(`malformed parameter in "${excerpt(text)}"`);
    i += 1 + pname.length + 1;
    const values: string[] = [];
    for (;;) {
      if (text[i] === '"') {
        const close = text.indexOf('"', i + 1);
        if (close < 0) throw new Error(`unterminated quoted parameter value in "${excerpt(text)}"`);
        values.push(text.slice(i + 1, close));
        i = close + 1;
      } else {
        const m = /^[^";:,]*/.exec(text.slice(i))?.[0] ?? '';
        values.push(m);
        i += m.length;
      }
      if (text[i] !== ',') break;
      i++;
    }
    params.set(pname.toUpperCase(), values);
  }
  if (text[i] !== ':') throw new Error(`expected ':' after the property name and parameters in "${excerpt(text)}"`);
  return { name: name.toUpperCase(), params, value: text.slice(i + 1), line };
}

/**
 * The component tree of a file. Collects every problem instead of stopping at the first, so
 * a person fixing a file sees all of them.
 */
export function parseComponents(text: string, problems: LineProblem[]): IcsComponent[] {
  const roots: IcsComponent[] = [];
  const stack: IcsComponent[] = [];
  const lines = unfold(text);
  if (lines.length === 0) {
    problems.push({ line: 1, message: 'the file is empty; expected BEGIN:VCALENDAR' });
    return roots;
  }
  const first = lines[0];
  if (first && first.text.trim().toUpperCase() !== 'BEGIN:VCALENDAR') {
    problems.push({ line: first.line, message: `this is not an iCalendar file: expected BEGIN:VCALENDAR, got "${excerpt(first.text)}"` });
    return roots;
  }
  for (const { line, text: l } of lines) {
    let prop: IcsProperty;
    try {
      prop = parseContentLine(l, line);
    } catch (err) {
      problems.push({ line, message: (err as Error).message });
      continue;
    }
    if (prop.name === 'BEGIN') {
      const comp: IcsComponent = { name: prop.value.trim().toUpperCase(), line, properties: [], children: [] };
      (stack.at(-1)?.children ?? roots).push(comp);
      stack.push(comp);
    } else if (prop.name === 'END') {
      const name = prop.value.trim().toUpperCase();
      const open = stack.at(-1);
      if (!open) {
        problems.push({ line, message: `END:${name} without a matching BEGIN` });
      } else if (open.name !== name) {
        problems.push({ line, message: `END:${name} does not close BEGIN:${open.name} (line ${open.line})` });
        // Close up to the matching BEGIN if there is one, so one typo gives one message.
        const at = stack.map((c) => c.name).lastIndexOf(name);
        if (at >= 0) stack.length = at;
      } else {
        stack.pop();
      }
    } else {
      const open = stack.at(-1);
      if (open) open.properties.push(prop);
      else problems.push({ line, message: `property ${prop.name} outside of any BEGIN/END block` });
    }
  }
  for (const open of stack.reverse()) problems.push({ line: open.line, message: `BEGIN:${open.name} is never closed with END:${open.name}` });
  return roots;
}

/** TEXT values: \n, \, \; and \\ escapes (RFC 5545 §3.3.11). */
export function unescapeText(value: string): string {
  return value.replace(/\\([nN\\;,])/g, (_, c: string) => (c === 'n' || c === 'N' ? '\n' : c));
}

function excerpt(text: string): string {
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}
