// SPDX-License-Identifier: Apache-2.0
/*
 * Vitest setup file of the test files that share their worker's module registry with others
 * (`isolate: false`, vitest.config.ts): it runs before each such file and gives it
 * OpenTelemetry's API globals as a fresh process has them — no global logger, meter or tracer
 * provider, context manager, propagator nor diag logger left by a file that ran before it in
 * the same worker. The files that change what these resets cannot undo (instrumentations that
 * patch modules as they load, `NodeSDK`, the process's environment) keep a registry of their
 * own: the list is in vitest.config.ts. After each file, a full garbage collection (below).
 */
import { context, diag, metrics, propagation, trace } from '@opentelemetry/api';
import { logs } from '@opentelemetry/api-logs';
import { afterAll } from 'vitest';

logs.disable();
metrics.disable();
trace.disable();
propagation.disable();
context.disable();
diag.disable();

// What the file left unreachable is collected before the next file starts, not whenever V8 next
// looks: above all the WebAssembly memory of each in-memory PGlite (100 MB and more per reference
// DataStorage), which a small JavaScript heap does not push V8 to collect. Without this a worker
// held 1.3–1.7 GB by the end of a run. Needs `--expose-gc` (vitest.config.ts).
afterAll(() => {
  (globalThis as { gc?: () => void }).gc?.();
});
