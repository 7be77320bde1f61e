// SPDX-License-Identifier: Apache-2.0
/**
 * `@kubernaut/exporter-kubernaut-audit/logging`: small adapters for logging libraries bridged
 * into OpenTelemetry, so that audit lines reach `AuditLogRecordProcessor` through the library's
 * OpenTelemetry bridge and stay out of the application's ordinary log output. Each one also
 * tells the processor's setup check that the library logged audit lines, so that a bridge that
 * does not work is reported (a diag warning) instead of losing the lines silently.
 *
 * - pino: `excludeAuditLines(destination)`, a destination wrapper;
 * - winston: `excludeAuditFormat()`, a format for the ordinary transports;
 * - bunyan: `excludeAuditStream(stream)`, a raw stream beside `OpenTelemetryBunyanStream`.
 *
 * None depends on its library: they use the libraries' documented extension points only.
 * @packageDocumentation
 */
export { type BunyanRawStreamLike, excludeAuditStream, type TextStreamLike } from './bunyan.ts';
export { excludeAuditLines, type PinoDestinationLike } from './pino.ts';
export { excludeAuditFormat, type WinstonFormatLike } from './winston.ts';
