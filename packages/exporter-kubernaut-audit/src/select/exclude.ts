// SPDX-License-Identifier: Apache-2.0
/*
 * excludeAuditRecords: keeps audit records (DESIGN §4) out of another processor, so that
 * audit data — sensitive records above all — stays out of the ordinary log pipeline.
 */
import type { Context } from '@opentelemetry/api';
import type {
  ForceFlushOptions,
  LogRecordProcessor,
  ReadWriteLogRecord,
} from '@opentelemetry/sdk-logs';
import { isAuditRecord } from './select.ts';

type EnabledOptions = Parameters<NonNullable<LogRecordProcessor['enabled']>>[0];

class ExcludeAuditRecordsProcessor implements LogRecordProcessor {
  private readonly _delegate: LogRecordProcessor;

  constructor(delegate: LogRecordProcessor) {
    this._delegate = delegate;
  }

  onEmit(logRecord: ReadWriteLogRecord, context?: Context): void {
    if (isAuditRecord(logRecord)) return;
    this._delegate.onEmit(logRecord, context);
  }

  enabled(options: EnabledOptions): boolean {
    return this._delegate.enabled ? this._delegate.enabled(options) : true;
  }

  forceFlush(options?: ForceFlushOptions): Promise<void> {
    return this._delegate.forceFlush(options);
  }

  shutdown(): Promise<void> {
    return this._delegate.shutdown();
  }
}

/**
 * Wraps `processor` so that it only sees non-audit records; `forceFlush` and `shutdown`
 * are delegated. Use it for every processor that sits beside AuditLogRecordProcessor:
 * `processors: [excludeAuditRecords(otlpProcessor), new AuditLogRecordProcessor()]`.
 */
export function excludeAuditRecords(processor: LogRecordProcessor): LogRecordProcessor {
  return new ExcludeAuditRecordsProcessor(processor);
}
