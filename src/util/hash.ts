import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';

const READ_BUFFER_BYTES = 64 * 1024;
/** Hashes that run at once (capture ingest beside packaging); more just allocate their own. */
const POOLED_BUFFERS = 4;
const pool: Buffer[] = [];

/**
 * sha256 (hex) and size of a file, read through one reused buffer so large segments never sit
 * in memory. A read stream would allocate a fresh 64 KiB Buffer per chunk: packaging a lecture
 * hashes every segment and every package file, and that garbage piled up to 32 MiB of array
 * buffers before a GC, which glibc then kept as the daemon's RSS (BENCHMARKS.md, chaos run).
 */
export async function hashFile(path: string): Promise<{ sha256: string; bytes: number }> {
  const hash = createHash('sha256');
  const buf = pool.pop() ?? Buffer.allocUnsafeSlow(READ_BUFFER_BYTES);
  let bytes = 0;
  try {
    const fh = await open(path, 'r');
    try {
      for (;;) {
        const { bytesRead } = await fh.read(buf, 0, buf.length, null);
        if (bytesRead === 0) break;
        bytes += bytesRead;
        hash.update(buf.subarray(0, bytesRead));
      }
    } finally {
      await fh.close();
    }
  } finally {
    if (pool.length < POOLED_BUFFERS) pool.push(buf);
  }
  return { sha256: hash.digest('hex'), bytes };
}

export function sha256Hex(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}
