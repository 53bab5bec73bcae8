import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { configSchema, defaultAgentId, loadConfig, readSecret, validateConfig } from '../../src/config/index.js';
import { LecternError } from '../../src/util/errors.js';
import { makeTmpDir } from '../helpers/tmp.js';

function thrown(fn: () => unknown): LecternError {
  try {
    fn();
  } catch (err) {
    if (err instanceof LecternError) return err;
    throw err;
  }
  throw new Error('expected a LecternError');
}

function problemsOf(fn: () => unknown): string[] {
  const err = thrown(fn);
  expect(err.code).toBe('CONFIG_INVALID');
  expect(Array.isArray(err.details.problems)).toBe(true);
  return err.details.problems as string[];
}

function problems(raw: unknown): string[] {
  const result = validateConfig(raw);
  return result.ok ? [] : result.problems;
}

describe('configuration', () => {
  let tmp: ReturnType<typeof makeTmpDir>;
  beforeEach(() => (tmp = makeTmpDir()));
  afterEach(() => tmp.cleanup());

  const write = (name: string, text: string): string => {
    const file = path.join(tmp.dir, name);
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, text);
    return file;
  };

  it('without a file, is the demo setup of the spec, with paths under the working directory', () => {
    const { config, source } = loadConfig({ env: {}, cwd: tmp.dir });
    expect(source).toBe('(built-in defaults)');
    expect(config).toMatchObject({
      agent: { id: defaultAgentId(os.hostname()), site: 'demo-site', room: 'demo-room', dataDir: path.join(tmp.dir, 'lectern-data') },
      log: { level: 'info' },
      capture: {
        segmentSeconds: 10,
        segmentFormat: 'mpegts',
        rtspTimeoutMs: 5000,
        stallTimeoutMs: 20000,
        stopQuitGraceMs: 8000,
        stopInterruptGraceMs: 10000,
        minFreeDiskBytes: 1_073_741_824,
      },
      transcode: { hlsSegmentSeconds: 5, audioBitrateKbps: 64, preset: 'medium', niceness: 10 },
      queue: { leaseMs: 60000, maxAttempts: 10, backoffBaseMs: 2000, backoffCapMs: 600000 },
    });
    expect(config.sources).toEqual([{ kind: 'synthetic', name: 'presenter', role: 'presenter', width: 1280, height: 720, fps: 25, toneHz: 440 }]);
    expect(config.transcode.renditions).toEqual([
      { name: '720p', height: 720, videoBitrateKbps: 1200, crf: 28 },
      { name: '360p', height: 360, videoBitrateKbps: 350, crf: 28 },
    ]);
    expect(config.storage).toEqual({ kind: 'file', root: path.join(tmp.dir, 'lectern-data', 'store'), prefix: '' });
  });

  it('treats an empty file, a file of comments and empty sections like no file', () => {
    const defaults = loadConfig({ env: {}, cwd: tmp.dir }).config;
    for (const text of ['', '# nothing yet\n', 'agent:\ncapture:\nlog: ~\nstorage:\n  root:\n']) {
      const { config, source } = loadConfig({ path: write('c.yaml', text), env: {}, cwd: '/' });
      expect(source).toBe(path.join(tmp.dir, 'c.yaml'));
      expect(config).toEqual(defaults);
    }
  });

  it('reports every mistake at once, each with its path, in one CONFIG_INVALID error', () => {
    const file = write('bad.yaml', 'capture:\n  segmentSeconds: 0\ntranscode:\n  foo: 1\nsources:\n  - name: main\n    kind: synthetic\n  - name: cam\n    kind: usb\n');
    const err = thrown(() => loadConfig({ path: file, env: {} }));
    expect(err.code).toBe('CONFIG_INVALID');
    // In schema order (sections as the example file lists them), not file order.
    expect(err.details.problems).toEqual([
      'sources.1.kind: unknown source kind "usb"; expected one of synthetic, rtsp, onvif, v4l2',
      'capture.segmentSeconds: must be an integer between 2 and 300, got 0',
      'transcode.foo: unknown key',
    ]);
    expect(err.details.source).toBe(file);
    expect(err.message).toContain(`${file}: 3 problems`);
  });

  it('says what is expected and what was given, for each kind of mistake', () => {
    expect(
      problems({
        agent: { room: 101, site: '../etc' },
        log: { level: 'verbose' },
        capture: { segmentSeconds: 'ten', rtspTimeoutMs: 2.5, stallTimeoutMs: 900000, minFreeDiskBytes: -1, segmentSecond: 5 },
        sources: [{ name: 'cam' }],
        transcode: { renditions: [] },
        storage: { kind: 's3' },
      }),
    ).toEqual([
      'agent.site: must be 1-64 letters, digits, \'.\', \'_\' or \'-\', starting with a letter or digit, got "../etc"',
      'agent.room: must be a string, got 101; write it in quotes ("101")',
      'log.level: must be one of "debug", "info", "warn", "error", got "verbose"',
      'sources.0.kind: is required; set it to one of synthetic, rtsp, onvif, v4l2',
      'capture.segmentSeconds: must be an integer between 2 and 300, got "ten"',
      'capture.rtspTimeoutMs: must be an integer between 1000 and 60000, got 2.5',
      'capture.stallTimeoutMs: must be an integer between 3000 and 600000, got 900000',
      'capture.minFreeDiskBytes: must be an integer of 0 or more, got -1',
      'capture.segmentSecond: unknown key; did you mean segmentSeconds?',
      'transcode.renditions: must have at least 1 entry',
      'storage.bucket: is required (string)',
    ]);
  });

  it('names each unknown key with its full path, wherever it is', () => {
    expect(problems({ agnet: {}, sources: [{ kind: 'rtsp', name: 'cam', url: 'rtsp://192.0.2.1/s', usernme: 'x', extra: 1 }] })).toEqual([
      'sources.0.usernme: unknown key; did you mean username?',
      'sources.0.extra: unknown key',
      'agnet: unknown key; did you mean agent?',
    ]);
  });

  it('refuses a password inside a camera URL without repeating it anywhere', () => {
    const file = write('pw.yaml', 'sources:\n  - kind: rtsp\n    name: cam\n    url: rtsps://admin:Hunter2xyz@192.0.2.1/s\n');
    const err = thrown(() => loadConfig({ path: file, env: {} }));
    expect(err.details.problems).toEqual([
      'sources.0.url: must not contain a password; put the password in a file named by passwordFile (mode 0600) or in the environment variable named by passwordEnv',
    ]);
    expect(`${err.message}\n${JSON.stringify(err.details)}`).not.toContain('Hunter2xyz');
    // A URL pasted into a key of the wrong type is quoted only with its password masked.
    expect(problems({ agent: { site: 'rtsp://admin:Hunter2xyz@192.0.2.1/s' } }).join('\n')).not.toContain('Hunter2xyz');
  });

  it('rejects duplicate source names, and a ladder with a repeated name or height, an odd height or a rendition called audio', () => {
    expect(
      problems({
        sources: [
          { kind: 'synthetic', name: 'a' },
          { kind: 'rtsp', name: 'a', url: 'rtsp://192.0.2.1/s', passwordFile: '/p', passwordEnv: 'P' },
        ],
        transcode: {
          renditions: [
            { name: 'audio', height: 721, videoBitrateKbps: 100 },
            { name: 'hd', height: 720, videoBitrateKbps: 100 },
            { name: 'hd', height: 720, videoBitrateKbps: 100 },
          ],
        },
      }),
    ).toEqual([
      'sources.1.passwordEnv: set passwordFile or passwordEnv, not both',
      'sources.1.name: duplicate source name "a"',
      'transcode.renditions.0.name: "audio" is reserved for the audio-only rendition',
      'transcode.renditions.0.height: must be even (H.264 4:2:0 needs even sizes), got 721',
      'transcode.renditions.2.name: duplicate rendition name "hd"',
      'transcode.renditions.2.height: duplicate rendition height 720',
    ]);
  });

  it('checks the storage prefix', () => {
    expect(problems({ storage: { prefix: 'campus/lectures' } })).toEqual([]);
    for (const prefix of ['/campus', 'campus/', 'a//b', 'a/../b']) {
      expect(problems({ storage: { prefix } })).toEqual(["storage.prefix: must be empty or safe names joined by '/', without a leading or trailing '/'"]);
    }
  });

  it('resolves relative paths against the file, camera password files included', () => {
    const file = write('etc/lectern.yaml', [
      'agent:',
      '  dataDir: ../var',
      'storage:',
      '  root: /srv/store',
      'sources:',
      '  - { kind: rtsp, name: a, url: "rtsp://192.0.2.1/s", passwordFile: secrets/a.pw }',
      '  - { kind: onvif, name: b, address: 192.0.2.2, passwordFile: b.pw }',
      '  - { kind: rtsp, name: c, url: "rtsp://192.0.2.3/s", passwordFile: /run/c.pw }',
      '',
    ].join('\n'));
    const { config } = loadConfig({ path: file, env: {}, cwd: '/' });
    expect(config.agent.dataDir).toBe(path.join(tmp.dir, 'var'));
    expect(config.storage).toEqual({ kind: 'file', root: '/srv/store', prefix: '' });
    expect(config.sources.map((s) => (s.kind === 'synthetic' || s.kind === 'v4l2' ? undefined : s.passwordFile))).toEqual([
      path.join(tmp.dir, 'etc', 'secrets', 'a.pw'),
      path.join(tmp.dir, 'etc', 'b.pw'),
      '/run/c.pw',
    ]);
    const relativeStore = loadConfig({ path: write('x/c.yaml', 'storage:\n  root: out\n'), env: {}, cwd: '/' });
    expect(relativeStore.config.storage).toMatchObject({ root: path.join(tmp.dir, 'x', 'out') });
  });

  it('keeps a bare password file name that is a systemd credential, for readSecret to find there', () => {
    const credentials = path.join(tmp.dir, 'creds');
    mkdirSync(credentials);
    writeFileSync(path.join(credentials, 'campw'), 'x');
    const file = write('c.yaml', 'sources:\n  - { kind: onvif, name: a, address: 192.0.2.2, passwordFile: campw }\n  - { kind: onvif, name: b, address: 192.0.2.3, passwordFile: other }\n');
    const { config } = loadConfig({ path: file, env: { CREDENTIALS_DIRECTORY: credentials }, cwd: '/' });
    expect(config.sources.map((s) => (s.kind === 'onvif' ? s.passwordFile : undefined))).toEqual(['campw', path.join(tmp.dir, 'other')]);
  });

  it('uses STATE_DIRECTORY as the data folder under systemd unless the file sets one', () => {
    const env = { STATE_DIRECTORY: '/var/lib/lectern' };
    const none = loadConfig({ env, cwd: tmp.dir });
    expect(none.config.agent.dataDir).toBe('/var/lib/lectern');
    expect(none.config.storage).toMatchObject({ kind: 'file', root: '/var/lib/lectern/store' });
    expect(loadConfig({ path: write('a.yaml', 'agent:\n  room: r1\n'), env }).config.agent.dataDir).toBe('/var/lib/lectern');
    expect(loadConfig({ path: write('b.yaml', 'agent:\n  dataDir: data\n'), env }).config.agent.dataDir).toBe(path.join(tmp.dir, 'data'));
  });

  it('reads $LECTERN_CONFIG, unless a path is given', () => {
    const fromEnv = write('env.yaml', 'agent:\n  room: from-env\n');
    const given = write('given.yaml', 'agent:\n  room: given\n');
    expect(loadConfig({ env: { LECTERN_CONFIG: fromEnv } })).toMatchObject({ source: fromEnv, config: { agent: { room: 'from-env' } } });
    expect(loadConfig({ path: given, env: { LECTERN_CONFIG: fromEnv } }).config.agent.room).toBe('given');
  });

  it('says plainly when the named file cannot be read', () => {
    const missing = path.join(tmp.dir, 'nope.yaml');
    const err = thrown(() => loadConfig({ path: missing, env: {} }));
    expect(err.code).toBe('CONFIG_UNREADABLE');
    expect(err.message).toContain(`cannot read the configuration file ${missing} (ENOENT)`);
    expect(thrown(() => loadConfig({ env: { LECTERN_CONFIG: missing } })).code).toBe('CONFIG_UNREADABLE');
  });

  it('names the line and column of each YAML syntax error', () => {
    expect(problemsOf(() => loadConfig({ path: write('s.yaml', 'agent:\n  site: [unclosed\n'), env: {} }))).toEqual([
      'line 3, column 1: Flow sequence in block collection must be sufficiently indented and end with a ]',
    ]);
    expect(problemsOf(() => loadConfig({ path: write('d.yaml', 'agent:\n  site: a\n  site: b\n'), env: {} }))).toEqual(['line 3, column 3: Map keys must be unique']);
    expect(problemsOf(() => loadConfig({ path: write('m.yaml', 'agent: {}\n---\nlog: {}\n'), env: {} }))[0]).toMatch(/^line 2, column 1: the file holds more than one YAML document/);
  });

  it('refuses a document that is not a mapping of sections', () => {
    expect(problemsOf(() => loadConfig({ path: write('list.yaml', '- a\n- b\n'), env: {} }))).toEqual([
      '(top level): must be a mapping of sections (agent, log, sources, capture, ...), got a list',
    ]);
    expect(problems('agent')).toEqual(['(top level): must be a mapping of sections (agent, log, sources, capture, ...), got "agent"']);
  });

  it('validates without touching the disk: an empty document is exactly the schema defaults', () => {
    const result = validateConfig(undefined);
    expect(result).toEqual({ ok: true, config: configSchema.parse({}) });
    expect(result.ok && result.config.agent.dataDir).toBe('./lectern-data');
  });

  it('makes a safe agent id from any host name', () => {
    expect(defaultAgentId('Room-101.Campus.Example')).toBe('room-101.campus.example');
    expect(defaultAgentId('pc 7 (front)')).toBe('pc-7-front-');
    expect(defaultAgentId('a..b')).toBe('a.b');
    expect(defaultAgentId('___')).toBe('lectern');
    expect(defaultAgentId('')).toBe('lectern');
  });
});

describe('secrets', () => {
  let tmp: ReturnType<typeof makeTmpDir>;
  beforeEach(() => (tmp = makeTmpDir()));
  afterEach(() => tmp.cleanup());

  const SECRET = 'S3cretValue';
  const what = 'the password of source cam';
  const secretFile = (name: string, text: string, mode: number): string => {
    const file = path.join(tmp.dir, name);
    writeFileSync(file, text);
    chmodSync(file, mode);
    return file;
  };

  it('reads a 0600 file without its trailing newline, and refuses one that others can read', () => {
    const file = secretFile('pw', `${SECRET}\n`, 0o600);
    expect(readSecret({ file }, { env: {}, what })).toBe(SECRET);
    expect(readSecret({ file: secretFile('crlf', `${SECRET} \r\n`, 0o600) }, { env: {}, what })).toBe(`${SECRET} `);
    for (const mode of [0o644, 0o640, 0o604]) {
      chmodSync(file, mode);
      const err = thrown(() => readSecret({ file }, { env: {}, what }));
      expect(err.code).toBe('SECRET_INSECURE');
      expect(err.message).toBe(`${what}: ${file} can be read by other users (mode ${mode.toString(8)}); run: chmod 600 ${file}`);
    }
  });

  it('never puts the value in an error, whatever goes wrong', () => {
    const errors = [
      thrown(() => readSecret({ file: secretFile('open', SECRET, 0o644) }, { env: {}, what })),
      thrown(() => readSecret({ file: path.join(tmp.dir, 'missing') }, { env: {}, what })),
      thrown(() => readSecret({ file: tmp.dir }, { env: {}, what })),
      thrown(() => readSecret({ file: secretFile('empty', '\n', 0o600) }, { env: {}, what })),
      thrown(() => readSecret({ env: 'CAM_PW' }, { env: { OTHER: SECRET }, what })),
    ];
    expect(errors.map((e) => e.code)).toEqual(['SECRET_INSECURE', 'SECRET_UNREADABLE', 'SECRET_UNREADABLE', 'SECRET_UNREADABLE', 'SECRET_UNREADABLE']);
    expect(errors[1]?.message).toBe(`${what}: cannot read ${path.join(tmp.dir, 'missing')} (ENOENT)`);
    expect(errors[2]?.message).toBe(`${what}: ${tmp.dir} is not a regular file`);
    expect(errors[3]?.message).toBe(`${what}: ${path.join(tmp.dir, 'empty')} is empty`);
    for (const err of errors) expect(`${err.message} ${JSON.stringify(err.details)}`).not.toContain(SECRET);
  });

  it('reads the environment, and names a missing or empty variable', () => {
    expect(readSecret({ env: 'CAM_PW' }, { env: { CAM_PW: 'x1y2z3' }, what })).toBe('x1y2z3');
    for (const env of [{}, { CAM_PW: '' }]) {
      const err = thrown(() => readSecret({ env: 'CAM_PW' }, { env, what }));
      expect(err.code).toBe('SECRET_UNREADABLE');
      expect(err.message).toBe(`${what}: the environment variable CAM_PW is not set or empty`);
    }
  });

  it('reads a systemd credential by bare name without the mode check, and otherwise treats the name as a file', () => {
    const credentials = path.join(tmp.dir, 'creds');
    mkdirSync(credentials);
    writeFileSync(path.join(credentials, 'campw'), 'fromCredential\n');
    chmodSync(path.join(credentials, 'campw'), 0o644);
    expect(readSecret({ file: 'campw' }, { env: { CREDENTIALS_DIRECTORY: credentials }, what })).toBe('fromCredential');
    const err = thrown(() => readSecret({ file: 'not-a-credential' }, { env: { CREDENTIALS_DIRECTORY: credentials }, what }));
    expect(err.code).toBe('SECRET_UNREADABLE');
    expect(err.message).toContain('cannot read not-a-credential (ENOENT)');
  });
});
