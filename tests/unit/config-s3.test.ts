import { chmodSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parse as loadYaml } from 'yaml';
import { createStore, describeStoreLocation } from '../../src/agent/store.js';
import { loadConfig, renderExampleConfig, validateConfig, type Config } from '../../src/config/index.js';
import { silentLogger } from '../../src/log/logger.js';
import { FileStore } from '../../src/storage/fileStore.js';
import { S3Store } from '../../src/storage/s3Store.js';
import { isLecternError } from '../../src/util/errors.js';
import { makeTmpDir } from '../helpers/tmp.js';

/** storage.kind: s3 in the configuration, and the agent's choice of store from it. */

function problems(storage: unknown): string[] {
  const result = validateConfig({ storage });
  return result.ok ? [] : result.problems;
}

function parsed(storage: unknown): Config['storage'] {
  const result = validateConfig({ storage });
  if (!result.ok) throw new Error(result.problems.join('\n'));
  return result.config.storage;
}

describe('storage configuration', () => {
  it('keeps the file storage as the default, with the same keys', () => {
    expect(parsed(undefined)).toEqual({ kind: 'file', prefix: '' });
    expect(parsed({})).toEqual({ kind: 'file', prefix: '' });
    expect(parsed({ root: '/srv/store', prefix: 'campus' })).toEqual({ kind: 'file', root: '/srv/store', prefix: 'campus' });
  });

  it('fills the defaults of an S3 bucket', () => {
    expect(parsed({ kind: 's3', bucket: 'lectures' })).toEqual({ kind: 's3', bucket: 'lectures', region: 'us-east-1', forcePathStyle: true, prefix: '' });
    expect(parsed({ kind: 's3', bucket: 'my.lectures-2026', endpoint: 'http://127.0.0.1:7480', forcePathStyle: false, prefix: 'a/b' })).toMatchObject({
      endpoint: 'http://127.0.0.1:7480',
      forcePathStyle: false,
      prefix: 'a/b',
    });
  });

  it('applies the S3 bucket naming rules', () => {
    for (const bucket of ['ab', 'Lectures', 'lec_tures', '-lectures', 'lectures-', 'a'.repeat(64), 'lec..tures', 'lec.-tures', '192.168.5.4', 'xn--lectures', 'lectures-s3alias']) {
      expect({ bucket, problems: problems({ kind: 's3', bucket }).length }).toEqual({ bucket, problems: 1 });
    }
    expect(problems({ kind: 's3', bucket: 'Lectures' })[0]).toMatch(/^storage\.bucket: must be 3-63 lowercase letters/);
    expect(problems({ kind: 's3' })).toEqual(['storage.bucket: is required (string)']);
  });

  it('refuses a bad endpoint, a key of the other kind, two sources for one secret and an unknown kind', () => {
    expect(problems({ kind: 's3', bucket: 'lectures', endpoint: 'ftp://x.example' })).toEqual(['storage.endpoint: must be an http:// or https:// URL']);
    const withCredentials = problems({ kind: 's3', bucket: 'lectures', endpoint: 'https://KEY:SECRETVALUE@s3.example.edu' });
    expect(withCredentials).toEqual(['storage.endpoint: must not contain credentials; use accessKeyIdFile and secretAccessKeyFile']);
    expect(withCredentials.join()).not.toContain('SECRETVALUE');
    expect(problems({ kind: 's3', bucket: 'lectures', root: '/srv' })).toEqual(['storage.root: unknown key']);
    expect(problems({ kind: 'file', bucket: 'lectures' })).toEqual(['storage.bucket: unknown key']);
    expect(problems({ kind: 's3', bucket: 'lectures', accessKeyIdFile: '/k', accessKeyIdEnv: 'K', secretAccessKeyFile: '/s', secretAccessKeyEnv: 'S' })).toEqual([
      'storage.accessKeyIdEnv: set accessKeyIdFile or accessKeyIdEnv, not both',
      'storage.secretAccessKeyEnv: set secretAccessKeyFile or secretAccessKeyEnv, not both',
    ]);
    expect(problems({ kind: 'gcs' })).toEqual(['storage.kind: unknown storage kind "gcs"; expected one of file, s3']);
  });

  it('documents an S3 bucket in the example, and that block is a valid configuration once uncommented', () => {
    const text = renderExampleConfig();
    const lines = text.split('\n');
    const start = lines.findIndex((l) => l.startsWith('  # An S3-compatible bucket instead'));
    expect(start).toBeGreaterThan(0);
    const block: string[] = [];
    for (const line of lines.slice(start + 1)) {
      if (!line.startsWith('  # ')) break;
      block.push(line.replace(/^ {2}# /, '  '));
    }
    const result = validateConfig(loadYaml(`storage:\n${block.join('\n')}\n`));
    expect(result.ok && result.config.storage).toMatchObject({ kind: 's3', bucket: 'lectures', accessKeyIdFile: '/etc/lectern/s3-access-key-id' });
  });
});

describe('the store the agent builds', () => {
  let tmp: ReturnType<typeof makeTmpDir>;
  beforeEach(() => (tmp = makeTmpDir()));
  afterEach(() => tmp.cleanup());

  const configWith = (storage: string): Config => {
    const file = path.join(tmp.dir, 'lectern.yaml');
    writeFileSync(file, `storage:\n${storage}`);
    return loadConfig({ path: file, env: {}, cwd: '/' }).config;
  };
  const secret = (name: string, value: string, mode = 0o600): void => {
    writeFileSync(path.join(tmp.dir, name), `${value}\n`);
    chmodSync(path.join(tmp.dir, name), mode);
  };

  it('builds a FileStore for file storage', async () => {
    const config = configWith('  root: store\n');
    const store = await createStore(config, { logger: silentLogger, env: {}, defaultRoot: '/unused' });
    expect(store).toBeInstanceOf(FileStore);
    expect(store.description).toBe(`file:${path.join(tmp.dir, 'store')}`);
    expect(describeStoreLocation(config, 'lectures/x/')).toBe(path.join(tmp.dir, 'store', 'lectures/x/'));
  });

  it('reads S3 credentials from 0600 files named relative to the configuration, never showing them', async () => {
    secret('key-id', 'AKIDEXAMPLE0001');
    secret('secret', 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY');
    const config = configWith('  kind: s3\n  endpoint: http://127.0.0.1:7480\n  bucket: lectures\n  accessKeyIdFile: ./key-id\n  secretAccessKeyFile: ./secret\n  prefix: campus\n');
    expect(config.storage).toMatchObject({ accessKeyIdFile: path.join(tmp.dir, 'key-id'), secretAccessKeyFile: path.join(tmp.dir, 'secret') });
    const store = await createStore(config, { logger: silentLogger, env: {}, defaultRoot: '/unused' });
    expect(store).toBeInstanceOf(S3Store);
    expect(store.description).toBe('s3:http://127.0.0.1:7480/lectures');
    expect(describeStoreLocation(config, 'campus/lectures/x/')).toBe('s3://lectures/campus/lectures/x/');
  });

  it('falls back to AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, and names what is missing', async () => {
    const config = configWith('  kind: s3\n  bucket: lectures\n');
    const store = await createStore(config, { logger: silentLogger, env: { AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE0001', AWS_SECRET_ACCESS_KEY: 'secret-value' }, defaultRoot: '/unused' });
    expect(store.description).toBe('s3:aws:us-east-1/lectures');
    try {
      await createStore(config, { logger: silentLogger, env: { AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE0001' }, defaultRoot: '/unused' });
      expect.unreachable('a missing secret must fail');
    } catch (err) {
      expect(isLecternError(err, 'SECRET_UNREADABLE')).toBe(true);
      expect((err as Error).message).toContain('AWS_SECRET_ACCESS_KEY');
    }
  });

  it('refuses a secret file other users can read', async () => {
    secret('key-id', 'AKIDEXAMPLE0001');
    secret('secret', 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY', 0o644);
    const config = configWith('  kind: s3\n  bucket: lectures\n  accessKeyIdFile: ./key-id\n  secretAccessKeyFile: ./secret\n');
    try {
      await createStore(config, { logger: silentLogger, env: {}, defaultRoot: '/unused' });
      expect.unreachable('an insecure secret file must fail');
    } catch (err) {
      expect(isLecternError(err, 'SECRET_INSECURE')).toBe(true);
      expect((err as Error).message).toContain('chmod 600');
      expect((err as Error).message).not.toContain('EXAMPLEKEY');
    }
  });
});
