import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/log/logger.js';
import { FileStore } from '../../src/storage/fileStore.js';
import type { PutFileOptions, Store, StoreObjectInfo } from '../../src/storage/store.js';
import { publishPackage, type PackageFile, type PublishInput, type PublishProgress } from '../../src/upload/publish.js';
import { sha256Hex } from '../../src/util/hash.js';
import { errorCodeOf } from './store-contract.js';

const PREFIX = 'lectern/lectures/campus/R101/2026/11/28/01JDQ8ZK4R6W1V7X9Y2B3C4D5E/';
const READY_KEY = 'lectern/ready/2026/11/28/01JDQ8ZK4R6W1V7X9Y2B3C4D5E.json';
const MANIFEST_KEY = `${PREFIX}lecture.json`;

// Listed out of order on purpose: publish must sort.
const PACKAGE: Record<string, number> = {
  'hls/master.m3u8': 300,
  'hls/720p/index.m3u8': 400,
  'hls/720p/seg_00002.m4s': 50_000,
  'hls/720p/init.mp4': 900,
  'hls/720p/seg_00001.m4s': 60_000,
  'hls/audio/index.m3u8': 350,
  'hls/audio/seg_00001.m4s': 8_000,
  'hls/audio/init.mp4': 700,
  'poster.jpg': 12_000,
};

const MEDIA_IN_ORDER = [
  'hls/720p/init.mp4',
  'hls/720p/seg_00001.m4s',
  'hls/720p/seg_00002.m4s',
  'hls/audio/init.mp4',
  'hls/audio/seg_00001.m4s',
  'poster.jpg',
];
const PLAYLISTS_IN_ORDER = ['hls/720p/index.m3u8', 'hls/audio/index.m3u8'];

interface PutRecord {
  key: string;
  contentType: string | undefined;
}

/** A test double around a real store that records every put, and can fail like a crash. */
class RecordingStore implements Store {
  readonly puts: PutRecord[] = [];
  /** Puts allowed before the next one "crashes": it reaches the store, then the call throws. */
  crashAfterPuts = Number.POSITIVE_INFINITY;

  constructor(readonly inner: Store) {}

  get description(): string {
    return `recording(${this.inner.description})`;
  }

  async putFile(key: string, localPath: string, opts: PutFileOptions): Promise<void> {
    await this.inner.putFile(key, localPath, opts);
    this.#record(key, opts.contentType);
  }

  async putBytes(key: string, data: Uint8Array | string, opts?: { contentType?: string }): Promise<void> {
    await this.inner.putBytes(key, data, opts);
    this.#record(key, opts?.contentType);
  }

  #record(key: string, contentType: string | undefined): void {
    this.puts.push({ key, contentType });
    // The object is in the store but the caller never hears so: the worst moment to die.
    if (this.puts.length > this.crashAfterPuts) throw new Error(`simulated crash after put #${this.puts.length}`);
  }

  head(key: string): Promise<StoreObjectInfo | undefined> {
    return this.inner.head(key);
  }
  getBytes(key: string): Promise<Buffer> {
    return this.inner.getBytes(key);
  }
  getToFile(key: string, localPath: string): Promise<void> {
    return this.inner.getToFile(key, localPath);
  }
  list(prefix: string, opts?: { startAfter?: string; limit?: number }): Promise<StoreObjectInfo[]> {
    return this.inner.list(prefix, opts);
  }
  delete(key: string): Promise<void> {
    return this.inner.delete(key);
  }
  start(): Promise<void> {
    return this.inner.start();
  }
  stop(): Promise<void> {
    return this.inner.stop();
  }
}

describe('publishPackage', () => {
  let tmp: string;
  let packageDir: string;
  let files: PackageFile[];
  let store: FileStore;
  let manifestJson: string;
  let readyJson: string;

  beforeEach(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lectern-'));
    packageDir = path.join(tmp, 'packages', '01JDQ8ZK4R6W1V7X9Y2B3C4D5E');
    files = [];
    for (const [rel, bytes] of Object.entries(PACKAGE)) {
      const data = randomBytes(bytes);
      fs.mkdirSync(path.dirname(path.join(packageDir, rel)), { recursive: true });
      fs.writeFileSync(path.join(packageDir, rel), data);
      files.push({ path: rel, bytes, sha256: sha256Hex(data) });
    }
    manifestJson = `${JSON.stringify({ schemaVersion: 1, tier: 2, files }, null, 2)}\n`;
    readyJson = `${JSON.stringify({ manifestKey: MANIFEST_KEY, manifestSha256: sha256Hex(manifestJson) })}\n`;
    store = new FileStore({ root: path.join(tmp, 'store'), logger: silentLogger });
    await store.start();
  });

  afterEach(() => {
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  const input = (target: Store, extra: Partial<PublishInput> = {}): PublishInput => ({
    store: target,
    logger: silentLogger,
    packageDir,
    files,
    lecturePrefix: PREFIX,
    manifestJson,
    readyKey: READY_KEY,
    readyJson,
    ...extra,
  });

  const expectComplete = async (): Promise<void> => {
    for (const file of files) {
      expect({ path: file.path, sha256: sha256Hex(await store.getBytes(PREFIX + file.path)) }).toEqual({ path: file.path, sha256: file.sha256 });
    }
    expect((await store.getBytes(MANIFEST_KEY)).toString('utf8')).toBe(manifestJson);
    expect((await store.getBytes(READY_KEY)).toString('utf8')).toBe(readyJson);
  };

  it('uploads media, then rendition playlists, then the master, then lecture.json, then the ready pointer', async () => {
    const recording = new RecordingStore(store);
    const result = await publishPackage(input(recording));

    expect(recording.puts.map((p) => p.key)).toEqual([
      ...MEDIA_IN_ORDER.map((p) => PREFIX + p),
      ...PLAYLISTS_IN_ORDER.map((p) => PREFIX + p),
      `${PREFIX}hls/master.m3u8`,
      MANIFEST_KEY,
      READY_KEY,
    ]);
    await expectComplete();
    const totalBytes = Object.values(PACKAGE).reduce((a, b) => a + b, 0) + Buffer.byteLength(manifestJson) + Buffer.byteLength(readyJson);
    expect(result).toEqual({ uploadedFiles: files.length + 2, skippedFiles: 0, uploadedBytes: totalBytes });
  });

  it('passes the content type each file needs to the store', async () => {
    const recording = new RecordingStore(store);
    await publishPackage(input(recording));
    const typeOf = (key: string): string | undefined => recording.puts.find((p) => p.key === key)?.contentType;
    expect(typeOf(`${PREFIX}hls/master.m3u8`)).toBe('application/vnd.apple.mpegurl');
    expect(typeOf(`${PREFIX}hls/720p/seg_00001.m4s`)).toBe('video/iso.segment');
    expect(typeOf(`${PREFIX}hls/720p/init.mp4`)).toBe('video/mp4');
    expect(typeOf(`${PREFIX}poster.jpg`)).toBe('image/jpeg');
    expect(typeOf(MANIFEST_KEY)).toBe('application/json');
  });

  it('skips everything on a re-run and uploads zero bytes', async () => {
    await publishPackage(input(store));
    const recording = new RecordingStore(store);
    const again = await publishPackage(input(recording));
    expect(again).toEqual({ uploadedFiles: 0, skippedFiles: files.length + 2, uploadedBytes: 0 });
    expect(recording.puts).toEqual([]);
    await expectComplete();
  });

  it('re-sends only lecture.json and the pointer when the manifest is rewritten (tier 2)', async () => {
    await publishPackage(input(store));
    const recording = new RecordingStore(store);
    manifestJson = manifestJson.replace('"tier": 2', '"tier": 3');
    readyJson = `${JSON.stringify({ manifestKey: MANIFEST_KEY, manifestSha256: sha256Hex(manifestJson) })}\n`;
    const result = await publishPackage(input(recording));
    expect(recording.puts.map((p) => p.key)).toEqual([MANIFEST_KEY, READY_KEY]);
    expect(result.skippedFiles).toBe(files.length);
    await expectComplete();
  });

  it('once lecture.json is published, rewrites only the master playlist, lecture.json and the pointer (a new tier)', async () => {
    await publishPackage(input(store));
    // Tier 2 of the same lecture: a new rendition, a new master, a new manifest.
    const extra = randomBytes(3_000);
    fs.mkdirSync(path.join(packageDir, 'hls/360p'), { recursive: true });
    fs.writeFileSync(path.join(packageDir, 'hls/360p/seg_00001.m4s'), extra);
    const master = randomBytes(PACKAGE['hls/master.m3u8'] ?? 0);
    fs.writeFileSync(path.join(packageDir, 'hls/master.m3u8'), master);
    files = files.map((f) => (f.path === 'hls/master.m3u8' ? { ...f, sha256: sha256Hex(master) } : f));
    files.push({ path: 'hls/360p/seg_00001.m4s', bytes: extra.length, sha256: sha256Hex(extra) });
    manifestJson = `${JSON.stringify({ schemaVersion: 1, tier: 2, files, rewritten: true }, null, 2)}\n`;
    readyJson = `${JSON.stringify({ manifestKey: MANIFEST_KEY, manifestSha256: sha256Hex(manifestJson) })}\n`;
    const recording = new RecordingStore(store);
    await publishPackage(input(recording));
    expect(recording.puts.map((p) => p.key)).toEqual([`${PREFIX}hls/360p/seg_00001.m4s`, `${PREFIX}hls/master.m3u8`, MANIFEST_KEY, READY_KEY]);
    await expectComplete();
  });

  it('refuses a package whose media differs from a published lecture of the same id, and uploads nothing', async () => {
    await publishPackage(input(store));
    const before = (await store.getBytes(MANIFEST_KEY)).toString('utf8');
    // A package built again from scratch: same paths, other bytes (x264 is not bit-exact across runs).
    const other = randomBytes(PACKAGE['hls/720p/seg_00002.m4s'] ?? 0);
    fs.writeFileSync(path.join(packageDir, 'hls/720p/seg_00002.m4s'), other);
    files = files.map((f) => (f.path === 'hls/720p/seg_00002.m4s' ? { ...f, sha256: sha256Hex(other) } : f));
    manifestJson = `${JSON.stringify({ schemaVersion: 1, tier: 2, files }, null, 2)}\n`;
    const recording = new RecordingStore(store);
    const attempt = publishPackage(input(recording));
    expect(await errorCodeOf(attempt)).toBe('PUBLISH_CONFLICT');
    await expect(attempt).rejects.toThrow('hls/720p/seg_00002.m4s');
    expect(recording.puts).toEqual([]);
    expect((await store.getBytes(MANIFEST_KEY)).toString('utf8')).toBe(before);
  });

  it('replaces a stored file whose content differs from the package while no lecture.json is published (a leftover)', async () => {
    await store.putBytes(`${PREFIX}hls/720p/seg_00001.m4s`, randomBytes(PACKAGE['hls/720p/seg_00001.m4s'] ?? 0));
    const recording = new RecordingStore(store);
    await publishPackage(input(recording));
    expect(recording.puts.map((p) => p.key)).toContain(`${PREFIX}hls/720p/seg_00001.m4s`);
    await expectComplete();
  });

  it('after a crash at any put, leaves no manifest or pointer early and completes on the next run', async () => {
    const totalPuts = files.length + 2;
    for (let crashAfter = 0; crashAfter < totalPuts; crashAfter++) {
      await store.stop();
      fs.rmSync(path.join(tmp, 'store'), { recursive: true, force: true });
      store = new FileStore({ root: path.join(tmp, 'store'), logger: silentLogger });
      await store.start();

      const crashing = new RecordingStore(store);
      crashing.crashAfterPuts = crashAfter;
      await expect(publishPackage(input(crashing))).rejects.toThrow(/simulated crash/);

      const manifestThere = (await store.head(MANIFEST_KEY)) !== undefined;
      const readyThere = (await store.head(READY_KEY)) !== undefined;
      const filesThere = await Promise.all(files.map(async (f) => (await store.head(PREFIX + f.path)) !== undefined));
      // The invariant the platform relies on, at every crash point.
      if (manifestThere) expect(filesThere.every(Boolean)).toBe(true);
      if (readyThere) expect(manifestThere).toBe(true);
      if (crashAfter < files.length) {
        expect({ crashAfter, manifestThere, readyThere }).toEqual({ crashAfter, manifestThere: false, readyThere: false });
      }

      const resumed = new RecordingStore(store);
      const result = await publishPackage(input(resumed));
      await expectComplete();
      // The put that "crashed" did reach the store, so nothing is sent twice.
      const perKey = new Map<string, number>();
      for (const p of [...crashing.puts, ...resumed.puts]) perKey.set(p.key, (perKey.get(p.key) ?? 0) + 1);
      expect({ crashAfter, maxPutsOfOneKey: Math.max(...perKey.values()) }).toEqual({ crashAfter, maxPutsOfOneKey: 1 });
      expect(result.skippedFiles).toBe(crashAfter + 1);
    }
  });

  it('names a file missing from the package and publishes nothing', async () => {
    fs.rmSync(path.join(packageDir, 'hls/audio/seg_00001.m4s'));
    const recording = new RecordingStore(store);
    const err = await publishPackage(input(recording)).then(
      () => undefined,
      (e: unknown) => e as Error & { code?: string },
    );
    expect(err?.code).toBe('PACKAGE_INVALID');
    expect(err?.message).toContain('hls/audio/seg_00001.m4s');
    expect(recording.puts).toEqual([]);
    expect(await store.head(MANIFEST_KEY)).toBeUndefined();
    expect(await store.list('lectern/')).toEqual([]);
  });

  it('refuses a file whose size differs from the manifest before uploading anything', async () => {
    fs.appendFileSync(path.join(packageDir, 'poster.jpg'), 'x');
    const recording = new RecordingStore(store);
    expect(await errorCodeOf(publishPackage(input(recording)))).toBe('CHECKSUM_MISMATCH');
    expect(recording.puts).toEqual([]);
  });

  it('stops at a file whose content does not match its sha256, before lecture.json', async () => {
    const seg = path.join(packageDir, 'hls/720p/seg_00002.m4s');
    fs.writeFileSync(seg, randomBytes(PACKAGE['hls/720p/seg_00002.m4s'] ?? 0));
    const recording = new RecordingStore(store);
    expect(await errorCodeOf(publishPackage(input(recording)))).toBe('CHECKSUM_MISMATCH');
    expect(recording.puts.map((p) => p.key)).toEqual([`${PREFIX}hls/720p/init.mp4`, `${PREFIX}hls/720p/seg_00001.m4s`]);
    expect(await store.head(`${PREFIX}hls/720p/seg_00002.m4s`)).toBeUndefined();
    expect(await store.head(MANIFEST_KEY)).toBeUndefined();
  });

  it('rejects unsafe or duplicate file paths before uploading anything', async () => {
    const recording = new RecordingStore(store);
    const first = files[0] as PackageFile;
    for (const bad of ['../escape.m4s', '/etc/passwd', 'hls//x.m4s', 'hls/./x.m4s', 'hls\\x.m4s']) {
      const code = await errorCodeOf(publishPackage(input(recording, { files: [...files, { ...first, path: bad }] })));
      expect({ bad, code }).toEqual({ bad, code: 'INVALID_NAME' });
    }
    expect(await errorCodeOf(publishPackage(input(recording, { files: [...files, { ...first }] })))).toBe('PACKAGE_INVALID');
    expect(await errorCodeOf(publishPackage(input(recording, { files: [...files, { ...first, path: 'lecture.json' }] })))).toBe('PACKAGE_INVALID');
    expect(recording.puts).toEqual([]);
  });

  it('stops between files when the signal aborts, without lecture.json', async () => {
    const controller = new AbortController();
    const recording = new RecordingStore(store);
    const run = publishPackage(
      input(recording, {
        signal: controller.signal,
        onProgress: (p) => {
          if (p.filesDone === 2) controller.abort(new Error('worker stopping'));
        },
      }),
    );
    await expect(run).rejects.toThrow('worker stopping');
    expect(recording.puts).toHaveLength(2);
    expect(await store.head(MANIFEST_KEY)).toBeUndefined();
  });

  it('reports progress up to every file and byte', async () => {
    const seen: PublishProgress[] = [];
    await publishPackage(input(store, { onProgress: (p) => seen.push(p) }));
    const totalBytes = Object.values(PACKAGE).reduce((a, b) => a + b, 0);
    expect(seen).toHaveLength(files.length);
    expect(seen.map((p) => p.filesDone)).toEqual(files.map((_, i) => i + 1));
    expect(seen.every((p, i) => i === 0 || p.bytesDone > (seen[i - 1]?.bytesDone ?? 0))).toBe(true);
    expect(seen.at(-1)).toEqual({ filesDone: files.length, filesTotal: files.length, bytesDone: totalBytes, bytesTotal: totalBytes });
  });
});
