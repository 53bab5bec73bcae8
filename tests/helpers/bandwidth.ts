import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { silentLogger } from '../../src/log/logger.js';
import { S3Store } from '../../src/storage/s3Store.js';
import type { BandwidthPolicy, UploadSettings } from '../../src/upload/bandwidthPolicy.js';
import { sha256Hex } from '../../src/util/hash.js';
import { startCountingRelay, type CountingRelay } from '../peers/countingRelay.js';
import type { RgwPeer } from '../peers/rgw.js';
import { createShapedLink, NS_RELAY_SOURCE, type ShapedLink } from '../peers/shapedLink.js';

/** The pieces the bandwidth tests share (tests/integration/bandwidth.test.ts, tests/network/). */

export const MIB = 1024 * 1024;
/** The shaped link's rate: tc tbf in the router namespace, both directions. */
export const LINK_KBIT = 4_000;
/** The S3 port and the plain HTTP sink's port inside the server namespace. */
export const S3_PORT = 7480;
export const SINK_PORT = 8080;

export function uploadSettings(over: Partial<UploadSettings> = {}): UploadSettings {
  return { rateCapKbps: 0, windows: [], pauseWhileRecording: true, yield: { enabled: true, thresholdMs: 100, minRateKbps: 64, intervalMs: 1_000 }, ...over };
}

export function randomFile(dir: string, name: string, sizeBytes: number): { file: string; sha256: string; sizeBytes: number } {
  const data = randomBytes(sizeBytes);
  const file = path.join(dir, name);
  writeFileSync(file, data);
  return { file, sha256: sha256Hex(data), sizeBytes };
}

/** An S3Store on the gateway at `endpoint` (direct or through a relay), 5 MiB parts. */
export function storeVia(rgw: RgwPeer, endpoint: string, bucket: string, throttle?: BandwidthPolicy): S3Store {
  return new S3Store({
    endpoint,
    region: rgw.region,
    bucket,
    forcePathStyle: true,
    credentials: { accessKeyId: rgw.accessKeyId, secretAccessKey: rgw.secretAccessKey },
    logger: silentLogger,
    multipartThresholdBytes: 5 * MIB,
    partSizeBytes: 5 * MIB,
    ...(throttle ? { throttle } : {}),
  });
}

export interface ShapedRig {
  link: ShapedLink;
  /** Counts what crossed the link to the gateway. */
  rgwSide: CountingRelay;
  /** Counts what crossed the link to the HTTP sink (the foreground transfer). */
  sink: CountingRelay;
  /** The gateway as reached through the link. */
  endpoint: string;
  close(): Promise<void>;
}

/**
 * Namespace name prefixes (at most 5 characters: interface names are at most 15) and /29 subnets
 * of each suite that shapes a link, so two of them running at once never tear down each other's
 * link (the chaos runs have their own: 10.200.58 and 10.200.59).
 */
export const BANDWIDTH_LINK = { name: 'lecbw', subnet: '10.200.57' } as const;
export const YIELD_LINK = { name: 'lecyd', subnet: '10.200.60' } as const;

/**
 * The gateway and an HTTP sink behind a link shaped to LINK_KBIT: a relay inside the server
 * namespace forwards to unix sockets on the host, where counting relays measure what arrived.
 */
export async function startShapedRig(rgw: RgwPeer, dir: string, place: { name: string; subnet: string } = BANDWIDTH_LINK): Promise<ShapedRig> {
  const link = await createShapedLink({ name: place.name, subnet: place.subnet, rateKbit: LINK_KBIT, latencyMs: 400 });
  const rgwSide = await startCountingRelay({ listen: { path: path.join(dir, 'rgw.sock') }, upstream: { host: '127.0.0.1', port: Number(new URL(rgw.endpoint).port) } });
  const sink = await startCountingRelay({ listen: { path: path.join(dir, 'sink.sock') }, upstream: 'httpSink' });
  const relay = link.spawn(process.execPath, ['-e', NS_RELAY_SOURCE, link.nsAddress, `${S3_PORT}=${rgwSide.socketPath}`, `${SINK_PORT}=${sink.socketPath}`]);
  await new Promise<void>((resolve, reject) => {
    relay.stdout?.on('data', (d: Buffer) => (d.toString().includes('ready') ? resolve() : undefined));
    relay.once('exit', (code) => reject(new Error(`the relay in the namespace exited (${code})`)));
  });
  return {
    link,
    rgwSide,
    sink,
    endpoint: `http://${link.nsAddress}:${S3_PORT}`,
    close: async () => {
      await link.close();
      await rgwSide.close();
      await sink.close();
    },
  };
}
