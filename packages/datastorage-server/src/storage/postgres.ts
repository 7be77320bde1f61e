// SPDX-License-Identifier: Apache-2.0
/*
 * PostgreSQL backend through a `pg` connection pool. Every client is listened to for `error`
 * while it is out of the pool (idle ones by the pool's own listener): a connection that dies
 * never emits an unhandled `error` event.
 */
import { finished } from 'node:stream/promises';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import type { SqlDatabase, SqlQueryable, SqlTransaction } from './sql.ts';
import { sqlState } from './sql.ts';

// Errors raised by the network or the pool, not by a statement.
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
]);

/** True when a `pg` error means the database is unreachable or refusing sessions. */
export function isPostgresUnavailable(err: unknown): boolean {
  if (err === null || typeof err !== 'object') return false;
  const state = sqlState(err);
  if (state !== undefined) {
    return (
      state.startsWith('08') || // connection exception
      state.startsWith('53') || // insufficient resources (too many connections)
      state.startsWith('57P') || // admin shutdown, crash shutdown, cannot connect now
      state === '55000' || // database not accepting connections
      state === '3D000' || // database does not exist (dropped / not yet created)
      state === '25P03' // idle session timeout
    );
  }
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && NETWORK_CODES.has(code)) return true;
  const message = (err as { message?: unknown }).message;
  return (
    typeof message === 'string' &&
    /Connection terminated|timeout exceeded when trying to connect|Query read timeout|Client has encountered a connection error|connection is not open|Cannot use a pool after calling end/i.test(
      message,
    )
  );
}

export interface PostgresOptions {
  connectionString: string;
  /** Pool size [10]. */
  max?: number;
  /** Gives up connecting after this long [5000]. */
  connectionTimeoutMillis?: number;
  /** Gives up waiting for a statement's answer after this long [30000]. */
  queryTimeoutMillis?: number;
  /** Error sink for idle-client errors (the pool must never crash the process). */
  onIdleError?: (err: Error) => void;
}

function wrap(client: pg.Pool | pg.PoolClient): SqlQueryable {
  return {
    async query<R>(text: string, params?: unknown[], name?: string) {
      const r =
        name === undefined
          ? await client.query(text, params)
          : await client.query({ name, text, values: params ?? [] });
      return r.rows as R[];
    },
    async exec(text: string) {
      await client.query(text);
    },
  };
}

/** COPY FROM STDIN on one connection (pg-copy-streams). */
async function copyFromStdin(client: pg.PoolClient, sql: string, data: Buffer): Promise<number> {
  const stream = client.query(copyFrom(sql));
  stream.end(data);
  await finished(stream);
  return stream.rowCount;
}

/**
 * A client of the pool with `onError` listening on it from the moment it is handed out. The
 * listener is attached in the pool's callback, not after `await pool.connect()`: a session
 * terminated right after it opened sends its FATAL error in the same socket read as its
 * ReadyForQuery, and the client emits it before any promise continuation runs; with no listener
 * that `error` event would crash the process.
 */
function checkout(pool: pg.Pool, onError: (err: Error) => void): Promise<pg.PoolClient> {
  return new Promise((resolve, reject) => {
    pool.connect((err, client) => {
      if (err || client === undefined) {
        reject(err ?? new Error('the pool gave no client'));
        return;
      }
      client.on('error', onError);
      resolve(client);
    });
  });
}

/** Opens a pool; connections are made lazily. */
export function openPostgres(options: PostgresOptions): SqlDatabase {
  const pool = new pg.Pool({
    connectionString: options.connectionString,
    max: options.max ?? 10,
    connectionTimeoutMillis: options.connectionTimeoutMillis ?? 5000,
    idleTimeoutMillis: 30_000,
    // A database that stops answering mid-statement (no reset) counts as unavailable.
    query_timeout: options.queryTimeoutMillis ?? 30_000,
    application_name: 'kubernaut-datastorage',
  });
  pool.on('error', (err: Error) => options.onIdleError?.(err));
  const base = wrap(pool);
  let closed = false;
  return {
    kind: 'postgres',
    query: base.query,
    exec: base.exec,
    async transaction(fn) {
      let broken: Error | undefined;
      const onError = (err: Error) => {
        broken = err;
      };
      const client = await checkout(pool, onError);
      // BEGIN goes with the first statement: sent alone before a statement with parameters or
      // a COPY, in the same round trip as a script. A script may carry the COMMIT too.
      let state = 'none' as 'none' | 'open' | 'committed';
      const begin = async () => {
        if (state !== 'none') return;
        state = 'open';
        await client.query('BEGIN');
      };
      const base = wrap(client);
      const tx: SqlTransaction = {
        async query(text, params, name) {
          await begin();
          return base.query(text, params, name);
        },
        async exec(text) {
          await begin();
          await base.exec(text);
        },
        async copyFrom(sql, data) {
          await begin();
          return copyFromStdin(client, sql, data);
        },
        async script<R>(text: string, options?: { commit?: boolean }) {
          const first = state === 'none';
          const commit = options?.commit === true;
          state = 'open';
          const r = (await client.query(
            `${first ? 'BEGIN;' : ''}${text}${commit ? ';COMMIT' : ''}`,
          )) as unknown as pg.QueryResult | pg.QueryResult[];
          if (commit) state = 'committed';
          const results = Array.isArray(r) ? r : [r];
          return (results[results.length - (commit ? 2 : 1)]?.rows ?? []) as R[];
        },
      };
      try {
        const result = await fn(tx);
        if (state === 'open') await client.query('COMMIT');
        return result;
      } catch (err) {
        if (state !== 'none') {
          try {
            await client.query('ROLLBACK');
          } catch (rollbackErr) {
            broken ??= rollbackErr as Error;
          }
        }
        throw err;
      } finally {
        client.off('error', onError);
        client.release(broken ?? false);
      }
    },
    isUnavailable: isPostgresUnavailable,
    poolStats: () => ({
      total: pool.totalCount,
      idle: pool.idleCount,
      waiting: pool.waitingCount,
      max: options.max ?? 10,
    }),
    async close() {
      if (closed) return;
      closed = true;
      await pool.end();
    },
  };
}
