// SPDX-License-Identifier: Apache-2.0
/*
 * bunyan: a raw stream that writes a logger's records as JSON lines to a stream (stdout, a
 * file) except audit records, beside the OpenTelemetry stream that carries them
 * (`OpenTelemetryBunyanStream` of `@opentelemetry/instrumentation-bunyan`, which works with every
 * bunyan version when added as a raw stream; the instrumentation's automatic patching covers
 * bunyan 1.x only). Lines are written as bunyan writes them: one JSON object and a newline, with
 * circular references replaced by "[Circular]" and BigInts by their decimal digits.
 *
 * Invariant: `write` never throws into the logging call and writes one line per ordinary record.
 * A record JSON cannot serialize (a toJSON or getter that throws, a Proxy, nesting deeper than
 * the stack) is written as its readable top-level strings, numbers and booleans plus
 * `serialization_error` (as bunyan's own streams write a placeholder), never dropped.
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
      stream.write(`${toJsonLine(record)}\n`);
    },
  };
}

/** `record` as one line of JSON; a record JSON cannot serialize as what can be read of it. */
function toJsonLine(record: object): string {
  try {
    return JSON.stringify(record, safeReplacer());
  } catch (err) {
    return JSON.stringify({ ...readableScalars(record), serialization_error: errorMessage(err) });
  }
}

function safeReplacer(): (this: unknown, key: string, value: unknown) => unknown {
  const seen = new WeakSet<object>();
  return (_key, value) => {
    if (typeof value === 'bigint') return value.toString();
    if (value !== null && typeof value === 'object') {
      if (seen.has(value)) return '[Circular]';
      seen.add(value);
    }
    return value;
  };
}

/** The top-level string, number and boolean fields of `record` that can be read. */
function readableScalars(record: object): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  let keys: string[];
  try {
    keys = Object.keys(record);
  } catch {
    return out;
  }
  for (const key of keys) {
    try {
      const value = (record as Record<string, unknown>)[key];
      if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') {
        out[key] = value;
      } else if (value instanceof Date) {
        out[key] = Number.isNaN(value.getTime()) ? null : value.toISOString();
      }
    } catch {
      // a getter or Proxy trap that throws: the field is left out
    }
  }
  return out;
}

function errorMessage(err: unknown): string {
  try {
    return err instanceof Error ? err.message : String(err);
  } catch {
    return 'unserializable record';
  }
}
