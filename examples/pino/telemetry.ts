// SPDX-License-Identifier: Apache-2.0
/*
 * The OpenTelemetry set-up of the pino example: loaded before the application, so that the
 * instrumentation is in place before pino is imported.
 *
 *   node --import ./telemetry.ts main.ts
 *
 * The DataStorage URL, token file, spool directory and batching come from the environment
 * (KUBERNAUT_AUDIT_ENDPOINT, KUBERNAUT_AUDIT_BEARER_TOKEN_FILE, KUBERNAUT_AUDIT_SPOOL_DIR,
 * OTEL_BLRP_*), so `new AuditLogRecordProcessor()` needs no options.
 */
import { register } from 'node:module';
import { AuditLogRecordProcessor } from '@kubernaut/exporter-kubernaut-audit';
import { PinoInstrumentation } from '@opentelemetry/instrumentation-pino';
import { NodeSDK } from '@opentelemetry/sdk-node';

// An ESM application imports pino with `import`: this hook lets the instrumentation patch it.
register('@opentelemetry/instrumentation/hook.mjs', import.meta.url);

export const sdk = new NodeSDK({
  serviceName: 'payments',
  logRecordProcessors: [new AuditLogRecordProcessor()],
  instrumentations: [new PinoInstrumentation()],
});
sdk.start();

// Kubernetes stops a pod with SIGTERM: deliver what is left (what cannot be delivered in time
// stays in the spool, and the next start delivers it).
process.once('SIGTERM', () => {
  void sdk.shutdown().finally(() => process.exit(0));
});
