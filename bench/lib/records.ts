// SPDX-License-Identifier: Apache-2.0
/*
 * Benchmark audit records: realistic payloads (one event type per category of the upstream
 * spec, from the test kit's payloads), each record carrying the sink's id marker once, in
 * its body (event_data). The same builder feeds every variant of a scenario.
 */

import { readFileSync } from 'node:fs';
import {
  ATTR_AUDIT_ACTOR_ID,
  ATTR_AUDIT_ACTOR_TYPE,
  ATTR_AUDIT_CORRELATION_ID,
  ATTR_AUDIT_DURATION_MS,
  ATTR_AUDIT_EVENT_ACTION,
  ATTR_AUDIT_EVENT_CATEGORY,
  ATTR_AUDIT_EVENT_OUTCOME,
  ATTR_AUDIT_RESOURCE_ID,
  ATTR_AUDIT_RESOURCE_TYPE,
  ATTR_AUDIT_SEVERITY,
} from '@kubernaut/audit-semantic-conventions';
import type { JsonObject } from '@kubernaut/test-kit';
import type { AnyValue, LogRecord } from '@opentelemetry/api';
import { type Resource, resourceFromAttributes } from '@opentelemetry/resources';
import { TEMPLATES_ENV } from './env.ts';
import { recordMarker } from './sink.ts';

interface Template {
  eventType: string;
  category: string;
  action: string;
  data: JsonObject;
}

let templates: Template[] | undefined;

/**
 * Loads the record templates: from the file run.ts wrote (so that scenario processes do not
 * parse the OpenAPI spec, which would add ~40 MB to their RSS), else from the spec.
 * Must be awaited once before auditRecord().
 */
export async function loadTemplates(): Promise<void> {
  if (templates) return;
  const file = process.env[TEMPLATES_ENV];
  templates = file ? (JSON.parse(readFileSync(file, 'utf8')) as Template[]) : await makeTemplates();
}

/** Builds the templates from the upstream spec (the test kit's payloads). */
export async function makeTemplates(): Promise<Template[]> {
  const { realisticPayload, sampleEventTypes } = await import('@kubernaut/test-kit');
  return sampleEventTypes().map((t) => ({
    eventType: t.eventType,
    category: t.category,
    action: (t.eventType.split('.').pop() ?? 'performed').slice(0, 50),
    data: realisticPayload(t.eventType),
  }));
}

function allTemplates(): Template[] {
  if (!templates) throw new Error('loadTemplates() was not awaited');
  return templates;
}

/** The resource every benchmark LoggerProvider uses (the test suite's resource attributes). */
export function benchResource(): Resource {
  return resourceFromAttributes({
    'service.name': 'payments-gateway',
    'k8s.namespace.name': 'payments',
    'k8s.cluster.uid': '0b8f3a52-6c1d-4f7e-9a3b-2c4d5e6f7a8b',
  });
}

export interface RecordOptions {
  /** [`bench-<id mod 64>`] */
  correlationId?: string;
}

/**
 * A fresh LogRecord for `logger.emit()` of @opentelemetry/api: audit attributes, a realistic
 * body for one of 14 event types (cycled by id), and the marker `bnid:<id>;` in the body.
 */
export function auditRecord(id: number, options: RecordOptions = {}): LogRecord {
  const all = allTemplates();
  const t = all[id % all.length] as Template;
  // 15 attributes, as a realistic audit record carries: the audit ones and request context.
  const attributes: Record<string, AnyValue> = {
    [ATTR_AUDIT_EVENT_CATEGORY]: t.category,
    [ATTR_AUDIT_EVENT_ACTION]: t.action,
    [ATTR_AUDIT_EVENT_OUTCOME]: 'success',
    [ATTR_AUDIT_CORRELATION_ID]: options.correlationId ?? `bench-${id % 64}`,
    [ATTR_AUDIT_RESOURCE_TYPE]: 'Deployment',
    [ATTR_AUDIT_RESOURCE_ID]: `payment-api-${id % 17}`,
    [ATTR_AUDIT_SEVERITY]: 'info',
    [ATTR_AUDIT_ACTOR_TYPE]: 'user',
    [ATTR_AUDIT_ACTOR_ID]: `operator-${id % 5}@payments.example`,
    [ATTR_AUDIT_DURATION_MS]: 12 + (id % 90),
    'client.address': `10.42.${id % 7}.${(id % 200) + 10}`,
    'http.request.method': 'POST',
    'http.route': '/api/v1/payments/{id}/refund',
    'user_agent.original': 'payments-cli/3.4.1 (linux; amd64)',
    'k8s.pod.name': `payments-gateway-7d9f8b6c4-${(id % 3) + 1}x2kq`,
  };
  return {
    eventName: t.eventType,
    severityText: 'INFO',
    body: { ...t.data, bn_id: recordMarker(id) } as AnyValue,
    attributes,
  };
}

/** Average JSON size of the payloads (for the notes). */
export function averagePayloadBytes(): number {
  const all = allTemplates();
  return Math.round(all.reduce((s, t) => s + JSON.stringify(t.data).length, 0) / all.length);
}
