// SPDX-License-Identifier: Apache-2.0
/** Env var naming the JSON file of record templates that run.ts makes once per run. */
export const TEMPLATES_ENV = 'BENCH_TEMPLATES';
