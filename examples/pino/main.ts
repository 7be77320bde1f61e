// SPDX-License-Identifier: Apache-2.0
/*
 * pino → OpenTelemetry → Kubernaut DataStorage.
 *
 * An application that logs with pino sends audit events with no new API: NodeSDK with
 * @opentelemetry/instrumentation-pino forwards pino lines to the OTel Logs SDK, and
 * AuditLogRecordProcessor picks out the lines that carry `audit.event.category` and delivers
 * them durably. A logging bridge cannot set the record's eventName, so the event type goes in
 * `audit.event.type`, and event_data in `audit.event.data` (the message stays the log body).
 *
 *   KUBERNAUT_AUDIT_ENDPOINT=http://datastorage:8080 node --conditions=@kubernaut/source examples/pino/main.ts
 *
 * Without KUBERNAUT_AUDIT_ENDPOINT the example starts the reference DataStorage on embedded
 * PGlite and reads the events back.
 */
import { createRequire } from 'node:module';
import { startDataStorageServer } from '@kubernaut/datastorage-server';
import {
  AuditLogRecordProcessor,
  excludeAuditRecords,
  KubernautAuditExporter,
} from '@kubernaut/exporter-kubernaut-audit';
import { PinoInstrumentation } from '@opentelemetry/instrumentation-pino';
import { BatchLogRecordProcessor, ConsoleLogRecordExporter } from '@opentelemetry/sdk-logs';
import { NodeSDK } from '@opentelemetry/sdk-node';

process.env.OTEL_TRACES_EXPORTER ??= 'none';
process.env.OTEL_METRICS_EXPORTER ??= 'none';

const server = process.env.KUBERNAUT_AUDIT_ENDPOINT
  ? undefined
  : await startDataStorageServer({ port: 0, storage: { kind: 'pglite' }, quiet: true });
const url = process.env.KUBERNAUT_AUDIT_ENDPOINT ?? (server?.url as string);

// Spool directory, batching and limits come from the environment (KUBERNAUT_AUDIT_SPOOL_DIR, OTEL_BLRP_*).
const audit = new AuditLogRecordProcessor({ exporter: new KubernautAuditExporter({ url }) });
const sdk = new NodeSDK({
  logRecordProcessors: [
    // Ordinary log lines go wherever they went before; audit lines stay out of that pipeline.
    excludeAuditRecords(new BatchLogRecordProcessor({ exporter: new ConsoleLogRecordExporter() })),
    audit,
  ],
  instrumentations: [new PinoInstrumentation()],
});
sdk.start();

// pino is loaded after sdk.start() so that the instrumentation can patch it.
const pino = createRequire(import.meta.url)('pino') as typeof import('pino').default;
const logger = pino({ name: 'payments' }, pino.destination({ dest: 1, sync: true }));

// Flush what is left on SIGTERM (Kubernetes stop): what cannot be delivered in time stays in
// the spool, and the next start of the process delivers it.
process.once('SIGTERM', () => {
  void sdk.shutdown().finally(() => process.exit(0));
});

const correlationId = `pino-example-${Date.now()}`;
for (const [i, outcome] of ['success', 'success', 'failure'].entries()) {
  logger.info(
    {
      'audit.event.category': 'gateway',
      'audit.event.type': 'gateway.signal.received',
      'audit.event.action': 'received',
      'audit.event.outcome': outcome,
      'audit.correlation.id': correlationId,
      'audit.resource.type': 'Signal',
      'audit.resource.id': `signal-${i}`,
      'audit.event.data': {
        signal_type: 'alert',
        signal_name: 'HighMemoryUsage',
        namespace: 'payment',
        fingerprint: `fp-${i}`,
      },
    },
    'signal received',
  );
}
logger.info({ route: '/healthz' }, 'an ordinary log line (not audit)');

// pino hands lines to OpenTelemetry through a stream: let it drain, then flush to DataStorage.
await new Promise((resolve) => setImmediate(resolve));
await audit.forceFlush({ timeoutMillis: 30_000 });
console.error(`delivered the audit lines of correlation ${correlationId} to ${url}`);
if (server) {
  const res = await fetch(`${server.url}/api/v1/audit/events?correlation_id=${correlationId}`);
  const body = (await res.json()) as { pagination: { total: number } };
  console.error(`DataStorage holds ${body.pagination.total} events for ${correlationId}`);
}
await sdk.shutdown();
await server?.close();
