/**
 * Durable per-client counters for signed requests: a request is accepted only with a counter
 * above the client's last one, and the new counter is durable before the request proceeds, so
 * a replayed or stale request is refused even across a crash.
 *
 * Writes are grouped: every request that arrives while a write is in flight waits for the next
 * one, so one fsync serves many requests (the same group commit as the log's).
 */
import path from 'node:path';
import { TlogError, ErrorCode } from '../errors.js';
import { readIfExists, writeFileDurably } from '../storage/durable.js';

export class CounterStore {
  private readonly counters = new Map<string, number>();
  private dirty = false;
  private flushing: Promise<void> | null = null;
  private waiters: { resolve(): void; reject(e: unknown): void }[] = [];

  private constructor(readonly file: string) {}

  static async open(stateDir: string): Promise<CounterStore> {
    const s = new CounterStore(path.join(stateDir, 'client-counters.json'));
    const data = await readIfExists(s.file);
    if (data) {
      let obj: Record<string, number>;
      try {
        obj = JSON.parse(data.toString('utf8')) as Record<string, number>;
      } catch (e) {
        throw new TlogError(ErrorCode.corrupt, `${s.file}: ${(e as Error).message}`);
      }
      for (const [k, v] of Object.entries(obj)) if (Number.isSafeInteger(v)) s.counters.set(k, v);
    }
    return s;
  }

  last(client: string): number {
    return this.counters.get(client) ?? -1;
  }

  /**
   * Claims `counter` for `client`: refuses it unless it is above the last one, then resolves
   * once the new value is durable. Concurrent claims are decided in arrival order.
   */
  async claim(client: string, counter: number): Promise<void> {
    const last = this.last(client);
    if (!(counter > last)) {
      throw new TlogError(ErrorCode.badInput, `counter ${counter} of client ${client} is not above its last counter ${last}: replayed or stale request`);
    }
    this.counters.set(client, counter);
    this.dirty = true;
    return new Promise<void>((resolve, reject) => {
      this.waiters.push({ resolve, reject });
      this.kick();
    });
  }

  private kick(): void {
    if (this.flushing || !this.dirty) return;
    const waiters = this.waiters.splice(0);
    this.dirty = false;
    const snapshot = JSON.stringify(Object.fromEntries(this.counters));
    this.flushing = writeFileDurably(this.file, snapshot + '\n', 0o600).then(
      () => waiters.forEach((w) => w.resolve()),
      (e) => waiters.forEach((w) => w.reject(new TlogError(ErrorCode.unavailable, `cannot persist client counters: ${(e as Error).message}`))),
    );
    void this.flushing.finally(() => {
      this.flushing = null;
      this.kick();
    });
  }
}
