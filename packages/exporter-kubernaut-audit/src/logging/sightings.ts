// SPDX-License-Identifier: Apache-2.0
/*
 * "The processor sees nothing from a library that is set up wrong": a cheap cross-check, per
 * process, between what logging libraries logged as audit lines and what reached an
 * AuditLogRecordProcessor.
 *
 * The library adapters of ./pino.ts, ./winston.ts and ./bunyan.ts keep audit lines out of the
 * application's ordinary log output; in doing so they see every audit line the library logged
 * and count it here (`noteAuditLine`). Every AuditLogRecordProcessor counts the audit records it
 * receives (`noteAuditRecordReceived`). Shortly after audit lines were logged (an unref'd timer)
 * and when a processor shuts down, the counts are compared: when a processor exists in the
 * process but fewer audit records reached processors than the libraries logged, the bridge from
 * the library into OpenTelemetry is not working (instrumentation not registered, the library
 * loaded before `sdk.start()`, an ESM import without the instrumentation's loader hook, a
 * missing `@opentelemetry/winston-transport`, bunyan 2.x left to the auto-instrumentation, no
 * global LoggerProvider), and one warning per library says so, with what to check. No processor
 * in the process (the Collector route) is no reason to warn. Counters only: O(1) per line.
 */
import { ComponentDiag } from '../measure/diag.ts';

/** Libraries the adapters serve, with what to check when their audit lines get lost. */
const HINTS = {
  pino: "Check that @opentelemetry/instrumentation-pino is in the SDK's instrumentations and that the SDK starts before pino is loaded: in an ESM application, in a file loaded with `node --import` that registers @opentelemetry/instrumentation/hook.mjs (module.register).",
  winston:
    "Check that @opentelemetry/instrumentation-winston is in the SDK's instrumentations, that @opentelemetry/winston-transport is installed, and that the SDK starts before winston is loaded: in an ESM application, in a file loaded with `node --import` that registers @opentelemetry/instrumentation/hook.mjs (module.register).",
  bunyan:
    "Check that the logger has the stream { type: 'raw', stream: new OpenTelemetryBunyanStream() } (@opentelemetry/instrumentation-bunyan patches bunyan 1.x only; with bunyan 2.x add the stream yourself) and that the SDK is started.",
} as const;

export type LoggingLibrary = keyof typeof HINTS;

/** How long after audit lines were logged the counts are compared. */
export const SIGHTING_CHECK_DELAY_MILLIS = 2_000;

const diag = new ComponentDiag('kubernaut-audit logging');
const logged = new Map<LoggingLibrary, number>();
const received = new Map<LoggingLibrary, number>();
/** Audit records from scopes that name no known library. */
let receivedOther = 0;
let processors = 0;
let timer: ReturnType<typeof setTimeout> | undefined;
const warned = new Set<LoggingLibrary>();

/** An adapter saw `library` log an audit line. */
export function noteAuditLine(library: LoggingLibrary): void {
  logged.set(library, (logged.get(library) ?? 0) + 1);
  if (timer === undefined) {
    timer = setTimeout(checkAuditLines, SIGHTING_CHECK_DELAY_MILLIS);
    timer.unref?.();
  }
}

/** The last scope name seen and its library: records of one scope come in runs. */
let lastScopeName: string | undefined;
let lastLibrary: LoggingLibrary | undefined;

/** A processor received an audit record from the instrumentation scope `scopeName`. */
export function noteAuditRecordReceived(scopeName: string | undefined): void {
  if (scopeName !== lastScopeName) {
    lastScopeName = scopeName;
    lastLibrary = libraryOfScope(scopeName);
  }
  const library = lastLibrary;
  if (library === undefined) receivedOther++;
  else received.set(library, (received.get(library) ?? 0) + 1);
}

function libraryOfScope(scopeName: string | undefined): LoggingLibrary | undefined {
  if (scopeName === undefined) return undefined;
  for (const library of Object.keys(HINTS) as LoggingLibrary[]) {
    if (scopeName.includes(library)) return library;
  }
  return undefined;
}

/** A processor was created (`+1`) or shut down (`-1`). */
export function noteProcessor(delta: 1 | -1): void {
  processors = Math.max(0, processors + delta);
}

/**
 * Compares the counts now; warns once per library whose audit lines did not reach a processor.
 * Returns the libraries warned about by this call.
 */
export function checkAuditLines(): LoggingLibrary[] {
  if (timer !== undefined) clearTimeout(timer);
  timer = undefined;
  if (processors === 0) return [];
  const now: LoggingLibrary[] = [];
  for (const [library, n] of logged) {
    const reached = (received.get(library) ?? 0) + receivedOther;
    if (n === 0 || reached >= n || warned.has(library)) continue;
    warned.add(library);
    now.push(library);
    diag.warn(
      `${library} logged ${n} audit line(s) (kept out of its ordinary output), but ${reached === 0 ? 'none' : `only ${reached}`} reached an AuditLogRecordProcessor: the ${library} bridge into OpenTelemetry is not working, and these audit events are not delivered. ${HINTS[library]}`,
    );
  }
  return now;
}

/** Test support: forgets every count and warning. */
export function resetAuditLineSightings(): void {
  if (timer !== undefined) clearTimeout(timer);
  timer = undefined;
  logged.clear();
  warned.clear();
  received.clear();
  receivedOther = 0;
  processors = 0;
}
