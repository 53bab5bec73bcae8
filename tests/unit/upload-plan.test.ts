import { createHash, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { planBytes, planUpload } from '../../src/storage/s3Multipart.js';
import { makeTmpDir } from '../helpers/tmp.js';

describe('upload plans', () => {
  const tmp = makeTmpDir();
  afterAll(() => tmp.cleanup());

  it.each([0, 1, 600_000])('plans %i bytes read into memory exactly as the streamed single-part plan', async (sizeBytes) => {
    const bytes = randomBytes(sizeBytes);
    const file = path.join(tmp.dir, `f${sizeBytes}.bin`);
    writeFileSync(file, bytes);
    const fromMemory = planBytes(bytes);
    expect(fromMemory).toEqual(await planUpload(file, Infinity));
    // Checked against independent digests, so both cannot be wrong the same way.
    expect(fromMemory.sha256).toBe(createHash('sha256').update(bytes).digest('hex'));
    expect(fromMemory.parts).toEqual([{ partNumber: 1, start: 0, end: sizeBytes, md5Base64: createHash('md5').update(bytes).digest('base64') }]);
  });

  it('splits a streamed file into parts whose MD5s cover every byte once', async () => {
    const bytes = randomBytes(2 * 1024 * 1024 + 17);
    const file = path.join(tmp.dir, 'parts.bin');
    writeFileSync(file, bytes);
    const plan = await planUpload(file, 1024 * 1024);
    expect(plan.parts.map((p) => [p.start, p.end])).toEqual([[0, 1048576], [1048576, 2097152], [2097152, 2097169]]);
    for (const p of plan.parts) expect(p.md5Base64).toBe(createHash('md5').update(bytes.subarray(p.start, p.end)).digest('base64'));
  });
});
