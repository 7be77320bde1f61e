// SPDX-License-Identifier: Apache-2.0
/* Mapping of OTel log records onto DataStorage AuditEventRequests (DESIGN §4). */
export {
  type EventDataResult,
  isPlainMap,
  MAX_EVENT_DATA_JSON_STRING_LENGTH,
} from './event-data.ts';
export { isAuditRecord, type MapOptions, type MapResult, mapLogRecord } from './map.ts';
export { formatHrTime } from './timestamp.ts';
