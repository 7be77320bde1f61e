// SPDX-License-Identifier: Apache-2.0
/*
 * Without `service.name`, the SDK names the service `unknown_service:<path to node>`, and audit
 * events that do not set `audit.actor.id` are attributed to that (DataStorage's `actor_id`). An
 * auditor cannot tell services apart by it: warn once per process, with how to set it.
 */
import { ATTR_AUDIT_ACTOR_ID, ATTR_AUDIT_ACTOR_TYPE } from '@kubernaut/audit-semantic-conventions';
import type { ComponentDiag } from '../measure/diag.ts';
import { ownAttributes } from '../select/index.ts';

/** What the check reads of a log record. */
export interface RecordWithResource {
  attributes: Readonly<Record<string, unknown>>;
  resource?: { attributes: Readonly<Record<string, unknown>> };
}

let warned = false;
/** Resources whose service.name was seen to be set: their records are not looked at again. */
const named = new WeakSet<object>();
/** The last of them (one provider's records share one resource): one comparison per record. */
let lastNamed: object | undefined;
/** Resources waited for (their detectors had not settled at their first record). */
const settling = new WeakSet<object>();

/**
 * Warns once when an audit record's actor id would default to an `unknown_service:` service
 * name. Returns whether it warned now. Cheap after the first record of a resource. Never throws.
 */
export function checkServiceName(record: RecordWithResource, diag: ComponentDiag): boolean {
  if (warned) return false;
  try {
    const resource = record.resource;
    if (resource !== undefined && (resource === lastNamed || named.has(resource))) {
      lastNamed = resource;
      return false;
    }
    // A resource whose detectors have not settled is not read now (OTel reports every such
    // read, and emit() must never wait on it): the record is looked at once it settles.
    const pending = resource as
      | { asyncAttributesPending?: boolean; waitForAsyncAttributes?: () => Promise<void> }
      | undefined;
    if (pending?.asyncAttributesPending) {
      if (resource !== undefined && !settling.has(resource)) {
        settling.add(resource);
        pending.waitForAsyncAttributes?.().then(
          () => checkServiceName(record, diag),
          () => undefined,
        );
      }
      return false;
    }
    const name = resource?.attributes['service.name'];
    if (typeof name === 'string' && !name.startsWith('unknown_service')) {
      if (resource !== undefined) named.add(resource);
      return false;
    }
    if (typeof name !== 'string') return false;
    const attrs = ownAttributes(record.attributes);
    if (attrs[ATTR_AUDIT_ACTOR_ID] !== undefined) return false;
    const actorType = attrs[ATTR_AUDIT_ACTOR_TYPE];
    if (actorType !== undefined && actorType !== 'service') return false;
    warned = true;
    diag.warn(
      `service.name is not set: audit events without audit.actor.id are attributed to actor_id "${name}". Set OTEL_SERVICE_NAME (or the resource's service.name, e.g. new NodeSDK({ serviceName: '...' }))`,
    );
    return true;
  } catch {
    return false;
  }
}

/** Test support. */
export function resetServiceNameCheck(): void {
  warned = false;
}
