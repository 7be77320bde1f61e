// SPDX-License-Identifier: Apache-2.0
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { computeProvenanceHash, readProvenance } from '@kubernaut/audit-provenance';
import { AUDIT_EVENT_DATA_PROVENANCE_KEY } from '@kubernaut/audit-semantic-conventions';
import type { AuditEventRequest } from '@kubernaut/datastorage-contract';
import { ProvenanceStamper } from '@kubernaut/exporter-kubernaut-audit/experimental';
import { sampleEvent, storedForm } from '@kubernaut/test-kit';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { analyze, type StoredEvent } from '../src/analyze.ts';
import { formatReport } from '../src/format.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function stampMany(
  n: number,
  stamper = ProvenanceStamper.open({ producerId: 'prod-a' }),
): AuditEventRequest[] {
  return Array.from({ length: n }, (_, i) => stamper.stamp(sampleEvent(i)));
}

function prov(e: StoredEvent | AuditEventRequest): Record<string, unknown> {
  return (e.event_data as Record<string, unknown>)[AUDIT_EVENT_DATA_PROVENANCE_KEY] as Record<
    string,
    unknown
  >;
}

describe('analyze', () => {
  it('reports a clean trail as complete, newest-first input and all', () => {
    const stored = stampMany(10)
      .map((e) => storedForm(e))
      .reverse();
    const r = analyze({ events: stored });
    expect(r.complete).toBe(true);
    const p = r.producers[0];
    expect(p).toMatchObject({
      producer_id: 'prod-a',
      delivered: 10,
      first_seq: 1,
      last_seq: 10,
      gaps: [],
      missing: 0,
    });
    expect(p?.duplicates).toEqual([]);
    expect(p?.chain_breaks).toEqual([]);
    expect(p?.sessions).toHaveLength(1);
    expect(formatReport(r)).toContain('COMPLETE');
  });

  it('reports a lost record as a gap with its seq', () => {
    const stored = stampMany(10).map((e) => storedForm(e));
    stored.splice(4, 2); // seqs 5 and 6
    const r = analyze({ events: stored });
    expect(r.complete).toBe(false);
    expect(r.producers[0]?.gaps).toMatchObject([{ from: 5, to: 6 }]);
    expect(r.producers[0]?.missing).toBe(2);
    expect(r.producers[0]?.chain_breaks).toEqual([]); // not checked across a gap
    expect(formatReport(r)).toMatch(/lost seqs \(gaps\):\s+5-6 \(2 records\)/);
  });

  it('reports a resent record as a duplicate, not a conflict', () => {
    const events = stampMany(5);
    const stored = events.map((e) => storedForm(e));
    stored.push(storedForm(events[2] as AuditEventRequest));
    const r = analyze({ events: stored });
    expect(r.complete).toBe(false);
    expect(r.producers[0]?.duplicates).toMatchObject([{ seq: 3, conflicting: false }]);
    expect(r.producers[0]?.duplicates[0]?.event_ids).toHaveLength(2);
    expect(r.producers[0]?.records_seen).toBe(6);
    // The same event_id read twice (overlapping windows) is not a duplicate.
    expect(analyze({ events: [...stored.slice(0, 5), ...stored.slice(0, 5)] }).complete).toBe(true);
  });

  it('reports reordering by event_timestamp without failing the trail', () => {
    const s = ProvenanceStamper.open({ producerId: 'prod-a' });
    const a = s.stamp(sampleEvent(1, { event_timestamp: '2026-11-22T10:00:02.000000Z' }));
    const b = s.stamp(sampleEvent(2, { event_timestamp: '2026-11-22T10:00:01.000000Z' }));
    const r = analyze({ events: [storedForm(a), storedForm(b)] });
    expect(r.complete).toBe(true);
    expect(r.producers[0]?.out_of_order).toMatchObject([{ seq: 2, previous_seq: 1 }]);
  });

  it('reports an altered event as a chain break of kind altered', () => {
    const stored = stampMany(5).map((e) => storedForm(e));
    (stored[3]?.event_data as Record<string, unknown>).n = 12345;
    const r = analyze({ events: stored });
    expect(r.complete).toBe(false);
    expect(r.producers[0]?.chain_breaks).toMatchObject([{ seq: 4, kind: 'altered' }]);
  });

  it('reports a removal hidden by renumbering and rehashing as a link break', () => {
    const stored = stampMany(6).map((e) => storedForm(e));
    stored.splice(2, 1); // remove seq 3, then renumber 4.. to 3.. and recompute their hashes
    for (const e of stored.slice(2)) {
      const p = prov(e);
      p.seq = (p.seq as number) - 1;
      p.hash = computeProvenanceHash(e);
    }
    const r = analyze({ events: stored });
    expect(r.producers[0]?.gaps).toEqual([]);
    expect(r.complete).toBe(false);
    // Every renumbered record links to a hash that is no longer there; the first names the removal.
    expect(r.producers[0]?.chain_breaks[0]).toMatchObject({ seq: 3, kind: 'link' });
    expect(r.producers[0]?.chain_breaks.every((b) => b.kind === 'link')).toBe(true);
  });

  it('counts dead-lettered seqs as rejected, not lost, and links the chain across them', () => {
    const s = ProvenanceStamper.open({ producerId: 'prod-a' });
    const e1 = s.stamp(sampleEvent(1));
    const r2 = s.reserveRejected('invalid'); // rejected at emit: seq 2, not chained
    const e3 = s.stamp(sampleEvent(3));
    const e4 = s.stamp(sampleEvent(4)); // rejected by the server: dead-lettered with its hash
    const e5 = s.stamp(sampleEvent(5));
    const events = [e1, e3, e5].map((e) => storedForm(e));
    const withoutDl = analyze({ events });
    expect(withoutDl.producers[0]?.gaps).toMatchObject([
      { from: 2, to: 2 },
      { from: 4, to: 4 },
    ]);
    const r = analyze({
      events,
      deadLetters: [
        { ...r2, hash: null, reason: 'invalid' },
        {
          producer_id: 'prod-a',
          session_id: s.sessionId,
          seq: 4,
          hash: readProvenance(e4)?.hash ?? '',
          reason: 'rejected',
        },
      ],
    });
    expect(r.complete).toBe(true);
    expect(r.producers[0]?.rejected).toMatchObject([
      { from: 2, to: 2 },
      { from: 4, to: 4 },
    ]);
    expect(r.producers[0]?.rejected_count).toBe(2);
    // Seqs are labelled as seqs, counts as counts.
    const text = formatReport(r);
    expect(text).toContain('rejected (dead letters): 2');
    expect(text).toMatch(/rejected seqs:\s+2, 4 \(2 records, dead-lettered\)/);
  });

  it('a report with nothing verified is never complete', () => {
    expect(analyze({ events: [] })).toMatchObject({ verdict: 'empty', complete: false });
    const plain = { ...storedForm(sampleEvent(1)), event_data: { event_type: 'x' } };
    expect(analyze({ events: [plain] })).toMatchObject({ verdict: 'empty', complete: false });
    expect(formatReport(analyze({ events: [] }))).toContain('NOTHING VERIFIED');
  });

  it('counts replayed dead letters (fixed ones re-hashed) as delivered', () => {
    const s = ProvenanceStamper.open({ producerId: 'prod-a' });
    const e1 = s.stamp(sampleEvent(1));
    const e2 = s.stamp(sampleEvent(2));
    const e3 = s.stamp(sampleEvent(3));
    const p2 = readProvenance(e2);
    // The operator fixed e2 and replayed it: same provenance, new hash.
    const fixed = JSON.parse(JSON.stringify(e2)) as AuditEventRequest;
    fixed.event_action = 'fixed';
    const fp = prov(fixed);
    fp.hash = computeProvenanceHash(fixed as never);
    const events = [e1, fixed, e3].map((e) => storedForm(e));
    const noReplayInfo = analyze({ events });
    expect(noReplayInfo.producers[0]?.chain_breaks.map((b) => b.kind)).toEqual(['link']);
    const r = analyze({
      events,
      deadLetters: [
        {
          producer_id: 'prod-a',
          session_id: s.sessionId,
          seq: 2,
          hash: p2?.hash ?? '',
          reason: 'rejected',
        },
      ],
      replays: [
        {
          producer_id: 'prod-a',
          session_id: s.sessionId,
          seq: 2,
          original_hash: p2?.hash ?? '',
          hash: fp.hash as string,
          fixed: true,
        },
      ],
    });
    expect(r.complete).toBe(true);
    expect(r.producers[0]?.replayed).toBe(1);
    expect(r.producers[0]?.rejected_count).toBe(0);
  });

  it('does not report a break at a session boundary (a clean shutdown, then a new session)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kn-an-'));
    dirs.push(dir);
    const s1 = ProvenanceStamper.open({ directory: dir, producerId: 'prod-b' });
    const first = stampMany(3, s1);
    s1.close(true);
    const s2 = ProvenanceStamper.open({ directory: dir, producerId: 'prod-b' });
    const second = stampMany(3, s2);
    s2.close(true);
    const r = analyze({ events: [...first, ...second].map((e) => storedForm(e)) });
    expect(r.complete).toBe(true);
    expect(r.producers[0]?.sessions.map((x) => [x.first_seq, x.last_seq])).toEqual([
      [1, 3],
      [4, 6],
    ]);
  });

  it('a crash: the unaccounted range is reported apart from gaps; a clean shutdown leaves none', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kn-an-'));
    dirs.push(dir);
    // Session 1 stamps 1..3; seqs 4..6 are handed out at emit and lost with the batch window.
    const s1 = ProvenanceStamper.open({ directory: dir, producerId: 'prod-c', blockSize: 512 });
    const first = stampMany(3, s1);
    for (let i = 0; i < 3; i++) s1.next();
    // SIGKILL: no close. Session 2 declares the crash on its first record and chains on.
    const s2 = ProvenanceStamper.open({ directory: dir, producerId: 'prod-c', blockSize: 512 });
    const second = stampMany(3, s2);
    s2.close(true);
    // Session 3 after a clean shutdown: no declaration, no gap.
    const s3 = ProvenanceStamper.open({ directory: dir, producerId: 'prod-c', blockSize: 512 });
    const third = stampMany(2, s3);
    s3.close(true);
    const r = analyze({ events: [...first, ...second, ...third].map((e) => storedForm(e)) });
    const p = r.producers[0];
    expect(p?.crash_windows).toEqual([
      { session_id: s1.sessionId, from: 4, to: 512, unaccounted: 509, declared_by: s2.sessionId },
    ]);
    expect(p?.crash_unaccounted).toBe(509);
    expect(p?.gaps).toEqual([]);
    expect(p?.chain_breaks).toEqual([]); // the chain links across the crash window
    expect(p?.sessions.map((x) => [x.first_seq, x.last_seq])).toEqual([
      [1, 3],
      [513, 515],
      [516, 517],
    ]);
    expect(r.complete).toBe(true);
    expect(r.totals.crash_unaccounted).toBe(509);
    expect(formatReport(r)).toContain(
      `unaccounted at a crash of session ${s1.sessionId}: seqs 4-512, up to 509 record(s) lost`,
    );
    // A record deleted below what reached the spool is still a gap.
    const withGap = analyze({
      events: [...first.slice(0, 1), ...first.slice(2), ...second].map((e) => storedForm(e)),
    });
    expect(withGap.producers[0]?.gaps).toEqual([expect.objectContaining({ from: 2, to: 2 })]);
    expect(withGap.complete).toBe(false);
  });

  it('lists but does not judge gaps in a filtered view (a producer spans correlations)', () => {
    const stored = stampMany(9).map((e) => storedForm(e));
    const corr0 = stored.filter((e) => e.correlation_id === 'corr-0'); // seqs 1, 4, 7
    const r = analyze({ events: corr0, filter: 'correlation_id=corr-0' });
    expect(r.complete).toBe(true);
    expect(r.filter).toBe('correlation_id=corr-0');
    expect(r.producers[0]).toMatchObject({ gaps_judged: false, missing: 4 });
    expect(r.totals.missing).toBe(0);
    expect(formatReport(r)).toContain('seqs not in view');
    expect(analyze({ events: corr0 }).complete).toBe(false);
  });

  it('only judges the seq range the window shows', () => {
    const stored = stampMany(8)
      .map((e) => storedForm(e))
      .slice(3); // seqs 4..8
    const r = analyze({ events: stored });
    expect(r.complete).toBe(true);
    expect(r.producers[0]).toMatchObject({ first_seq: 4, last_seq: 8 });
  });

  it('lists events without provenance separately and reports invalid server chains', () => {
    const plain = storedForm(sampleEvent(7));
    const r = analyze({
      events: [...stampMany(2).map((e) => storedForm(e)), plain],
      serverChains: [
        { correlation_id: 'corr-1', is_valid: false, tampered_events: 1, message: 'broken' },
      ],
    });
    expect(r.without_provenance.count).toBe(1);
    expect(r.without_provenance.events[0]?.event_id).toBe(plain.event_id);
    expect(r.producers[0]?.complete).toBe(true);
    expect(r.complete).toBe(false); // the server's chain is broken
    expect(formatReport(r)).toContain('corr-1');
  });

  it('reports a conflicting duplicate (a seq reused with other content)', () => {
    const a = stampMany(3);
    const b = stampMany(3); // a second in-memory stamper of the same producer id
    const r = analyze({ events: [...a, b[1] as AuditEventRequest].map((e) => storedForm(e)) });
    expect(r.producers[0]?.duplicates).toMatchObject([{ seq: 2, conflicting: true }]);
    expect(r.complete).toBe(false);
  });

  it('reports exactly the deleted seqs as gaps and the resent ones as duplicates (property)', () => {
    const base = stampMany(40).map((e) => storedForm(e));
    fc.assert(
      fc.property(
        fc.integer({ min: 3, max: 40 }),
        fc.uniqueArray(fc.integer({ min: 2, max: 39 }), { maxLength: 12 }),
        fc.uniqueArray(fc.integer({ min: 1, max: 40 }), { maxLength: 5 }),
        (n, del, dup) => {
          const deleted = new Set(del.filter((s) => s < n));
          const kept = base.slice(0, n).filter((_, i) => !deleted.has(i + 1));
          const resent = dup.filter((s) => s <= n && !deleted.has(s));
          const events = [
            ...kept,
            ...resent.map((s) => ({ ...(base[s - 1] as StoredEvent), event_id: `dup-${s}` })),
          ];
          const r = analyze({ events: events.reverse() });
          const p = r.producers[0];
          const missing = (p?.gaps ?? []).flatMap((g) =>
            Array.from({ length: g.to - g.from + 1 }, (_, i) => g.from + i),
          );
          expect(missing).toEqual([...deleted].sort((a, b) => a - b));
          expect(p?.duplicates.map((d) => d.seq)).toEqual([...resent].sort((a, b) => a - b));
          expect(p?.chain_breaks).toEqual([]);
          expect(r.complete).toBe(deleted.size === 0 && resent.length === 0);
        },
      ),
      { numRuns: 200 },
    );
  });
});
