import { defineConfig } from 'vitest/config';

// Tests run against the TypeScript sources of the workspace packages: the
// `@kubernaut/source` export condition points each package at `src/index.ts`.
const conditions = ['@kubernaut/source', 'node', 'import', 'module', 'default'];

export default defineConfig({
  resolve: { conditions },
  ssr: { resolve: { conditions, externalConditions: ['@kubernaut/source'] } },
  test: {
    include: ['packages/*/test/**/*.test.ts', 'test/**/*.test.ts', 'examples/*/test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    reporters: ['default', './scripts/summary-reporter.ts'],
  },
});
