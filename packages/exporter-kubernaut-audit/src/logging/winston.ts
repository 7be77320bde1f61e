// SPDX-License-Identifier: Apache-2.0
/*
 * winston: a format that keeps audit records out of a transport (Console, File, ...) while the
 * OpenTelemetry transport that `@opentelemetry/instrumentation-winston` adds still receives
 * them. Put it on the transports whose output must not hold audit data, never on the logger
 * (a logger-level format would drop them for every transport, OpenTelemetry's included).
 */
import { hasAuditFields } from './audit-fields.ts';
import { noteAuditLine } from './sightings.ts';

/** A winston format (the shape `winston.format.combine` and transports take). */
export interface WinstonFormatLike {
  transform<Info extends object>(info: Info, options?: unknown): Info | false;
}

/**
 * A winston format that drops audit records (metadata with `audit.event.category`):
 *
 * ```ts
 * new winston.transports.Console({ format: winston.format.combine(excludeAuditFormat(), winston.format.json()) })
 * ```
 */
export function excludeAuditFormat(): WinstonFormatLike {
  return {
    transform(info) {
      if (hasAuditFields(info)) {
        noteAuditLine('winston');
        return false;
      }
      return info;
    },
  };
}
