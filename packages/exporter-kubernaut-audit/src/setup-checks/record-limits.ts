// SPDX-License-Identifier: Apache-2.0
/*
 * A LoggerProvider's attribute limits apply to audit records too: NodeSDK takes them from
 * OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT and OTEL_ATTRIBUTE_COUNT_LIMIT, often set to keep spans
 * small. The SDK then cuts or drops audit attributes before the processor sees them, and the
 * mapping rejects what it cannot trust (map/sdk-limits.ts). Say so once per process, at the
 * first audit record made under such limits, with what to change, before the rejections do.
 */

import { recordLimitsOf } from '../map/sdk-limits.ts';
import type { ComponentDiag } from '../measure/diag.ts';

/** The SDK's default attribute count limit. */
const DEFAULT_COUNT_LIMIT = 128;

let warned = false;

/** Warns once when a record was made under a value length limit or a lowered count limit. Never throws. */
export function checkRecordLimits(record: object, diag: ComponentDiag): boolean {
  if (warned) return false;
  try {
    const limits = recordLimitsOf(record);
    if (limits === undefined) return false;
    const cut = limits.valueLength !== undefined;
    const fewer = limits.count !== undefined && limits.count < DEFAULT_COUNT_LIMIT;
    if (!cut && !fewer) return false;
    warned = true;
    const which = [
      cut ? `attributeValueLengthLimit ${limits.valueLength}` : '',
      fewer ? `attributeCountLimit ${limits.count}` : '',
    ]
      .filter(Boolean)
      .join(', ');
    diag.warn(
      `the LoggerProvider's logRecordLimits (${which}; NodeSDK takes them from OTEL_LOGRECORD_ATTRIBUTE_* or OTEL_ATTRIBUTE_*) apply to audit records: the SDK cuts or drops their attributes before the processor sees them. An audit record that reaches a limit is rejected (reason attribute_truncated or attributes_dropped), never delivered altered. Carry event_data in the record's body (never cut), and give logs limits that audit attributes do not reach (OTEL_LOGRECORD_ATTRIBUTE_VALUE_LENGTH_LIMIT and OTEL_LOGRECORD_ATTRIBUTE_COUNT_LIMIT override the OTEL_ATTRIBUTE_* ones for logs only)`,
    );
    return true;
  } catch {
    return false;
  }
}

/** Test support. */
export function resetRecordLimitsCheck(): void {
  warned = false;
}
