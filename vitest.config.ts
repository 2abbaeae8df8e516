import { defineConfig } from 'vitest/config';

/**
 * The heavy suites: many kill/restart cycles, real third-party servers with long runs, large logs
 * under busybox, installs that resolve against the npm registry (the network). `npm test` leaves them out so the default run stays quick; `npm run test:heavy`
 * runs exactly these, and `.ci/run` runs both. Nothing here is skipped: each file runs in one
 * of the two commands.
 */
export const HEAVY_SUITES = [
  'test/interop/omniwitness.test.ts',
  'test/log/crash.test.ts',
  'test/anchor/crash.test.ts',
  'test/forensic/large.test.ts',
  'test/client/package-registry.test.ts',
  'test/log/partials-soak.test.ts',
  'test/cluster/failover-heavy.test.ts',
  'test/cluster/store-race-heavy.test.ts',
];

const heavy = process.env.TLOG_TESTS === 'heavy';

export default defineConfig({
  test: {
    include: heavy ? HEAVY_SUITES : ['test/**/*.test.ts'],
    exclude: heavy ? [] : [...HEAVY_SUITES, '**/node_modules/**'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Crash and interop tests spawn processes and use the disk; two workers fit 2 cores.
    maxWorkers: 2,
  },
});
