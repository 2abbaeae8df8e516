/**
 * The answers to the entries of one append call. An append-batch request of thousands of
 * entries waits for all of them at once (all()): one promise for the call, where a promise
 * per entry (and Promise.all over them) was about half of the objects each queued entry kept
 * alive until its batch committed. A caller that wants one promise per entry (of()) gets it.
 */
import type { AppendResult } from './batch.js';

interface Waiter<T> {
  resolve(r: T): void;
  reject(e: unknown): void;
}

export class Answers {
  readonly #results: (AppendResult | undefined)[];
  #left: number;
  /** Set once any entry failed: all() rejects with the first failure. */
  #failure: { error: unknown } | undefined;
  /** Per-entry failures, for of() asked after the fact. */
  #failed: Map<number, unknown> | undefined;
  #all: Waiter<AppendResult[]> | undefined;
  #allPromise: Promise<AppendResult[]> | undefined;
  /** of() promises still waiting, by slot. */
  #waiting: Map<number, Waiter<AppendResult>[]> | undefined;

  constructor(count: number) {
    this.#results = new Array(count);
    this.#left = count;
  }

  /** Entry `slot` is answered. Later answers or failures of the same slot are ignored. */
  settle(slot: number, r: AppendResult): void {
    if (this.#results[slot] !== undefined || this.#failed?.has(slot)) return;
    this.#results[slot] = r;
    const ws = this.#waiting?.get(slot);
    if (ws) {
      this.#waiting!.delete(slot);
      for (const w of ws) w.resolve(r);
    }
    if (--this.#left === 0 && this.#failure === undefined) this.#all?.resolve(this.#results as AppendResult[]);
  }

  /** Entry `slot` failed: its of() promises and all() reject with e. */
  fail(slot: number, e: unknown): void {
    if (this.#results[slot] !== undefined || this.#failed?.has(slot)) return;
    (this.#failed ??= new Map()).set(slot, e);
    const ws = this.#waiting?.get(slot);
    if (ws) {
      this.#waiting!.delete(slot);
      for (const w of ws) w.reject(e);
    }
    if (this.#failure === undefined) {
      this.#failure = { error: e };
      this.#all?.reject(e);
    }
  }

  /** Entry `slot`'s own answer (made for a caller that asked for one promise per entry). */
  of(slot: number): Promise<AppendResult> {
    const r = this.#results[slot];
    if (r !== undefined) return Promise.resolve(r);
    if (this.#failed?.has(slot)) return Promise.reject(this.#failed.get(slot));
    return new Promise<AppendResult>((resolve, reject) => {
      const waiting = (this.#waiting ??= new Map());
      const ws = waiting.get(slot);
      if (ws) ws.push({ resolve, reject });
      else waiting.set(slot, [{ resolve, reject }]);
    });
  }

  /** Every answer, in order, once all are in; rejects with the first failure. */
  all(): Promise<AppendResult[]> {
    if (this.#allPromise) return this.#allPromise;
    if (this.#failure !== undefined) this.#allPromise = Promise.reject(this.#failure.error);
    else if (this.#left === 0) this.#allPromise = Promise.resolve(this.#results as AppendResult[]);
    else
      this.#allPromise = new Promise<AppendResult[]>((resolve, reject) => {
        this.#all = { resolve, reject };
      });
    return this.#allPromise;
  }
}
