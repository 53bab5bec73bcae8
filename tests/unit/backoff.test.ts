import { describe, expect, it } from 'vitest';
import { backoffDelayMs, DEFAULT_BACKOFF, type BackoffPolicy } from '../../src/util/backoff.js';

const always = (value: number) => () => value;

describe('backoffDelayMs', () => {
  it('doubles from the base and stops at the cap (default policy, lowest jitter draw)', () => {
    const delays = [1, 2, 3, 4, 5, 6, 7, 8].map((attempt) => backoffDelayMs(attempt, DEFAULT_BACKOFF, always(0)));
    // Half jitter keeps a floor of half the nominal delay; 64 s is capped to 60 s, floor 30 s.
    expect(delays).toEqual([500, 1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000]);
  });

  it('reaches the full nominal delay at the highest jitter draw', () => {
    const delays = [1, 2, 3, 6, 7, 20].map((attempt) => backoffDelayMs(attempt, DEFAULT_BACKOFF, always(1)));
    expect(delays).toEqual([1_000, 2_000, 4_000, 32_000, 60_000, 60_000]);
  });

  it('places the delay inside the jitter band by the random draw', () => {
    const policy: BackoffPolicy = { baseMs: 1_000, capMs: 60_000, jitter: 0.5 };
    // attempt 3: nominal 4000 → 2000 + 2000 * 0.25
    expect(backoffDelayMs(3, policy, always(0.25))).toBe(2_500);
    // full jitter: anywhere in [0, nominal]
    expect(backoffDelayMs(3, { ...policy, jitter: 1 }, always(0.25))).toBe(1_000);
  });

  it('ignores the random source when jitter is 0', () => {
    const policy: BackoffPolicy = { baseMs: 250, capMs: 10_000, jitter: 0 };
    expect(backoffDelayMs(1, policy, always(0.9))).toBe(250);
    expect(backoffDelayMs(4, policy, always(0.1))).toBe(2_000);
    expect(backoffDelayMs(10, policy, always(0.5))).toBe(10_000);
  });

  it('clamps jitter outside [0, 1]', () => {
    const nominal = { baseMs: 1_000, capMs: 60_000 };
    expect(backoffDelayMs(2, { ...nominal, jitter: 5 }, always(0.5))).toBe(1_000);
    expect(backoffDelayMs(2, { ...nominal, jitter: -1 }, always(0.5))).toBe(2_000);
  });

  it('treats attempt 0 or below as the first retry and never overflows for huge attempts', () => {
    expect(backoffDelayMs(0, DEFAULT_BACKOFF, always(1))).toBe(1_000);
    expect(backoffDelayMs(-3, DEFAULT_BACKOFF, always(1))).toBe(1_000);
    const huge = backoffDelayMs(10_000, { baseMs: 1_000, capMs: Number.MAX_SAFE_INTEGER, jitter: 0 }, always(0));
    expect(Number.isFinite(huge)).toBe(true);
    expect(huge).toBe(1_000 * 2 ** 30);
  });

  it('returns whole milliseconds', () => {
    // 3 * 0.5 + 3 * 0.5 * 0.5 = 2.25
    expect(backoffDelayMs(1, { baseMs: 3, capMs: 100, jitter: 0.5 }, always(0.5))).toBe(2);
  });

  it('stays within [nominal * (1 - jitter), nominal] for any draw', () => {
    let seed = 42;
    const lcg = (): number => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const policy: BackoffPolicy = { baseMs: 100, capMs: 5_000, jitter: 0.3 };
    for (let attempt = 1; attempt <= 12; attempt++) {
      const nominal = Math.min(policy.capMs, policy.baseMs * 2 ** (attempt - 1));
      for (let i = 0; i < 50; i++) {
        const delay = backoffDelayMs(attempt, policy, lcg);
        expect(delay).toBeGreaterThanOrEqual(Math.round(nominal * 0.7));
        expect(delay).toBeLessThanOrEqual(nominal);
      }
    }
  });
});
