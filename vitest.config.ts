import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Crash and interop tests spawn processes and use the disk; two workers fit 2 cores.
    maxWorkers: 2,
  },
});
