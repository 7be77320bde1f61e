// SPDX-License-Identifier: Apache-2.0
/*
 * A service that logs with bunyan (2.x) and records audit events with the same logger: a log
 * call whose fields carry `audit.event.category` is an audit event. The logger has two raw
 * streams: OpenTelemetry's (it hands every record to the SDK, where AuditLogRecordProcessor
 * delivers the audit ones to DataStorage) and stdout through `excludeAuditStream`, which writes
 * every other record as bunyan does and keeps the audit ones out.
 *
 *   KUBERNAUT_AUDIT_ENDPOINT=http://127.0.0.1:8080 node --import ./telemetry.ts main.ts
 */
import { excludeAuditStream } from '@kubernaut/exporter-kubernaut-audit/logging';
import { OpenTelemetryBunyanStream } from '@opentelemetry/instrumentation-bunyan';
import bunyan from 'bunyan';
import { sdk } from './telemetry.ts';

const logger = bunyan.createLogger({
  name: 'payments',
  streams: [
    { type: 'raw', level: 'info', stream: excludeAuditStream(process.stdout) },
    { type: 'raw', level: 'info', stream: new OpenTelemetryBunyanStream() },
  ],
});

const correlationId = process.env.CORRELATION_ID ?? `rr-bunyan-${Date.now()}`;
logger.info({ route: '/healthz' }, 'service started');
for (const [i, outcome] of ['success', 'success', 'failure'].entries()) {
  logger.info(
    {
      'otel.event.name': 'gateway.signal.received', // the DataStorage event type
      'audit.event.category': 'gateway',
      'audit.event.action': 'received',
      'audit.event.outcome': outcome,
      'audit.correlation.id': correlationId,
      'audit.resource.type': 'Signal',
      'audit.resource.id': `signal-${i}`,
      // event_data: the message stays the body, so the payload travels as an attribute
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
logger.info({ correlationId }, 'three signals recorded');

// A short-lived program: deliver before exiting (a server would do this on SIGTERM only).
await sdk.shutdown();
