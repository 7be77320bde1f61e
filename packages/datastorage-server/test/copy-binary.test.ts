// SPDX-License-Identifier: Apache-2.0
/*
 * Rows in PostgreSQL's binary COPY format: every column read back from real PostgreSQL as the
 * server wrote it (timestamps at the edges of the calendar, NULL and non-NULL in every
 * nullable column, text that needs escaping in the text format, positions past 2^53), chains
 * still verifying; values without a binary form here leave the row unwritten, and their batch
 * goes in the text format (seen on the wire).
 */
import { randomUUID } from 'node:crypto';
import type { AuditEventRequest } from '@kubernaut/datastorage-contract';
import { createScratchDatabase, minimalEvent, type ScratchDatabase } from '@kubernaut/test-kit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type PreparedEvent, prepareEvent } from '../src/events.ts';
import { CopyBinaryRows } from '../src/storage/copy-binary.ts';
import { openPostgres } from '../src/storage/postgres.ts';
import { AuditEventStore } from '../src/storage/repository.ts';
import type { SqlDatabase } from '../src/storage/sql.ts';
import { RoundTripCounter, viaProxy } from './wire.ts';

const event = (cid: string, overrides: Record<string, unknown> = {}, n = 0): PreparedEvent =>
  prepareEvent(
    minimalEvent({ correlation_id: cid, ...overrides }, n) as unknown as AuditEventRequest,
  );

describe('CopyBinaryRows', () => {
  const rejected: Array<[string, Partial<PreparedEvent>]> = [
    ['an address (inet stays with the text format)', { actor_ip: '10.0.0.1' }],
    ['a timestamp not in the canonical form', { event_timestamp: '2026-01-01T00:00:00Z' }],
    ['year 0000', { event_timestamp: '0000-01-01T00:00:00.000000Z', event_date: '0000-01-01' }],
    ['February 30', { event_timestamp: '2026-02-30T00:00:00.000000Z', event_date: '2026-02-30' }],
    ['an event_date other than the timestamp’s', { event_date: '2026-01-02' }],
    ['a uuid without dashes', { event_id: '3f1c2a9e7b4d4e8a9c215d6f0a1b2c3d' }],
    ['a uuid with a non-hex digit', { parent_event_id: '3f1c2a9e-7b4d-4e8a-9c21-5d6f0a1b2c3g' }],
    ['a duration past int4', { duration_ms: 2 ** 31 }],
    ['a fractional duration', { duration_ms: 1.5 }],
  ];
  const ok: PreparedEvent = {
    ...event('c', { event_timestamp: '2026-01-01T00:00:00.000Z' }),
    parent_event_id: randomUUID(),
    parent_event_date: '2026-01-01',
  };
  it('writes an event with a binary form of every value', () => {
    const rows = new CopyBinaryRows(64);
    const before = rows.bytes().length;
    expect(rows.add(ok, 'h', '', 'sha256-unkeyed', 1)).toBe(true);
    expect(rows.bytes().length).toBeGreaterThan(before);
  });
  it.each(rejected)('writes nothing for %s', (_what, change) => {
    const rows = new CopyBinaryRows(64);
    const before = rows.bytes().length;
    expect(rows.add({ ...ok, ...change }, 'h', '', 'sha256-unkeyed', 1)).toBe(false);
    expect(rows.bytes().length).toBe(before);
  });
});

describe('binary COPY into PostgreSQL', () => {
  let db: ScratchDatabase;
  let sql: SqlDatabase;
  let store: AuditEventStore;
  let proxy: RoundTripCounter;
  // The COPY statements sent (their text names the format).
  const copies = () => proxy.statements.filter((s) => s.startsWith('COPY'));

  beforeAll(async () => {
    db = await createScratchDatabase('ds_copybin');
    proxy = new RoundTripCounter();
    await proxy.start(new URL(db.connectionString));
    sql = openPostgres({ connectionString: viaProxy(db.connectionString, proxy.port) });
    store = await AuditEventStore.open(sql);
  });
  afterAll(async () => {
    await sql?.close();
    await proxy?.stop();
    await db?.drop();
  });

  const read = (cid: string) =>
    sql.query<Record<string, unknown>>(
      `SELECT event_id::text, event_version, to_char(event_timestamp AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS ts,
              to_char(event_date, 'YYYY-MM-DD') AS event_date, event_type, event_category, event_action,
              event_outcome, actor_type, actor_id, host(actor_ip) AS actor_ip, resource_type, resource_id,
              correlation_id, parent_event_id::text, to_char(parent_event_date, 'YYYY-MM-DD') AS parent_event_date,
              namespace, cluster_id, event_data::text AS event_data, severity, duration_ms, error_code,
              error_message, retention_days, is_sensitive, event_hash, previous_event_hash, hash_algorithm,
              chain_position::text AS chain_position
       FROM audit_events WHERE correlation_id = $1 ORDER BY chain_position`,
      [cid],
    );

  it('stores every column as written, at the edges of the calendar', async () => {
    const cid = `bin-${randomUUID()}`;
    const stamps = [
      '0001-01-01T00:00:00.000000Z',
      '1969-12-31T23:59:59.999999Z',
      '1999-12-31T23:59:59.999999Z',
      '2000-01-01T00:00:00.000000Z',
      '2024-02-29T12:34:56.789012Z',
      '9999-12-31T23:59:59.999999Z',
    ];
    const events = stamps.map((ts, n) =>
      event(cid, { event_timestamp: ts, namespace: n % 2 ? null : 'ns' }, n),
    );
    const parent = events[3]!;
    proxy.reset();
    await store.insertEvents(events);
    // Every nullable column set, text that the text format escapes, extreme integers.
    const full = {
      ...event(cid, {
        actor_id: 'tab\there "quoted" back\\slash\nnewline ü日本🙂',
        resource_id: '\\N',
        namespace: 'ns',
        cluster_id: 'cluster',
        severity: 'high',
        duration_ms: -(2 ** 31),
        error_code: 'E1',
        error_message: 'line1\r\nline2\\',
        is_sensitive: true,
        retention_days: 1,
        event_data: { event_type: 'test.event.recorded', s: 'a\\b\t"c"', u: 'ü🙂', n: 1.5e300 },
      }),
      parent_event_id: parent.event_id,
      parent_event_date: parent.event_date,
    };
    const max = event(cid, { duration_ms: 2 ** 31 - 1 }, 9);
    await store.insertEvents([full, max]);
    expect(copies()).toHaveLength(2);
    expect(copies().every((s) => s.endsWith('(FORMAT binary)'))).toBe(true);

    const rows = await read(cid);
    const written = [...events, full, max];
    expect(rows).toHaveLength(written.length);
    rows.forEach((r, i) => {
      const e = written[i]!;
      expect(r).toMatchObject({
        event_id: e.event_id,
        event_version: e.version,
        ts: e.event_timestamp,
        event_date: e.event_date,
        event_type: e.event_type,
        event_category: e.event_category,
        event_action: e.event_action,
        event_outcome: e.event_outcome,
        actor_type: e.actor_type,
        actor_id: e.actor_id,
        actor_ip: null,
        resource_type: e.resource_type,
        resource_id: e.resource_id,
        correlation_id: cid,
        parent_event_id: e.parent_event_id,
        parent_event_date: e.parent_event_date,
        namespace: e.namespace,
        cluster_id: e.cluster_id,
        severity: e.severity,
        duration_ms: e.duration_ms,
        error_code: e.error_code,
        error_message: e.error_message,
        retention_days: e.retention_days,
        is_sensitive: e.is_sensitive,
        hash_algorithm: 'sha256-unkeyed',
        chain_position: String(i + 1),
      });
      expect(JSON.parse(r.event_data as string)).toEqual(JSON.parse(e.event_data));
    });
    expect(await store.verifyChain(cid)).toMatchObject({
      is_valid: true,
      total_events: written.length,
      verified_events: written.length,
    });
  });

  it('grows its buffer for rows of multi-byte text', async () => {
    const cid = `wide-${randomUUID()}`;
    const wide = '日🙂'.repeat(100);
    const e = event(cid, {
      actor_id: wide,
      resource_id: wide,
      namespace: '🙂'.repeat(126),
      error_message: '日'.repeat(20_000),
      event_data: { event_type: 'test.event.recorded', s: '🙂'.repeat(5_000) },
    });
    const rows = new CopyBinaryRows(64);
    expect(rows.add(e, 'h'.repeat(64), '', 'sha256-unkeyed', 1)).toBe(true);
    expect(rows.bytes().length).toBeGreaterThan(20_000 * 3 + 5_000 * 4);
    proxy.reset();
    await store.insertEvents([e, event(cid, {}, 1)]);
    expect(copies()[0]).toMatch(/\(FORMAT binary\)$/);
    const [row] = await read(cid);
    expect(row).toMatchObject({
      actor_id: wide,
      resource_id: wide,
      namespace: e.namespace,
      error_message: e.error_message,
    });
    expect(await store.verifyChain(cid)).toMatchObject({ is_valid: true, total_events: 2 });
  });

  it('writes positions past 2^53 exactly', async () => {
    const cid = `big-${randomUUID()}`;
    const head = 2n ** 53n + 1n;
    await sql.query(
      `INSERT INTO audit_event_chain_heads (correlation_id, chain_position, event_id, event_hash)
       VALUES ($1, $2, $3, 'h')`,
      [cid, String(head), randomUUID()],
    );
    proxy.reset();
    await store.insertEvents([event(cid, {}, 0), event(cid, {}, 1)]);
    expect(copies()[0]).toMatch(/\(FORMAT binary\)$/);
    const rows = await read(cid);
    expect(rows.map((r) => r.chain_position)).toEqual([String(head + 1n), String(head + 2n)]);
  });

  it('sends a batch holding an address in the text format', async () => {
    const cid = `ip-${randomUUID()}`;
    proxy.reset();
    await store.insertEvents([
      event(cid, {}, 0),
      event(cid, { actor_ip: '2001:DB8::0:1' }, 1),
      event(cid, { actor_ip: '192.0.2.7' }, 2),
    ]);
    expect(copies()).toHaveLength(1);
    expect(copies()[0]).not.toMatch(/binary/);
    const rows = await read(cid);
    expect(rows.map((r) => r.actor_ip)).toEqual([null, '2001:db8::1', '192.0.2.7']);
    expect(await store.verifyChain(cid)).toMatchObject({ is_valid: true, total_events: 3 });
  });
});
