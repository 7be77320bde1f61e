// SPDX-License-Identifier: Apache-2.0
/*
 * pino: keeps audit lines out of a destination (stdout, a file, a transport) while
 * `@opentelemetry/instrumentation-pino` still hands them to OpenTelemetry.
 *
 * The instrumentation tees every line of a logger into its OpenTelemetry stream and the
 * logger's own destination; its stream parses the JSON line and makes the line's top-level
 * fields the record's attributes. The processor takes the record when `audit.event.category` is
 * one of them, with a value (../select/select.ts). So the line decides, never the object of the
 * log call: a line whose text names the key is parsed, and dropped when the key is one of its
 * top-level fields with a value that is not null. That covers a child logger's bindings (in the
 * line, not in the call's object), pino's `nestedKey` and a `formatters.log` that nests the
 * call's fields (then the category is not a top-level field: the processor does not take the
 * record, and the line is written here), and values pino serialises (a BigInt as its digits, a
 * Date as its ISO string, an invalid Date as null). Every other line is written unparsed.
 *
 * The wrapper is a pino "metadata" destination: pino (and pino's multistream, which the
 * instrumentation uses) sets `lastObj`, the object of the log call, on it before each write.
 * It is used only to tell the application what went wrong, through diag (rate-limited):
 * - the object carried `audit.event.category` but the line does not (nestedKey, a formatter, an
 *   invalid Date): the call is no audit record and its line stays in the ordinary output;
 * - an audit record's fields hold a BigInt (pino writes its digits, which reach the processor
 *   as a JSON number, beyond 2^53 not exactly) or an invalid Date (written as null). On the
 *   Logs API path the processor refuses both as violations (`invalid_type`); pino's line cannot
 *   carry them, so they are reported here. Pass such values as strings.
 * Every other property and method is the destination's own.
 */
import { ATTR_AUDIT_EVENT_CATEGORY } from '@kubernaut/audit-semantic-conventions';
import { ComponentDiag } from '../measure/diag.ts';
import { noteAuditLine } from './sightings.ts';

const PINO_METADATA = Symbol.for('pino.metadata');
/** How the key appears in a line where it is a field name (in a string value, its quotes are escaped). */
const KEY_IN_LINE = `"${ATTR_AUDIT_EVENT_CATEGORY}":`;

const diag = new ComponentDiag('kubernaut-audit logging');

/** What pino needs of a destination. */
export interface PinoDestinationLike {
  write(line: string): unknown;
}

/**
 * Wraps a pino destination so that audit lines (lines that carry `audit.event.category` as a
 * top-level field with a value: the records the processor takes) are not written to it:
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
    if (typeof line === 'string' && isAuditLine(line)) {
      noteAuditLine('pino');
      if (obj !== undefined) reportUncarriedValues(obj);
      return true;
    }
    if (namesCategory(obj)) {
      diag.report(
        'warn',
        'pino-category-not-in-line',
        `pino logged a call whose object carries ${ATTR_AUDIT_EVENT_CATEGORY}, but its line does not carry it as a top-level field with a value (pino's nestedKey or a formatters.log nested the call's fields, or the value was written as null, e.g. an invalid Date): @opentelemetry/instrumentation-pino hands the line to OpenTelemetry as it is, so it is not an audit record and is written to the ordinary output. Bind the audit fields on a child logger (pino never nests bindings) or log audit records with a logger without nestedKey`,
      );
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

/**
 * Whether the JSON line carries `audit.event.category` as a top-level field with a value that is
 * not null: what the processor selects once the instrumentation has made the line a record.
 */
function isAuditLine(line: string): boolean {
  if (!line.includes(KEY_IN_LINE)) return false;
  try {
    const fields = JSON.parse(line) as unknown;
    if (fields === null || typeof fields !== 'object' || Array.isArray(fields)) return false;
    const v = (fields as Record<string, unknown>)[ATTR_AUDIT_EVENT_CATEGORY];
    return v !== undefined && v !== null;
  } catch {
    return false; // the instrumentation cannot parse it either: it makes no record of it
  }
}

/** Whether the call's object names a category pino would write (for the diag report only). */
function namesCategory(obj: unknown): boolean {
  if (obj === null || typeof obj !== 'object') return false;
  try {
    const v = (obj as Record<string, unknown>)[ATTR_AUDIT_EVENT_CATEGORY];
    return v !== undefined && v !== null && typeof v !== 'symbol' && typeof v !== 'function';
  } catch {
    return false;
  }
}

/** Members of the audit fields looked at for values pino's line cannot carry, per line. */
const VALUE_CHECK_BUDGET = 1_000;
const VALUE_CHECK_DEPTH = 12;

/**
 * Reports (diag, rate-limited) the first BigInt or invalid Date in the call's `audit.*` fields:
 * pino's line carries them as a number and as null, where the Logs API path refuses them.
 * Bounded (members and depth), never throws.
 */
function reportUncarriedValues(obj: unknown): void {
  if (obj === null || typeof obj !== 'object') return;
  try {
    const budget = { left: VALUE_CHECK_BUDGET };
    for (const key of Object.keys(obj)) {
      if (!key.startsWith('audit.')) continue;
      const found = findUncarried((obj as Record<string, unknown>)[key], 0, budget);
      if (found === undefined) continue;
      const path = key + found.steps.reverse().join('');
      diag.report(
        'warn',
        `pino-${found.what}:${key}`,
        found.what === 'bigint'
          ? `pino wrote the BigInt at ${path} of an audit record as a JSON number, so the processor reads a number there (not exactly beyond 2^53), where an event given through the OpenTelemetry Logs API with a BigInt is refused. Pass BigInts as strings`
          : `pino wrote the invalid Date at ${path} of an audit record as null, where an event given through the OpenTelemetry Logs API with an invalid Date is refused`,
      );
      return;
    }
  } catch {
    // a Proxy or a throwing getter: nothing to report
  }
}

/** The first BigInt or invalid Date in `v` and its path (steps innermost first). */
function findUncarried(
  v: unknown,
  depth: number,
  budget: { left: number },
): { what: 'bigint' | 'invalid-date'; steps: string[] } | undefined {
  if (typeof v === 'bigint') return { what: 'bigint', steps: [] };
  if (v === null || typeof v !== 'object' || depth > VALUE_CHECK_DEPTH) return undefined;
  if (v instanceof Date) {
    return Number.isNaN(v.getTime()) ? { what: 'invalid-date', steps: [] } : undefined;
  }
  if (typeof (v as { toJSON?: unknown }).toJSON === 'function') return undefined;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) {
      if (--budget.left < 0) return undefined;
      const found = findUncarried(v[i], depth + 1, budget);
      if (found !== undefined) {
        found.steps.push(`[${i}]`);
        return found;
      }
    }
    return undefined;
  }
  for (const k in v) {
    if (!Object.hasOwn(v, k)) continue;
    if (--budget.left < 0) return undefined;
    const found = findUncarried((v as Record<string, unknown>)[k], depth + 1, budget);
    if (found !== undefined) {
      found.steps.push(`.${k}`);
      return found;
    }
  }
  return undefined;
}
