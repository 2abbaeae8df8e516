/**
 * Catching what a call throws, so that a test can assert on the error itself (its class, code
 * and message), and the TlogError-code assertions built on that.
 */
import { expect } from 'vitest';
import { type ErrorCode, isTlogError } from '../../src/errors.js';

/** What f throws (typed as the caller expects it); fails the test if f returns. */
export function thrownBy<E = unknown>(f: () => unknown): E {
  try {
    f();
  } catch (e) {
    return e as E;
  }
  throw new Error('expected a throw');
}

/** What p rejects with (typed as the caller expects it); fails the test if p resolves. */
export async function rejectionOf<E = unknown>(p: Promise<unknown>): Promise<E> {
  return p.then(
    () => {
      throw new Error('expected a refusal');
    },
    (e: unknown) => e as E,
  );
}

/** Asserts that f throws a TlogError with the code. */
export function expectCode(f: () => unknown, code: ErrorCode): void {
  let err: unknown;
  try {
    f();
  } catch (e) {
    err = e;
  }
  expect(isTlogError(err, code), `want a TlogError ${code}, got ${String(err)}`).toBe(true);
}

/** Asserts that p rejects with a TlogError with the code. */
export async function expectRejectCode(p: Promise<unknown>, code: ErrorCode): Promise<void> {
  let err: unknown;
  try {
    await p;
  } catch (e) {
    err = e;
  }
  expect(isTlogError(err, code), `want a rejection with a TlogError ${code}, got ${String(err)}`).toBe(true);
}
