// SPDX-License-Identifier: Apache-2.0
import { readdirSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { defaultServerConditions } from 'vite';
import { defineConfig } from 'vitest/config';

// Tests run against the TypeScript sources of the workspace packages: the
// `@kubernaut/source` export condition points each package at `src/index.ts`. Only that
// condition is added to Vite's defaults, so that `require()` in CommonJS dependencies
// still resolves as Node would.
const conditions = ['@kubernaut/source', ...defaultServerConditions];

// One project per package (named after its folder), so that `npm test -w <package>` runs that
// package's tests alone (`vitest run --project <folder>`), plus the cross-package suites of
// `test/` and the examples' own tests. `vitest run` runs them all.
const packages = readdirSync(new URL('./packages', import.meta.url), { withFileTypes: true })
  .filter((d) => d.isDirectory())
  .map((d) => d.name);
const project = (name: string, include: string[]) => ({
  extends: true as const,
  test: { name, include },
});

export default defineConfig({
  resolve: { conditions },
  ssr: { resolve: { conditions, externalConditions: ['@kubernaut/source'] } },
  test: {
    projects: [
      ...packages.map((p) => project(p, [`packages/${p}/test/**/*.test.ts`])),
      project('cross-package', ['test/**/*.test.ts']),
      project('examples', ['examples/*/test/**/*.test.ts']),
    ],
    // The reference server's cache of a fresh PGlite cluster, shared by the tests' servers and
    // the child processes they start (the demo, the server's command): one initdb per checkout
    // instead of one per in-memory server, ≈ 4 s of CPU each.
    env: { PGLITE_CACHE_DIR: fileURLToPath(new URL('./.cache/pglite', import.meta.url)) },
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // Vitest's default is one worker fewer than the cores: one worker on a 2-core machine, where
    // most test files wait on child processes, sockets and databases rather than compute. Two
    // workers there took the suite from 13.9 to 9.0 min with the same results.
    maxWorkers: Math.max(2, availableParallelism() - 1),
    reporters: ['default', './scripts/summary-reporter.ts'],
  },
});
