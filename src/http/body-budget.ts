/**
 * The request-body bytes all requests together may hold. Each tenant's maxBodyBytes bounds one
 * body; this bounds their sum, so many clients each sending a body up to the limit cannot take
 * the process's memory. A request takes a lease before it reads its body (its declared
 * Content-Length at once, a chunked body as it streams in) and gives it back when it ends;
 * past the budget it is refused with 503 + Retry-After without reading further.
 */
import { DEFAULT_HTTP_LIMITS } from '../config/config.js';

export class BodyBudget {
  private used = 0;
  constructor(readonly limit: number = DEFAULT_HTTP_LIMITS.maxBodyBytesInFlight) {}

  /** Bytes held by the leases now. */
  get inFlight(): number {
    return this.used;
  }

  lease(): BodyLease {
    return new BodyLease(this);
  }

  /** @internal For BodyLease: takes `n` more bytes, or nothing and false when they do not fit. */
  take(n: number): boolean {
    if (this.used + n > this.limit) return false;
    this.used += n;
    return true;
  }

  /** @internal For BodyLease. */
  give(n: number): void {
    this.used -= n;
  }
}

/** One request's share of the budget. */
export class BodyLease {
  private held = 0;
  constructor(private readonly budget: BodyBudget) {}

  /** Makes the lease cover `total` bytes of body; false (holding what it held) when the budget has no room. */
  cover(total: number): boolean {
    if (total <= this.held) return true;
    if (!this.budget.take(total - this.held)) return false;
    this.held = total;
    return true;
  }

  /** Gives the bytes back; later calls do nothing. */
  release(): void {
    this.budget.give(this.held);
    this.held = 0;
  }
}
