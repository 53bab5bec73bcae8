import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Store } from '../../src/storage/store.js';
import { isLecternError } from '../../src/util/errors.js';
import { sha256Hex } from '../../src/util/hash.js';

/**
 * The behaviour every Store must share (FileStore now, S3Store later): run it with
 * `describeStoreContract('FileStore', factory)` from a *.test.ts file. The factory returns a
 * started, empty store and a cleanup that removes whatever it created.
 */
export type StoreFactory = () => Promise<{ store: Store; cleanup(): Promise<void> }>;

/** The LecternError code a promise rejects with ('resolved' when it does not reject). */
export async function errorCodeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return 'resolved';
  } catch (err) {
    return isLecternError(err) ? err.code : `not a LecternError: ${String(err)}`;
  }
}

export function describeStoreContract(name: string, makeStore: StoreFactory): void {
  describe(`Store contract: ${name}`, () => {
    let store: Store;
    let cleanup: () => Promise<void>;
    let localDir: string;

    beforeEach(async () => {
      ({ store, cleanup } = await makeStore());
      localDir = fs.mkdtempSync(path.join(os.tmpdir(), 'lectern-'));
    });

    afterEach(async () => {
      await cleanup();
      fs.rmSync(localDir, { recursive: true, force: true });
    });

    const localFile = (fileName: string, data: Uint8Array): string => {
      const p = path.join(localDir, fileName);
      fs.writeFileSync(p, data);
      return p;
    };

    it('round-trips a file through putFile, head, getBytes and getToFile with its sha256', async () => {
      // Larger than one read chunk so streaming code paths are used.
      const data = randomBytes(3 * 1024 * 1024 + 17);
      const sha256 = sha256Hex(data);
      await store.putFile('lectures/a/seg_00001.m4s', localFile('seg.m4s', data), { sizeBytes: data.length, sha256 });

      const info = await store.head('lectures/a/seg_00001.m4s');
      expect(info?.key).toBe('lectures/a/seg_00001.m4s');
      expect(info?.sizeBytes).toBe(data.length);
      if (info?.sha256 !== undefined) expect(info.sha256).toBe(sha256);

      const got = await store.getBytes('lectures/a/seg_00001.m4s');
      expect(sha256Hex(got)).toBe(sha256);

      const copy = path.join(localDir, 'downloaded', 'copy.m4s');
      await store.getToFile('lectures/a/seg_00001.m4s', copy);
      expect(sha256Hex(fs.readFileSync(copy))).toBe(sha256);
    });

    it('stores and reads back an empty object', async () => {
      await store.putBytes('empty.json', '');
      expect((await store.head('empty.json'))?.sizeBytes).toBe(0);
      expect((await store.getBytes('empty.json')).length).toBe(0);
    });

    it('rejects putFile with a wrong sha256 as CHECKSUM_MISMATCH and leaves the key absent', async () => {
      const data = randomBytes(4096);
      const file = localFile('x.bin', data);
      const wrong = sha256Hex('something else');
      expect(await errorCodeOf(store.putFile('k/x.bin', file, { sizeBytes: data.length, sha256: wrong }))).toBe('CHECKSUM_MISMATCH');
      expect(await store.head('k/x.bin')).toBeUndefined();
      expect(await store.list('k/')).toEqual([]);
    });

    it('rejects putFile whose local file has another size than promised, and leaves the key absent', async () => {
      const data = randomBytes(100);
      const file = localFile('y.bin', data);
      expect(await errorCodeOf(store.putFile('k/y.bin', file, { sizeBytes: 99, sha256: sha256Hex(data) }))).toBe('CHECKSUM_MISMATCH');
      expect(await store.head('k/y.bin')).toBeUndefined();
    });

    it('overwrites an object with putBytes', async () => {
      await store.putBytes('agents/r1/status.json', '{"v":1}', { contentType: 'application/json' });
      await store.putBytes('agents/r1/status.json', '{"v":22}');
      expect((await store.getBytes('agents/r1/status.json')).toString('utf8')).toBe('{"v":22}');
      const info = await store.head('agents/r1/status.json');
      expect(info?.sizeBytes).toBe(8);
      if (info?.sha256 !== undefined) expect(info.sha256).toBe(sha256Hex('{"v":22}'));
    });

    it('accepts Uint8Array data in putBytes', async () => {
      const data = new Uint8Array([0, 1, 2, 255]);
      await store.putBytes('bin/four', data);
      expect([...(await store.getBytes('bin/four'))]).toEqual([0, 1, 2, 255]);
    });

    describe('list', () => {
      const readyKeys = [
        'p/ready/2026/11/28/01JB.json',
        'p/ready/2026/11/28/01JA.json',
        'p/ready/2026/11/29/01JC.json',
        'p/ready/2026/11/30/01JD.json',
        'p/ready/2026/12/01/01JE.json',
        'p/ready/2026/11/2.json',
      ];

      beforeEach(async () => {
        for (const key of readyKeys) await store.putBytes(key, key);
      });

      const keysOf = async (prefix: string, opts?: { startAfter?: string; limit?: number }): Promise<string[]> =>
        (await store.list(prefix, opts)).map((o) => o.key);

      it('matches a prefix that ends mid-segment, like S3', async () => {
        expect(await keysOf('p/ready/2026/11/2')).toEqual([
          'p/ready/2026/11/2.json',
          'p/ready/2026/11/28/01JA.json',
          'p/ready/2026/11/28/01JB.json',
          'p/ready/2026/11/29/01JC.json',
        ]);
      });

      it('lists a day under a prefix ending with "/", with sizes', async () => {
        const objects = await store.list('p/ready/2026/11/28/');
        expect(objects.map((o) => [o.key, o.sizeBytes])).toEqual([
          ['p/ready/2026/11/28/01JA.json', 'p/ready/2026/11/28/01JA.json'.length],
          ['p/ready/2026/11/28/01JB.json', 'p/ready/2026/11/28/01JB.json'.length],
        ]);
      });

      it('lists everything under the empty prefix', async () => {
        expect(await keysOf('')).toEqual([...readyKeys].sort());
      });

      it('returns only keys after startAfter, even when startAfter is not a key', async () => {
        expect(await keysOf('p/ready/', { startAfter: 'p/ready/2026/11/28/01JA.json' })).toEqual([
          'p/ready/2026/11/28/01JB.json',
          'p/ready/2026/11/29/01JC.json',
          'p/ready/2026/11/30/01JD.json',
          'p/ready/2026/12/01/01JE.json',
        ]);
        expect(await keysOf('p/ready/', { startAfter: 'p/ready/2026/11/29' })).toEqual([
          'p/ready/2026/11/29/01JC.json',
          'p/ready/2026/11/30/01JD.json',
          'p/ready/2026/12/01/01JE.json',
        ]);
        expect(await keysOf('p/ready/', { startAfter: 'p/ready/2026/11/30/~' })).toEqual(['p/ready/2026/12/01/01JE.json']);
      });

      it('stops at limit, and pages through with startAfter', async () => {
        const first = await keysOf('p/ready/2026/11/', { limit: 2 });
        expect(first).toEqual(['p/ready/2026/11/2.json', 'p/ready/2026/11/28/01JA.json']);
        const second = await keysOf('p/ready/2026/11/', { limit: 2, startAfter: first[1] });
        expect(second).toEqual(['p/ready/2026/11/28/01JB.json', 'p/ready/2026/11/29/01JC.json']);
        expect(await keysOf('p/ready/2026/11/', { limit: 0 })).toEqual([]);
      });

      it('sorts by plain string comparison, not by folder or locale', async () => {
        // '-' < '.' < '/' < '0' < 'B' < 'a' in code units; a per-folder walk or localeCompare gets this wrong.
        for (const key of ['s/a0', 's/a/b', 's/B', 's/a.b', 's/a-b']) await store.putBytes(key, 'x');
        expect(await keysOf('s/')).toEqual(['s/B', 's/a-b', 's/a.b', 's/a/b', 's/a0']);
        expect(await keysOf('s/', { startAfter: 's/a.b' })).toEqual(['s/a/b', 's/a0']);
        expect(await keysOf('s/', { startAfter: 's/a/b' })).toEqual(['s/a0']);
      });

      it('returns nothing for a prefix without objects', async () => {
        expect(await keysOf('p/ready/2027/')).toEqual([]);
        expect(await keysOf('nothing-here')).toEqual([]);
      });
    });

    it('deletes an object, and deleting a missing one is fine', async () => {
      await store.putBytes('d/one', '1');
      await store.putBytes('d/two', '2');
      await store.delete('d/one');
      expect(await store.head('d/one')).toBeUndefined();
      expect((await store.list('d/')).map((o) => o.key)).toEqual(['d/two']);
      await store.delete('d/one');
      await store.delete('never/was/here');
      expect(await errorCodeOf(store.getBytes('d/one'))).toBe('STORE_NOT_FOUND');
    });

    it('reports a missing object as STORE_NOT_FOUND from getBytes and getToFile, and undefined from head', async () => {
      expect(await errorCodeOf(store.getBytes('missing/key.json'))).toBe('STORE_NOT_FOUND');
      const target = path.join(localDir, 'never.json');
      expect(await errorCodeOf(store.getToFile('missing/key.json', target))).toBe('STORE_NOT_FOUND');
      expect(fs.existsSync(target)).toBe(false);
      expect(await store.head('missing/key.json')).toBeUndefined();
    });

    it('has no object at a prefix that only holds other objects', async () => {
      await store.putBytes('folder/inner/file.txt', 'x');
      expect(await store.head('folder/inner')).toBeUndefined();
      expect(await errorCodeOf(store.getBytes('folder'))).toBe('STORE_NOT_FOUND');
    });

    it('rejects invalid keys with INVALID_NAME in every operation', async () => {
      const bad = ['../x', '/abs', 'a//b', 'a\\b', 'a/./b', 'a/../b', '', 'a/', 'nul\0byte', 'white space', 'ümlaut', `${'x'.repeat(256)}`];
      const file = localFile('ok.bin', Buffer.from('ok'));
      for (const key of bad) {
        const codes = [
          await errorCodeOf(store.putBytes(key, 'x')),
          await errorCodeOf(store.putFile(key, file, { sizeBytes: 2, sha256: sha256Hex('ok') })),
          await errorCodeOf(store.head(key)),
          await errorCodeOf(store.getBytes(key)),
          await errorCodeOf(store.getToFile(key, path.join(localDir, 'out'))),
          await errorCodeOf(store.delete(key)),
        ];
        expect({ key, codes }).toEqual({ key, codes: Array(6).fill('INVALID_NAME') });
      }
      expect(await errorCodeOf(store.list('../'))).toBe('INVALID_NAME');
      expect(await errorCodeOf(store.list('/abs'))).toBe('INVALID_NAME');
      expect(await errorCodeOf(store.list('a//b'))).toBe('INVALID_NAME');
      expect(await store.list('')).toEqual([]);
    });
  });
}
