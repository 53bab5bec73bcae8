import { execFile } from 'node:child_process';
import { rmSync } from 'node:fs';
import { freeDiskBytes } from '../../src/storage/diskSpace.js';

/**
 * The disk filling up, without filling the machine's disk: the chaos config's free-space
 * thresholds are set relative to the free space measured when the run starts (HEADROOM_BYTES
 * below it), and a "full" disk is a file of fallocate'd blocks in the data folder's filesystem,
 * sized from statfs so the free space lands just above the threshold (ABOVE_BYTES). The
 * machine keeps nearly all of its real free space; the file is removed afterwards.
 */

/** capture.minFreeDiskBytes = free space at the start minus this. */
const HEADROOM_BYTES = 3 * 1024 ** 3;
/** The fill leaves this much above capture.minFreeDiskBytes (the higher of the two thresholds). */
export const ABOVE_BYTES = 384 * 1024 ** 2;
/** capture.stopFreeDiskBytes lies this far below minFreeDiskBytes. */
const STOP_BELOW_MIN_BYTES = 512 * 1024 ** 2;

export interface DiskThresholds {
  minFreeDiskBytes: number;
  stopFreeDiskBytes: number;
}

export async function chaosDiskThresholds(dir: string): Promise<DiskThresholds> {
  const free = await freeDiskBytes(dir);
  if (free < HEADROOM_BYTES + STOP_BELOW_MIN_BYTES + 1024 ** 3) throw new Error(`only ${free} bytes free at ${dir}: too little for the chaos run's disk fault`);
  const minFreeDiskBytes = free - HEADROOM_BYTES;
  return { minFreeDiskBytes, stopFreeDiskBytes: minFreeDiskBytes - STOP_BELOW_MIN_BYTES };
}

/** Fills the filesystem of `file` until ABOVE_BYTES above the threshold are left; returns the free bytes then. */
export async function fillDisk(file: string, thresholds: DiskThresholds): Promise<{ filledBytes: number; freeBytes: number }> {
  const free = await freeDiskBytes(file);
  const filledBytes = free - thresholds.minFreeDiskBytes - ABOVE_BYTES;
  if (filledBytes <= 0) return { filledBytes: 0, freeBytes: free };
  await new Promise<void>((resolve, reject) =>
    execFile('fallocate', ['-l', String(filledBytes), file], { timeout: 30_000 }, (err, _o, stderr) => (err ? reject(new Error(`fallocate: ${stderr.trim() || err.message}`)) : resolve())),
  );
  return { filledBytes, freeBytes: await freeDiskBytes(file) };
}

export function releaseDisk(file: string): void {
  rmSync(file, { force: true });
}
