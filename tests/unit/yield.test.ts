import { describe, expect, it } from 'vitest';
import { DelayYield, type YieldSettings } from '../../src/upload/yield.js';

/**
 * The yield controller (LEDBAT-like, src/upload/yield.ts) driven by numbers: round trips, what
 * the link took, and a small model of a 4 Mbit/s link with a queue in its router, as in the
 * shaped-link test (tests/network/bandwidth-yield.test.ts), where the same controller meets a
 * real link.
 */

const STEP_MS = 250;
const LINK = 500_000; // 4 Mbit/s in bytes per second
const BASE_MS = 2;
const FLOOR = 8_000;

function controller(over: Partial<YieldSettings> = {}): DelayYield {
  return new DelayYield({ thresholdMs: 100, minBytesPerSecond: FLOOR, ...over });
}

/**
 * A link of `LINK` bytes/s with a router queue of at most 400 ms. Each step our paced rate flows
 * in; a foreground transfer (when on) is greedy and keeps the queue full, taking all but what
 * TCP's fair share leaves us. Returns what the link took of ours and the round trip a probe sees.
 */
class LinkModel {
  queueBytes = 0;
  foreground = false;

  step(ourRate: number): { drained: number; rttMs: number } {
    const dt = STEP_MS / 1000;
    if (this.foreground) {
      // A greedy flow fills the queue; we get at most half the link, less when we send less.
      this.queueBytes = 0.4 * LINK;
      return { drained: Math.min(ourRate, LINK / 2), rttMs: BASE_MS + 400 };
    }
    const offered = ourRate * dt + this.queueBytes;
    const sent = Math.min(offered, LINK * dt);
    this.queueBytes = Math.min(offered - sent, 0.4 * LINK);
    return { drained: sent / dt, rttMs: BASE_MS + (this.queueBytes / LINK) * 1000 };
  }
}

function run(y: DelayYield, link: LinkModel, steps: number, t0: number): { t: number; drained: number[]; queueMs: number[] } {
  const drained: number[] = [];
  const queueMs: number[] = [];
  let t = t0;
  for (let i = 0; i < steps; i++) {
    t += STEP_MS;
    const r = link.step(y.capBytesPerSecond);
    y.onSample({ rttMs: r.rttMs, nowMs: t, drainedBytesPerSecond: r.drained, busy: true, ceilingBytesPerSecond: Infinity });
    drained.push(r.drained);
    queueMs.push(r.rttMs - BASE_MS);
  }
  return { t, drained, queueMs };
}

const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;

describe('DelayYield (LEDBAT-like rate controller)', () => {
  it('without a cap, starts from a probe rate and doubles it while the link keeps up', () => {
    const y = controller({ startBytesPerSecond: 32_000 });
    expect(y.capBytesPerSecond).toBe(32_000);
    let t = 0;
    const rates: number[] = [];
    // The link takes up to 200 kB/s, with no queue showing (what it does not take waits in the socket).
    for (let i = 0; i < 6; i++) {
      t += STEP_MS;
      y.onSample({ rttMs: BASE_MS, nowMs: t, drainedBytesPerSecond: Math.min(200_000, y.capBytesPerSecond), busy: true, ceilingBytesPerSecond: Infinity });
      rates.push(y.capBytesPerSecond);
    }
    // Doubling while it keeps up; twice short of the rate, the rate is what it took plus the margin.
    expect(rates).toEqual([64_000, 128_000, 256_000, 512_000, 512_000, 200_000 * 1.1 + 16_000]);
  });

  it('with a cap, starts at the cap (not at the probe rate) and holds it while the link keeps up', () => {
    const y = controller({ startBytesPerSecond: 32_000 });
    let t = 0;
    // The agent probes once before the upload begins: that sample brings the cap.
    y.onSample({ rttMs: BASE_MS, nowMs: (t += STEP_MS), drainedBytesPerSecond: 0, busy: false, ceilingBytesPerSecond: 250_000 });
    expect(y.capBytesPerSecond).toBe(250_000);
    const rates: number[] = [];
    for (let i = 0; i < 4; i++) {
      y.onSample({ rttMs: BASE_MS, nowMs: (t += STEP_MS), drainedBytesPerSecond: y.capBytesPerSecond, busy: true, ceilingBytesPerSecond: 250_000 });
      rates.push(y.capBytesPerSecond);
    }
    expect(rates).toEqual([250_000, 250_000, 250_000, 250_000]);
    // At the ceiling, with no queue, yield holds nothing back.
    expect(y.state().yielding).toBe(false);
  });

  it('with a cap above what the link takes, comes down to the link within two samples', () => {
    const y = controller();
    let t = 0;
    const rates: number[] = [];
    for (let i = 0; i < 3; i++) {
      y.onSample({ rttMs: BASE_MS, nowMs: (t += STEP_MS), drainedBytesPerSecond: Math.min(100_000, y.capBytesPerSecond), busy: true, ceilingBytesPerSecond: 1_000_000 });
      rates.push(y.capBytesPerSecond);
    }
    // One short sample may be a gap between two requests; two are the link's rate, which then holds.
    expect(rates).toEqual([1_000_000, 100_000 * 1.1 + 16_000, 100_000 * 1.1 + 16_000]);
  });

  it('alone on the link: fills at least 90% of it, with the queue near the target', () => {
    const y = controller();
    const link = new LinkModel();
    const warm = run(y, link, 40, 0); // 10 s
    const steady = run(y, link, 240, warm.t); // 60 s
    expect(mean(steady.drained) / LINK).toBeGreaterThanOrEqual(0.9);
    // Target on this short path: 25 ms; the queue stays within twice that, never the router's
    // 400 ms, and never empties (an empty queue is an idle link).
    expect(y.targetMs()).toBe(25);
    expect(Math.max(...steady.queueMs)).toBeLessThan(50);
    expect(Math.min(...steady.queueMs)).toBeGreaterThan(0);
    expect(mean(steady.queueMs)).toBeLessThan(35);
  });

  it('backs off to its floor within 1.5 s of a foreground transfer filling the queue, and comes back after it', () => {
    const y = controller();
    const link = new LinkModel();
    const warm = run(y, link, 60, 0);
    expect(y.capBytesPerSecond).toBeGreaterThan(0.8 * LINK);
    link.foreground = true;
    const first = run(y, link, 6, warm.t); // 1.5 s
    expect(y.capBytesPerSecond).toBeLessThanOrEqual(2 * FLOOR);
    const held = run(y, link, 40, first.t); // 10 s more
    expect(y.capBytesPerSecond).toBe(FLOOR);
    expect(y.state().yielding).toBe(true);
    // What the foreground keeps over those 10 s: all but our floor.
    expect(1 - mean(held.drained) / LINK).toBeGreaterThan(0.95);
    link.foreground = false;
    link.queueBytes = 0;
    const back = run(y, link, 80, held.t); // 20 s
    expect(mean(back.drained.slice(-20)) / LINK).toBeGreaterThanOrEqual(0.9);
  });

  it('after yielding, one sample that finds the queue empty (BBR\'s drain every 10 s) takes back little', () => {
    const y = controller();
    const link = new LinkModel();
    const warm = run(y, link, 60, 0);
    link.foreground = true;
    const held = run(y, link, 20, warm.t);
    expect(y.capBytesPerSecond).toBe(FLOOR);
    // The foreground flow drains the queue for a moment: the probe sees the base.
    y.onSample({ rttMs: BASE_MS, nowMs: held.t + STEP_MS, drainedBytesPerSecond: FLOOR, busy: true, ceilingBytesPerSecond: Infinity });
    // A floor's worth more, not a sixteenth of the link (31 kB/s).
    expect(y.capBytesPerSecond).toBeLessThanOrEqual(2 * FLOOR);
  });

  it('cuts in proportion to the queueing delay over the target, from what the link took', () => {
    const make = (): { y: DelayYield; t: number } => {
      const y = controller({ startBytesPerSecond: 400_000 });
      // Leaves the start phase with no queue: twice in a row the link took only 250 kB/s.
      y.onSample({ rttMs: BASE_MS, nowMs: 250, drainedBytesPerSecond: 250_000, busy: true, ceilingBytesPerSecond: Infinity });
      y.onSample({ rttMs: BASE_MS, nowMs: 500, drainedBytesPerSecond: 250_000, busy: true, ceilingBytesPerSecond: Infinity });
      expect(y.capBytesPerSecond).toBe(250_000 * 1.1 + 16_000);
      return { y, t: 500 };
    };
    const cutAt = (queueMs: number, drained: number): number => {
      const { y, t } = make();
      // Two samples: the current-delay filter takes the smaller.
      y.onSample({ rttMs: BASE_MS + queueMs, nowMs: t + 250, drainedBytesPerSecond: drained, busy: true, ceilingBytesPerSecond: Infinity });
      const before = y.capBytesPerSecond;
      y.onSample({ rttMs: BASE_MS + queueMs, nowMs: t + 500, drainedBytesPerSecond: drained, busy: true, ceilingBytesPerSecond: Infinity });
      return y.capBytesPerSecond / Math.min(before, drained);
    };
    // Target 25 ms: 12.5 ms over it cuts a thirty-second, 25 ms a sixteenth, 100 ms a quarter,
    // 200 ms and more (a foreground transfer's start fills the test link's queue to 400 ms) a half.
    expect(cutAt(37.5, 300_000)).toBeCloseTo(1 - 1 / 32, 5);
    expect(cutAt(50, 300_000)).toBeCloseTo(1 - 1 / 16, 5);
    expect(cutAt(125, 300_000)).toBeCloseTo(0.75, 5);
    expect(cutAt(225, 300_000)).toBeCloseTo(0.5, 5);
    expect(cutAt(400, 300_000)).toBeCloseTo(0.5, 5);
    // The cut starts from what the link took when that was less than the rate.
    expect(cutAt(400, 100_000)).toBeCloseTo(0.5, 5);
  });

  it('below the target, holds the rate while the queue grows fast (the rate is above the link already)', () => {
    const y = controller({ startBytesPerSecond: 400_000 });
    const sample = (nowMs: number, queueMs: number, drained: number): number => {
      y.onSample({ rttMs: BASE_MS + queueMs, nowMs, drainedBytesPerSecond: drained, busy: true, ceilingBytesPerSecond: Infinity });
      return y.capBytesPerSecond;
    };
    // Leaves the start phase: twice in a row the link took less than the rate.
    sample(250, 0, 250_000);
    expect(sample(500, 0, 250_000)).toBe(250_000 * 1.1 + 16_000);
    // Target 25 ms. An empty queue: a sixteenth of the best rate the link took.
    const step = 300_000 / 16;
    const grown = sample(750, 0, 300_000);
    expect(grown).toBe(250_000 * 1.1 + 16_000 + step);
    // 10 ms more queue in one sample (more than a quarter of the target): held.
    expect(sample(1_000, 10, 300_000)).toBe(grown);
    // 2.5 ms more: growing slowly, half-way to the target: half a step.
    expect(sample(1_250, 12.5, 300_000)).toBe(grown + 0.5 * step);
  });

  it('never runs ahead of what the link took, even when no queue shows (bytes parked in the socket)', () => {
    const y = controller();
    let t = 0;
    // The link takes 100 kB/s whatever we offer, and the round trip never rises.
    for (let i = 0; i < 80; i++) {
      t += STEP_MS;
      y.onSample({ rttMs: BASE_MS, nowMs: t, drainedBytesPerSecond: Math.min(100_000, y.capBytesPerSecond), busy: true, ceilingBytesPerSecond: Infinity });
      if (i >= 8) expect(y.capBytesPerSecond).toBeLessThanOrEqual(100_000 * 1.1 + 16_000);
    }
  });

  it('holds the rate while idle, and keeps the floor', () => {
    const y = controller({ startBytesPerSecond: 64_000 });
    y.onSample({ rttMs: 500, nowMs: 250, drainedBytesPerSecond: 0, busy: false, ceilingBytesPerSecond: Infinity });
    y.onSample({ rttMs: 500, nowMs: 500, drainedBytesPerSecond: 0, busy: false, ceilingBytesPerSecond: Infinity });
    expect(y.capBytesPerSecond).toBe(64_000);
    for (let i = 0; i < 20; i++) y.onSample({ rttMs: 10, nowMs: 750 + i * 250, drainedBytesPerSecond: 0, busy: i % 2 === 0, ceilingBytesPerSecond: Infinity });
    expect(y.baseRttMs).toBe(10);
    for (let i = 0; i < 20; i++) y.onSample({ rttMs: 900, nowMs: 6_000 + i * 250, drainedBytesPerSecond: 0, busy: true, ceilingBytesPerSecond: Infinity });
    expect(y.capBytesPerSecond).toBe(FLOOR);
  });

  it('takes the base as the minimum over its window, forgetting old minima', () => {
    const y = controller({ baseWindowMs: 5 * 60_000 });
    const idle = (rttMs: number, nowMs: number): void => y.onSample({ rttMs, nowMs, drainedBytesPerSecond: 0, busy: false, ceilingBytesPerSecond: Infinity });
    idle(10, 0);
    idle(50, 60_000);
    expect(y.baseRttMs).toBe(10);
    // Ten minutes later the route changed (base 50 ms): the old 10 ms is forgotten.
    idle(50, 11 * 60_000);
    expect(y.baseRttMs).toBe(50);
    expect(y.targetMs()).toBe(50);
  });
});
