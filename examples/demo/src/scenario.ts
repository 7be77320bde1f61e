// SPDX-License-Identifier: Apache-2.0
/*
 * Realistic remediations across several Kubernaut services' event types. Each step is one audit
 * event: which service emits it, its event type, category, action, outcome and payload (shaped
 * after the payload schemas of the DataStorage spec).
 */

export interface AuditStep {
  service: string;
  eventType: string;
  category: string;
  action: string;
  outcome: 'success' | 'failure' | 'pending';
  resourceType: string;
  resourceId: string;
  data: Record<string, unknown>;
}

const ALERTS = [
  'HighMemoryUsage',
  'PodCrashLooping',
  'HighLatencyP99',
  'DiskPressure',
  'CertExpiring',
];
const NAMESPACES = ['payment', 'checkout', 'search', 'identity'];
const WORKFLOWS = ['restart-deployment', 'scale-out', 'rollback-release', 'rotate-certificate'];

/** The audit trail of one remediation, in the order the services emit it. */
export function remediation(index: number): { correlationId: string; steps: AuditStep[] } {
  const alert = ALERTS[index % ALERTS.length]!;
  const namespace = NAMESPACES[index % NAMESPACES.length]!;
  const workflow = WORKFLOWS[index % WORKFLOWS.length]!;
  const fingerprint = `fp-${(index * 2654435761).toString(16).slice(-8)}`;
  const rr = `rr-${namespace}-${alert.toLowerCase()}-${String(index).padStart(4, '0')}`;
  const failed = index % 7 === 6; // some remediations fail, as in real life
  const steps: AuditStep[] = [
    {
      service: 'gateway',
      eventType: 'gateway.signal.received',
      category: 'gateway',
      action: 'received',
      outcome: 'success',
      resourceType: 'Signal',
      resourceId: fingerprint,
      data: {
        signal_type: 'alert',
        signal_name: alert,
        namespace,
        fingerprint,
        severity: 'warning',
        resource_kind: 'Deployment',
        resource_name: `${namespace}-api`,
      },
    },
    {
      service: 'signalprocessing',
      eventType: 'signalprocessing.classification.decision',
      category: 'signalprocessing',
      action: 'classified',
      outcome: 'success',
      resourceType: 'SignalProcessing',
      resourceId: `sp-${rr}`,
      data: {
        phase: 'Classifying',
        signal: alert,
        severity: 'high',
        environment: 'production',
        priority: 'P1',
        determination_source: 'rego-policy',
      },
    },
    {
      service: 'aianalysis',
      eventType: 'aianalysis.rego.evaluation',
      category: 'analysis',
      action: 'evaluated',
      outcome: 'success',
      resourceType: 'AIAnalysis',
      resourceId: `ai-${rr}`,
      data: {
        outcome: 'approved',
        degraded: false,
        duration_ms: 12 + (index % 30),
        reason: 'policy',
      },
    },
    {
      service: 'workflowexecution',
      eventType: 'workflowexecution.workflow.started',
      category: 'workflowexecution',
      action: 'started',
      outcome: 'pending',
      resourceType: 'WorkflowExecution',
      resourceId: `we-${rr}`,
      data: {
        workflow_id: workflow,
        workflow_version: 'v1.4.0',
        target_resource: `${namespace}/deployment/${namespace}-api`,
        phase: 'Running',
        container_image: `ghcr.io/kubernaut/workflows/${workflow}:1.4.0`,
        execution_name: `we-${rr}`,
      },
    },
    {
      service: 'workflowexecution',
      eventType: failed
        ? 'workflowexecution.workflow.failed'
        : 'workflowexecution.workflow.completed',
      category: 'workflowexecution',
      action: failed ? 'failed' : 'completed',
      outcome: failed ? 'failure' : 'success',
      resourceType: 'WorkflowExecution',
      resourceId: `we-${rr}`,
      data: {
        workflow_id: workflow,
        workflow_version: 'v1.4.0',
        target_resource: `${namespace}/deployment/${namespace}-api`,
        phase: failed ? 'Failed' : 'Completed',
        container_image: `ghcr.io/kubernaut/workflows/${workflow}:1.4.0`,
        execution_name: `we-${rr}`,
        ...(failed ? { failure_reason: 'DeadlineExceeded' } : {}),
      },
    },
    {
      service: 'notification',
      eventType: 'notification.message.sent',
      category: 'notification',
      action: 'sent',
      outcome: 'success',
      resourceType: 'NotificationRequest',
      resourceId: `nr-${rr}`,
      data: {
        notification_id: `nr-${rr}`,
        channel: 'slack',
        subject: `${alert} in ${namespace}`,
        body: failed ? 'Remediation failed; manual review needed' : 'Remediation completed',
        priority: 'high',
        type: 'status-update',
      },
    },
    {
      service: 'remediationorchestrator',
      eventType: failed ? 'orchestrator.lifecycle.failed' : 'orchestrator.lifecycle.completed',
      category: 'orchestration',
      action: failed ? 'failed' : 'completed',
      outcome: failed ? 'failure' : 'success',
      resourceType: 'RemediationRequest',
      resourceId: rr,
      data: {
        rr_name: rr,
        namespace,
        outcome: failed ? 'Failed' : 'Success',
        ...(failed ? { failure_phase: 'WorkflowExecution', failure_reason: 'Timeout' } : {}),
      },
    },
  ];
  return { correlationId: rr, steps };
}
