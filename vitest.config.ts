// SPDX-License-Identifier: Apache-2.0
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { defaultServerConditions } from 'vite';
import { configDefaults, defineConfig } from 'vitest/config';
import LongFirstSequencer from './scripts/vitest-sequencer.ts';

// Tests run against the TypeScript sources of the workspace packages: the
// `@kubernaut/source` export condition points each package at `src/index.ts`. Only that
// condition is added to Vite's defaults, so that `require()` in CommonJS dependencies
// still resolves as Node would.
const conditions = ['@kubernaut/source', ...defaultServerConditions];

// Two projects: `shared` and `isolated`. `npm test -w <package>` runs one package's tests by
// path (`vitest run packages/<folder>/`).
//
// The files of `shared` share their worker's module registry (`isolate: false`): a worker imports
// the packages, the OpenTelemetry SDK, Ajv and PGlite once instead of once per file, which took
// a quarter of the suite's CPU. Vitest keeps a worker for the next file only when that file is of
// the same project, hence one project for all of them. Before each file, test-kit's
// fresh-globals.ts resets OpenTelemetry's API globals (providers, propagator, context manager,
// diag logger). The files below change what that reset cannot undo, and run in a registry (and
// process) of their own each, in `isolated`, before the others:
const ISOLATED = [
  // an instrumentation that patches pino as it loads; NodeSDK; the process's environment
  'packages/exporter-kubernaut-audit/test/processor/pino.test.ts',
  'packages/exporter-kubernaut-audit/test/processor/pino-line.test.ts',
  // NodeSDK and the process's environment
  'packages/exporter-kubernaut-audit/test/processor/lifecycle.test.ts',
  'test/e2e/datastorage.e2e.test.ts',
  // the process's environment (OTEL_SERVICE_NAME, TMPDIR, KUBERNAUT_AUDIT_*)
  'packages/exporter-kubernaut-audit/test/processor/destination.test.ts',
  'packages/exporter-kubernaut-audit/test/provenance/signing.test.ts',
  'packages/exporter-kubernaut-audit/test/setup/misuse.test.ts',
  // fake timers
  'packages/exporter-kubernaut-audit/test/spool/sync.test.ts',
  // what a process says once: the first-run notes, the stderr fallback's note, the warning of a
  // spool on a memory filesystem
  'packages/exporter-kubernaut-audit/test/setup/first-run.test.ts',
  'packages/exporter-kubernaut-audit/test/setup/spool-volume.test.ts',
];
const ALL = [
  'packages/*/test/**/*.test.ts', // each package's own
  'test/**/*.test.ts', // across packages
  'examples/*/test/**/*.test.ts', // the examples'
];
const FRESH_GLOBALS = fileURLToPath(
  new URL('./packages/test-kit/src/fresh-globals.ts', import.meta.url),
);

export default defineConfig({
  resolve: { conditions },
  ssr: { resolve: { conditions, externalConditions: ['@kubernaut/source'] } },
  test: {
    projects: [
      {
        extends: true,
        test: { name: 'isolated', include: ISOLATED, sequence: { groupOrder: 0 } },
      },
      {
        extends: true,
        test: {
          name: 'shared',
          include: ALL,
          exclude: [...configDefaults.exclude, ...ISOLATED],
          isolate: false,
          setupFiles: [FRESH_GLOBALS],
          execArgv: ['--expose-gc'], // fresh-globals.ts collects garbage after each file
          sequence: { groupOrder: 1 },
        },
      },
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
    sequence: { sequencer: LongFirstSequencer },
    globalSetup: ['./scripts/vitest-global-setup.ts'],
  },
});
