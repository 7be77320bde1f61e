// SPDX-License-Identifier: Apache-2.0
/*
 * pino: keeps audit lines out of a destination (stdout, a file, a transport) while
 * `@opentelemetry/instrumentation-pino` still hands them to OpenTelemetry.
 *
 * The instrumentation tees every line of a logger into its OpenTelemetry stream and the
 * logger's own destination. The wrapper returned here is a pino "metadata" destination: pino
 * (and pino's multistream, which the instrumentation uses) sets `lastObj`, the object of the log
 * call, on it before each write, so a line whose object carries `audit.event.category` is
 * dropped without parsing it. A child logger's bindings (`logger.child({ 'audit.event.category':
 * ... })`) are not in `lastObj` but are in the line, where the instrumentation reads them: a line
 * whose text names the key is parsed, and dropped when the key is one of its top-level fields.
 * Every other line is written unparsed. Every other property and method is the destination's own.
 */
import { ATTR_AUDIT_EVENT_CATEGORY } from '@kubernaut/audit-semantic-conventions';
import { hasAuditFields } from './audit-fields.ts';
import { noteAuditLine } from './sightings.ts';

const PINO_METADATA = Symbol.for('pino.metadata');
/** How the key appears in a line where it is a field name (in a string value, its quotes are escaped). */
const KEY_IN_LINE = `"${ATTR_AUDIT_EVENT_CATEGORY}":`;

/** What pino needs of a destination. */
export interface PinoDestinationLike {
  write(line: string): unknown;
}

/**
 * Wraps a pino destination so that audit lines (log calls whose object carries
 * `audit.event.category`) are not written to it:
 *
 * ```ts
 * const logger = pino({ name: 'payments' }, excludeAuditLines(pino.destination(1)));
 * ```
 */
export function excludeAuditLines<D extends PinoDestinationLike>(destination: D): D {
  let lastObj: unknown;
  const write = (line: string): unknown => {
    const obj = lastObj;
    lastObj = undefined;
    if (hasAuditFields(obj) || (typeof line === 'string' && isAuditLine(line))) {
      noteAuditLine('pino');
      return true;
    }
    return destination.write(line);
  };
  return new Proxy(destination, {
    get(target, property) {
      if (property === PINO_METADATA) return true;
      if (property === 'write') return write;
      if (property === 'lastObj') return lastObj;
      const value = Reflect.get(target, property, target) as unknown;
      return typeof value === 'function' ? value.bind(target) : value;
    },
    set(target, property, value) {
      if (property === 'lastObj') {
        lastObj = value;
        return true;
      }
      return Reflect.set(target, property, value, target);
    },
  });
}

/** Whether the JSON line carries `audit.event.category` as a top-level field (a child's binding). */
function isAuditLine(line: string): boolean {
  if (!line.includes(KEY_IN_LINE)) return false;
  try {
    return hasAuditFields(JSON.parse(line) as unknown);
  } catch {
    return false;
  }
}
