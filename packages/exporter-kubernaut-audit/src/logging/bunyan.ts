// SPDX-License-Identifier: Apache-2.0
/*
 * bunyan: a raw stream that writes a logger's records as JSON lines to a stream (stdout, a
 * file) except audit records, beside the OpenTelemetry stream that carries them
 * (`OpenTelemetryBunyanStream` of `@opentelemetry/instrumentation-bunyan`, which works with every
 * bunyan version when added as a raw stream; the instrumentation's automatic patching covers
 * bunyan 1.x only). Lines are written as bunyan writes them: one JSON object and a newline, with
 * circular references replaced by "[Circular]".
 */
import { hasAuditFields } from './audit-fields.ts';
import { noteAuditLine } from './sightings.ts';

/** Where the lines go. */
export interface TextStreamLike {
  write(text: string): unknown;
}

/** A bunyan raw stream. */
export interface BunyanRawStreamLike {
  write(record: object): void;
}

/**
 * A bunyan raw stream writing every record except audit records to `stream`:
 *
 * ```ts
 * bunyan.createLogger({ name: 'payments', streams: [
 *   { type: 'raw', stream: excludeAuditStream(process.stdout) },
 *   { type: 'raw', stream: new OpenTelemetryBunyanStream() },
 * ] });
 * ```
 */
export function excludeAuditStream(stream: TextStreamLike): BunyanRawStreamLike {
  return {
    write(record) {
      if (hasAuditFields(record)) {
        noteAuditLine('bunyan');
        return;
      }
      stream.write(`${JSON.stringify(record, circularReplacer())}\n`);
    },
  };
}

function circularReplacer(): (this: unknown, key: string, value: unknown) => unknown {
  const seen = new WeakSet<object>();
  return (_key, value) => {
    if (value !== null && typeof value === 'object') {
      if (seen.has(value)) return '[Circular]';
      seen.add(value);
    }
    return value;
  };
}
