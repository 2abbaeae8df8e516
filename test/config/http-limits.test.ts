/**
 * The configuration's `http` block: defaults, and the combinations refused at load with the
 * field named (a tenant body limit the in-flight budget could never hold; a headers timeout
 * longer than the whole request's).
 */
import { expect, it } from 'vitest';
import { validateConfig } from '../../src/config/config.js';

const tenant = (limits: Record<string, number> = {}) => ({ name: 'a', origin: 'example.com/a', limits });

it('defaults: 128 MiB of bodies in flight; 20 s, 120 s, 30 s and 5 s', () => {
  expect(validateConfig({ tenants: [tenant()] }).http).toEqual({
    maxBodyBytesInFlight: 128 << 20,
    headersTimeoutSeconds: 20,
    requestTimeoutSeconds: 120,
    idleTimeoutSeconds: 30,
    keepAliveTimeoutSeconds: 5,
  });
});

it('a tenant body limit up to the budget is taken; one byte over is refused, naming the field', () => {
  expect(validateConfig({ http: { maxBodyBytesInFlight: 1000 }, tenants: [tenant({ maxBodyBytes: 1000 })] }).tenants[0]!.limits.maxBodyBytes).toBe(1000);
  expect(() => validateConfig({ http: { maxBodyBytesInFlight: 1000 }, tenants: [tenant({ maxBodyBytes: 1001 })] })).toThrow(
    /tenants\[0\]\.limits\.maxBodyBytes: over http\.maxBodyBytesInFlight \(1000\)/,
  );
  // The default tenant limit (16 MiB) against a smaller budget.
  expect(() => validateConfig({ http: { maxBodyBytesInFlight: 1 << 20 }, tenants: [tenant()] })).toThrow(/maxBodyBytes/);
});

it('a headers timeout longer than the request timeout, unknown keys and non-positive figures are refused', () => {
  expect(validateConfig({ http: { headersTimeoutSeconds: 60, requestTimeoutSeconds: 60 }, tenants: [tenant()] }).http.headersTimeoutSeconds).toBe(60);
  expect(() => validateConfig({ http: { headersTimeoutSeconds: 61, requestTimeoutSeconds: 60 }, tenants: [tenant()] })).toThrow(
    /http\.headersTimeoutSeconds: headersTimeoutSeconds must not exceed requestTimeoutSeconds/,
  );
  expect(() => validateConfig({ http: { idleTimeout: 5 }, tenants: [tenant()] })).toThrow(/http/);
  expect(() => validateConfig({ http: { idleTimeoutSeconds: 0 }, tenants: [tenant()] })).toThrow(/http\.idleTimeoutSeconds/);
  expect(() => validateConfig({ http: { maxBodyBytesInFlight: 0 }, tenants: [tenant()] })).toThrow(/http\.maxBodyBytesInFlight/);
});
