// SPDX-License-Identifier: Apache-2.0
/* The options of a bridge under test. */
import { KubernautAuditExporter } from '@kubernaut/exporter-kubernaut-audit';
import type { OtlpBridgeOptions } from '../../src/index.ts';

/**
 * A bridge on a free port delivering to the DataStorage at `url` (fast retries, 5 s timeout), its
 * spool in `spoolDir`, a 1 s shutdown, silent unless `extra` gives a logger.
 */
export function testBridgeOptions(
  url: string,
  spoolDir: string,
  extra: Partial<OtlpBridgeOptions> = {},
): OtlpBridgeOptions {
  return {
    port: 0,
    exporter: new KubernautAuditExporter({
      url,
      retry: { initialDelayMillis: 10, maxDelayMillis: 50 },
      timeoutMillis: 5_000,
    }),
    spool: { directory: spoolDir },
    shutdownTimeoutMillis: 1_000,
    logger: () => undefined,
    ...extra,
  };
}
