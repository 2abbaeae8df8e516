/**
 * Durable per-client counters for signed requests: a request is accepted only with a counter
 * above the client's last one, and the new counter is durable before the request proceeds, so
 * a replayed or stale request is refused even across a crash.
 *
 * Where they are durable: a file in the log's private state directory (one process serves the
 * tenant), or, for a tenant of a cluster, an object in the store beside its log
 * (cluster/store-counters.ts): a node that takes the tenant over must refuse what the last
 * holder accepted, and its local cache starts empty.
 *
 * Writes are grouped: every request that arrives while a write is in flight waits for the next
 * one, so one fsync (or one PUT) serves many requests (the same group commit as the log's).
 */
import path from 'node:path';
import { TlogError, ErrorCode } from '../errors.js';
import { readIfExists, writeFileDurably } from '../storage/durable.js';

/** Where the counters are kept: the whole map as JSON, read once, replaced on every write. */
export interface CounterPersistence {
  /** For messages: the file or object. */
  readonly where: string;
  /** The JSON last saved, or null when there is none yet. */
  load(): Promise<string | null>;
  /** Replaces it durably (resolves once it is). */
  save(json: string): Promise<void>;
}

/** The counters as a 0600 file in the log's private state directory. */
export function fileCounters(stateDir: string): CounterPersistence {
  const file = path.join(stateDir, 'client-counters.json');
  return {
    where: file,
    load: async () => (await readIfExists(file))?.toString('utf8') ?? null,
    save: (json) => writeFileDurably(file, json, 0o600),
  };
}

export class CounterStore {
  private readonly counters = new Map<string, number>();
  private dirty = false;
  private flushing: Promise<void> | null = null;
  private waiters: { resolve(): void; reject(e: unknown): void }[] = [];

  private constructor(private readonly persistence: CounterPersistence) {}

  /** The counters of a log served by this process alone: a file in its state directory. */
  static open(stateDir: string): Promise<CounterStore> {
    return CounterStore.openWith(fileCounters(stateDir));
  }

  static async openWith(persistence: CounterPersistence): Promise<CounterStore> {
    const s = new CounterStore(persistence);
    const data = await persistence.load();
    if (data !== null) {
      let obj: Record<string, number>;
      try {
        obj = JSON.parse(data) as Record<string, number>;
      } catch (e) {
        throw new TlogError(ErrorCode.corrupt, `${persistence.where}: ${(e as Error).message}`);
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
    this.flushing = this.persistence.save(snapshot + '\n').then(
      () => waiters.forEach((w) => w.resolve()),
      (e) => waiters.forEach((w) => w.reject(new TlogError(ErrorCode.unavailable, `cannot persist client counters: ${(e as Error).message}`))),
    );
    void this.flushing.finally(() => {
      this.flushing = null;
      this.kick();
    });
  }
}
