// SPDX-License-Identifier: Apache-2.0
/* What the server uses of an open PGlite (the embedded backend and its start-up cache share it). */

/** What a PGlite transaction offers the server. */
export interface PgliteQueryable {
  query<R>(text: string, params?: unknown[]): Promise<{ rows: R[] }>;
  exec(text: string): Promise<Array<{ rows: unknown[] }>>;
}

/**
 * What the server uses of an open PGlite, written out so that the package's public types do not
 * pull in PGlite's own declarations (which do not compile without `skipLibCheck`). A `PGlite`
 * instance is one.
 */
export interface PgliteHandle extends PgliteQueryable {
  transaction<T>(fn: (tx: PgliteQueryable) => Promise<T>): Promise<T>;
  readonly closed: boolean;
  close(): Promise<void>;
}
