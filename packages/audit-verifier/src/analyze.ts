// SPDX-License-Identifier: Apache-2.0
/*
 * Completeness and integrity analysis of audit events read back from DataStorage (DESIGN §11).
 * Pure: the events, the local dead letters and replays, and the server's chain results in; a
 * report out. Per producer (and per session within it):
 *
 * - gaps: seqs between the lowest and the highest seq seen that were neither delivered nor
 *   dead-lettered — records that were lost (or deleted). Seqs before the first or after the
 *   last seen one are outside what the query window can prove and are not reported. In a
 *   filtered view (`filter`, e.g. one correlation id) gaps are listed but not judged;
 * - duplicates: one seq stored more than once (a resent batch); `conflicting` when the
 *   copies differ (a reused seq or a forgery);
 * - out-of-order: a record whose event_timestamp is earlier than that of the record with the
 *   previous seq (informational; does not make the trail incomplete);
 * - chain breaks: `altered` when the stored event no longer hashes to its provenance hash;
 *   `link` when its prev_hash is not the hash of the producer's previous record (a record
 *   was removed and the gap hidden, or a record was altered including its hash). The link is
 *   checked across session boundaries (the stamper persists the last hash) and is not checked
 *   across a gap (already reported) or before the first record the window shows;
 * - rejected: seqs found in the dead letters and not delivered: rejected, not lost;
 * - replayed: dead letters delivered later by `kubernaut-audit dead-letters replay`;
 * - crash windows: the first record a session stamps after its predecessor crashed declares
 *   `recovered: { session_id, spooled_through, reserved_through }`. Seqs in (spooled_through,
 *   reserved_through] were reserved by the crashed session and never reached its spool: handed
 *   out and lost in the batch window, or never handed out at all. They are reported as
 *   unaccounted at a crash ("up to N records lost"), distinct from gaps (lost or deleted below
 *   what reached the spool), do not make the trail incomplete, and the chain links across them;
 * - malformed stamps: an event whose provenance stamp is there but cannot be read was altered or
 *   corrupted after it was written (the exporter writes well-formed stamps only): listed, and
 *   the trail is incomplete (events with no stamp at all are only listed);
 * - signatures (with public keys or digest logs, ./signed.ts): signed chain heads verified,
 *   altered ranges, unsigned stretches and truncated tails; producers expected (given, or named
 *   by a digest log) and absent make the trail incomplete.
 */

import {
  asStampSignature,
  canonicalTimestamp,
  computeProvenanceHash,
  type Provenance,
  readProvenance,
  type SignedChainHead,
} from '@kubernaut/audit-provenance';
import { AUDIT_EVENT_DATA_PROVENANCE_KEY } from '@kubernaut/audit-semantic-conventions';
import { parseDateTime } from '@kubernaut/datastorage-contract';
import {
  checkSignatures,
  keyring,
  type SignatureReport,
  type SignedRecord,
  type TrustedKey,
} from './signed.ts';

/** A stored event as the query API returns it (only the fields used here are typed). */
export interface StoredEvent {
  event_id?: string;
  event_timestamp?: string;
  event_type?: string;
  correlation_id?: string;
  event_data?: unknown;
  [key: string]: unknown;
}

/** A dead-lettered record with provenance. */
export interface DeadLetterRecord {
  producer_id: string;
  session_id: string;
  seq: number;
  /** Its provenance hash; null when it was rejected at emit (not part of the chain). */
  hash: string | null;
  reason: string;
  time?: string;
}

/** A dead letter delivered by replay (sidecar `<dead-letter file>.replayed.jsonl`). */
export interface ReplayRecord {
  producer_id: string;
  session_id: string;
  seq: number;
  /** Hash the record had when stamped (the chain link); null when rejected at emit. */
  original_hash: string | null;
  /** Hash of what was replayed (differs from original_hash when the event was fixed). */
  hash: string;
  fixed: boolean;
  time?: string;
}

/** Result of DataStorage's own verify-chain for one correlation id. */
export interface ServerChainResult {
  correlation_id: string;
  is_valid: boolean;
  total_events?: number;
  tampered_events?: number;
  message?: string;
  /** Set when verify-chain could not be called. */
  error?: string;
}

export interface SeqRange {
  from: number;
  to: number;
  /** Session of the record before the gap. */
  after_session?: string;
  /** Session of the record after the gap. */
  before_session?: string;
}

export interface DuplicateSeq {
  seq: number;
  event_ids: string[];
  /** The copies differ (not a plain resend). */
  conflicting: boolean;
}

export interface OutOfOrder {
  seq: number;
  event_id: string;
  event_timestamp: string;
  previous_seq: number;
  previous_timestamp: string;
}

export interface ChainBreak {
  seq: number;
  event_id: string;
  kind: 'altered' | 'link';
  detail: string;
}

/** Seqs a crashed session reserved that never reached its spool (see the module comment). */
export interface CrashWindow {
  /** The session that crashed. */
  session_id: string;
  from: number;
  to: number;
  /** Seqs of the window neither delivered nor dead-lettered: at most this many records lost. */
  unaccounted: number;
  /** The session whose first record declared it. */
  declared_by: string;
}

export interface SessionReport {
  session_id: string;
  first_seq: number;
  last_seq: number;
  /** Distinct seqs delivered by this session. */
  records: number;
  gaps: number;
  duplicates: number;
  chain_breaks: number;
  out_of_order: number;
}

export interface ProducerReport {
  producer_id: string;
  /** Stored events of this producer, duplicates included. */
  records_seen: number;
  /** Distinct seqs delivered. */
  delivered: number;
  first_seq: number;
  last_seq: number;
  sessions: SessionReport[];
  gaps: SeqRange[];
  /** Seqs in gaps. */
  missing: number;
  /**
   * False when the view was filtered (by correlation id): a producer's other records may sit
   * in other correlations, so gaps are listed but do not make the trail incomplete.
   */
  gaps_judged: boolean;
  /** Duplicated seqs (the list holds at most `maxListed`). */
  duplicates: DuplicateSeq[];
  duplicates_count: number;
  out_of_order: OutOfOrder[];
  out_of_order_count: number;
  /** Chain breaks (the list holds at most `maxListed`). */
  chain_breaks: ChainBreak[];
  chain_breaks_count: number;
  rejected: SeqRange[];
  rejected_count: number;
  replayed: number;
  /** Crash windows declared by restarted sessions. */
  crash_windows: CrashWindow[];
  /** Seqs unaccounted at crashes (up to this many records lost in batch windows). */
  crash_unaccounted: number;
  /** Signed chain heads, altered ranges, unsigned stretches, truncated tail (./signed.ts). */
  signatures?: SignatureReport;
  complete: boolean;
}

export interface EventSummary {
  event_id: string;
  event_type?: string;
  correlation_id?: string;
  event_timestamp?: string;
}

export interface VerifyReport {
  generated_at: string;
  window?: { since: string; until: string };
  /** Set when the events were filtered (e.g. by correlation id): gaps are not judged. */
  filter?: string;
  events_total: number;
  producers: ProducerReport[];
  without_provenance: { count: number; events: EventSummary[] };
  /**
   * Events whose `event_data.audit_provenance` is there but cannot be read (a seq that is not a
   * positive integer, no producer id, not an object): altered or corrupted after it was written.
   * Any makes the trail incomplete.
   */
  malformed_provenance: { count: number; events: EventSummary[] };
  server_chains: ServerChainResult[];
  totals: {
    producers: number;
    delivered: number;
    missing: number;
    duplicates: number;
    chain_breaks: number;
    out_of_order: number;
    rejected: number;
    replayed: number;
    crash_unaccounted: number;
    server_chains_invalid: number;
    /** Signed heads that did not verify (with public keys). */
    signature_problems: number;
    /** Altered ranges found by signatures. */
    altered_ranges: number;
    /** Records no verified signature covers (with public keys). */
    unsigned: number;
    /** Records missing after the newest digest-log head. */
    truncated: number;
  };
  /** Producers expected (`expectProducers`, or named by a digest log) of which nothing was read. */
  missing_producers: string[];
  /** Public keys were given: signatures were checked and unsigned records are judged. */
  signatures_checked: boolean;
  /**
   * `complete`: records with provenance were read and show no gap, duplicate or chain break, and
   * every server chain is valid; `incomplete`: any of those problems; `empty`: no problem, but no
   * record with provenance was read either (an empty window, a filter that matches nothing, the
   * wrong DataStorage): nothing was verified, which is never a pass.
   */
  verdict: Verdict;
  /** `verdict === 'complete'`. */
  complete: boolean;
}

/** The outcome of a verification; see {@link VerifyReport.verdict}. */
export type Verdict = 'complete' | 'incomplete' | 'empty';

export interface AnalyzeInput {
  events: readonly StoredEvent[];
  deadLetters?: readonly DeadLetterRecord[];
  replays?: readonly ReplayRecord[];
  serverChains?: readonly ServerChainResult[];
  window?: { since: string; until: string };
  /** The events are a filtered view (e.g. `correlation_id=X`): gaps are listed, not judged. */
  filter?: string;
  /** At most this many entries per list in the report [200]. */
  maxListed?: number;
  /**
   * Trusted public keys: signed heads are verified, unsigned records judged. A key whose `from`
   * is not an RFC 3339 date-time makes `analyze` throw a TypeError naming it.
   */
  publicKeys?: readonly TrustedKey[];
  /** Signed heads from digest logs (only those signed within `window` are used). */
  digestHeads?: readonly SignedChainHead[];
  /** Producers that must appear (besides those the digest heads name). */
  expectProducers?: readonly string[];
  now?: Date;
}

interface Copy {
  event: StoredEvent;
  prov: Provenance;
  id: string;
  computed: string | undefined;
}

type Link = { kind: 'hash'; hash: string } | { kind: 'transparent' } | { kind: 'unknown' };

/** Analyses what was read back. Pure; never throws on malformed events. */
export function analyze(input: AnalyzeInput): VerifyReport {
  const max = input.maxListed ?? 200;
  const seenIds = new Set<string>();
  const byProducer = new Map<string, Map<number, Copy[]>>();
  const crashes = new Map<string, Declared[]>();
  const without: EventSummary[] = [];
  let withoutCount = 0;
  const malformed: EventSummary[] = [];
  let malformedCount = 0;
  let total = 0;
  for (const event of input.events) {
    if (event === null || typeof event !== 'object' || Array.isArray(event)) {
      // Not an event at all (the reader refuses such answers; a caller may not): malformed.
      total++;
      malformedCount++;
      if (malformed.length < max) malformed.push({ event_id: '' });
      continue;
    }
    const id = typeof event.event_id === 'string' ? event.event_id : '';
    if (id !== '') {
      if (seenIds.has(id)) continue;
      seenIds.add(id);
    }
    total++;
    const prov = readProvenance(event);
    if (prov === undefined) {
      if (hasStamp(event)) {
        malformedCount++;
        if (malformed.length < max) malformed.push(summary(event));
      } else {
        withoutCount++;
        if (without.length < max) without.push(summary(event));
      }
      continue;
    }
    let computed: string | undefined;
    try {
      computed = computeProvenanceHash(event);
    } catch {
      computed = undefined;
    }
    const declared = asDeclaration(event, prov);
    if (declared !== undefined) {
      const list = crashes.get(prov.producer_id);
      if (list) list.push(declared);
      else crashes.set(prov.producer_id, [declared]);
    }
    let seqs = byProducer.get(prov.producer_id);
    if (seqs === undefined) {
      seqs = new Map();
      byProducer.set(prov.producer_id, seqs);
    }
    const list = seqs.get(prov.seq);
    const copy: Copy = { event, prov, id, computed };
    if (list) list.push(copy);
    else seqs.set(prov.seq, [copy]);
  }

  const ring = keyring(input.publicKeys ?? []);
  const w = input.window;
  const digestHeads = (input.digestHeads ?? []).filter((h) => {
    if (w === undefined) return true;
    // A head whose time cannot be read is kept: the signature check reports it.
    const t = parseDateTime(h.time);
    return t === undefined || (t >= Date.parse(w.since) && t <= Date.parse(w.until));
  });
  const signing = ring.any || digestHeads.length > 0 ? { ring, digestHeads } : undefined;
  const deadByProducer = groupBy(input.deadLetters ?? [], (d) => d.producer_id);
  const replayByProducer = groupBy(input.replays ?? [], (r) => r.producer_id);
  const producerIds = new Set([...byProducer.keys(), ...deadByProducer.keys()]);
  const producers: ProducerReport[] = [];
  for (const pid of [...producerIds].sort()) {
    producers.push(
      analyzeProducer(
        pid,
        byProducer.get(pid) ?? new Map(),
        deadByProducer.get(pid) ?? [],
        replayByProducer.get(pid) ?? [],
        crashes.get(pid) ?? [],
        max,
        input.filter === undefined,
        signing,
      ),
    );
  }
  const expected = new Set([
    ...(input.expectProducers ?? []),
    ...digestHeads.map((h) => h.producer_id),
  ]);
  const present = new Set(producers.filter((p) => p.delivered > 0).map((p) => p.producer_id));
  const missingProducers = [...expected].filter((p) => !present.has(p)).sort();
  const serverChains = [...(input.serverChains ?? [])];
  const invalidChains = serverChains.filter((c) => !c.is_valid).length;
  const totals = {
    producers: producers.length,
    delivered: sum(producers, (p) => p.delivered),
    missing: sum(producers, (p) => (p.gaps_judged ? p.missing : 0)),
    duplicates: sum(producers, (p) => p.duplicates_count),
    chain_breaks: sum(producers, (p) => p.chain_breaks_count),
    out_of_order: sum(producers, (p) => p.out_of_order_count),
    rejected: sum(producers, (p) => p.rejected_count),
    replayed: sum(producers, (p) => p.replayed),
    crash_unaccounted: sum(producers, (p) => p.crash_unaccounted),
    server_chains_invalid: invalidChains,
    signature_problems: sum(producers, (p) => p.signatures?.problems.length ?? 0),
    altered_ranges: sum(producers, (p) => p.signatures?.altered.length ?? 0),
    unsigned: sum(producers, (p) => (ring.any ? (p.signatures?.unsigned_count ?? 0) : 0)),
    truncated: sum(producers, (p) =>
      p.signatures?.truncated ? p.signatures.truncated.to - p.signatures.truncated.from + 1 : 0,
    ),
  };
  const flawless =
    producers.every((p) => p.complete) &&
    invalidChains === 0 &&
    missingProducers.length === 0 &&
    malformedCount === 0;
  const verdict: Verdict = !flawless ? 'incomplete' : totals.delivered === 0 ? 'empty' : 'complete';
  return {
    generated_at: (input.now ?? new Date()).toISOString(),
    ...(input.window ? { window: input.window } : {}),
    ...(input.filter !== undefined ? { filter: input.filter } : {}),
    events_total: total,
    producers,
    without_provenance: { count: withoutCount, events: without },
    malformed_provenance: { count: malformedCount, events: malformed },
    server_chains: serverChains,
    totals,
    missing_producers: missingProducers,
    signatures_checked: ring.any,
    verdict,
    complete: verdict === 'complete',
  };
}

function analyzeProducer(
  producerId: string,
  seqs: Map<number, Copy[]>,
  deadLetters: readonly DeadLetterRecord[],
  replays: readonly ReplayRecord[],
  declared: readonly Declared[],
  max: number,
  judgeGaps: boolean,
  signing:
    | { ring: ReturnType<typeof keyring>; digestHeads: readonly SignedChainHead[] }
    | undefined,
): ProducerReport {
  const dead = new Map<number, DeadLetterRecord>();
  for (const d of deadLetters) if (!dead.has(d.seq)) dead.set(d.seq, d);
  const replayed = new Map<number, ReplayRecord>();
  for (const r of replays) replayed.set(r.seq, r); // the last replay of a seq counts

  const delivered = [...seqs.keys()].sort((a, b) => a - b);
  const sessions = new Map<string, SessionReport>();
  const sessionOf = new Map<number, string>();
  const duplicates: DuplicateSeq[] = [];
  const breaks: ChainBreak[] = [];
  const rep = new Map<number, Copy>();
  let recordsSeen = 0;

  const session = (sid: string, seq: number): SessionReport => {
    let s = sessions.get(sid);
    if (s === undefined) {
      s = {
        session_id: sid,
        first_seq: seq,
        last_seq: seq,
        records: 0,
        gaps: 0,
        duplicates: 0,
        chain_breaks: 0,
        out_of_order: 0,
      };
      sessions.set(sid, s);
    }
    return s;
  };

  for (const seq of delivered) {
    const copies = seqs.get(seq) as Copy[];
    recordsSeen += copies.length;
    const replay = replayed.get(seq);
    // A replayed record carries the hash the replay gave it (recomputed when it was fixed).
    const expectedOf = (c: Copy) => (replay ? replay.hash : c.prov.hash);
    const intact = (c: Copy) =>
      c.computed !== undefined && c.computed === c.prov.hash && c.prov.hash === expectedOf(c);
    const chosen = copies.find(intact) ?? (copies[0] as Copy);
    rep.set(seq, chosen);
    const s = session(chosen.prov.session_id, seq);
    s.first_seq = Math.min(s.first_seq, seq);
    s.last_seq = Math.max(s.last_seq, seq);
    s.records++;
    sessionOf.set(seq, chosen.prov.session_id);
    if (copies.length > 1) {
      const variants = new Set(
        copies.map((c) => `${c.prov.hash}/${c.computed ?? '?'}/${c.prov.session_id}`),
      );
      duplicates.push({ seq, event_ids: copies.map((c) => c.id), conflicting: variants.size > 1 });
      s.duplicates++;
    }
    for (const c of copies) {
      if (!intact(c)) {
        breaks.push({
          seq,
          event_id: c.id,
          kind: 'altered',
          detail:
            c.computed === undefined
              ? 'stored event cannot be canonicalised'
              : `stored event hashes to ${c.computed}, expected ${expectedOf(c)}: the event was altered`,
        });
        s.chain_breaks++;
      }
    }
  }

  // Seqs with a record: delivered or dead-lettered, ascending. Declared crash windows come from
  // stored events and may be of any size: they are handled as ranges, never walked seq by seq.
  const known = [...new Set([...delivered, ...dead.keys()])].sort((a, b) => a - b);
  const linked = [...new Set([...known, ...replayed.keys()])].sort((a, b) => a - b);

  // Crash windows: reserved seqs that never reached a spool (never stamped, never chained).
  const windows: CrashWindow[] = [];
  const windowKeys = new Set<string>();
  for (const d of declared) {
    const from = d.spooled_through + 1;
    const to = d.reserved_through;
    if (to < from || windowKeys.has(`${from}-${to}`)) continue;
    windowKeys.add(`${from}-${to}`);
    const unaccounted = to - from + 1 - countWithin(known, from, to);
    windows.push({ session_id: d.session_id, from, to, unaccounted, declared_by: d.declared_by });
  }
  windows.sort((a, b) => a.from - b.from);
  const crashRanges = mergeRanges(windows.map((w) => [w.from, w.to] as const));
  const crashStarts = crashRanges.map((r) => r[0]);
  /** The merged crash range that holds `seq`. */
  const crashAt = (seq: number): Range | undefined => {
    const r = crashRanges[lastIndexBelow(crashStarts, seq + 1)];
    return r !== undefined && seq <= r[1] ? r : undefined;
  };

  const linkOf = (seq: number): Link => {
    const r = replayed.get(seq);
    if (r !== undefined)
      return r.original_hash === null
        ? { kind: 'transparent' }
        : { kind: 'hash', hash: r.original_hash };
    const c = rep.get(seq);
    if (c !== undefined) return { kind: 'hash', hash: c.prov.hash };
    const d = dead.get(seq);
    if (d !== undefined)
      return d.hash === null ? { kind: 'transparent' } : { kind: 'hash', hash: d.hash };
    if (crashAt(seq) !== undefined) return { kind: 'transparent' };
    return { kind: 'unknown' };
  };

  // Links to the previous record.
  for (const seq of delivered) {
    const c = rep.get(seq) as Copy;
    const r = replayed.get(seq);
    if (r !== undefined && r.original_hash === null) continue; // rejected at emit: not chained
    let expected: string | null | undefined;
    let t = seq - 1;
    for (;;) {
      if (t < 1) {
        expected = null;
        break;
      }
      const l = linkOf(t);
      if (l.kind === 'unknown') break;
      if (l.kind === 'hash') {
        expected = l.hash;
        break;
      }
      // Through a crash window to the nearest seq below t with a record, or below the window.
      const w = crashAt(t);
      t = w === undefined ? t - 1 : Math.max(w[0] - 1, linked[lastIndexBelow(linked, t)] ?? 0);
    }
    if (expected === undefined) continue; // gap or window start: nothing to compare with
    if (c.prov.prev_hash !== expected) {
      breaks.push({
        seq,
        event_id: c.id,
        kind: 'link',
        detail:
          expected === null
            ? `prev_hash is ${c.prov.prev_hash}, expected null (first record of the producer)`
            : `prev_hash ${c.prov.prev_hash ?? 'null'} is not the hash of seq ${t} (${expected}): a record was removed, inserted or altered`,
      });
      const s = sessions.get(c.prov.session_id);
      if (s) s.chain_breaks++;
    }
  }

  // Gaps between the lowest and the highest seq the window shows; rejected and replayed seqs.
  const deliveredSet = new Set<number>(delivered);
  let lo = delivered[0];
  let hi = delivered[delivered.length - 1];
  if (lo === undefined || hi === undefined) {
    const ds = [...dead.keys()].sort((a, b) => a - b);
    lo = ds[0] ?? 0;
    hi = ds[ds.length - 1] ?? 0;
  }
  const rejectedSeqs: number[] = [];
  let replayedCount = 0;
  for (const seq of [...dead.keys()].sort((a, b) => a - b)) {
    if (deliveredSet.has(seq)) continue;
    rejectedSeqs.push(seq);
  }
  for (const seq of delivered) if (replayed.has(seq)) replayedCount++;
  // What is accounted for between lo and hi, as merged ranges: records, and crash windows.
  const covered = mergeRanges([
    ...delivered.map((s) => [s, s] as const),
    ...rejectedSeqs
      .filter((s) => s >= (lo as number) && s <= (hi as number))
      .map((s) => [s, s] as const),
    ...windows.map((w) => [Math.max(w.from, lo as number), Math.min(w.to, hi as number)] as const),
  ]);
  const gaps: SeqRange[] = [];
  let missing = 0;
  for (let i = 1; i < covered.length; i++) {
    const a = (covered[i - 1] as Range)[1];
    const b = (covered[i] as Range)[0];
    if (b - a > 1) {
      const after = nearestSession(a, sessionOf, -1, lo as number);
      const before = nearestSession(b, sessionOf, 1, hi as number);
      gaps.push({
        from: a + 1,
        to: b - 1,
        ...(after ? { after_session: after } : {}),
        ...(before ? { before_session: before } : {}),
      });
      missing += b - a - 1;
      if (after) {
        const s = sessions.get(after);
        if (s) s.gaps++;
      }
    }
  }

  // Reordering: event_timestamp against seq order.
  const outOfOrder: OutOfOrder[] = [];
  let outCount = 0;
  let prevSeq: number | undefined;
  let prevTs: string | undefined;
  for (const seq of delivered) {
    const c = rep.get(seq) as Copy;
    const ts =
      typeof c.event.event_timestamp === 'string'
        ? canonicalTimestamp(c.event.event_timestamp)
        : undefined;
    if (ts !== undefined && prevTs !== undefined && prevSeq !== undefined && ts < prevTs) {
      outCount++;
      const s = sessions.get(c.prov.session_id);
      if (s) s.out_of_order++;
      if (outOfOrder.length < max) {
        outOfOrder.push({
          seq,
          event_id: c.id,
          event_timestamp: ts,
          previous_seq: prevSeq,
          previous_timestamp: prevTs,
        });
      }
    }
    if (ts !== undefined) {
      prevSeq = seq;
      prevTs = ts;
    }
  }

  breaks.sort((a, b) => a.seq - b.seq || a.kind.localeCompare(b.kind));
  const signatures =
    signing === undefined
      ? undefined
      : checkSignatures(
          producerId,
          delivered.map((seq) => signedRecord(seq, rep.get(seq) as Copy)),
          signing.ring,
          signing.digestHeads,
        );
  const signedOk =
    signatures === undefined ||
    (signatures.altered.length === 0 &&
      signatures.truncated === undefined &&
      (!signing?.ring.any ||
        (signatures.problems.length === 0 && (!judgeGaps || signatures.unsigned_count === 0))));
  return {
    producer_id: producerId,
    records_seen: recordsSeen,
    delivered: delivered.length,
    first_seq: lo as number,
    last_seq: hi as number,
    sessions: [...sessions.values()].sort((a, b) => a.first_seq - b.first_seq),
    gaps,
    missing,
    gaps_judged: judgeGaps,
    duplicates: duplicates.slice(0, max),
    duplicates_count: duplicates.length,
    out_of_order: outOfOrder,
    out_of_order_count: outCount,
    chain_breaks: breaks.slice(0, max),
    chain_breaks_count: breaks.length,
    rejected: toRanges(rejectedSeqs),
    rejected_count: rejectedSeqs.length,
    replayed: replayedCount,
    crash_windows: windows,
    crash_unaccounted: sum(windows, (w) => w.unaccounted),
    ...(signatures ? { signatures } : {}),
    complete:
      (!judgeGaps || gaps.length === 0) &&
      duplicates.length === 0 &&
      breaks.length === 0 &&
      signedOk,
  };
}

function signedRecord(seq: number, c: Copy): SignedRecord {
  const data = c.event.event_data as Record<string, unknown> | undefined;
  const stamp = data?.[AUDIT_EVENT_DATA_PROVENANCE_KEY] as { signature?: unknown } | undefined;
  return {
    seq,
    event_id: c.id,
    prov: c.prov,
    computed: c.computed,
    signature: asStampSignature(stamp?.signature),
  };
}

/** A crash declaration found on a stamped record. */
interface Declared {
  session_id: string;
  spooled_through: number;
  reserved_through: number;
  declared_by: string;
}

function asDeclaration(event: StoredEvent, prov: Provenance): Declared | undefined {
  const data = event.event_data;
  if (data === null || typeof data !== 'object') return undefined;
  const stamp = (data as Record<string, unknown>)[AUDIT_EVENT_DATA_PROVENANCE_KEY];
  const r = (stamp as { recovered?: unknown } | null | undefined)?.recovered as
    | Record<string, unknown>
    | undefined;
  if (r === null || typeof r !== 'object') return undefined;
  const { session_id, spooled_through, reserved_through } = r;
  if (
    typeof session_id !== 'string' ||
    !Number.isSafeInteger(spooled_through) ||
    !Number.isSafeInteger(reserved_through)
  ) {
    return undefined;
  }
  return {
    session_id,
    spooled_through: spooled_through as number,
    reserved_through: reserved_through as number,
    declared_by: prov.session_id,
  };
}

function nearestSession(
  seq: number,
  sessionOf: Map<number, string>,
  step: 1 | -1,
  bound: number,
): string | undefined {
  // Rejected seqs have no session here; walk to the nearest delivered one (bounded).
  for (let s = seq, n = 0; step < 0 ? s >= bound : s <= bound; s += step, n++) {
    const sid = sessionOf.get(s);
    if (sid !== undefined) return sid;
    if (n > 10_000) break;
  }
  return undefined;
}

type Range = readonly [from: number, to: number];

/** Ranges (empty ones dropped) sorted and merged where they overlap. */
function mergeRanges(ranges: readonly Range[]): Range[] {
  const sorted = ranges.filter(([a, b]) => a <= b).sort((x, y) => x[0] - y[0]);
  const out: Array<[number, number]> = [];
  for (const [a, b] of sorted) {
    const last = out[out.length - 1];
    if (last !== undefined && a <= last[1]) last[1] = Math.max(last[1], b);
    else out.push([a, b]);
  }
  return out;
}

/** The index of the last element of ascending `sorted` below `value`; -1 when there is none. */
function lastIndexBelow(sorted: readonly number[], value: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((sorted[mid] as number) < value) lo = mid + 1;
    else hi = mid;
  }
  return lo - 1;
}

/** How many elements of ascending `sorted` lie in [from, to]. */
function countWithin(sorted: readonly number[], from: number, to: number): number {
  return lastIndexBelow(sorted, to + 1) - lastIndexBelow(sorted, from);
}

function toRanges(sorted: readonly number[]): SeqRange[] {
  const out: SeqRange[] = [];
  for (const s of sorted) {
    const last = out[out.length - 1];
    if (last && s === last.to + 1) last.to = s;
    else out.push({ from: s, to: s });
  }
  return out;
}

/** Whether the event carries a provenance stamp at all (well formed or not). */
function hasStamp(e: StoredEvent): boolean {
  const data = e.event_data;
  return (
    data !== null &&
    typeof data === 'object' &&
    !Array.isArray(data) &&
    Object.hasOwn(data, AUDIT_EVENT_DATA_PROVENANCE_KEY)
  );
}

function summary(e: StoredEvent): EventSummary {
  return {
    event_id: typeof e.event_id === 'string' ? e.event_id : '',
    ...(typeof e.event_type === 'string' ? { event_type: e.event_type } : {}),
    ...(typeof e.correlation_id === 'string' ? { correlation_id: e.correlation_id } : {}),
    ...(typeof e.event_timestamp === 'string' ? { event_timestamp: e.event_timestamp } : {}),
  };
}

function groupBy<T>(items: readonly T[], key: (t: T) => string): Map<string, T[]> {
  const m = new Map<string, T[]>();
  for (const it of items) {
    const k = key(it);
    const l = m.get(k);
    if (l) l.push(it);
    else m.set(k, [it]);
  }
  return m;
}

function sum<T>(items: readonly T[], f: (t: T) => number): number {
  let n = 0;
  for (const it of items) n += f(it);
  return n;
}

/** The provenance key inside event_data (re-exported for report readers). */
export const PROVENANCE_KEY = AUDIT_EVENT_DATA_PROVENANCE_KEY;
