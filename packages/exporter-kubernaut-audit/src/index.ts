// Public API of @kubernaut/exporter-kubernaut-audit. Explicit named exports only.
export type { AuditEventRequest, ContractViolation, ViolationReason } from './contract/index.ts';
