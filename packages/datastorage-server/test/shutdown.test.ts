// SPDX-License-Identifier: Apache-2.0
/*
 * Graceful shutdown (PostgreSQL): close() stops accepting at once, lets the request in flight
 * finish and be answered, then closes the database. The request is held in flight,
 * deterministically, by an advisory lock on its correlation id taken from another session.
 */
import { randomUUID } from 'node:crypto';
import {
  createScratchDatabase,
  minimalEvent,
  postBatch,
  type ScratchDatabase,
  testAuth,
} from '@kubernaut/test-kit';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { correlationLockKey } from '../src/hash.ts';
import { startDataStorageServer } from '../src/index.ts';

describe('graceful shutdown', () => {
  let db: ScratchDatabase;
  beforeAll(async () => {
    db = await createScratchDatabase('ds_shutdown');
  });
  afterAll(async () => {
    await db?.drop();
  });

  it('finishes the request in flight, refuses new connections, then closes', async () => {
    const server = await startDataStorageServer({
      port: 0,
      quiet: true,
      auth: testAuth(),
      storage: { kind: 'postgres', connectionString: db.connectionString },
    });
    const cid = `shutdown-${randomUUID()}`;
    const holder = new pg.Client({ connectionString: db.connectionString });
    await holder.connect();
    try {
      await holder.query('SELECT pg_advisory_lock($1::bigint)', [String(correlationLockKey(cid))]);
      const inflight = postBatch(server.url, [minimalEvent({ correlation_id: cid })]);
      // Wait until the server's transaction is queued behind our lock.
      for (;;) {
        const r = await holder.query(
          `SELECT count(*)::int AS n FROM pg_locks l JOIN pg_database d ON d.oid = l.database
           WHERE l.locktype = 'advisory' AND NOT l.granted AND d.datname = current_database()`,
        );
        if (r.rows[0].n > 0) break;
      }
      let closed = false;
      const closing = server.close().then(() => {
        closed = true;
      });
      await expect(fetch(`${server.url}/readyz`)).rejects.toThrow();
      expect(closed).toBe(false);
      await holder.query('SELECT pg_advisory_unlock_all()');
      const r = await inflight;
      expect(r.status).toBe(201);
      await closing;
      expect(closed).toBe(true);
      const stored = await holder.query(
        'SELECT count(*)::int AS n FROM audit_events WHERE correlation_id = $1',
        [cid],
      );
      expect(stored.rows[0].n).toBe(1);
    } finally {
      await holder.end();
      await server.close();
    }
  });
});
