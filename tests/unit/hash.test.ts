import { createHash, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { hashFile } from '../../src/util/hash.js';
import { makeTmpDir } from '../helpers/tmp.js';

describe('hashFile', () => {
  let tmp: ReturnType<typeof makeTmpDir> | undefined;
  afterEach(() => tmp?.cleanup());

  it('hashes files of every size through its reused buffer, also several at once', async () => {
    tmp = makeTmpDir('hash-');
    // Empty, shorter than the 64 KiB buffer, exactly one buffer, and many buffers plus a tail:
    // a loop that hashed the whole buffer instead of the bytes read would get the last ones wrong.
    const sizes = [0, 1, 1000, 64 * 1024, 64 * 1024 + 1, 3 * 1024 * 1024 + 12_345];
    const files = sizes.map((size, i) => {
      const file = path.join(tmp?.dir ?? '', `f${i}.bin`);
      const data = randomBytes(size);
      writeFileSync(file, data);
      return { file, expected: { sha256: createHash('sha256').update(data).digest('hex'), bytes: size } };
    });
    // Twice over and all at once: more hashes than pooled buffers share none of them.
    const all = [...files, ...files];
    const got = await Promise.all(all.map((f) => hashFile(f.file)));
    expect(got).toEqual(all.map((f) => f.expected));
    await expect(hashFile(path.join(tmp.dir, 'missing.bin'))).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
