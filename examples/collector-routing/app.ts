// SPDX-License-Identifier: Apache-2.0
/*
 * An application that knows nothing about Kubernaut: NodeSDK configured by the standard OTel
 * environment variables only, emitting ordinary logs and audit records through the `logs` API
 * of @opentelemetry/api. The OTel Collector (otel-collector.yaml) routes the audit records to
 * the audit OTLP bridge and everything else to the normal logs pipeline.
 *
 *   OTEL_SERVICE_NAME=payments-gateway \
 *   OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4318 \
 *   OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf \
 *   OTEL_TRACES_EXPORTER=none OTEL_METRICS_EXPORTER=none \
 *   node --conditions=@kubernaut/source examples/collector-routing/app.ts
 *
 * Emit through `logs` of `@opentelemetry/api`: under SDK 3.x, `@opentelemetry/api-logs` is a
 * separate global and emitting through it is a silent no-op.
 */
import { randomUUID } from 'node:crypto';
import {
  ATTR_AUDIT_CORRELATION_ID,
  ATTR_AUDIT_EVENT_ACTION,
  ATTR_AUDIT_EVENT_CATEGORY,
  ATTR_AUDIT_EVENT_OUTCOME,
  ATTR_AUDIT_RESOURCE_ID,
  ATTR_AUDIT_RESOURCE_TYPE,
} from '@kubernaut/audit-semantic-conventions';
import { logs, SeverityNumber } from '@opentelemetry/api';
import { NodeSDK } from '@opentelemetry/sdk-node';

const sdk = new NodeSDK();
sdk.start();

const logger = logs.getLogger('payments-gateway', '1.0.0');
const alerts = Number(process.env.APP_ALERTS ?? 3);

for (let i = 0; i < alerts; i++) {
  const correlationId = `rr-${randomUUID()}`;
  // An ordinary log line: goes to the team's normal logs pipeline.
  logger.emit({
    severityNumber: SeverityNumber.INFO,
    severityText: 'INFO',
    body: `alert ${i} received from Alertmanager`,
    attributes: { 'http.route': '/api/v1/signals' },
  });
  // An audit record: carries audit.event.category, so the Collector routes it to the bridge.
  logger.emit({
    eventName: 'gateway.signal.received',
    severityNumber: SeverityNumber.INFO,
    body: {
      signal_type: 'alert',
      signal_name: 'KubePodCrashLooping',
      namespace: 'payments',
      fingerprint: `fp-${i.toString(16).padStart(8, '0')}`,
      severity: 'critical',
      resource_kind: 'Pod',
      resource_name: `payments-api-${i}`,
    },
    attributes: {
      [ATTR_AUDIT_EVENT_CATEGORY]: 'gateway',
      [ATTR_AUDIT_EVENT_ACTION]: 'received',
      [ATTR_AUDIT_EVENT_OUTCOME]: 'success',
      [ATTR_AUDIT_CORRELATION_ID]: correlationId,
      [ATTR_AUDIT_RESOURCE_TYPE]: 'Pod',
      [ATTR_AUDIT_RESOURCE_ID]: `payments/payments-api-${i}`,
      'k8s.namespace.name': 'payments',
    },
  });
}

// Flush before exit: what the SDK still buffers would otherwise be lost.
await sdk.shutdown();
process.stdout.write(`emitted ${alerts} audit records and ${alerts} ordinary log lines\n`);
