/**
 * Token buckets, one per credential: `ratePerSecond` tokens refill continuously up to `burst`.
 * An append of n entries takes n tokens; when they are not there, the caller learns how long
 * to wait (for Retry-After). In memory only: limits are about load, not security state.
 */
export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  constructor(
    private readonly ratePerSecond: number,
    private readonly burst: number,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Takes n tokens for `key`; returns 0 when allowed, else the seconds to wait. */
  take(key: string, n = 1): number {
    const t = this.now();
    let b = this.buckets.get(key);
    if (!b) {
      b = { tokens: this.burst, at: t };
      this.buckets.set(key, b);
      // Bound memory: forget the oldest buckets (they would be full by now anyway).
      if (this.buckets.size > 100_000) this.buckets.delete(this.buckets.keys().next().value!);
    }
    b.tokens = Math.min(this.burst, b.tokens + ((t - b.at) / 1000) * this.ratePerSecond);
    b.at = t;
    if (b.tokens >= n) {
      b.tokens -= n;
      return 0;
    }
    return Math.ceil((n - b.tokens) / this.ratePerSecond);
  }
}
