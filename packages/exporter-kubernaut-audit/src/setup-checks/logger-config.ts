// SPDX-License-Identifier: Apache-2.0
/*
 * A LoggerProvider's logger configuration (`loggerConfigurator`: `enabled`, `minimumSeverity`,
 * `traceBased`; in development in the OTel specification) is applied by `Logger.emit` before
 * any processor sees a record. An audit record under a logger's minimum severity, or emitted
 * inside an unsampled trace by a trace-based logger, is dropped there: the processor never
 * sees it and nothing counts it.
 *
 * The processor cannot see what never reaches it, but it can ask: at the first audit record of
 * each instrumentation scope, it takes the same logger from the global LoggerProvider (when that
 * provider is the one feeding this processor) and asks it, through the public
 * `Logger.enabled()`, whether it would take a record of the lowest severity, and one inside an
 * unsampled trace. If not, it warns once per scope, saying which audit records are lost and how
 * to keep them. Never throws; each processor looks at each scope once (at most MAX_SCOPES per
 * processor); costs two comparisons per record otherwise (one scope, one processor), a map and
 * a set lookup when they change.
 */
import { logs, ROOT_CONTEXT, SeverityNumber, type TraceFlags, trace } from '@opentelemetry/api';
import type { ComponentDiag } from '../measure/diag.ts';

/** Scopes looked at, at most (a process with more is not usual). */
const MAX_SCOPES = 64;

interface Scope {
  name?: unknown;
  version?: unknown;
  schemaUrl?: unknown;
}

interface ProbeLogger {
  enabled(options?: { severityNumber?: SeverityNumber; context?: unknown }): boolean;
}

/** What one processor has looked at: its scopes, and how many (the cap is per processor). */
interface Looked {
  seen: WeakSet<object>;
  checked: number;
}
let looked = new WeakMap<object, Looked>();
/** The last scope and processor seen: the per-record fast path (one scope, one processor). */
let lastSeen: object | undefined;
let lastProcessor: object | undefined;

/** An unsampled remote span (valid ids, sampled flag off): what traceBased filters. */
const UNSAMPLED = trace.setSpanContext(ROOT_CONTEXT, {
  traceId: '5b8efff798038103d269b633813fc60c',
  spanId: 'eee19b7ec3c1b174',
  traceFlags: 0 as TraceFlags,
  isRemote: true,
});

/**
 * Looks at the logger of `record`'s scope once (see the module comment). `processor`: the
 * processor that received the record (the global provider must feed it). Returns the warning
 * given, if any.
 */
export function checkLoggerConfig(
  record: { instrumentationScope?: Scope },
  processor: object,
  diag: ComponentDiag,
): string | undefined {
  const scope = record.instrumentationScope;
  if (scope === undefined || (scope === lastSeen && processor === lastProcessor)) return undefined;
  try {
    lastSeen = scope;
    lastProcessor = processor;
    let mine = looked.get(processor);
    if (mine === undefined) {
      mine = { seen: new WeakSet<object>(), checked: 0 };
      looked.set(processor, mine);
    }
    if (mine.checked >= MAX_SCOPES || mine.seen.has(scope)) return undefined;
    mine.seen.add(scope);
    mine.checked++;
    const logger = loggerFeeding(scope, processor);
    if (logger === undefined) return undefined;
    const lost: string[] = [];
    if (logger.enabled({ context: ROOT_CONTEXT })) {
      const least = lowestTaken(logger);
      if (least === undefined) lost.push('every record with a severityNumber');
      else if (least > SeverityNumber.TRACE) {
        lost.push(
          `records below severity ${SeverityNumber[least] ?? least} (${least}) (minimumSeverity; records without a severityNumber pass)`,
        );
      }
      if (!logger.enabled({ context: UNSAMPLED })) {
        lost.push('records emitted inside an unsampled trace (traceBased)');
      }
    }
    if (lost.length === 0) return undefined;
    const name = typeof scope.name === 'string' ? scope.name : '';
    const message = `the LoggerProvider's logger configuration drops, for logger "${name}", ${lost.join(' and ')}: audit records among them never reach the processor and are not counted anywhere. Give the loggers that emit audit records the default configuration (e.g. emit them through a logger of their own and put { pattern: '<its name>', config: {} } first in createLoggerConfigurator)`;
    diag.warn(message);
    return message;
  } catch {
    return undefined;
  }
}

/** The global provider's logger for `scope`, when that provider feeds `processor`. */
function loggerFeeding(scope: Scope, processor: object): ProbeLogger | undefined {
  const provider = logs.getLoggerProvider() as unknown as {
    _sharedState?: { processors?: unknown };
    getLogger(name: string, version?: string, options?: { schemaUrl?: string }): unknown;
  };
  const processors = provider._sharedState?.processors;
  if (!Array.isArray(processors) || !processors.includes(processor)) return undefined;
  if (typeof scope.name !== 'string') return undefined;
  const logger = provider.getLogger(
    scope.name,
    typeof scope.version === 'string' ? scope.version : undefined,
    typeof scope.schemaUrl === 'string' ? { schemaUrl: scope.schemaUrl } : undefined,
  ) as Partial<ProbeLogger> | undefined;
  return typeof logger?.enabled === 'function' ? (logger as ProbeLogger) : undefined;
}

/** The lowest severity number (1–24) the logger takes, or undefined for none. */
function lowestTaken(logger: ProbeLogger): number | undefined {
  for (let s = SeverityNumber.TRACE; s <= SeverityNumber.FATAL4; s++) {
    if (logger.enabled({ severityNumber: s, context: ROOT_CONTEXT })) return s;
  }
  return undefined;
}

/** Test support. */
export function resetLoggerConfigCheck(): void {
  looked = new WeakMap<object, Looked>();
  lastSeen = undefined;
  lastProcessor = undefined;
}
