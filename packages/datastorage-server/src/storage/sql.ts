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

/** A database the server stores into. */
export interface SqlDatabase extends SqlQueryable {
  readonly kind: 'pglite' | 'postgres';
  /** Runs `fn` inside BEGIN/COMMIT on one connection; rolls back when it throws. */
  transaction<T>(fn: (tx: SqlQueryable) => Promise<T>): Promise<T>;
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
