import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createMemoryLogger, silentLogger } from '../../src/log/logger.js';
import { FileStore } from '../../src/storage/fileStore.js';
import { contentTypeFor } from '../../src/storage/store.js';
import { isLecternError } from '../../src/util/errors.js';
import { sha256Hex } from '../../src/util/hash.js';
import { describeStoreContract, errorCodeOf } from './store-contract.js';

describeStoreContract('FileStore', async () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'lectern-'));
  const store = new FileStore({ root: path.join(root, 'store'), logger: silentLogger });
  await store.start();
  return {
    store,
    cleanup: async () => {
      await store.stop();
      fs.rmSync(root, { recursive: true, force: true });
    },
  };
});

/** Every path under `dir`, relative, '/'-separated. */
function walk(dir: string): string[] {
  return (fs.readdirSync(dir, { recursive: true }) as string[]).map((p) => p.split(path.sep).join('/')).sort();
}

describe('FileStore on disk', () => {
  let tmp: string;
  let root: string;

  beforeEach(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lectern-'));
    root = path.join(tmp, 'store');
  });

  afterEach(() => {
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  const started = async (opts: { staleTempMs?: number } = {}): Promise<FileStore> => {
    const store = new FileStore({ root, logger: silentLogger, ...opts });
    await store.start();
    return store;
  };

  it('creates its root on start and describes itself by path', async () => {
    const store = await started();
    expect(fs.statSync(root).isDirectory()).toBe(true);
    expect(store.description).toBe(`file:${root}`);
  });

  it('leaves only final names on disk after puts (no temp file visible)', async () => {
    const store = await started();
    const local = path.join(tmp, 'seg.m4s');
    const data = randomBytes(200_000);
    fs.writeFileSync(local, data);
    await store.putFile('lectures/x/hls/720p/seg_00001.m4s', local, { sizeBytes: data.length, sha256: sha256Hex(data) });
    await store.putBytes('lectures/x/lecture.json', '{}');
    await store.putBytes('lectures/x/lecture.json', '{"again":true}');
    // A failed put cleans up after itself as well.
    await errorCodeOf(store.putFile('lectures/x/bad.m4s', local, { sizeBytes: data.length, sha256: sha256Hex('no') }));
    expect(walk(root)).toEqual([
      'lectures',
      'lectures/x',
      'lectures/x/hls',
      'lectures/x/hls/720p',
      'lectures/x/hls/720p/seg_00001.m4s',
      'lectures/x/lecture.json',
    ]);
  });

  it('ignores leftover temp files in list and head, and start() removes the stale ones', async () => {
    let store = await started();
    await store.putBytes('a/real.json', '{}');
    const stale = path.join(root, 'a', '.seg.m4s.tmp-0123abcd');
    const fresh = path.join(root, 'a', '.other.m4s.tmp-4567ef01');
    fs.writeFileSync(stale, 'half a segm');
    fs.writeFileSync(fresh, 'another wri');
    const hourAgo = new Date(Date.now() - 3_600_000);
    fs.utimesSync(stale, hourAgo, hourAgo);

    expect((await store.list('a/')).map((o) => o.key)).toEqual(['a/real.json']);
    expect((await store.list('')).map((o) => o.key)).toEqual(['a/real.json']);
    // A temp name is reserved: no key can refer to one.
    expect(await errorCodeOf(store.head('a/.seg.m4s.tmp-0123abcd'))).toBe('INVALID_NAME');

    const { logger, lines } = createMemoryLogger();
    store = new FileStore({ root, logger, staleTempMs: 15 * 60_000 });
    await store.start();
    expect(fs.existsSync(stale)).toBe(false);
    // A fresh one may be another agent's write in progress on a shared folder.
    expect(fs.existsSync(fresh)).toBe(true);
    expect(fs.existsSync(path.join(root, 'a', 'real.json'))).toBe(true);
    expect(lines.some((l) => l.includes('removed 1 temp file'))).toBe(true);
  });

  it('creates files 0644 and directories 0755 even under a strict umask', async () => {
    const previous = process.umask(0o077);
    try {
      const store = await started();
      const local = path.join(tmp, 'poster.jpg');
      fs.writeFileSync(local, 'jpeg', { mode: 0o600 });
      await store.putFile('l/deep/er/poster.jpg', local, { sizeBytes: 4, sha256: sha256Hex('jpeg') });
      await store.putBytes('l/deep/lecture.json', '{}');
      expect(fs.statSync(path.join(root, 'l/deep/er/poster.jpg')).mode & 0o777).toBe(0o644);
      expect(fs.statSync(path.join(root, 'l/deep/lecture.json')).mode & 0o777).toBe(0o644);
      for (const dir of ['', 'l', 'l/deep', 'l/deep/er']) {
        expect({ dir, mode: fs.statSync(path.join(root, dir)).mode & 0o777 }).toEqual({ dir, mode: 0o755 });
      }
    } finally {
      process.umask(previous);
    }
  });

  it('head notices a changed object even when its size stays the same', async () => {
    const store = await started();
    await store.putBytes('k/status.json', 'AAAA');
    expect((await store.head('k/status.json'))?.sha256).toBe(sha256Hex('AAAA'));
    await store.putBytes('k/status.json', 'BBBB');
    expect((await store.head('k/status.json'))?.sha256).toBe(sha256Hex('BBBB'));
    // Changed in place by someone else, same size, newer mtime.
    const file = path.join(root, 'k/status.json');
    fs.writeFileSync(file, 'CCCC');
    const later = new Date(Date.now() + 5_000);
    fs.utimesSync(file, later, later);
    expect((await store.head('k/status.json'))?.sha256).toBe(sha256Hex('CCCC'));
  });

  it('names the key and the OS error code in write failures', async () => {
    const store = await started();
    await store.putBytes('a/file', 'x');
    try {
      await store.putBytes('a/file/child', 'y');
      expect.unreachable('the put should fail');
    } catch (err) {
      expect(isLecternError(err, 'STORE_WRITE_FAILED')).toBe(true);
      expect((err as Error).message).toContain('a/file/child');
      // mkdir -p reports a file in the way as EEXIST, a later open as ENOTDIR.
      expect((err as Error).message).toMatch(/\((EEXIST|ENOTDIR)\)$/);
      expect((err as Error).cause).toBeDefined();
    }
    expect((await store.getBytes('a/file')).toString()).toBe('x');
  });

  it('reports an unreadable local source for putFile as a write failure naming it', async () => {
    const store = await started();
    const missing = path.join(tmp, 'gone.m4s');
    try {
      await store.putFile('x/gone.m4s', missing, { sizeBytes: 1, sha256: sha256Hex('x') });
      expect.unreachable('the put should fail');
    } catch (err) {
      expect(isLecternError(err, 'STORE_WRITE_FAILED')).toBe(true);
      expect((err as Error).message).toContain(missing);
      expect((err as Error).message).toContain('ENOENT');
    }
  });

  it('replaces an existing local file in getToFile', async () => {
    const store = await started();
    await store.putBytes('a/b.json', 'new content');
    const target = path.join(tmp, 'b.json');
    fs.writeFileSync(target, 'old');
    await store.getToFile('a/b.json', target);
    expect(fs.readFileSync(target, 'utf8')).toBe('new content');
    expect(fs.readdirSync(tmp).filter((n) => n.includes('.tmp-'))).toEqual([]);
  });

  it('ignores files with names no key could have', async () => {
    const store = await started();
    await store.putBytes('a/ok.txt', 'x');
    fs.writeFileSync(path.join(root, 'a', 'has space.txt'), 'y');
    expect((await store.list('a/')).map((o) => o.key)).toEqual(['a/ok.txt']);
  });
});

describe('contentTypeFor', () => {
  it('maps package file extensions to what players and browsers expect', () => {
    expect(contentTypeFor('l/hls/master.m3u8')).toBe('application/vnd.apple.mpegurl');
    expect(contentTypeFor('l/hls/720p/seg_00001.m4s')).toBe('video/iso.segment');
    expect(contentTypeFor('l/hls/720p/init.mp4')).toBe('video/mp4');
    expect(contentTypeFor('l/lecture.json')).toBe('application/json');
    expect(contentTypeFor('l/poster.jpg')).toBe('image/jpeg');
    expect(contentTypeFor('l/captions.vtt')).toBe('text/vtt');
    expect(contentTypeFor('l/audio.aac')).toBe('audio/mp4');
    expect(contentTypeFor('l/audio.M4A')).toBe('audio/mp4');
    expect(contentTypeFor('l/source/seg.ts')).toBe('application/octet-stream');
    expect(contentTypeFor('l/noext')).toBe('application/octet-stream');
    expect(contentTypeFor('l.json/noext')).toBe('application/octet-stream');
  });
});
