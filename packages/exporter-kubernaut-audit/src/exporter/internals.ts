// SPDX-License-Identifier: Apache-2.0
/*
 * Test and integration hooks of KubernautAuditExporter. They are not options: a test that needs
 * them builds its exporter with `createExporter()` (./create.ts), which hands them to the
 * constructor through this module. Neither module is exported by the package.
 */
import { handoff } from '../config/handoff.ts';

import type { Sleeper } from '../deliver/engine.ts';
import type { OpenApiLoader } from './openapi-spec.ts';

export interface KubernautAuditExporterInternals {
  /** Sleeps between attempts (tests record the scheduled delays). */
  sleep?: Sleeper;
  /** Clock in ms since the epoch [Date.now]. */
  now?: () => number;
  /** Random source for jitter, [0, 1) [Math.random]. */
  random?: () => number;
  /** Environment to read [process.env]. */
  env?: NodeJS.ProcessEnv;
  /** Path of the exporter's own dead-letter file [see defaultDeadLetterPath()]. */
  deadLetterPath?: string;
  /** Bound of the exporter's own dead-letter file [100 MiB]. */
  deadLetterMaxBytes?: number;
  /** Imports `@kubernaut/datastorage-contract/openapi` (tests simulate missing libraries). */
  loadOpenApi?: OpenApiLoader;
}

/** `withInternals(internals, construct)`: hooks for the constructor `construct` calls, which `takeInternals()`s them. */
export const { run: withInternals, take: takeInternals } =
  handoff<KubernautAuditExporterInternals>();
