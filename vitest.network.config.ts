import { defineConfig } from 'vitest/config';

// Network measurements that are not steady enough for every run of `npm test` yet (the share a
// foreground transfer keeps while uploads yield): `npm run test:network`.
export default defineConfig({
  test: {
    include: ['tests/network/**/*.test.ts'],
    fileParallelism: false,
    testTimeout: 420_000,
    hookTimeout: 120_000,
  },
});
