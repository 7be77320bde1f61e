// SPDX-License-Identifier: Apache-2.0
/*
 * The one SQL surface both backends implement. PGlite is PostgreSQL compiled to WASM, so the
 * schema and every statement are shared; only connection handling differs.
 */

/** Runs statements with positional parameters ($1, $2, ...). */
export interface SqlQueryable {
  /**
   * Runs one statement. With a `name`, PostgreSQL keeps it prepared on the connection (parsed
   * and planned once per connection); the name must always go with the same text.
   */
  query<R = Record<string, unknown>>(text: string, params?: unknown[], name?: string): Promise<R[]>;
  /** Runs one or more statements without parameters. */
  exec(text: string): Promise<void>;
  /**
   * `COPY ... FROM STDIN` with `data` in the text format (UTF-8); resolves with the rows copied.
   * PostgreSQL only (inside a transaction); absent on PGlite.
   */
  copyFrom?(sql: string, data: Buffer): Promise<number>;
}

/** The statements of one transaction. */
export interface SqlTransaction extends SqlQueryable {
  /**
   * Runs statements without parameters (`;`-separated, the simple query protocol, each with
   * its own snapshot) and resolves with the rows of the last one. On PostgreSQL the BEGIN of
   * the transaction travels with the first statement sent, and with `{ commit: true }` the
   * COMMIT travels with these statements, which must then be the transaction's last: a round
   * trip less each. (PGlite commits when the transaction's function returns.) Values go in as
   * literals: see sqlArray.
   */
  script<R = Record<string, unknown>>(text: string, options?: { commit?: boolean }): Promise<R[]>;
}

/** A database the server stores into. */
export interface SqlDatabase extends SqlQueryable {
  readonly kind: 'pglite' | 'postgres';
  /** Runs `fn` inside BEGIN/COMMIT on one connection; rolls back when it throws. */
  transaction<T>(fn: (tx: SqlTransaction) => Promise<T>): Promise<T>;
  /**
   * True when an error means the database could not be reached (refused, reset, pool
   * exhausted, shutting down) rather than that a statement failed.
   */
  isUnavailable(err: unknown): boolean;
  /** Connection-pool figures (PostgreSQL). */
  poolStats?(): { total: number; idle: number; waiting: number; max: number };
  close(): Promise<void>;
}

/** SQLSTATE of a database error, when it has one. */
export function sqlState(err: unknown): string | undefined {
  const code =
    err !== null && typeof err === 'object' ? (err as { code?: unknown }).code : undefined;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
}

/** True for errors that go away when the transaction is run again (deadlock, serialization). */
export function isTransient(err: unknown): boolean {
  const state = sqlState(err);
  return state === '40001' || state === '40P01' || state === '55P03';
}

/**
 * A string as an SQL literal, whatever standard_conforming_strings says: quotes doubled, and
 * when it holds a backslash, an escape string (E'...') with backslashes doubled. (The string
 * must hold no NUL: PostgreSQL text cannot.)
 */
export function sqlLiteral(value: string): string {
  const quoted = value.replaceAll("'", "''");
  return value.includes('\\') ? `E'${quoted.replaceAll('\\', '\\\\')}'` : `'${quoted}'`;
}

/**
 * An array of `type` as an SQL literal (`'{"a","b"}'::text[]`): every element double-quoted
 * with `"` and `\` backslash-escaped (so that no element reads as NULL, and commas, braces and
 * spaces stay in it), the whole an SQL literal.
 */
export function sqlArray(
  values: readonly (string | number | bigint)[],
  type: 'text' | 'bigint' | 'uuid',
): string {
  let body = '';
  for (let i = 0; i < values.length; i++) {
    const v = String(values[i]);
    body += `${i === 0 ? '' : ','}"${/["\\]/.test(v) ? v.replace(/["\\]/g, '\\$&') : v}"`;
  }
  return `${sqlLiteral(`{${body}}`)}::${type}[]`;
}
