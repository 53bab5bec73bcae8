import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { LecternError } from '../util/errors.js';

/**
 * The one XML reader of camera replies. A camera is a device on the classroom network that we
 * do not control, so its replies are read defensively:
 *
 * - a DOCTYPE is refused outright (SOAP 1.2 forbids it), so no entity can be declared and
 *   nothing can expand ("billion laughs"); on top of that the library's own entity processing is
 *   off and only the five predefined entities and character references are decoded, here;
 * - the document must be well-formed (fast-xml-parser's parser alone is lenient about mismatched
 *   tags, so its validator runs first), have exactly one root element and bind every prefix;
 * - the result is a small element tree keyed by local names, with children always in arrays, so
 *   no caller meets the "one element is an object, two are an array" trap of xml2js-style output.
 *
 * The library's `removeNSPrefix` is not used: it drops the xmlns declarations that the unbound
 * prefix check needs; the tree below strips prefixes itself after checking them.
 */

export interface XmlElement {
  /** The local name: `tt:Uri` and `Uri` are both `Uri` (vendors use every prefix imaginable). */
  readonly name: string;
  /** The namespace URI the element's prefix is bound to ('' when none). */
  readonly ns: string;
  /** Attributes by local name (`xmlns` declarations are not included). */
  readonly attrs: Readonly<Record<string, string>>;
  readonly children: readonly XmlElement[];
  /** The element's own text (CDATA included), entities decoded, surrounding space trimmed. */
  readonly text: string;
}

/** Replies larger than this are refused: a GetProfiles of a 64-channel recorder is well below. */
export const MAX_XML_CHARS = 4 * 1024 * 1024;

/**
 * The parser settings. Exported so a unit test can show that the library itself, given a
 * billion-laughs document directly (without our DOCTYPE check), does not expand it.
 */
export const XML_PARSER_OPTIONS = {
  preserveOrder: true,
  ignoreAttributes: false,
  attributeNamePrefix: '',
  removeNSPrefix: false,
  processEntities: false,
  htmlEntities: false,
  parseTagValue: false,
  parseAttributeValue: false,
  trimValues: false,
  cdataPropName: '#cdata',
  ignoreDeclaration: true,
  ignorePiTags: true,
} as const;

const parser = new XMLParser(XML_PARSER_OPTIONS);

const XML_NS = 'http://www.w3.org/XML/1998/namespace';

/** Parses a reply into an element tree, or throws CAMERA_BAD_REPLY naming `what` and the problem. */
export function parseXml(xml: string, what: string): XmlElement {
  const bad = (problem: string, cause?: unknown): LecternError =>
    new LecternError('CAMERA_BAD_REPLY', `${what}: ${problem}`, cause === undefined ? undefined : { cause });
  // A byte-order mark and the trailing NULs some firmwares append are not part of the document.
  const text = xml.replace(/^\uFEFF/, '').replace(/[\s\0]+$/, '');
  if (text.length === 0) throw bad('the reply is empty');
  if (text.length > MAX_XML_CHARS) throw bad(`the reply is larger than ${MAX_XML_CHARS} characters`);
  if (/<!DOCTYPE/i.test(text) || /<!ENTITY/i.test(text)) throw bad('the reply contains a DOCTYPE or ENTITY declaration, which SOAP does not allow');

  const valid = XMLValidator.validate(text);
  if (valid !== true) throw bad(`not well-formed XML (line ${valid.err.line}: ${valid.err.msg})`);

  let nodes: unknown;
  try {
    nodes = parser.parse(text);
  } catch (err) {
    throw bad(`not readable XML (${err instanceof Error ? err.message : String(err)})`, err);
  }
  const roots = elementNodes(nodes);
  if (roots.length !== 1) throw bad(`expected one root element, found ${roots.length}`);
  return buildElement(roots[0] as RawElement, new Map([['xml', XML_NS]]), (problem) => bad(problem));
}

/** The first child element with this local name. */
export function child(el: XmlElement | undefined, name: string): XmlElement | undefined {
  return el?.children.find((c) => c.name === name);
}

/** Every child element with this local name (an empty array when there is none). */
export function childrenNamed(el: XmlElement | undefined, name: string): XmlElement[] {
  return el ? el.children.filter((c) => c.name === name) : [];
}

/** Follows a path of local names from `el`, taking the first match at each step. */
export function path(el: XmlElement | undefined, ...names: string[]): XmlElement | undefined {
  let current = el;
  for (const name of names) current = child(current, name);
  return current;
}

/** The first element with this local name anywhere below `el` (depth first), or `el` itself. */
export function findFirst(el: XmlElement | undefined, name: string): XmlElement | undefined {
  if (!el) return undefined;
  if (el.name === name) return el;
  for (const c of el.children) {
    const found = findFirst(c, name);
    if (found) return found;
  }
  return undefined;
}

/** Text of the child with this local name, or undefined when missing or empty. */
export function childText(el: XmlElement | undefined, name: string): string | undefined {
  const value = child(el, name)?.text;
  return value === undefined || value === '' ? undefined : value;
}

/** Escapes a value for element content or a double-quoted attribute. */
export function xmlEscape(value: string): string {
  return value.replace(/[&<>"']/g, (c) => XML_ESCAPES[c] ?? c);
}

const XML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' };

const PREDEFINED: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };

/** Decodes the five predefined entities and character references; anything else stays as it is. */
export function decodeEntities(text: string): string {
  if (!text.includes('&')) return text;
  return text.replace(/&(#x[0-9a-fA-F]{1,6}|#[0-9]{1,7}|[a-z]{2,4});/g, (whole, ref: string) => {
    if (ref.startsWith('#')) {
      const code = ref[1] === 'x' ? parseInt(ref.slice(2), 16) : parseInt(ref.slice(1), 10);
      const allowed = code === 0x9 || code === 0xa || code === 0xd || (code >= 0x20 && code <= 0xd7ff) || (code >= 0xe000 && code <= 0x10ffff && code !== 0xfffe && code !== 0xffff);
      return allowed ? String.fromCodePoint(code) : whole;
    }
    return PREDEFINED[ref] ?? whole;
  });
}

// ---- conversion from fast-xml-parser's ordered output ----

type RawNode = Record<string, unknown>;
interface RawElement {
  tag: string;
  body: unknown[];
  attrs: Record<string, string>;
}

function elementNodes(nodes: unknown): RawElement[] {
  if (!Array.isArray(nodes)) return [];
  const out: RawElement[] = [];
  for (const node of nodes as RawNode[]) {
    const tag = Object.keys(node).find((k) => k !== ':@' && k !== '#text' && k !== '#cdata');
    if (tag === undefined || tag.startsWith('?')) continue;
    const body = node[tag];
    const attrs = (node[':@'] ?? {}) as Record<string, string>;
    out.push({ tag, body: Array.isArray(body) ? body : [], attrs });
  }
  return out;
}

function splitName(qname: string): { prefix: string | undefined; local: string } {
  const i = qname.indexOf(':');
  return i === -1 ? { prefix: undefined, local: qname } : { prefix: qname.slice(0, i), local: qname.slice(i + 1) };
}

function buildElement(raw: RawElement, inScope: Map<string, string>, bad: (problem: string) => LecternError): XmlElement {
  // Namespace declarations on this element apply to it and everything below it.
  let scope = inScope;
  for (const [key, value] of Object.entries(raw.attrs)) {
    if (key === 'xmlns' || key.startsWith('xmlns:')) {
      if (scope === inScope) scope = new Map(inScope);
      scope.set(key === 'xmlns' ? '' : key.slice(6), decodeEntities(value));
    }
  }
  const { prefix, local } = splitName(raw.tag);
  const ns = prefix === undefined ? (scope.get('') ?? '') : scope.get(prefix);
  if (ns === undefined) throw bad(`the prefix "${prefix}" of element <${raw.tag}> is not bound to a namespace`);

  const attrs: Record<string, string> = Object.create(null) as Record<string, string>;
  for (const [key, value] of Object.entries(raw.attrs)) {
    if (key === 'xmlns' || key.startsWith('xmlns:')) continue;
    const a = splitName(key);
    if (a.prefix !== undefined && !scope.has(a.prefix)) throw bad(`the prefix "${a.prefix}" of attribute ${key} on <${raw.tag}> is not bound to a namespace`);
    attrs[a.local] = decodeEntities(value);
  }

  const children: XmlElement[] = [];
  let text = '';
  for (const node of raw.body as RawNode[]) {
    if (typeof node['#text'] === 'string') {
      text += decodeEntities(node['#text']);
    } else if (Array.isArray(node['#cdata'])) {
      // CDATA is literal: no entity decoding.
      for (const part of node['#cdata'] as RawNode[]) if (typeof part['#text'] === 'string') text += part['#text'];
    }
  }
  for (const rawChild of elementNodes(raw.body)) children.push(buildElement(rawChild, scope, bad));
  return { name: local, ns, attrs, children, text: text.trim() };
}
