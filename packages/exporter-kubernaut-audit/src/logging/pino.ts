// SPDX-License-Identifier: Apache-2.0
/*
 * pino: keeps audit lines out of a destination (stdout, a file, a transport) while
 * `@opentelemetry/instrumentation-pino` still hands them to OpenTelemetry.
 *
 * The instrumentation tees every line of a logger into its OpenTelemetry stream and the
 * logger's own destination. The wrapper returned here is a pino "metadata" destination: pino
 * (and pino's multistream, which the instrumentation uses) sets `lastObj`, the object of the log
 * call, on it before each write, so a line whose object carries `audit.event.category` is
 * dropped without parsing it. Every other property and method is the destination's own.
 */
import { hasAuditFields } from './audit-fields.ts';
import { noteAuditLine } from './sightings.ts';

const PINO_METADATA = Symbol.for('pino.metadata');

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
    if (hasAuditFields(lastObj)) {
      lastObj = undefined;
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
