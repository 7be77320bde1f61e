// SPDX-License-Identifier: Apache-2.0
/*
 * A small OTel SDK "application" for bridge tests: a real LoggerProvider whose
 * BatchLogRecordProcessor exports through a real OTLP/HTTP log exporter (JSON or protobuf),
 * with the export results recorded so tests can assert what the exporter was told.
 */
import type { LogRecord } from '@opentelemetry/api';
import { type ExportResult, ExportResultCode } from '@opentelemetry/core';
import { OTLPLogExporter as OtlpJsonExporter } from '@opentelemetry/exporter-logs-otlp-http';
import { OTLPLogExporter as OtlpProtoExporter } from '@opentelemetry/exporter-logs-otlp-proto';
import type { Resource } from '@opentelemetry/resources';
import {
  BatchLogRecordProcessor,
  LoggerProvider,
  type LogRecordExporter,
  type ReadableLogRecord,
} from '@opentelemetry/sdk-logs';

export type AppEncoding = 'json' | 'protobuf';

export interface SdkApp {
  emit(record: LogRecord): void;
  /** Export results the OTLP exporter reported, in order. */
  results: ExportResult[];
  /** forceFlush: resolves once the exporter has the bridge's answer. */
  flush(): Promise<void>;
  shutdown(): Promise<void>;
}

export function startSdkApp(options: {
  url: string;
  encoding: AppEncoding;
  resource: Resource;
  gzip?: boolean;
  headers?: Record<string, string>;
  /** The LoggerProvider's attribute limits (the SDK's defaults when absent). */
  logRecordLimits?: { attributeCountLimit?: number; attributeValueLengthLimit?: number };
}): SdkApp {
  const exporterOptions = {
    url: `${options.url}/v1/logs`,
    ...(options.gzip && { compression: 'gzip' as never }),
    ...(options.headers && { headers: options.headers }),
  };
  const inner: LogRecordExporter =
    options.encoding === 'json'
      ? new OtlpJsonExporter(exporterOptions)
      : new OtlpProtoExporter(exporterOptions);
  const results: ExportResult[] = [];
  const recording: LogRecordExporter = {
    export(records: ReadableLogRecord[], done: (r: ExportResult) => void) {
      inner.export(records, (result) => {
        results.push(result);
        done(result);
      });
    },
    forceFlush: () => inner.forceFlush?.() ?? Promise.resolve(),
    shutdown: () => inner.shutdown(),
  };
  const provider = new LoggerProvider({
    resource: options.resource,
    ...(options.logRecordLimits && { logRecordLimits: options.logRecordLimits }),
    processors: [
      new BatchLogRecordProcessor({ exporter: recording, scheduledDelayMillis: 60_000 }),
    ],
  });
  const logger = provider.getLogger('bridge-test-app', '0.1.0');
  return {
    emit: (record) => logger.emit(record),
    results,
    flush: () => provider.forceFlush(),
    shutdown: () => provider.shutdown(),
  };
}

export const SUCCESS = ExportResultCode.SUCCESS;
