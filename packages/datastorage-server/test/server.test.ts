// SPDX-License-Identifier: Apache-2.0
/*
 * The reference DataStorage server against both backends (PGlite and PostgreSQL): writes,
 * validation, query, hash chain, tamper detection, immutability, partitions and readiness.
 */
import { randomUUID } from 'node:crypto';
import { canonicalize } from '@kubernaut/audit-provenance';
import {
  type AuditEventRequest,
  eventIndexFromProblem,
  isBatchSizeExceeded,
  MAX_BATCH_BYTES,
  PROBLEM_CONTENT_TYPE,
} from '@kubernaut/datastorage-contract';
import {
  at,
  minimalEvent,
  postBatch,
  queryEvents,
  request,
  verifyChain,
} from '@kubernaut/test-kit';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { prepareEvent } from '../src/events.ts';
import { AuditEventStore } from '../src/storage/repository.ts';
import { backends, type Harness } from './backends.ts';

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const HOUR = 3_600_000;
const DAY = 24 * HOUR;

describe.each(backends)('DataStorage server on $name', (backend) => {
  let h: Harness;
  let base: string;

  beforeAll(async () => {
    h = await backend.start();
    base = h.server.url;
  });
  afterAll(async () => {
    await h?.stop();
  });

  describe('writes', () => {
    it('stores a single event: 201 with id and timestamp, defaults applied', async () => {
      const ev = minimalEvent({ event_timestamp: '2026-01-01T00:00:00Z' });
      ev.event_timestamp = at(-1000).replace('Z', '').concat('456+00:00');
      const r = await request(base, 'POST', '/api/v1/audit/events', ev);
      expect(r.status).toBe(201);
      expect(r.body.event_id).toMatch(UUID_RE);
      expect(r.body.event_timestamp).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}456Z$/);
      expect(r.body.message).toBeTypeOf('string');

      const q = await queryEvents(base, { correlation_id: ev.correlation_id as string });
      expect(q.data).toHaveLength(1);
      const stored = q.data[0]!;
      expect(stored.event_id).toBe(r.body.event_id);
      expect(stored).toMatchObject({
        version: '1.0',
        event_type: ev.event_type,
        event_category: 'gateway',
        actor_type: 'service',
        actor_id: 'gateway-service',
        resource_type: 'gateway',
        resource_id: ev.correlation_id,
        retention_days: 2555,
        is_sensitive: false,
        event_data: ev.event_data,
        event_timestamp: r.body.event_timestamp,
      });
      expect(stored.event_hash).toMatch(/^[0-9a-f]{64}$/);
      expect(stored.previous_event_hash).toBe('');
    });

    it('stores a batch and answers the ids in input order', async () => {
      const cid = `batch-${randomUUID()}`;
      const events = [0, 1, 2, 3, 4].map((n) =>
        minimalEvent(
          { correlation_id: n % 2 ? cid : `${cid}-b`, event_timestamp: at(-10_000 + n) },
          n,
        ),
      );
      const r = await postBatch(base, events);
      expect(r.status).toBe(201);
      const ids = r.body.event_ids as string[];
      expect(ids).toHaveLength(5);
      expect(new Set(ids).size).toBe(5);
      for (const cidX of [cid, `${cid}-b`]) {
        const q = await queryEvents(base, { correlation_id: cidX });
        for (const e of q.data) expect(ids[e.event_data.n!]).toBe(e.event_id);
      }
    });

    it('keeps every optional field and hashes an IPv6 actor_ip in its stored form', async () => {
      const parent = await request(base, 'POST', '/api/v1/audit/events', minimalEvent());
      const ev = minimalEvent({
        actor_type: 'user',
        actor_id: 'alice',
        actor_ip: '2001:DB8:0:0:0:0:0:1',
        resource_type: 'Pod',
        resource_id: 'api-7d9',
        parent_event_id: parent.body.event_id,
        namespace: 'prod',
        cluster_id: 'cluster-1',
        severity: 'critical',
        duration_ms: 42,
        error_code: 'E42',
        error_message: 'boom',
        retention_days: 30,
        is_sensitive: true,
      });
      expect((await postBatch(base, [ev])).status).toBe(201);
      const q = await queryEvents(base, { correlation_id: ev.correlation_id as string });
      expect(q.data[0]).toMatchObject({
        actor_type: 'user',
        actor_id: 'alice',
        actor_ip: '2001:db8::1',
        parent_event_id: parent.body.event_id,
        namespace: 'prod',
        cluster_id: 'cluster-1',
        severity: 'critical',
        duration_ms: 42,
        error_code: 'E42',
        error_message: 'boom',
        retention_days: 30,
        is_sensitive: true,
      });
      expect(q.data[0]!.parent_event_date).toMatch(/^\d{4}-\d{2}-\d{2}$/);
      expect((await verifyChain(base, ev.correlation_id as string)).is_valid).toBe(true);
    });

    it('accepts exactly 500 events and rejects 501 with batch-size-exceeded', async () => {
      const cid = `max-${randomUUID()}`;
      const events = Array.from({ length: 501 }, (_, n) =>
        minimalEvent({ correlation_id: cid }, n),
      );
      const tooMany = await postBatch(base, events);
      expect(tooMany.status).toBe(400);
      expect(tooMany.contentType).toBe(PROBLEM_CONTENT_TYPE);
      expect(isBatchSizeExceeded(tooMany.body)).toBe(true);
      expect(tooMany.body.type).toBe('https://kubernaut.ai/problems/batch-size-exceeded');

      const ok = await postBatch(base, events.slice(0, 500));
      expect(ok.status).toBe(201);
      expect(ok.body.event_ids).toHaveLength(500);
      const q = await queryEvents(base, { correlation_id: cid, limit: 1 });
      expect(q.pagination.total).toBe(500);
    });

    it('rejects a body over 5 MiB with 413', async () => {
      const big = 'x'.repeat(200 * 1024);
      const events = Array.from({ length: 27 }, () =>
        minimalEvent({ event_data: { event_type: 'test.event.recorded', big } }),
      );
      const body = JSON.stringify(events);
      expect(Buffer.byteLength(body)).toBeGreaterThan(MAX_BATCH_BYTES);
      const r = await postBatch(base, body);
      expect(r.status).toBe(413);
      expect(r.contentType).toBe(PROBLEM_CONTENT_TYPE);
      // Just under the limit is accepted.
      const fits = events.slice(0, 24);
      expect(Buffer.byteLength(JSON.stringify(fits))).toBeLessThan(MAX_BATCH_BYTES);
      expect((await postBatch(base, fits)).status).toBe(201);
    });

    it('is all-or-nothing: one invalid event rejects the batch and is named by index', async () => {
      const cid = `aon-${randomUUID()}`;
      const events = [0, 1, 2, 3, 4].map((n) => minimalEvent({ correlation_id: cid }, n));
      events[3]!.event_outcome = 'maybe';
      const r = await postBatch(base, events);
      expect(r.status).toBe(400);
      expect(r.contentType).toBe(PROBLEM_CONTENT_TYPE);
      expect(r.body.detail).toMatch(/^event at index 3: .*event_outcome/);
      expect(eventIndexFromProblem(r.body)).toBe(3);
      const q = await queryEvents(base, { correlation_id: cid });
      expect(q.pagination.total).toBe(0);
    });

    it.each([
      ['61 minutes in the future', at(61 * 60_000), 400],
      ['59 minutes in the future', at(59 * 60_000), 201],
      ['6 days old', at(-6 * DAY), 201],
      ['7 days and a minute old', at(-7 * DAY - 60_000), 400],
    ])('enforces the timestamp window: %s', async (_label, ts, status) => {
      const events = [minimalEvent(), minimalEvent({ event_timestamp: ts })];
      const r = await postBatch(base, events);
      expect(r.status).toBe(status);
      if (status === 400) expect(eventIndexFromProblem(r.body)).toBe(1);
    });

    it('enforces the event_data limits: 256 KiB and 10 levels', async () => {
      let deep: Record<string, unknown> = { leaf: true };
      for (let i = 0; i < 10; i++) deep = { d: deep };
      const tooDeep = minimalEvent({ event_data: { event_type: 'test.event.recorded', deep } });
      const r1 = await postBatch(base, [minimalEvent(), tooDeep]);
      expect(r1.status).toBe(400);
      expect(eventIndexFromProblem(r1.body)).toBe(1);
      expect(r1.body.detail).toMatch(/deeper than 10/);
      const big = minimalEvent({
        event_data: { event_type: 'test.event.recorded', s: 'x'.repeat(256 * 1024) },
      });
      const r2 = await postBatch(base, [big]);
      expect(r2.status).toBe(400);
      expect(eventIndexFromProblem(r2.body)).toBe(0);
      expect(r2.body.detail).toMatch(/over the limit/);
    });

    it('rejects a parent_event_id that does not exist, with its index', async () => {
      const parent = await postBatch(base, [minimalEvent()]);
      const parentId = (parent.body.event_ids as string[])[0]!;
      const good = minimalEvent({ parent_event_id: parentId });
      const bad = minimalEvent({ parent_event_id: randomUUID() });
      const r = await postBatch(base, [good, bad]);
      expect(r.status).toBe(400);
      expect(r.body.detail).toBe('event at index 1: parent event does not exist');
      expect((await postBatch(base, [good])).status).toBe(201);
      const q = await queryEvents(base, { correlation_id: good.correlation_id as string });
      expect(q.data[0]!.parent_event_id).toBe(parentId);
    });

    it('stores text with tabs, newlines, backslashes and a literal \\N exactly as sent', async () => {
      const ev = minimalEvent({
        correlation_id: `it's a \\ "quote"; -- ${randomUUID()}`,
        actor_id: 'a\tb',
        resource_id: '\\N',
        error_message: 'line 1\nline 2\r\n\\ end\\',
        namespace: 'tab\there',
        event_data: { event_type: 'test.event.recorded', s: 'q"\\\t\n', k: { 'a\\b': '\\N' } },
      });
      expect((await postBatch(base, [ev])).status).toBe(201);
      const q = await queryEvents(base, { correlation_id: ev.correlation_id as string });
      expect(q.data[0]).toMatchObject({
        actor_id: ev.actor_id,
        resource_id: ev.resource_id,
        error_message: ev.error_message,
        namespace: ev.namespace,
        event_data: ev.event_data,
      });
      expect((await verifyChain(base, ev.correlation_id as string)).is_valid).toBe(true);
    });

    it('answers 400 (not 500) for strings the database cannot store', async () => {
      const nul = minimalEvent({
        event_data: { event_type: 'test.event.recorded', s: 'a\u0000b' },
      });
      const r = await postBatch(base, [minimalEvent(), nul]);
      expect(r.status).toBe(400);
      expect(eventIndexFromProblem(r.body)).toBe(1);
      const lone = await postBatch(base, [minimalEvent({ actor_id: 'x\ud800' })]);
      expect(lone.status).toBe(400);
      const zone = await postBatch(base, [minimalEvent({ actor_ip: 'fe80::1%eth0' })]);
      expect(zone.status).toBe(400);
    });

    it.each([
      ['malformed JSON', '[{"version":', 400, 'invalid_request'],
      ['a single object', JSON.stringify(minimalEvent()), 400, 'invalid_request'],
      ['an empty array', '[]', 400, 'validation-error'],
      ['a non-object element', '[42]', 400, 'validation-error'],
    ])('rejects %s on the batch endpoint as RFC 7807', async (_label, body, status, type) => {
      const r = await postBatch(base, body);
      expect(r.status).toBe(status);
      expect(r.contentType).toBe(PROBLEM_CONTENT_TYPE);
      expect(r.body.type).toBe(`https://kubernaut.ai/problems/${type}`);
      expect(r.body.status).toBe(status);
    });
  });

  describe('routing', () => {
    it('answers 404 for unknown paths and 405 with Allow for wrong methods', async () => {
      const nf = await request(base, 'GET', '/api/v1/nothing');
      expect(nf.status).toBe(404);
      expect(nf.contentType).toBe(PROBLEM_CONTENT_TYPE);
      const na = await request(base, 'DELETE', '/api/v1/audit/events/batch');
      expect(na.status).toBe(405);
      expect(na.contentType).toBe(PROBLEM_CONTENT_TYPE);
      expect(na.headers.get('allow')).toBe('POST');
    });

    it('answers readyz with 200 while the database answers', async () => {
      const r = await request(base, 'GET', '/readyz');
      expect(r.status).toBe(200);
      expect(r.body.status).toBe('ready');
    });
  });

  describe('query', () => {
    const cid = `query-${randomUUID()}`;
    const type = `query.test.${randomUUID().slice(0, 8)}`;
    beforeAll(async () => {
      const spec: Array<[number, string, string, string | undefined]> = [
        [-5 * HOUR, 'gateway', 'success', 'low'],
        [-4 * HOUR, 'notification', 'failure', 'high'],
        [-3 * HOUR, 'gateway', 'pending', 'high'],
        [-2 * HOUR, 'analysis', 'success', undefined],
        [-1 * HOUR, 'gateway', 'failure', 'low'],
        [-1000, 'gateway', 'success', 'critical'],
      ];
      const events = spec.map(([offset, category, outcome, severity], n) =>
        minimalEvent(
          {
            correlation_id: cid,
            event_type: n === 5 ? `${type}.other` : type,
            event_timestamp: at(offset),
            event_category: category,
            event_outcome: outcome,
            ...(severity ? { severity } : {}),
          },
          n,
        ),
      );
      expect((await postBatch(base, events)).status).toBe(201);
    });
    const ns = (data: Array<{ event_data: { n?: number } }>) => data.map((e) => e.event_data.n);

    it('returns events newest first with pagination', async () => {
      const all = await queryEvents(base, { correlation_id: cid });
      expect(ns(all.data)).toEqual([5, 4, 3, 2, 1, 0]);
      expect(all.pagination).toEqual({ limit: 50, offset: 0, total: 6, has_more: false });
      const page = await queryEvents(base, { correlation_id: cid, limit: 2, offset: 2 });
      expect(ns(page.data)).toEqual([3, 2]);
      expect(page.pagination).toEqual({ limit: 2, offset: 2, total: 6, has_more: true });
      const last = await queryEvents(base, { correlation_id: cid, limit: 2, offset: 4 });
      expect(last.pagination.has_more).toBe(false);
    });

    it.each([
      [{ event_type: 'T' }, [4, 3, 2, 1, 0]],
      [{ event_category: 'gateway' }, [5, 4, 2, 0]],
      [{ event_outcome: 'failure' }, [4, 1]],
      [{ severity: 'high' }, [2, 1]],
      [{ since: '150m' }, [5, 4, 3]],
      [{ since: at(-4.5 * HOUR), until: at(-1.5 * HOUR) }, [3, 2, 1]],
      [{ until: at(-4.5 * HOUR).replace('Z', '+00:00') }, [0]],
      [{ event_category: 'gateway', event_outcome: 'success', since: '6h' }, [5, 0]],
    ])('filters by %o', async (filter, expected) => {
      const params: Record<string, string> = { correlation_id: cid };
      for (const [k, v] of Object.entries(filter)) params[k] = v === 'T' ? type : v;
      const q = await queryEvents(base, params);
      expect(q.status).toBe(200);
      expect(ns(q.data)).toEqual(expected);
      expect(q.pagination.total).toBe(expected.length);
    });

    it.each([
      ['limit=0'],
      ['limit=1001'],
      ['limit=ten'],
      ['offset=-1'],
      ['since=yesterday'],
      ['until=2026-13-45T99:00:00Z'],
      ['event_outcome=maybe'],
      ['detail_key=a-b&detail_value=x'],
    ])('rejects bad parameters (%s) with 400', async (qs) => {
      const r = await request(base, 'GET', `/api/v1/audit/events?${qs}`);
      expect(r.status).toBe(400);
      expect(r.contentType).toBe(PROBLEM_CONTENT_TYPE);
    });
  });

  describe('hash chain', () => {
    it('verifies chains of correlations interleaved across batches', async () => {
      const a = `chain-a-${randomUUID()}`;
      const b = `chain-b-${randomUUID()}`;
      const t0 = Date.now() - 60_000;
      let n = 0;
      const batch = () =>
        Array.from({ length: 10 }, () => {
          const i = n++;
          return minimalEvent(
            { correlation_id: i % 3 ? a : b, event_timestamp: new Date(t0 + i).toISOString() },
            i,
          );
        });
      for (let i = 0; i < 4; i++) expect((await postBatch(base, batch())).status).toBe(201);

      for (const cid of [a, b]) {
        const v = await verifyChain(base, cid);
        const q = await queryEvents(base, { correlation_id: cid, limit: 1000 });
        expect(v.total_events).toBe(q.pagination.total);
        expect(v.verified_events).toBe(v.total_events);
        expect(v.is_valid).toBe(true);
        expect(v.tampered_events).toEqual([]);
        // Each event links to the one before it (query is newest first).
        const chain = [...q.data].reverse();
        expect(chain[0]!.previous_event_hash).toBe('');
        for (let i = 1; i < chain.length; i++) {
          expect(chain[i]!.previous_event_hash).toBe(chain[i - 1]!.event_hash);
        }
      }
    });

    it('serialises concurrent batches of one correlation: no fork in the chain', async () => {
      // All events share one timestamp, so the chain order is the write order and any two
      // transactions chaining from the same head would show as broken links.
      const cid = `concurrent-${randomUUID()}`;
      const ts = at(-30_000);
      const batches = Array.from({ length: 6 }, (_, k) =>
        Array.from({ length: 10 }, (_, i) =>
          minimalEvent({ correlation_id: cid, event_timestamp: ts }, k * 10 + i),
        ),
      );
      const results = await Promise.all(batches.map((evs) => postBatch(base, evs)));
      for (const r of results) expect(r.status).toBe(201);
      const v = await verifyChain(base, cid);
      expect(v.total_events).toBe(60);
      expect(v.tampered_events).toEqual([]);
      expect(v.is_valid).toBe(true);
      const rows = await h.sql(
        `SELECT count(DISTINCT chain_position)::int AS n, count(DISTINCT previous_event_hash)::int AS p
         FROM audit_events WHERE correlation_id = '${cid}'`,
      );
      expect(rows[0]).toEqual({ n: 60, p: 60 });
    });

    it('keeps out-of-order writes of one correlation valid (chain order, not upstream timestamp order)', async () => {
      const cid = `late-${randomUUID()}`;
      expect(
        (await postBatch(base, [minimalEvent({ correlation_id: cid, event_timestamp: at(-1000) })]))
          .status,
      ).toBe(201);
      expect(
        (await postBatch(base, [minimalEvent({ correlation_id: cid, event_timestamp: at(-5000) })]))
          .status,
      ).toBe(201);
      expect((await verifyChain(base, cid)).is_valid).toBe(true);
    });

    it('verifies events whose event_data round-trips through JSONB (any JSON)', async () => {
      const cid = `jsonb-${randomUUID()}`;
      await fc.assert(
        fc.asyncProperty(fc.jsonValue({ stringUnit: 'grapheme', maxDepth: 5 }), async (v) => {
          fc.pre(!canonicalize(v).includes('\\u0000'));
          const ev = minimalEvent({
            correlation_id: cid,
            event_data: { event_type: 'test.event.recorded', v } as Record<string, unknown>,
          });
          const r = await postBatch(base, [ev]);
          expect(r.status).toBe(201);
        }),
        { numRuns: 40 },
      );
      const v = await verifyChain(base, cid);
      expect(v.total_events).toBeGreaterThan(0);
      expect(v.tampered_events).toEqual([]);
      expect(v.is_valid).toBe(true);
    });

    it('chains events of one correlation in a batch, whatever their timestamps', async () => {
      const cid = `order-${randomUUID()}`;
      const events = [3, 1, 2].map((k) =>
        minimalEvent({ correlation_id: cid, event_timestamp: at(-10_000 + k) }, k),
      );
      expect((await postBatch(base, events)).status).toBe(201);
      expect((await verifyChain(base, cid)).is_valid).toBe(true);
    });

    it('detects a row altered with the immutability trigger bypassed', async () => {
      const cid = `tamper-${randomUUID()}`;
      const events = [0, 1, 2].map((n) =>
        minimalEvent({ correlation_id: cid, event_timestamp: at(-5000 + n) }, n),
      );
      const r = await postBatch(base, events);
      const victim = (r.body.event_ids as string[])[1]!;
      expect((await verifyChain(base, cid)).is_valid).toBe(true);
      await h.sql(`BEGIN;
        SET LOCAL session_replication_role = replica;
        UPDATE audit_events SET event_data = '{"event_type":"test.event.recorded","n":99}'::jsonb
          WHERE event_id = '${victim}';
        COMMIT;`);
      const v = await verifyChain(base, cid);
      expect(v.is_valid).toBe(false);
      expect(v.total_events).toBe(3);
      expect(v.verified_events).toBe(2);
      expect(v.tampered_events.map((t) => t.event_id)).toEqual([victim]);
      expect(v.tampered_events[0]!.message).toMatch(/hash mismatch/i);
    });

    it('detects a deleted row as a broken link', async () => {
      const cid = `delete-${randomUUID()}`;
      const events = [0, 1, 2, 3].map((n) =>
        minimalEvent({ correlation_id: cid, event_timestamp: at(-5000 + n) }, n),
      );
      const r = await postBatch(base, events);
      const ids = r.body.event_ids as string[];
      await h.sql(`DELETE FROM audit_events WHERE event_id = '${ids[1]}'`);
      const v = await verifyChain(base, cid);
      expect(v.is_valid).toBe(false);
      expect(v.total_events).toBe(3);
      expect(v.tampered_events.map((t) => t.event_id)).toEqual([ids[2]]);
      expect(v.tampered_events[0]!.message).toMatch(/broken link/i);
    });

    it('blocks UPDATE of core columns through the immutability trigger', async () => {
      const r = await postBatch(base, [minimalEvent()]);
      const id = (r.body.event_ids as string[])[0]!;
      await expect(
        h.sql(`UPDATE audit_events SET event_outcome = 'failure' WHERE event_id = '${id}'`),
      ).rejects.toThrow(/immutable/);
      await expect(
        h.sql(`UPDATE audit_events SET event_data = '{}'::jsonb WHERE event_id = '${id}'`),
      ).rejects.toThrow(/immutable/);
      // Columns outside the core (legal hold) may change.
      await h.sql(`UPDATE audit_events SET legal_hold = true WHERE event_id = '${id}'`);
      const rows = await h.sql(`SELECT legal_hold FROM audit_events WHERE event_id = '${id}'`);
      expect(rows[0]!.legal_hold).toBe(true);
    });

    it('answers verify-chain problems: missing correlation_id 400, unknown one empty and valid', async () => {
      const missing = await request(base, 'POST', '/api/v1/audit/verify-chain', {});
      expect(missing.status).toBe(400);
      expect(missing.body.type).toBe('https://kubernaut.ai/problems/missing-correlation-id');
      const unknown = await verifyChain(base, `none-${randomUUID()}`);
      expect(unknown).toMatchObject({ is_valid: true, total_events: 0, verified_events: 0 });
    });
  });

  describe('partitions', () => {
    it('stores events of different months in their monthly partitions and chains across them', async () => {
      const cid = `months-${randomUUID()}`;
      const base0 = {
        version: '1.0',
        event_type: 't.p',
        event_category: 'gateway',
        event_action: 'a',
        event_outcome: 'success',
        correlation_id: cid,
        event_data: { event_type: 't.p' },
      } as const;
      const events = [
        '2031-01-31T23:59:59.999999Z',
        '2031-02-01T00:00:00Z',
        '2031-03-15T12:00:00+02:00',
      ].map((ts) => prepareEvent({ ...base0, event_timestamp: ts } as AuditEventRequest));
      // The store itself is used here: the API only accepts timestamps near "now". Three
      // stores (separate caches, separate connections on PostgreSQL) race for one partition.
      const others = [
        new AuditEventStore(h.server.store.db),
        new AuditEventStore(h.server.store.db),
      ];
      await Promise.all([
        h.server.store.ensurePartitions(['2031-02-10']),
        ...others.map((s) => s.ensurePartitions(['2031-02-20'])),
      ]);
      await h.server.store.insertEvents(events);
      const rows = await h.sql(
        `SELECT tableoid::regclass::text AS part FROM audit_events WHERE correlation_id = '${cid}' ORDER BY event_timestamp`,
      );
      expect(rows.map((r) => r.part)).toEqual([
        'audit_events_2031_01',
        'audit_events_2031_02',
        'audit_events_2031_03',
      ]);
      expect((await verifyChain(base, cid)).is_valid).toBe(true);
    });
  });
});
