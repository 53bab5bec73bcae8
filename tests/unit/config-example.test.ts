import os from 'node:os';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { configSchema, defaultAgentId, renderExampleConfig, validateConfig } from '../../src/config/index.js';

/** Every key of a value, deep (list items included), as bare names. */
function keysOf(value: unknown): string[] {
  if (Array.isArray(value)) return value.flatMap(keysOf);
  if (value && typeof value === 'object') return Object.entries(value).flatMap(([k, v]) => [k, ...keysOf(v)]);
  return [];
}

interface WalkDef {
  type: string;
  innerType?: unknown;
  shape?: Record<string, unknown>;
  element?: unknown;
  options?: unknown[];
}

/** The description of every field of the schema, deep: nested sections, list items, union members. */
function fieldDescriptions(schema: unknown, out = new Set<string>()): Set<string> {
  const def = (x: unknown): WalkDef => (x as { _zod: { def: WalkDef } })._zod.def;
  let s = schema;
  while (def(s).innerType) s = def(s).innerType;
  const d = def(s);
  for (const field of Object.values(d.shape ?? {})) {
    for (let f: unknown = field; f; f = def(f).innerType) {
      const description = (f as { description?: string }).description;
      if (description) {
        out.add(description);
        break;
      }
    }
    fieldDescriptions(field, out);
  }
  for (const child of [...(d.element ? [d.element] : []), ...(d.options ?? [])]) fieldDescriptions(child, out);
  return out;
}

/** A commented-out list item, from its description line to its last field, with one '# ' removed. */
function uncommentedItem(lines: readonly string[], firstLine: string): string[] {
  const start = lines.indexOf(firstLine);
  expect(start).toBeGreaterThan(0);
  const block = [lines[start - 1] ?? '', firstLine];
  expect(block[0]).toMatch(/^ {2}# # /);
  for (const line of lines.slice(start + 1)) {
    if (!line.startsWith('  #   ')) break;
    block.push(line);
  }
  return block.map((l) => l.replace(/^ {2}# /, '  '));
}

describe('the example configuration', () => {
  const text = renderExampleConfig();
  const lines = text.split('\n');
  const defaults = configSchema.parse({});

  it('is exactly the defaults', () => {
    expect(validateConfig(parse(text))).toEqual({ ok: true, config: defaults });
  });

  it('shows every setting, with every description in the schema', () => {
    for (const key of new Set(keysOf(defaults))) expect(text, key).toMatch(new RegExp(`^ *(- )?(# )?${key}:`, 'm'));
    const descriptions = fieldDescriptions(configSchema);
    expect(descriptions.size).toBeGreaterThan(60);
    for (const description of descriptions) expect(lines.some((l) => l.replace(/^(\s*#)+\s/, '') === description), description).toBe(true);
    // Optional settings without a default are documented by name too.
    for (const key of ['root', 'passwordEnv', 'accessKeyIdEnv']) expect(text).toMatch(new RegExp(`# (# )?${key}:\\n`));
  });

  it('opens with the manual: where the file lives, relative paths and secrets', () => {
    const header = lines.slice(0, lines.indexOf(''));
    const joined = header.join('\n');
    expect(header.every((l) => l.startsWith('#'))).toBe(true);
    for (const needle of ['/etc/lectern/config.yaml', '--config', '$LECTERN_CONFIG', 'relative path', 'mode 0600', 'passwordEnv', 'lectern config check']) {
      expect(joined).toContain(needle);
    }
  });

  it('has a working RTSP and ONVIF camera commented out, with their descriptions', () => {
    const rtsp = uncommentedItem(lines, '  # - kind: rtsp');
    const onvif = uncommentedItem(lines, '  # - kind: onvif');
    const result = validateConfig(parse(`sources:\n${[...rtsp, ...onvif].join('\n')}\n`));
    expect(result.ok && result.config.sources).toEqual([
      { kind: 'rtsp', name: 'board', role: 'presentation', url: 'rtsp://192.0.2.10:554/stream1', username: 'lectern', passwordFile: '/etc/lectern/board-camera.password', audioIsAac: false },
      {
        kind: 'onvif',
        name: 'front',
        role: 'presenter',
        address: '192.0.2.11',
        username: 'lectern',
        passwordFile: '/etc/lectern/front-camera.password',
        profile: '1280x720',
        preset: 'lectern',
        timeoutMs: 5000,
      },
    ]);
    expect(rtsp).toContain('    # stream URL without the password, e.g. rtsp://192.0.2.10:554/stream1');
    expect(text).not.toMatch(/rtsps?:\/\/[^\s/]*:[^\s/]*@/);
  });

  it('keeps this machine out of it: the agent id is a comment', () => {
    expect(lines).toContain(`  # id: ${defaultAgentId(os.hostname())}`);
    expect(lines.filter((l) => /^\s*id:/.test(l))).toEqual([]);
  });

  it('describes a list once, on its first item', () => {
    const ladder = lines.slice(lines.indexOf('  renditions:'), lines.indexOf('  renditions:') + 16);
    expect(ladder.filter((l) => l.includes('# picture height'))).toHaveLength(1);
    expect(ladder).toContain('    - name: 360p');
  });
});
