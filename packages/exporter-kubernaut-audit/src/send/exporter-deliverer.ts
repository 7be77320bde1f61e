// SPDX-License-Identifier: Apache-2.0
/*
 * An AuditDeliverer over a KubernautAuditExporter's own delivery (minimal, until the delivery
 * core's deliverer lands): each event's JSON is handed to the exporter's retrying delivery.
 * Never rejects: a failure leaves the events pending.
 */
import type { AuditEventRequest } from '@kubernaut/datastorage-contract';
import {
  deliverEvents,
  type KubernautAuditExporter,
} from '../exporter/kubernaut-audit-exporter.ts';
import type { AuditDeliverer, EventOutcome } from './types.ts';

export function exporterDeliverer(exporter: KubernautAuditExporter): AuditDeliverer {
  return {
    async deliver(batch, { signal, health }): Promise<EventOutcome[]> {
      try {
        const events: AuditEventRequest[] = [];
        for (let i = 0; i < batch.seqs.length; i++) {
          events.push(JSON.parse(batch.eventJson(i)) as AuditEventRequest);
        }
        const r = await deliverEvents(exporter, events, { signal });
        if (r.outcomes.includes('accepted')) health.accepted(Date.now());
        return r.outcomes;
      } catch {
        return batch.seqs.map(() => 'pending');
      }
    },
  };
}
