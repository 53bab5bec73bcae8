/** Capped exponential backoff with full jitter ("exponential backoff and jitter", AWS architecture blog). */
export interface BackoffPolicy {
  /** Delay before the first retry, before jitter. */
  baseMs: number;
  /** Upper bound of any delay. */
  capMs: number;
  /** 0 = no jitter, 1 = full jitter (delay drawn from [0, d]). Half jitter (0.5) keeps a floor. */
  jitter: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = { baseMs: 1_000, capMs: 60_000, jitter: 0.5 };

/**
 * Delay before retry number `attempt` (1 = first retry). `random` is injectable so tests can
 * assert exact values.
 */
export function backoffDelayMs(attempt: number, policy: BackoffPolicy, random: () => number = Math.random): number {
  const exponent = Math.max(0, Math.min(attempt - 1, 30));
  const raw = Math.min(policy.capMs, policy.baseMs * 2 ** exponent);
  const jitter = Math.min(1, Math.max(0, policy.jitter));
  return Math.round(raw * (1 - jitter) + raw * jitter * random());
}
