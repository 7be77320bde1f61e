// SPDX-License-Identifier: Apache-2.0
/*
 * Vitest setup file of the test files that share their worker's module registry with others
 * (`isolate: false`, vitest.config.ts): it runs before each such file and gives it
 * OpenTelemetry's API globals as a fresh process has them — no global logger, meter or tracer
 * provider, context manager, propagator nor diag logger left by a file that ran before it in
 * the same worker. The files that change what these resets cannot undo (instrumentations that
 * patch modules as they load, `NodeSDK`, the process's environment) keep a registry of their
 * own: the list is in vitest.config.ts.
 */
import { context, diag, metrics, propagation, trace } from '@opentelemetry/api';
import { logs } from '@opentelemetry/api-logs';

logs.disable();
metrics.disable();
trace.disable();
propagation.disable();
context.disable();
diag.disable();
