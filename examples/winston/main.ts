// SPDX-License-Identifier: Apache-2.0
/*
 * A service that logs with winston and records audit events with the same logger: a log call
 * whose metadata carries `audit.event.category` is an audit event. The OpenTelemetry transport
 * that @opentelemetry/instrumentation-winston adds hands it to AuditLogRecordProcessor, which
 * delivers it to DataStorage; `excludeAuditFormat()` on the Console transport keeps it out of
 * the service's own log output.
 *
 *   KUBERNAUT_AUDIT_ENDPOINT=http://127.0.0.1:8080 node --import ./telemetry.ts main.ts
 */
import { excludeAuditFormat } from '@kubernaut/exporter-kubernaut-audit/logging';
import winston from 'winston';
import { sdk } from './telemetry.ts';

const logger = winston.createLogger({
  level: 'info',
  transports: [
    new winston.transports.Console({
      format: winston.format.combine(excludeAuditFormat(), winston.format.json()),
    }),
  ],
});

const correlationId = process.env.CORRELATION_ID ?? `rr-winston-${Date.now()}`;
logger.info('service started', { route: '/healthz' });
for (const [i, outcome] of ['success', 'success', 'failure'].entries()) {
  logger.info('signal received', {
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
  });
}
logger.info('three signals recorded', { correlationId });

// A short-lived program: deliver before exiting (a server would do this on SIGTERM only).
await sdk.shutdown();
