// SPDX-License-Identifier: Apache-2.0
/* Builds an exporter with test hooks (not exported by the package; tests import this file). */
import { type KubernautAuditExporterInternals, withInternals } from './internals.ts';
import {
  KubernautAuditExporter,
  type KubernautAuditExporterOptions,
} from './kubernaut-audit-exporter.ts';

export type { KubernautAuditExporterInternals } from './internals.ts';

/** A KubernautAuditExporter whose clock, sleeper, environment or dead-letter file a test sets. */
export function createExporter(
  options: KubernautAuditExporterOptions = {},
  internals: KubernautAuditExporterInternals = {},
): KubernautAuditExporter {
  return withInternals(internals, () => new KubernautAuditExporter(options));
}
