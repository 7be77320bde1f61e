// SPDX-License-Identifier: Apache-2.0
/* Enum values of the audit attributes, in the style of @opentelemetry/semantic-conventions. */

/** Gateway signal and CRD lifecycle events. */
export const AUDIT_EVENT_CATEGORY_VALUE_GATEWAY = 'gateway' as const;
/** Notification delivery and escalation events. */
export const AUDIT_EVENT_CATEGORY_VALUE_NOTIFICATION = 'notification' as const;
/** AI analysis, agent calls and rego evaluation events. */
export const AUDIT_EVENT_CATEGORY_VALUE_ANALYSIS = 'analysis' as const;
/** Autonomous tool-calling AI agent events. */
export const AUDIT_EVENT_CATEGORY_VALUE_AIAGENT = 'aiagent' as const;
/** Signal processing service events. */
export const AUDIT_EVENT_CATEGORY_VALUE_SIGNALPROCESSING = 'signalprocessing' as const;
/** Workflow catalog and discovery events. */
export const AUDIT_EVENT_CATEGORY_VALUE_WORKFLOW = 'workflow' as const;
/** Workflow execution lifecycle events. */
export const AUDIT_EVENT_CATEGORY_VALUE_WORKFLOWEXECUTION = 'workflowexecution' as const;
/** Remediation orchestration lifecycle events. */
export const AUDIT_EVENT_CATEGORY_VALUE_ORCHESTRATION = 'orchestration' as const;
/** Remediation approval decision events. */
export const AUDIT_EVENT_CATEGORY_VALUE_APPROVAL = 'approval' as const;
/** Effectiveness assessment and monitoring events. */
export const AUDIT_EVENT_CATEGORY_VALUE_EFFECTIVENESS = 'effectiveness' as const;
/** ActionType taxonomy lifecycle events. */
export const AUDIT_EVENT_CATEGORY_VALUE_ACTIONTYPE = 'actiontype' as const;
/** API frontend triage, session, delegation and user decision events. */
export const AUDIT_EVENT_CATEGORY_VALUE_APIFRONTEND = 'apifrontend' as const;
/** Cross-cutting security control events at the HTTP layer. */
export const AUDIT_EVENT_CATEGORY_VALUE_SECURITY = 'security' as const;
/** AgentSession admission events. */
export const AUDIT_EVENT_CATEGORY_VALUE_AGENTSESSION = 'agentsession' as const;

/** The operation succeeded. */
export const AUDIT_EVENT_OUTCOME_VALUE_SUCCESS = 'success' as const;
/** The operation failed. */
export const AUDIT_EVENT_OUTCOME_VALUE_FAILURE = 'failure' as const;
/** The operation has started and its result is not known yet. */
export const AUDIT_EVENT_OUTCOME_VALUE_PENDING = 'pending' as const;

/** The actor is a service (the default, with the resource's `service.name` as actor id). */
export const AUDIT_ACTOR_TYPE_VALUE_SERVICE = 'service' as const;
/** The actor is a person. */
export const AUDIT_ACTOR_TYPE_VALUE_USER = 'user' as const;
