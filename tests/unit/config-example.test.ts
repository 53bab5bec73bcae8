import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { configSchema, renderExampleConfig, validateConfig } from '../../src/config/index.js';

function leaves(value: unknown, at = ''): string[] {
  if (Array.isArray(value)) return value.flatMap((v) => leaves(v, at));
  if (value && typeof value === 'object') return Object.entries(value).flatMap(([k, v]) => leaves(v, k));
  return [at];
}

describe('the example configuration', () => {
  const text = renderExampleConfig();

  it('is exactly the defaults', () => {
    const result = validateConfig(parse(text));
    expect(result.ok).toBe(true);
    if (result.ok) expect(result.config).toEqual(configSchema.parse({}));
  });

  it('shows every setting, with its description', () => {
    for (const key of new Set(leaves(configSchema.parse({})))) expect(text).toMatch(new RegExp(`^\\s*(- )?(# )?${key}:`, 'm'));
    expect(text).toContain('# root:');
    expect(text).toContain('# length of each recorded segment in seconds');
    expect(text).toContain('# x264 quality target (lower is better); the bitrate ceiling caps it');
  });

  it('documents an RTSP camera without a password in it, and keeps the host name out', () => {
    expect(text).toMatch(/# {3}passwordFile: \/etc\/lectern\//);
    expect(text).not.toMatch(/rtsp:\/\/[^\s/]*:[^\s/]*@/);
    expect(text).toMatch(/^ {2}# id: /m);
  });
});
