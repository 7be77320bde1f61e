// SPDX-License-Identifier: Apache-2.0
/*
 * The OpenTelemetry set-up of the bunyan example.
 *
 *   node --import ./telemetry.ts main.ts
 *
 * `npm install bunyan` gives bunyan 2.x, which @opentelemetry/instrumentation-bunyan does not
 * patch (it supports bunyan 1.x). Its `OpenTelemetryBunyanStream` works with every version as a
 * raw stream of the logger (see main.ts), so no instrumentation is registered here; the stream
 * emits through the Logs API of @opentelemetry/api into the SDK started below.
 *
 * The DataStorage URL, token file, spool directory and batching come from the environment
 * (KUBERNAUT_AUDIT_ENDPOINT, KUBERNAUT_AUDIT_BEARER_TOKEN_FILE, KUBERNAUT_AUDIT_SPOOL_DIR,
 * OTEL_BLRP_*).
 */
import { AuditLogRecordProcessor } from '@kubernaut/exporter-kubernaut-audit';
import { NodeSDK } from '@opentelemetry/sdk-node';

export const sdk = new NodeSDK({
  serviceName: 'payments',
  logRecordProcessors: [new AuditLogRecordProcessor()],
});
sdk.start();

// Kubernetes stops a pod with SIGTERM: deliver what is left (what cannot be delivered in time
// stays in the spool, and the next start delivers it).
process.once('SIGTERM', () => {
  void sdk.shutdown().finally(() => process.exit(0));
});
