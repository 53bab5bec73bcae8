import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { defaultAgentId, loadConfig, readSecret, validateConfig } from '../../src/config/index.js';
import { LecternError } from '../../src/util/errors.js';
import { makeTmpDir } from '../helpers/tmp.js';

function problemsOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    if (err instanceof LecternError && Array.isArray(err.details.problems)) return err.details.problems as string[];
    throw err;
  }
  throw new Error('expected a configuration error');
}

describe('configuration', () => {
  let tmp: ReturnType<typeof makeTmpDir>;
  beforeEach(() => (tmp = makeTmpDir()));
  afterEach(() => tmp.cleanup());

  const write = (name: string, text: string): string => {
    const file = path.join(tmp.dir, name);
    writeFileSync(file, text);
    return file;
  };

  it('without a file, is the demo setup: one synthetic camera and a local store under ./lectern-data', () => {
    const { config, source } = loadConfig({ env: {}, cwd: tmp.dir });
    expect(source).toBe('(built-in defaults)');
    expect(config.sources).toEqual([{ kind: 'synthetic', name: 'presenter', role: 'presenter', width: 1280, height: 720, fps: 25, toneHz: 440 }]);
    expect(config.agent.dataDir).toBe(path.join(tmp.dir, 'lectern-data'));
    expect(config.storage).toEqual({ kind: 'file', root: path.join(tmp.dir, 'lectern-data', 'store'), prefix: '' });
    expect(config.capture.segmentSeconds).toBe(10);
    expect(config.transcode.renditions.map((r) => [r.name, r.height, r.crf])).toEqual([
      ['720p', 720, 26],
      ['360p', 360, 26],
    ]);
    expect(config.queue.maxAttempts).toBe(10);
  });

  it('treats an empty file like no file', () => {
    const { config } = loadConfig({ path: write('empty.yaml', ''), env: {} });
    expect(config.sources[0]?.name).toBe('presenter');
    expect(config.agent.dataDir).toBe(path.join(tmp.dir, 'lectern-data'));
  });

  it('reports every mistake at once, each with its path', () => {
    const file = write('bad.yaml', 'capture:\n  segmentSeconds: 0\ntranscode:\n  foo: 1\nsources:\n  - name: cam\n    kind: usb\n');
    const problems = problemsOf(() => loadConfig({ path: file, env: {} }));
    expect(problems).toHaveLength(3);
    expect(problems).toContain('capture.segmentSeconds: must be a number >= 2, got 0');
    expect(problems).toContain('transcode.foo: unknown key');
    expect(problems).toContain('sources.0.kind: unknown kind "usb"; expected one of synthetic, rtsp, onvif');
  });

  it('refuses a password inside a camera URL without repeating it', () => {
    const result = validateConfig({ sources: [{ kind: 'rtsp', name: 'cam', url: 'rtsp://admin:Hunter2xyz@192.0.2.1/s' }] });
    expect(result.ok).toBe(false);
    const text = result.ok ? '' : result.problems.join('\n');
    expect(text).toMatch(/sources\.0\.url: must not contain a password/);
    expect(text).not.toContain('Hunter2xyz');
  });

  it('rejects duplicate source names, odd heights and a rendition called audio', () => {
    const result = validateConfig({
      sources: [
        { kind: 'synthetic', name: 'a' },
        { kind: 'synthetic', name: 'a' },
      ],
      transcode: { renditions: [{ name: 'audio', height: 721, videoBitrateKbps: 100 }] },
    });
    expect(result.ok ? [] : result.problems).toEqual([
      'sources.1.name: duplicate source name "a"',
      'transcode.renditions.0.name: "audio" is reserved for the audio-only rendition',
      'transcode.renditions.0.height: must be even (H.264 4:2:0 needs even sizes)',
    ]);
  });

  it('resolves relative paths against the file, and uses STATE_DIRECTORY under systemd', () => {
    mkdirSync(path.join(tmp.dir, 'etc'));
    const file = write('etc/lectern.yaml', 'agent:\n  dataDir: ../var\nstorage:\n  root: /srv/store\n');
    const { config } = loadConfig({ path: file, env: {}, cwd: '/' });
    expect(config.agent.dataDir).toBe(path.join(tmp.dir, 'var'));
    expect(config.storage).toMatchObject({ kind: 'file', root: '/srv/store' });
    const service = loadConfig({ env: { STATE_DIRECTORY: '/var/lib/lectern' }, cwd: tmp.dir });
    expect(service.config.agent.dataDir).toBe('/var/lib/lectern');
    expect(service.config.storage).toMatchObject({ kind: 'file', root: '/var/lib/lectern/store' });
  });

  it('names the line of a YAML syntax error, and refuses a list at the top', () => {
    const syntax = problemsOf(() => loadConfig({ path: write('syntax.yaml', 'agent:\n  site: [unclosed\n'), env: {} }));
    expect(syntax[0]).toMatch(/^line \d+, column \d+: /);
    const list = problemsOf(() => loadConfig({ path: write('list.yaml', '- a\n- b\n'), env: {} }));
    expect(list).toEqual(['(top level): must be a mapping of sections (agent, sources, capture, ...), got a list']);
  });

  it('says plainly when the named file does not exist', () => {
    expect(() => loadConfig({ path: path.join(tmp.dir, 'nope.yaml'), env: {} })).toThrow(/cannot read the configuration file .*nope\.yaml \(ENOENT\)/);
  });

  it('makes a safe agent id from any host name', () => {
    expect(defaultAgentId('Room-101.Campus.Example')).toBe('room-101.campus.example');
    expect(defaultAgentId('___')).toBe('lectern');
  });
});

describe('secrets', () => {
  let tmp: ReturnType<typeof makeTmpDir>;
  beforeEach(() => (tmp = makeTmpDir()));
  afterEach(() => tmp.cleanup());

  it('reads a 0600 file, and refuses a file others can read without showing its content', () => {
    const file = path.join(tmp.dir, 'pw');
    writeFileSync(file, 'S3cretValue\n');
    chmodSync(file, 0o600);
    expect(readSecret({ file }, { env: {}, what: 'camera password' })).toBe('S3cretValue');
    chmodSync(file, 0o644);
    let message = '';
    try {
      readSecret({ file }, { env: {}, what: 'camera password' });
    } catch (err) {
      expect(err).toBeInstanceOf(LecternError);
      expect((err as LecternError).code).toBe('SECRET_INSECURE');
      message = (err as Error).message;
    }
    expect(message).toContain(`chmod 600 ${file}`);
    expect(message).not.toContain('S3cretValue');
  });

  it('reads the environment, and names a missing variable', () => {
    expect(readSecret({ env: 'CAM_PW' }, { env: { CAM_PW: 'x1y2z3' }, what: 'camera password' })).toBe('x1y2z3');
    expect(() => readSecret({ env: 'CAM_PW' }, { env: {}, what: 'camera password' })).toThrow(/CAM_PW is not set/);
  });

  it('reads a systemd credential by bare name', () => {
    writeFileSync(path.join(tmp.dir, 'campw'), 'fromCredential');
    expect(readSecret({ file: 'campw' }, { env: { CREDENTIALS_DIRECTORY: tmp.dir }, what: 'camera password' })).toBe('fromCredential');
  });
});
