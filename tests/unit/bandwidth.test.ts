import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { configSchema } from '../../src/config/index.js';
import { silentLogger } from '../../src/log/logger.js';
import { BandwidthPolicy, type UploadSettings } from '../../src/upload/bandwidthPolicy.js';
import { RateMeter } from '../../src/upload/rateMeter.js';
import { kbpsToBytesPerSecond, MIN_BURST_BYTES, throttleBody, TokenBucket, UNCAPPED } from '../../src/upload/tokenBucket.js';
import { parseWindow, UploadWindows, zonedToUtc } from '../../src/upload/windows.js';
import { endpointAddress } from '../../src/upload/yield.js';
import { waitFor } from '../../src/util/sleep.js';

/**
 * The bandwidth policy's arithmetic with an injected clock: the token bucket's long-run rate and
 * fairness, windows across midnight and both daylight-saving changes in Europe/Berlin, and the
 * yield's multiplicative decrease / additive increase. The real-link behaviour is in
 * tests/integration/bandwidth.test.ts.
 */

afterEach(() => {
  vi.useRealTimers();
});

const utc = (iso: string): number => Date.parse(iso);

describe('TokenBucket', () => {
  it('lets through exactly the rate over 60 s of (fake) time, in small takes, whatever the timer lateness', async () => {
    vi.useFakeTimers();
    const rate = 250_000;
    const bucket = new TokenBucket({ rateBytesPerSecond: rate, now: () => Date.now() });
    let granted = 0;
    let stop = false;
    const consumer = (async () => {
      while (!stop) {
        await bucket.take(5_000);
        granted += 5_000;
      }
    })();
    await vi.advanceTimersByTimeAsync(60_000);
    stop = true;
    await vi.advanceTimersByTimeAsync(1_000);
    await consumer;
    // Starts empty (no burst): 60 s of rate, give or take the one take in flight at the end.
    expect(Math.abs(granted - 60 * rate)).toBeLessThanOrEqual(5_000);
  });

  it('shares the rate between concurrent uploads, first come first served', async () => {
    vi.useFakeTimers();
    const bucket = new TokenBucket({ rateBytesPerSecond: 100_000, now: () => Date.now() });
    const got = [0, 0];
    let stop = false;
    const run = async (i: number, chunk: number): Promise<void> => {
      while (!stop) {
        await bucket.take(chunk);
        got[i] = (got[i] ?? 0) + chunk;
      }
    };
    const both = Promise.all([run(0, 4_000), run(1, 4_000)]);
    await vi.advanceTimersByTimeAsync(30_000);
    stop = true;
    await vi.advanceTimersByTimeAsync(1_000);
    await both;
    const total = (got[0] ?? 0) + (got[1] ?? 0);
    expect(Math.abs(total - 30 * 100_000)).toBeLessThanOrEqual(8_000);
    expect(Math.abs((got[0] ?? 0) - (got[1] ?? 0))).toBeLessThanOrEqual(8_000);
  });

  it('bursts at most about one second of rate (at least 64 KiB) after an idle time', () => {
    let now = 0;
    const bucket = new TokenBucket({ rateBytesPerSecond: 200_000, now: () => now });
    expect(bucket.burstBytes).toBe(200_000);
    now += 60_000;
    // A full bucket: one second of rate now, then the next byte waits.
    expect(bucket.delayMsFor(200_000)).toBe(0);
    void bucket.take(200_000);
    expect(bucket.delayMsFor(20_000)).toBeCloseTo(100, 0);
    expect(new TokenBucket({ rateBytesPerSecond: 1_000, now: () => now }).burstBytes).toBe(MIN_BURST_BYTES);
  });

  it('follows rate changes at once, and uncapped lets everything through without waiting', async () => {
    vi.useFakeTimers();
    const bucket = new TokenBucket({ rateBytesPerSecond: 0, now: () => Date.now() });
    expect(bucket.uncapped).toBe(true);
    await bucket.take(10_000_000);
    bucket.setRate(10_000);
    let done = false;
    void bucket.take(50_000).then(() => (done = true));
    await vi.advanceTimersByTimeAsync(2_000);
    expect(done).toBe(false);
    // Lifting the cap releases the waiter at once.
    bucket.setRate(UNCAPPED);
    await vi.advanceTimersByTimeAsync(0);
    expect(done).toBe(true);
  });

  it('rejects a waiter whose signal aborts, and every waiter on close', async () => {
    const bucket = new TokenBucket({ rateBytesPerSecond: 1_000 });
    const ac = new AbortController();
    const waiting = bucket.take(500_000, ac.signal);
    const other = bucket.take(500_000);
    ac.abort(new Error('withdrawn'));
    await expect(waiting).rejects.toThrow('withdrawn');
    bucket.close(new Error('stopped'));
    await expect(other).rejects.toThrow('stopped');
  });

  it('converts kbit/s as links are sold (1000 bit/s), 0 = uncapped', () => {
    expect(kbpsToBytesPerSecond(2_000)).toBe(250_000);
    expect(kbpsToBytesPerSecond(0)).toBe(UNCAPPED);
  });
});

describe('throttleBody', () => {
  it('passes exactly the same bytes (length and MD5 unchanged), paced', async () => {
    const data = randomBytes(300_000);
    const bucket = new TokenBucket({ rateBytesPerSecond: 1_000_000 });
    let counted = 0;
    let largestSlice = 0;
    const started = performance.now();
    const out = throttleBody(Readable.from([data.subarray(0, 100_001), data.subarray(100_001)]), bucket, {
      onBytes: (n) => {
        counted += n;
        largestSlice = Math.max(largestSlice, n);
      },
    });
    const chunks: Buffer[] = [];
    for await (const c of out) chunks.push(c as Buffer);
    const elapsedMs = performance.now() - started;
    const back = Buffer.concat(chunks);
    expect(back.length).toBe(data.length);
    expect(createHash('md5').update(back).digest('hex')).toBe(createHash('md5').update(data).digest('hex'));
    expect(counted).toBe(data.length);
    // Empty bucket at the start: 300 kB at 1 MB/s take about 0.3 s.
    expect(elapsedMs).toBeGreaterThan(250);
    // Let through in slices while capped: 1/50 s of rate each at most (16 KiB here).
    expect(largestSlice).toBeLessThanOrEqual(16 * 1024);
  });
});

describe('RateMeter', () => {
  it('measures bytes per second over its last seconds', () => {
    let now = 0;
    const meter = new RateMeter({ now: () => now });
    for (let i = 0; i < 200; i++) {
      now += 100;
      meter.add(25_000);
    }
    expect(meter.rate()).toBeCloseTo(250_000, -3);
    now += 10_000;
    expect(meter.rate()).toBe(0);
  });
});

describe('upload windows', () => {
  const berlin = (lines: string[], capKbps = 0): UploadWindows => new UploadWindows(lines, { timeZone: 'Europe/Berlin', defaultCapBytesPerSecond: kbpsToBytesPerSecond(capKbps) });

  it('parses days, times past midnight and caps', () => {
    const w = parseWindow('Mon-Fri 07:00-18:00 1 Mbit/s');
    expect([...w.days].sort()).toEqual([1, 2, 3, 4, 5]);
    expect(w).toMatchObject({ startMinute: 420, endMinute: 1080, cap: { kind: 'rate', bytesPerSecond: 125_000 } });
    expect(parseWindow('18:00-07:00 unlimited')).toMatchObject({ startMinute: 1080, endMinute: 420, cap: { kind: 'unlimited' } });
    expect(parseWindow('Fri-Mon 00:00-24:00 512kbps').days.size).toBe(4);
    expect(parseWindow('sat,sun 08:00-12:00 paused').cap).toEqual({ kind: 'paused' });
    expect(() => parseWindow('07:00-18:00 fast')).toThrow(/HH:MM-HH:MM/);
    expect(() => parseWindow('07:00-07:00 unlimited')).toThrow(/same time/);
  });

  it('accepts in the configuration exactly the lines the policy can parse', () => {
    const good = ['Mon-Fri 07:00-18:00 1 Mbit/s', '18:00-07:00 unlimited', 'Sat,Sun 00:00-24:00 8mbps', ' tue 9:30-10:00 paused '];
    const bad = ['07:00-18:00', 'Mon-Fri 7-18 1mbit/s', 'Someday 07:00-18:00 unlimited', '07:00-18:00 1 Gbit/s'];
    for (const line of good) {
      expect(configSchema.safeParse({ upload: { windows: [line] } }).success, line).toBe(true);
      expect(() => parseWindow(line), line).not.toThrow();
    }
    for (const line of bad) expect(configSchema.safeParse({ upload: { windows: [line] } }).success, line).toBe(false);
    expect(configSchema.parse({}).upload).toEqual({ rateCapKbps: 0, windows: [], pauseWhileRecording: true, yield: { enabled: true, thresholdMs: 100, minRateKbps: 64, intervalMs: 1000 } });
  });

  it('finds the window in force across midnight and the next change, first match winning', () => {
    const w = berlin(['Mon-Fri 07:00-18:00 1 Mbit/s', '18:00-07:00 unlimited'], 2_000);
    // Tuesday 2026-06-16 10:00 CEST = 08:00Z: class hours.
    const day = w.at(utc('2026-06-16T08:00:00Z'));
    expect(day.window?.name).toBe('Mon-Fri 07:00-18:00 1 Mbit/s');
    expect(day.capBytesPerSecond).toBe(125_000);
    expect(day.nextChangeMs).toBe(utc('2026-06-16T16:00:00Z'));
    // 23:30 and 03:00 local: the night window, which ends at 07:00 local.
    expect(w.at(utc('2026-06-16T21:30:00Z')).capBytesPerSecond).toBe(UNCAPPED);
    const night = w.at(utc('2026-06-17T01:00:00Z'));
    expect(night.window?.name).toBe('18:00-07:00 unlimited');
    expect(night.nextChangeMs).toBe(utc('2026-06-17T05:00:00Z'));
    // Saturday 10:00: no weekday window; the default cap (2 Mbit/s) until 18:00.
    const sat = w.at(utc('2026-06-20T08:00:00Z'));
    expect(sat.window).toBeNull();
    expect(sat.capBytesPerSecond).toBe(250_000);
    expect(sat.nextChangeMs).toBe(utc('2026-06-20T16:00:00Z'));
  });

  it('keeps local hours across the spring-forward and fall-back changes in Europe/Berlin', () => {
    const w = berlin(['Mon-Fri 07:00-18:00 1 Mbit/s', '18:00-07:00 unlimited']);
    // Saturday 2026-03-28 20:00 CET (UTC+1); clocks jump 02:00 -> 03:00 on Sunday; 07:00 CEST = 05:00Z.
    expect(w.at(utc('2026-03-28T19:00:00Z')).nextChangeMs).toBe(utc('2026-03-29T05:00:00Z'));
    // Then Sunday 07:00 to 18:00 falls outside every window (the default), until 18:00 CEST.
    expect(w.at(utc('2026-03-29T06:00:00Z')).nextChangeMs).toBe(utc('2026-03-29T16:00:00Z'));
    // Saturday 2026-10-24 20:00 CEST; clocks fall back 03:00 -> 02:00 on Sunday; 07:00 CET = 06:00Z.
    expect(w.at(utc('2026-10-24T18:00:00Z')).nextChangeMs).toBe(utc('2026-10-25T06:00:00Z'));
    // The same window is in force through the repeated hour.
    expect(w.at(utc('2026-10-25T00:30:00Z')).window?.name).toBe('18:00-07:00 unlimited');
    expect(w.at(utc('2026-10-25T01:30:00Z')).window?.name).toBe('18:00-07:00 unlimited');
  });

  it('maps a local time in the spring gap to the jump, and a repeated one to its first occurrence', () => {
    expect(zonedToUtc(2026, 3, 29, 150, 'Europe/Berlin')).toBe(utc('2026-03-29T01:00:00Z'));
    expect(zonedToUtc(2026, 10, 25, 150, 'Europe/Berlin')).toBe(utc('2026-10-25T00:30:00Z'));
    expect(zonedToUtc(2026, 6, 16, 420, 'Europe/Berlin')).toBe(utc('2026-06-16T05:00:00Z'));
    const gap = berlin(['02:30-03:30 paused']);
    // On the spring-forward night the window starts when the clock jumps (02:00 CET = 01:00Z)
    // and ends at 03:30 CEST (01:30Z).
    expect(gap.at(utc('2026-03-29T00:00:00Z')).nextChangeMs).toBe(utc('2026-03-29T01:00:00Z'));
    expect(gap.at(utc('2026-03-29T01:10:00Z')).paused).toBe(true);
    expect(gap.at(utc('2026-03-29T01:10:00Z')).nextChangeMs).toBe(utc('2026-03-29T01:30:00Z'));
  });
});

// The yield controller itself: tests/unit/yield.test.ts.
describe('yield probe', () => {
  it('knows where to probe', () => {
    expect(endpointAddress('https://s3.example.edu', 'x')).toEqual({ host: 's3.example.edu', port: 443 });
    expect(endpointAddress('http://[::1]:7480/', 'x')).toEqual({ host: '::1', port: 7480 });
    expect(endpointAddress(undefined, 'eu-central-1')).toEqual({ host: 's3.eu-central-1.amazonaws.com', port: 443 });
  });
});

describe('BandwidthPolicy', () => {
  const settings = (over: Partial<UploadSettings> = {}): UploadSettings => ({
    rateCapKbps: 0,
    windows: [],
    pauseWhileRecording: true,
    yield: { enabled: true, thresholdMs: 100, minRateKbps: 64, intervalMs: 20 },
    ...over,
  });

  it('holds new uploads while a recording runs and lets them go after, saying why in its status', async () => {
    let recording = true;
    const policy = new BandwidthPolicy({ settings: settings(), logger: silentLogger, isRecording: () => recording, tickMs: 20, pendingBytes: () => 1_000_000 });
    await policy.start();
    try {
      let begun = false;
      const request = policy.begin({ key: 'a', sizeBytes: 10 }).then((r) => {
        begun = true;
        return r;
      });
      await waitFor(() => (policy.status().pausedReason === 'recording' ? true : undefined), { timeoutMs: 2_000 });
      expect(policy.status()).toMatchObject({ pausedReason: 'recording', capBytesPerSecond: 0, pendingBytes: 1_000_000, etaSeconds: null });
      expect(begun).toBe(false);
      recording = false;
      const r = await request;
      expect(policy.status().pausedReason).toBeNull();
      r.end();
    } finally {
      await policy.stop();
    }
  });

  it('stops shaping on stop(): a request waiting for the end of a recording goes, at full speed', async () => {
    const policy = new BandwidthPolicy({ settings: settings({ rateCapKbps: 8 }), logger: silentLogger, isRecording: () => true, tickMs: 20 });
    await policy.start();
    const waiting = policy.begin({ key: 'a', sizeBytes: 100_000 });
    await waitFor(() => (policy.status().pausedReason === 'recording' ? true : undefined), { timeoutMs: 2_000 });
    await policy.stop();
    const r = await waiting;
    const started = performance.now();
    let bytes = 0;
    for await (const c of r.body(Readable.from([randomBytes(100_000)]))) bytes += (c as Buffer).length;
    // 100 kB at the 1 kB/s cap would take 100 s.
    expect(bytes).toBe(100_000);
    expect(performance.now() - started).toBeLessThan(1_000);
    expect(r.signal.aborted).toBe(false);
    r.end();
  });

  it('withdraws a sending request when a pause begins and it would need long to finish', async () => {
    let recording = false;
    const policy = new BandwidthPolicy({ settings: settings({ rateCapKbps: 80 }), logger: silentLogger, isRecording: () => recording, tickMs: 20, finishWithinMs: 5_000 });
    await policy.start();
    try {
      const big = await policy.begin({ key: 'big', sizeBytes: 10_000_000 });
      const small = await policy.begin({ key: 'small', sizeBytes: 1_000 });
      recording = true;
      await waitFor(() => (big.signal.aborted ? true : undefined), { timeoutMs: 2_000 });
      // 1 kB at 10 kB/s finishes in 0.1 s: it is let finish.
      expect(small.signal.aborted).toBe(false);
      big.end();
      small.end();
    } finally {
      await policy.stop();
    }
  });

  it('pauses in a "paused" window and follows the window cap by the clock', async () => {
    let now = utc('2026-06-16T06:30:00Z'); // 08:30 CEST
    const policy = new BandwidthPolicy({
      settings: settings({ windows: ['08:00-09:00 paused', '09:00-18:00 800 kbit/s'], timeZone: 'Europe/Berlin', rateCapKbps: 4_000 }),
      logger: silentLogger,
      now: () => now,
      tickMs: 20,
    });
    await policy.start();
    try {
      expect(policy.status()).toMatchObject({ pausedReason: 'window', window: '08:00-09:00 paused' });
      now = utc('2026-06-16T07:30:00Z');
      await waitFor(() => (policy.status().window === '09:00-18:00 800 kbit/s' ? true : undefined), { timeoutMs: 2_000 });
      expect(policy.status()).toMatchObject({ pausedReason: null, capBytesPerSecond: 100_000 });
      now = utc('2026-06-16T17:00:00Z');
      await waitFor(() => (policy.status().window === null ? true : undefined), { timeoutMs: 2_000 });
      expect(policy.status().capBytesPerSecond).toBe(500_000);
    } finally {
      await policy.stop();
    }
  });

  it('does not hold uploads at yield\'s start rate when the probe never works (a firewall that drops bare connects)', async () => {
    const policy = new BandwidthPolicy({
      settings: settings(),
      logger: silentLogger,
      probe: async () => {
        throw Object.assign(new Error('connect ETIMEDOUT'), { code: 'ETIMEDOUT' });
      },
      tickMs: 20,
    });
    await policy.start();
    const r = await policy.begin({ key: 'part', sizeBytes: 1_000_000 });
    try {
      // Until then yield's probe rate (32 kB/s) paces; after two failed probes, nothing does.
      await waitFor(() => (policy.status().capBytesPerSecond === null ? true : undefined), { timeoutMs: 2_000 });
      expect(policy.status()).toMatchObject({ linkDown: false, yielding: false });
    } finally {
      r.end();
      await policy.stop();
    }
  });

  it('lowers the cap when the probe shows a queue, and withdraws a stalled request when the link comes back', async () => {
    const rtts: (number | Error)[] = [10, 10, 10, 300, 300];
    let last: number | Error = 10;
    const policy = new BandwidthPolicy({
      settings: settings({ rateCapKbps: 2_000 }),
      logger: silentLogger,
      probe: async () => {
        last = rtts.shift() ?? last;
        if (last instanceof Error) throw last;
        return last;
      },
      tickMs: 20,
      resumeGraceMs: 50,
    });
    // A request is open (probing runs at the short interval while uploads are busy) but sends nothing.
    const stalled = await policy.begin({ key: 'part', sizeBytes: 1_000_000 });
    await policy.start();
    try {
      await waitFor(() => (policy.status().yielding ? true : undefined), { timeoutMs: 2_000 });
      // Nothing was measured: the first decrease halves the ceiling (2 Mbit/s), then again.
      expect(policy.status().capBytesPerSecond).toBeLessThanOrEqual(125_000);
      expect(policy.status().baseRttMs).toBe(10);
      rtts.push(new Error('ECONNREFUSED'), new Error('ECONNREFUSED'));
      await waitFor(() => (policy.status().linkDown ? true : undefined), { timeoutMs: 2_000 });
      expect(stalled.signal.aborted).toBe(false);
      rtts.push(10);
      await waitFor(() => (stalled.signal.aborted ? true : undefined), { timeoutMs: 2_000 });
      expect(policy.status().linkDown).toBe(false);
      stalled.end();
    } finally {
      await policy.stop();
    }
  });
});
