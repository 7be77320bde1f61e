// SPDX-License-Identifier: Apache-2.0
/* A plain PostgreSQL client for the scenarios' oracles. */
import pg from 'pg';

export interface Pg {
  query<T = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]>;
  end(): Promise<void>;
}

export async function connectPg(url: string): Promise<Pg> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  return {
    query: async <T>(sql: string, params?: unknown[]) =>
      (await c.query(sql, params as unknown[])).rows as T[],
    end: () => c.end(),
  };
}
