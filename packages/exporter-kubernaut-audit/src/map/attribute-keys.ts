// SPDX-License-Identifier: Apache-2.0
/*
 * The record attributes the mapping reads, in one place: map.ts reads them, sdk-limits.ts checks
 * them for values the SDK's length limit may have cut. A key added to the mapping is added here,
 * and so is checked.
 *
 * Invariant: constants only.
 */
import {
  ATTR_AUDIT_ACTOR_ID,
  ATTR_AUDIT_ACTOR_TYPE,
  ATTR_AUDIT_CORRELATION_ID,
  ATTR_AUDIT_EVENT_ACTION,
  ATTR_AUDIT_EVENT_CATEGORY,
  ATTR_AUDIT_EVENT_OUTCOME,
  ATTR_AUDIT_EVENT_TYPE,
  ATTR_AUDIT_PARENT_EVENT_ID,
  ATTR_AUDIT_RESOURCE_ID,
  ATTR_AUDIT_RESOURCE_TYPE,
  ATTR_AUDIT_SEVERITY,
} from '@kubernaut/audit-semantic-conventions';

// Attributes borrowed from the OTel semantic conventions (k8s.* are still incubating there).
export const ATTR_CLIENT_ADDRESS = 'client.address';
export const ATTR_K8S_NAMESPACE_NAME = 'k8s.namespace.name';
export const ATTR_K8S_CLUSTER_UID = 'k8s.cluster.uid';
export const ATTR_ERROR_TYPE = 'error.type';
export const ATTR_EXCEPTION_MESSAGE = 'exception.message';
export const ATTR_SERVICE_NAME = 'service.name';

/**
 * The string-valued record attributes the mapping reads (`audit.event.data` apart: it is a map,
 * checked inside). Resource attributes are not here: the SDK's limits do not apply to them.
 */
export const MAPPED_STRING_ATTRIBUTES: readonly string[] = [
  ATTR_AUDIT_EVENT_TYPE,
  ATTR_AUDIT_EVENT_CATEGORY,
  ATTR_AUDIT_EVENT_ACTION,
  ATTR_AUDIT_EVENT_OUTCOME,
  ATTR_AUDIT_CORRELATION_ID,
  ATTR_AUDIT_ACTOR_TYPE,
  ATTR_AUDIT_ACTOR_ID,
  ATTR_CLIENT_ADDRESS,
  ATTR_AUDIT_RESOURCE_TYPE,
  ATTR_AUDIT_RESOURCE_ID,
  ATTR_AUDIT_PARENT_EVENT_ID,
  ATTR_AUDIT_SEVERITY,
  ATTR_ERROR_TYPE,
  ATTR_EXCEPTION_MESSAGE,
  ATTR_K8S_NAMESPACE_NAME,
  ATTR_K8S_CLUSTER_UID,
];
