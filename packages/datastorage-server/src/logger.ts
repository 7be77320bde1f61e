// SPDX-License-Identifier: Apache-2.0
/* Structured logging: one JSON object per line (stderr by default). */

/** Severity threshold of a logger; `silent` logs nothing. */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';

/** What the server logs through. Fields are merged into the JSON line. */
export interface DataStorageLogger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

export interface JsonLoggerOptions {
  /** Lowest level written [info]. */
  level?: LogLevel;
  /** Where lines go [process.stderr]. */
  stream?: { write(chunk: string): unknown };
  /** Fixed fields added to every line. */
  base?: Record<string, unknown>;
}

function errorFields(value: unknown): unknown {
  if (value instanceof Error) {
    const code = (value as { code?: unknown }).code;
    return { name: value.name, message: value.message, ...(code === undefined ? {} : { code }) };
  }
  return value;
}

/** A logger writing JSON lines `{time, level, msg, ...fields}`. */
export function createJsonLogger(options: JsonLoggerOptions = {}): DataStorageLogger {
  const threshold = RANK[options.level ?? 'info'];
  const stream = options.stream ?? process.stderr;
  const base = options.base ?? {};
  const write = (
    level: Exclude<LogLevel, 'silent'>,
    msg: string,
    fields?: Record<string, unknown>,
  ) => {
    if (RANK[level] < threshold) return;
    const line: Record<string, unknown> = { time: new Date().toISOString(), level, msg, ...base };
    if (fields) for (const [k, v] of Object.entries(fields)) line[k] = errorFields(v);
    try {
      stream.write(`${JSON.stringify(line)}\n`);
    } catch {
      // Logging must never break request handling.
    }
  };
  return {
    debug: (m, f) => write('debug', m, f),
    info: (m, f) => write('info', m, f),
    warn: (m, f) => write('warn', m, f),
    error: (m, f) => write('error', m, f),
  };
}
