// SPDX-License-Identifier: Apache-2.0
/*
 * A service that logs with pino and records audit events with the same logger: a log call whose
 * object carries `audit.event.category` is an audit event. @opentelemetry/instrumentation-pino
 * hands it to OpenTelemetry, where AuditLogRecordProcessor delivers it to DataStorage;
 * `excludeAuditLines` keeps it out of the service's own log output (stdout here).
 *
 *   KUBERNAUT_AUDIT_ENDPOINT=http://127.0.0.1:8080 node --import ./telemetry.ts main.ts
 */
import { excludeAuditLines } from '@kubernaut/exporter-kubernaut-audit/logging';
import pino from 'pino';
import { sdk } from './telemetry.ts';

const logger = pino(
  { name: 'payments' },
  excludeAuditLines(pino.destination({ dest: 1, sync: true })),
);

const correlationId = process.env.CORRELATION_ID ?? `rr-pino-${Date.now()}`;
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
      // event_data: the log message stays the body, so the payload travels as an attribute
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
