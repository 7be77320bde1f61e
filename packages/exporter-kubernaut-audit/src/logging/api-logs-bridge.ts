// SPDX-License-Identifier: Apache-2.0
/*
 * The two logs-API globals, made one (DESIGN §3). OpenTelemetry SDK 3.x reads the Logs API of
 * `@opentelemetry/api` (1.10+); logging bridges still built on the older `@opentelemetry/api-logs`
 * package (e.g. `@opentelemetry/winston-transport` 0.x, which `@opentelemetry/instrumentation-winston`
 * loads) emit through that package's own global, which nothing registers under SDK 3.x: their
 * records silently go nowhere.
 *
 * `installApiLogsBridge()` registers, in the `@opentelemetry/api-logs` global slot, a
 * LoggerProvider whose loggers forward every record to `@opentelemetry/api`'s `logs` API (lazily:
 * the global LoggerProvider registered there later, e.g. by `sdk.start()`, receives them). The
 * slot's format is the api-logs package's cross-version contract: a getter function under
 * `Symbol.for('io.opentelemetry.js.api.logs')`, called with the compatibility version 1. No
 * dependency on `@opentelemetry/api-logs` is needed. A slot already taken (an application that
 * bridged the globals itself) is left alone; a no-op provider in it is reported.
 *
 * Loggers obtained from `@opentelemetry/api-logs` BEFORE the bridge is installed stay no-ops (the
 * api-logs proxy only learns of providers registered through its own copy): create the SDK, and
 * with it AuditLogRecordProcessor, before the application's loggers, as the instrumentations
 * need anyway.
 */
import { type Logger, type LoggerOptions, logs } from '@opentelemetry/api';
import type { ComponentDiag } from '../measure/diag.ts';

/** The global slot of `@opentelemetry/api-logs` (all its versions). */
export const API_LOGS_GLOBAL = Symbol.for('io.opentelemetry.js.api.logs');
/** The compatibility version the slot's getter is called with. */
const API_LOGS_COMPATIBILITY_VERSION = 1;

/** The bridge's LoggerProvider: every logger forwards to `@opentelemetry/api`'s `logs`. */
class ForwardingLoggerProvider {
  getLogger(name: string, version?: string, options?: LoggerOptions): Logger {
    return logs.getLogger(name, version, options);
  }
}

type SlotGetter = (version: number) => unknown;

let bridge: ForwardingLoggerProvider | undefined;

/** Whether the api-logs slot holds our bridge. */
export function isApiLogsBridgeInstalled(): boolean {
  const getter = slot();
  return bridge !== undefined && getter?.(API_LOGS_COMPATIBILITY_VERSION) === bridge;
}

function slot(): SlotGetter | undefined {
  const value = (globalThis as Record<symbol, unknown>)[API_LOGS_GLOBAL];
  return typeof value === 'function' ? (value as SlotGetter) : undefined;
}

/**
 * Installs the bridge unless the api-logs slot is taken. Never throws. Returns what the slot
 * holds afterwards: `'bridge'` (ours), `'other'` (a provider someone registered), `'noop'`.
 */
export function installApiLogsBridge(diag?: ComponentDiag): 'bridge' | 'other' | 'noop' {
  try {
    const existing = slot();
    if (existing === undefined) {
      bridge ??= new ForwardingLoggerProvider();
      const provider = bridge;
      (globalThis as Record<symbol, unknown>)[API_LOGS_GLOBAL] = (version: number) =>
        version === API_LOGS_COMPATIBILITY_VERSION ? provider : undefined;
      return 'bridge';
    }
    const held = existing(API_LOGS_COMPATIBILITY_VERSION);
    if (held === bridge) return 'bridge';
    if (isNoop(held)) {
      diag?.warn(
        'the @opentelemetry/api-logs global holds a no-op LoggerProvider: records that logging bridges emit through @opentelemetry/api-logs (e.g. @opentelemetry/winston-transport 0.x) go nowhere. Register no provider there (AuditLogRecordProcessor then bridges it to @opentelemetry/api), or register the SDK LoggerProvider in both',
      );
      return 'noop';
    }
    return 'other';
  } catch {
    return 'other';
  }
}

function isNoop(provider: unknown): boolean {
  if (provider === undefined || provider === null) return true;
  try {
    const logger = (provider as { getLogger?: (n: string) => unknown }).getLogger?.(
      '@kubernaut/exporter-kubernaut-audit',
    );
    const name = (logger as { constructor?: { name?: string } } | undefined)?.constructor?.name;
    return logger === undefined || name === 'NoopLogger';
  } catch {
    return false;
  }
}
