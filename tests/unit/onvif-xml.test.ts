import { XMLParser } from 'fast-xml-parser';
import { describe, expect, it } from 'vitest';
import { child, childrenNamed, decodeEntities, parseXml, XML_PARSER_OPTIONS, xmlEscape } from '../../src/camera/xml.js';
import { buildEnvelope } from '../../src/camera/soap.js';
import { isLecternError } from '../../src/util/errors.js';

function badReply(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(isLecternError(err, 'CAMERA_BAD_REPLY'), String(err)).toBe(true);
    return (err as Error).message;
  }
  throw new Error('expected CAMERA_BAD_REPLY');
}

const BILLION_LAUGHS =
  '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">' +
  Array.from({ length: 9 }, (_, i) => `<!ENTITY lol${i + 1} "${`&lol${i === 0 ? '' : i};`.repeat(10)}">`).join('') +
  ']><lolz>&lol9;</lolz>';

describe('camera XML reading', () => {
  it('strips prefixes, resolves namespaces and always gives arrays of children', () => {
    const root = parseXml(
      '<?xml version="1.0"?><s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:tt="urn:tt"><s:Body>' +
        '<tt:P token="a&amp;b">one &amp; &lt;two&gt; &#233;&#x4e2d;</tt:P><P xmlns="urn:other">x<![CDATA[&amp; <raw>]]></P></s:Body></s:Envelope>',
      'test',
    );
    expect(root.name).toBe('Envelope');
    expect(root.ns).toBe('http://www.w3.org/2003/05/soap-envelope');
    const ps = childrenNamed(child(root, 'Body'), 'P');
    expect(ps.map((p) => p.ns)).toEqual(['urn:tt', 'urn:other']);
    expect(ps[0]?.attrs.token).toBe('a&b');
    expect(ps[0]?.text).toBe('one & <two> é中');
    // CDATA is literal: its "&amp;" is not decoded.
    expect(ps[1]?.text).toBe('x&amp; <raw>');
    expect(childrenNamed(child(root, 'Body'), 'Missing')).toEqual([]);
  });

  it('accepts a byte-order mark and trailing NULs some firmwares send', () => {
    expect(parseXml('\uFEFF<a>1</a>\0\0\n', 'test').text).toBe('1');
  });

  it('refuses a DOCTYPE at once, so a billion-laughs document cannot expand', () => {
    const started = performance.now();
    const before = process.memoryUsage().heapUsed;
    expect(badReply(() => parseXml(BILLION_LAUGHS, 'GetProfiles'))).toMatch(/GetProfiles: .*DOCTYPE/);
    expect(performance.now() - started).toBeLessThan(200);
    expect(process.memoryUsage().heapUsed - before).toBeLessThan(20 * 1024 * 1024);
    // Lower case, and an internal subset without the word DOCTYPE in capitals, are refused too.
    badReply(() => parseXml('<!doctype x [<!ENTITY a "b">]><x>&a;</x>', 'test'));
  });

  it('leaves entities unexpanded even in the library itself (defence in depth)', () => {
    // Our DOCTYPE check is bypassed here on purpose: the parser settings alone must be safe.
    const parser = new XMLParser(XML_PARSER_OPTIONS);
    const started = performance.now();
    const out = JSON.stringify(parser.parse(BILLION_LAUGHS));
    expect(performance.now() - started).toBeLessThan(500);
    expect(out.length).toBeLessThan(2000);
    expect(out).not.toContain('lollol');
  });

  it('decodes only the predefined entities and character references', () => {
    expect(decodeEntities('&lt;&gt;&amp;&quot;&apos;&#65;&#x42;')).toBe('<>&"\'AB');
    expect(decodeEntities('&nbsp; &#0; &#xD800; &unknown;')).toBe('&nbsp; &#0; &#xD800; &unknown;');
    // Decoding is one pass: "&amp;lt;" is the text "&lt;", not "<".
    expect(decodeEntities('&amp;lt;')).toBe('&lt;');
  });

  it('refuses malformed documents with CAMERA_BAD_REPLY naming the problem', () => {
    expect(badReply(() => parseXml('<a><b></a></b>', 'GetPresets'))).toMatch(/GetPresets: not well-formed XML/);
    expect(badReply(() => parseXml('<a/><b/>', 'x'))).toMatch(/one root element, found 2/);
    expect(badReply(() => parseXml('', 'x'))).toMatch(/empty/);
    expect(badReply(() => parseXml('hello', 'x'))).toMatch(/not well-formed/);
    expect(badReply(() => parseXml('<p:a><b/></p:a>', 'GetSnapshotUri'))).toMatch(/prefix "p" of element <p:a> is not bound/);
    expect(badReply(() => parseXml('<a xmlns:q="u"><b z:x="1"/></a>', 'x'))).toMatch(/prefix "z" of attribute z:x/);
    expect(badReply(() => parseXml('<a __proto__="1"/>', 'x'))).toMatch(/not readable XML/);
    expect(badReply(() => parseXml(`${'<a>'.repeat(500)}${'</a>'.repeat(500)}`, 'x'))).toMatch(/not readable XML/);
  });

  it('escapes every value put into an envelope', () => {
    expect(xmlEscape(`a&b<c>"d"'e'`)).toBe('a&amp;b&lt;c&gt;&quot;d&quot;&apos;e&apos;');
    const env = buildEnvelope({
      ns: 'http://www.onvif.org/ver20/ptz/wsdl',
      operation: 'SetPreset',
      body: `<PresetName>${xmlEscape('Board & <Podium>')}</PresetName>`,
      credentials: { username: 'ad"min&<x>', password: 'p&ss<word>', clockOffsetMs: 0 },
    });
    const parsed = parseXml(env, 'envelope');
    const token = child(child(child(child(parsed, 'Header'), 'Security'), 'UsernameToken'), 'Username');
    expect(token?.text).toBe('ad"min&<x>');
    expect(child(child(child(parsed, 'Body'), 'SetPreset'), 'PresetName')?.text).toBe('Board & <Podium>');
    // The envelope carries a digest, never the password itself.
    expect(env).not.toContain('p&ss');
    expect(env).not.toContain('p&amp;ss');
  });
});
