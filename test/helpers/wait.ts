/**
 * Waiting for a state: tests poll for what they assert and never assert how long it took, so
 * a busy machine makes them slower, not red. The timeouts only end a wait that would never end.
 */

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Polls `fn` (every 20 ms) until it returns something truthy, and returns that; fails naming
 * `what` once `timeoutMs` have passed without it. An exception from `fn` ends the wait.
 */
export async function until<T>(what: string, fn: () => T | null | undefined | false | Promise<T | null | undefined | false>, timeoutMs = 20_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}
