// SPDX-License-Identifier: Apache-2.0
/* select/: is it an audit record? (invariant in ./select.ts) */
export { hasPlainPrototype, ownAttributes } from './attributes.ts';
export { excludeAuditRecords } from './exclude.ts';
export { isAuditRecord } from './select.ts';
