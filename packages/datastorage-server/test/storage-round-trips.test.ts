// SPDX-License-Identifier: Apache-2.0
/*
 * The store's conversation with PostgreSQL: a batch costs three round trips (BEGIN with the
 * locks and the chain heads; the COPY of the rows; the head update with the COMMIT), counted
 * on the wire by a loopback proxy that reads the frontend messages; a script that carries the
 * COMMIT is all or nothing; values sent as array literals reach PostgreSQL (and PGlite)
 * unchanged, whatever they hold.
 */
import { PGlite } from '@electric-sql/pglite';
import type { AuditEventRequest } from '@kubernaut/datastorage-contract';
import { createScratchDatabase, minimalEvent, type ScratchDatabase } from '@kubernaut/test-kit';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { prepareEvent } from '../src/events.ts';
import { openPglite } from '../src/storage/pglite.ts';
import { openPostgres } from '../src/storage/postgres.ts';
import { AuditEventStore } from '../src/storage/repository.ts';
import { type SqlDatabase, sqlArray } from '../src/storage/sql.ts';
import { RoundTripCounter, viaProxy } from './wire.ts';

const prepared = (correlationIds: string[], perCorrelation: number) =>
  correlationIds.flatMap((cid) =>
    Array.from({ length: perCorrelation }, (_, n) =>
      prepareEvent(minimalEvent({ correlation_id: cid }, n) as unknown as AuditEventRequest),
    ),
  );

// Strings an SQL literal or an array literal would misread if written as they are.
const AWKWARD = [
  "o'brien",
  "''",
  'back\\slash',
  '\\',
  '"quoted"',
  'a,b',
  '{braces}',
  'NULL',
  'null',
  ' spaced ',
  '',
  'ü日本🙂',
  "E'\\x41'",
  "x'); DROP TABLE audit_events; --",
  'tab\there\nnewline',
];

describe('the store on PostgreSQL, on the wire', () => {
  let db: ScratchDatabase;
  let proxy: RoundTripCounter;
  let sql: SqlDatabase;
  let store: AuditEventStore;

  beforeAll(async () => {
    db = await createScratchDatabase('ds_wire');
    proxy = new RoundTripCounter();
    await proxy.start(new URL(db.connectionString));
    sql = openPostgres({ connectionString: viaProxy(db.connectionString, proxy.port), max: 1 });
    store = await AuditEventStore.open(sql);
  });
  afterAll(async () => {
    await sql?.close();
    await proxy?.stop();
    await db?.drop();
  });

  it('stores a batch in three round trips, new chains and chains with a head alike', async () => {
    const cids = ['wire-a', 'wire-b', 'wire-c'];
    proxy.reset();
    expect(await store.insertEvents(prepared(cids, 4))).toEqual({ inserted: 12, skipped: 0 });
    expect(proxy.roundTrips).toBe(3);
    proxy.reset();
    expect(await store.insertEvents(prepared(cids, 2))).toEqual({ inserted: 6, skipped: 0 });
    expect(proxy.roundTrips).toBe(3);
    // BEGIN goes with the locks, COMMIT with the head update.
    expect(proxy.statements[0]).toMatch(/^BEGIN;SELECT count\(pg_advisory_xact_lock/);
    expect(proxy.statements[1]).toMatch(/^COPY audit_events .* FROM STDIN \(FORMAT binary\)$/);
    expect(proxy.statements[2]).toMatch(/^SELECT audit_chain_advance\(.*\);COMMIT$/s);
    for (const cid of cids) {
      expect(await store.verifyChain(cid)).toMatchObject({ is_valid: true, total_events: 6 });
    }
  });

  it('a script carrying the COMMIT is all or nothing', async () => {
    await sql.exec('CREATE TABLE wire_t (v int)');
    await expect(
      sql.transaction(async (tx) => {
        await tx.script('INSERT INTO wire_t VALUES (1)');
        return tx.script('INSERT INTO wire_t VALUES (2); SELECT 1/0', { commit: true });
      }),
    ).rejects.toThrow(/division by zero/);
    expect(await sql.query('SELECT v FROM wire_t')).toEqual([]);

    proxy.reset();
    const rows = await sql.transaction((tx) =>
      tx.script<{ v: number }>('INSERT INTO wire_t VALUES (3); SELECT v FROM wire_t', {
        commit: true,
      }),
    );
    expect(rows).toEqual([{ v: 3 }]);
    // One round trip in all: BEGIN, the statements and COMMIT; nothing sent after.
    expect(proxy.roundTrips).toBe(1);
    expect(await sql.query('SELECT v FROM wire_t')).toEqual([{ v: 3 }]);
  });

  it('chains correlation ids that a literal would misread', async () => {
    const cids = AWKWARD.filter((c) => c !== '');
    await store.insertEvents(prepared(cids, 2));
    await store.insertEvents(prepared([...cids].reverse(), 3));
    for (const cid of cids) {
      expect(await store.verifyChain(cid)).toMatchObject({
        is_valid: true,
        total_events: 5,
        verified_events: 5,
      });
    }
    const heads = await sql.query<{ correlation_id: string; p: number }>(
      'SELECT correlation_id, chain_position::int AS p FROM audit_event_chain_heads WHERE correlation_id = ANY($1::text[])',
      [cids],
    );
    expect(new Map(heads.map((h) => [h.correlation_id, h.p]))).toEqual(
      new Map(cids.map((c) => [c, 5])),
    );
  });
});

describe('sqlArray', () => {
  it('reaches PostgreSQL unchanged, whatever standard_conforming_strings says', async () => {
    const db = await createScratchDatabase('ds_literal');
    const c = new pg.Client({ connectionString: db.connectionString });
    await c.connect();
    try {
      for (const conforming of ['on', 'off']) {
        await c.query(`SET standard_conforming_strings = ${conforming}`);
        const r = await c.query(
          `SELECT ${sqlArray(AWKWARD, 'text')} AS a, ${sqlArray([], 'text')} AS e,
                  ${sqlArray([1n, -9223372036854775808n, 42], 'bigint')}::text[] AS b`,
        );
        expect(r.rows[0]).toEqual({
          a: AWKWARD,
          e: [],
          b: ['1', '-9223372036854775808', '42'],
        });
      }
    } finally {
      await c.end();
      await db.drop();
    }
  });

  it('reaches PGlite unchanged', async () => {
    const lite = await PGlite.create();
    const db = await openPglite({ instance: lite });
    try {
      const rows = await db.transaction((tx) =>
        tx.script<{ a: string[] }>(`SELECT 1; SELECT ${sqlArray(AWKWARD, 'text')} AS a`),
      );
      expect(rows).toEqual([{ a: AWKWARD }]);
    } finally {
      await lite.close();
    }
  });
});
