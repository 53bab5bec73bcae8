import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

// DESIGN §2: only agent/ (and cli/) know everything; each third-party library has one importer.
const SRC = path.resolve(import.meta.dirname, '../../src');

const ALLOWED: Record<string, readonly string[]> = {
  util: [],
  log: ['util'],
  config: ['util'],
  db: ['log', 'util', 'config'],
  queue: ['db', 'log', 'util'],
  ffmpeg: ['log', 'util'],
  storage: ['log', 'util', 'config'],
  camera: ['log', 'util', 'config'],
  capture: ['ffmpeg', 'storage', 'log', 'util', 'config', 'camera'],
  transcode: ['ffmpeg', 'storage', 'log', 'util', 'queue'],
  upload: ['storage', 'log', 'util', 'queue', 'config', 'transcode'],
  schedule: ['log', 'util', 'config'],
  // api/ knows the agent only through its own types (api/types.ts); agent/ injects the backend.
  api: ['log', 'util'],
  agent: ['*'],
  cli: ['*'],
};

const LIBRARY_OWNER: Record<string, string> = {
  'better-sqlite3': 'db',
  zod: 'config',
  yaml: 'config',
  chokidar: 'capture',
  commander: 'cli',
  'fast-xml-parser': 'camera',
  '@aws-sdk/client-s3': 'storage',
};

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts'))
    .map((e) => path.join(e.parentPath, e.name));
}

function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(/^\s*(?:import|export)[^'"]*?from\s+['"]([^'"]+)['"]/gm)].map((m) => m[1] as string);
}

describe('module boundaries', () => {
  const files = sourceFiles(SRC);

  it('finds the source tree', () => {
    expect(files.length).toBeGreaterThan(20);
  });

  it('imports only the internal modules each module may use', () => {
    const violations: string[] = [];
    for (const file of files) {
      const mod = path.relative(SRC, file).split(path.sep)[0] as string;
      const allowed = ALLOWED[mod];
      if (!allowed) {
        violations.push(`${path.relative(SRC, file)}: module "${mod}" is not in the allow-list`);
        continue;
      }
      for (const spec of importsOf(file)) {
        if (!spec.startsWith('.')) continue;
        const target = path.relative(SRC, path.resolve(path.dirname(file), spec)).split(path.sep)[0] as string;
        if (target === mod || allowed.includes('*') || allowed.includes(target)) continue;
        violations.push(`${path.relative(SRC, file)} imports ${spec} (module ${target})`);
      }
    }
    expect(violations).toEqual([]);
  });

  it('imports each third-party library from exactly one module', () => {
    const violations: string[] = [];
    for (const file of files) {
      const mod = path.relative(SRC, file).split(path.sep)[0] as string;
      for (const spec of importsOf(file)) {
        const lib = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : (spec.split('/')[0] as string);
        const owner = LIBRARY_OWNER[lib];
        if (owner && owner !== mod && !(lib === 'commander' && mod === 'cli')) violations.push(`${path.relative(SRC, file)} imports ${lib} (owned by ${owner}/)`);
      }
    }
    expect(violations).toEqual([]);
  });

  it('spawns processes only in ffmpeg/, never through a shell, never with fluent-ffmpeg', () => {
    for (const file of files) {
      const mod = path.relative(SRC, file).split(path.sep)[0];
      const text = readFileSync(file, 'utf8');
      // agent/systemd.ts runs systemd-notify and timedatectl: Node cannot send sd_notify's unix
      // datagrams itself (the file says why), and those tools are no business of ffmpeg/.
      if (mod !== 'ffmpeg' && path.relative(SRC, file) !== path.join('agent', 'systemd.ts')) expect(importsOf(file), file).not.toContain('node:child_process');
      expect(text, file).not.toMatch(/shell:\s*true|from 'fluent-ffmpeg'|\bexecSync\b|\bexecFile\b/);
    }
  });
});
