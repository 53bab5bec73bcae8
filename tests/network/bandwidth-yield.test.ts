import { randomBytes } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import type { S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMemoryLogger } from '../../src/log/logger.js';
import { BandwidthPolicy } from '../../src/upload/bandwidthPolicy.js';
import { tcpConnectProbe } from '../../src/upload/yield.js';
import { waitFor } from '../../src/util/sleep.js';
import { adminClient, createTestBucket } from '../helpers/s3.js';
import { makeTmpDir } from '../helpers/tmp.js';
import type { CountingRelay } from '../peers/countingRelay.js';
import { startRgw, type RgwPeer } from '../peers/rgw.js';
import { shapedLinkUnsupportedReason, type ShapedLink } from '../peers/shapedLink.js';
import { LINK_KBIT, MIB, randomFile, S3_PORT, SINK_PORT, startShapedRig, storeVia, uploadSettings, YIELD_LINK, type ShapedRig } from '../helpers/bandwidth.js';

/**
 * Not part of `npm test` (see vitest.network.config.ts; run with `npm run test:network`): it
 * takes about 2.5 minutes, and the shares it measures depend on the host's TCP (BBR here). With
 * the pacing controller it passed 6 runs of 6 (alone 92–94 %, foreground 89–92 %, greedy
 * reference 46–59 %); `npm test` runs the controller's unit tests against a link model
 * (tests/unit/yield.test.ts). The rate cap and the link cut are tested in
 * tests/integration/bandwidth.test.ts.
 *
 * The bandwidth policy (DESIGN §4) on real links: S3Store uploads to a real Ceph RADOS Gateway
 * through the policy's token bucket, and the rate is measured where the bytes arrive — in our
 * counting relay in front of the gateway — not where the uploader says it sent them.
 *
 * On a shaped link (network namespaces of the test's own: a router shaping to 4 Mbit/s both
 * ways with tc tbf, the gateway reached through it from a server namespace behind the router): the cap holds, a link cut mid-upload is recovered from within
 * seconds of the link's return, and a foreground transfer on the same link keeps most of it
 * while the upload yields (compared with the share it gets against an upload that does not).
 *
 * LECTERN_LONG=1 uses the acceptance lengths: 60 s rate windows and a 60 s outage, instead of
 * the CI-sized 20 s / 12 s windows and a 10 s outage.
 */

const LONG = process.env.LECTERN_LONG === '1';
const LINK_BYTES_PER_SECOND = (LINK_KBIT * 1000) / 8;
/** Per test: the acceptance lengths need more than the project's default 120 s. */
const TEST_TIMEOUT_MS = LONG ? 420_000 : 120_000;

let rgw: RgwPeer;
let admin: S3Client;
const tmp = makeTmpDir('lectern-bw-');

beforeAll(async () => {
  rgw = await startRgw();
  admin = adminClient(rgw);
}, 120_000);

afterAll(async () => {
  admin?.destroy();
  await rgw?.stop();
  tmp.cleanup();
});

describe('on a link shaped to 4 Mbit/s (network namespace + tc)', () => {
  let rig: ShapedRig;
  let link: ShapedLink;
  let rgwSide: CountingRelay;
  let sink: CountingRelay;
  let endpoint: string;

  beforeAll(async () => {
    expect(shapedLinkUnsupportedReason(), 'shaped links (TESTING.md) are part of this test').toBeUndefined();
    rig = await startShapedRig(rgw, tmp.dir, YIELD_LINK);
    ({ link, rgwSide, sink, endpoint } = rig);
  }, 60_000);

  afterAll(async () => {
    await rig?.close();
  });

  /** Waits until nothing has crossed the link for 1.5 s. */
  async function linkQuiet(): Promise<void> {
    let last = -1;
    let sinceMs = Date.now();
    await waitFor(
      () => {
        const now = rgwSide.bytesIn() + sink.bytesIn();
        if (now !== last) {
          last = now;
          sinceMs = Date.now();
        }
        return Date.now() - sinceMs >= 1_500 ? true : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 100, what: 'a quiet link' },
    );
  }

  /**
   * A foreground HTTP upload through the same link, racing our upload for FOREGROUND_MS; its
   * share of the link over the last MEASURE_FG_MS of that.
   */
  async function foregroundShare(yieldEnabled: boolean): Promise<number> {
    // Yield acts on what we have not yet written; what the kernel's socket buffer already holds
    // (up to megabytes, autotuned) still drains at TCP's fair share. "While lectern yields" is
    // measured once that drain is over (its length is reported); the greedy reference shares at
    // once and is measured from 4 s after the foreground starts.
    // Two TCP flows take turns over seconds (BBR here): ten seconds average the greedy share out.
    const MEASURE_FG_MS = yieldEnabled ? 8_000 : 10_000;
    // A socket closed by the run before keeps sending what it holds: start on a quiet link.
    await linkQuiet();
    const bucket = await createTestBucket(admin, yieldEnabled ? 'bwyield' : 'bwgreedy');
    const log = createMemoryLogger('debug');
    const policy = new BandwidthPolicy({
      settings: uploadSettings({ rateCapKbps: 0, yield: { enabled: yieldEnabled, thresholdMs: 100, minRateKbps: 64, intervalMs: 500 } }),
      logger: log.logger,
      probe: tcpConnectProbe(link.nsAddress, S3_PORT, 1_000),
    });
    await policy.start();
    // The agent probes from its start, so the base round trip is measured on an idle link.
    if (yieldEnabled) await waitFor(() => (policy.status().baseRttMs !== null ? true : undefined), { timeoutMs: 5_000, what: 'the first round-trip sample' });
    const store = storeVia(rgw, endpoint, bucket, policy);
    const f = randomFile(tmp.dir, `bg-${yieldEnabled}.bin`, 16 * MIB);
    const background = store.putFile('bg.bin', f.file, { sizeBytes: f.sizeBytes, sha256: f.sha256 }).catch(() => undefined);
    const fg = httpRequest({ host: link.nsAddress, port: SINK_PORT, method: 'PUT', path: '/fg', headers: { 'content-length': String(200 * MIB) } });
    fg.on('error', () => undefined);
    try {
      // Our upload has the link to itself for two seconds, then the foreground starts.
      const bgStart = rgwSide.bytesIn();
      await waitFor(() => (rgwSide.bytesIn() > bgStart + 100_000 ? true : undefined), { timeoutMs: 10_000, what: 'the background upload to start' });
      const chunk = randomBytes(64 * 1024);
      const fgStarted = Date.now();
      let writing = true;
      const pump = (): void => {
        while (writing && fg.write(chunk));
      };
      fg.on('drain', pump);
      pump();
      let t0 = fgStarted + 4_000;
      if (yieldEnabled) {
        await waitFor(() => (Date.now() >= fgStarted + 2_000 && rgwSide.bytesBetween(Date.now() - 1_000, Date.now()) < LINK_BYTES_PER_SECOND * 0.1 ? true : undefined), {
          timeoutMs: 30_000,
          intervalMs: 200,
          what: 'our upload to give way',
        });
        t0 = Math.max(t0, Date.now());
        console.warn(`our upload gave way ${Date.now() - fgStarted} ms after the foreground started (the socket buffer drained)`);
      }
      const t1 = t0 + MEASURE_FG_MS;
      await waitFor(() => (Date.now() >= t1 + 100 ? true : undefined), { timeoutMs: t1 - Date.now() + 5_000, intervalMs: 200, what: 'the foreground transfer' });
      writing = false;
      const fgRate = (sink.bytesBetween(t0, t1) / MEASURE_FG_MS) * 1000;
      const bgRate = (rgwSide.bytesBetween(t0, t1) / MEASURE_FG_MS) * 1000;
      console.warn(
        `${yieldEnabled ? 'yielding' : 'greedy'} upload vs a foreground transfer: foreground ${((fgRate * 8) / 1e6).toFixed(2)} Mbit/s (${Math.round((fgRate / LINK_BYTES_PER_SECOND) * 100)}% of the link), ours ${((bgRate * 8) / 1e6).toFixed(2)} Mbit/s; status ${JSON.stringify(policy.status())}`,
      );
      if (process.env.LECTERN_DEBUG_YIELD === '1') console.warn(log.lines.join('\n'));
      return fgRate / LINK_BYTES_PER_SECOND;
    } finally {
      fg.destroy();
      await policy.stop();
      await store.stop();
      await background;
    }
  }

  it('fills at least 90% of the link while yielding when the upload is alone on it', async () => {
    // The other half of yield: the controller paces the upload even without a cap, and that
    // pace must find and keep the whole link when nobody else uses it.
    const RAMP_MS = 6_000;
    const MEASURE_MS = 10_000;
    await linkQuiet();
    const bucket = await createTestBucket(admin, 'bwalone');
    const log = createMemoryLogger('debug');
    const policy = new BandwidthPolicy({
      settings: uploadSettings({ rateCapKbps: 0, yield: { enabled: true, thresholdMs: 100, minRateKbps: 64, intervalMs: 250 } }),
      logger: log.logger,
      probe: tcpConnectProbe(link.nsAddress, S3_PORT, 1_000),
    });
    await policy.start();
    await waitFor(() => (policy.status().baseRttMs !== null ? true : undefined), { timeoutMs: 5_000, what: 'the first round-trip sample' });
    const store = storeVia(rgw, endpoint, bucket, policy);
    const f = randomFile(tmp.dir, 'alone.bin', 12 * MIB);
    const upload = store.putFile('alone.bin', f.file, { sizeBytes: f.sizeBytes, sha256: f.sha256 }).catch((err: unknown) => err);
    try {
      const from = rgwSide.bytesIn();
      await waitFor(() => (rgwSide.bytesIn() > from ? true : undefined), { timeoutMs: 10_000, what: 'the upload to start' });
      const t0 = Date.now() + RAMP_MS;
      const t1 = t0 + MEASURE_MS;
      await waitFor(() => (Date.now() >= t1 + 100 ? true : undefined), { timeoutMs: t1 - Date.now() + 5_000, intervalMs: 200, what: 'the measurement window' });
      const rate = (rgwSide.bytesBetween(t0, t1) / MEASURE_MS) * 1000;
      console.warn(`yielding upload alone on the link: ${((rate * 8) / 1e6).toFixed(2)} Mbit/s (${Math.round((rate / LINK_BYTES_PER_SECOND) * 100)}% of the link); status ${JSON.stringify(policy.status())}`);
      if (process.env.LECTERN_DEBUG_YIELD === '1') console.warn(log.lines.join('\n'));
      expect(rate / LINK_BYTES_PER_SECOND).toBeGreaterThanOrEqual(0.9);
    } finally {
      await policy.stop();
      await store.stop();
      await upload;
    }
  }, TEST_TIMEOUT_MS);

  it('leaves a foreground transfer at least 80% of the link while yielding (less than 60% against an upload that does not)', async () => {
    const greedy = await foregroundShare(false);
    const yielding = await foregroundShare(true);
    expect(greedy).toBeLessThan(0.6);
    expect(yielding).toBeGreaterThanOrEqual(0.8);
  }, TEST_TIMEOUT_MS);
});
