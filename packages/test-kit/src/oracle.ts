// SPDX-License-Identifier: Apache-2.0
/*
 * Record-id oracle of the end-to-end suite: every emitted event carries
 * `event_data.e2e_run` (one value per test) and `event_data.e2e_id` (unique per record).
 * `readRun()` reads a run back through `GET /api/v1/audit/events` (paged, filtered by the
 * `e2e_run` detail) and `assertExactlyOnce()` checks it against the emitted ids: every id
 * present once, nothing extra, each correlation's DataStorage chain valid, and the
 * provenance (`event_data.audit_provenance`) of each producer gap- and duplicate-free.
 */
import { randomUUID } from 'node:crypto';
import type { LogRecord } from '@opentelemetry/api';
import { expect } from 'vitest';
import { type QueriedEvent, queryEvents, verifyChain } from './datastorage.ts';
import { auditLogRecord, realisticPayload, sampleEventTypes } from './payloads.ts';

/** A fresh run id: the `e2e_run` value of one test's events. */
export function newRun(label: string): string {
  return `${label}_${randomUUID().replaceAll('-', '').slice(0, 12)}`;
}

const TYPES = sampleEventTypes();

/**
 * A realistic audit LogRecord (one event type per category, in rotation) carrying the
 * oracle keys. `n` picks the event type.
 */
export function oracleRecord(run: string, id: string, correlationId: string, n: number): LogRecord {
  const type = TYPES[n % TYPES.length]!;
  return auditLogRecord({
    eventType: type.eventType,
    correlationId,
    data: realisticPayload(type.eventType, { e2e_run: run, e2e_id: id }),
  });
}

/** Every stored event of `run`, read page by page (newest first) through the query API. */
export async function readRun(base: string, run: string): Promise<QueriedEvent[]> {
  const out: QueriedEvent[] = [];
  const limit = 1000;
  for (let offset = 0; ; offset += limit) {
    const page = await queryEvents(base, {
      detail_key: 'e2e_run',
      detail_value: run,
      limit,
      offset,
    });
    expect(page.status).toBe(200);
    out.push(...page.data);
    expect(page.pagination.total).toBeGreaterThanOrEqual(out.length);
    if (page.pagination.has_more !== true) {
      expect(out.length).toBe(page.pagination.total);
      return out;
    }
  }
}

/** Occurrences of each `e2e_id` among `events`. */
export function countIds(events: readonly QueriedEvent[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const e of events) {
    const id = String(e.event_data.e2e_id);
    counts.set(id, (counts.get(id) ?? 0) + 1);
  }
  return counts;
}

interface Provenance {
  producer_id: string;
  seq: number;
}

/**
 * Reads `run` back and asserts it holds exactly `expectedIds`, each once; that DataStorage's
 * chain of every correlation is valid and covers all its stored events; and that each
 * producer's provenance seqs form one gap-free range without repeats. Returns the events.
 */
export async function assertExactlyOnce(
  base: string,
  run: string,
  expectedIds: readonly string[],
): Promise<QueriedEvent[]> {
  const events = await readRun(base, run);
  const counts = countIds(events);
  const duplicates = [...counts].filter(([, c]) => c > 1).map(([id]) => id);
  const missing = expectedIds.filter((id) => !counts.has(id));
  const unexpected = [...counts.keys()].filter((id) => !expectedIds.includes(id));
  expect(duplicates, `ids stored more than once (of ${events.length} events)`).toEqual([]);
  expect(missing, `ids never stored (of ${expectedIds.length} emitted)`).toEqual([]);
  expect(unexpected, 'ids stored but never emitted').toEqual([]);
  expect(events).toHaveLength(expectedIds.length);

  const perCorrelation = new Map<string, number>();
  for (const e of events) {
    perCorrelation.set(e.correlation_id, (perCorrelation.get(e.correlation_id) ?? 0) + 1);
  }
  for (const [cid, n] of perCorrelation) {
    const v = await verifyChain(base, cid);
    expect({ cid, valid: v.is_valid, total: v.total_events, tampered: v.tampered_events }).toEqual({
      cid,
      valid: true,
      total: n,
      tampered: [],
    });
  }

  const seqs = new Map<string, number[]>();
  for (const e of events) {
    const p = e.event_data.audit_provenance as Provenance | undefined;
    expect(p, `provenance of ${String(e.event_data.e2e_id)}`).toBeDefined();
    const list = seqs.get(p!.producer_id) ?? [];
    list.push(p!.seq);
    seqs.set(p!.producer_id, list);
  }
  for (const list of seqs.values()) {
    list.sort((a, b) => a - b);
    expect(new Set(list).size).toBe(list.length);
    expect(list.at(-1)! - list[0]! + 1).toBe(list.length);
  }
  return events;
}
