// SPDX-License-Identifier: Apache-2.0
/*
 * One drain: the pending records of the FIFO, in emit order → mapped, validated, stamped and
 * encoded once → appended to the spool with ONE write; what cannot be stored is dead-lettered
 * with its seq. Runs per inner batch (OTel's timer or batch size), per emit in 'sync' mode, and
 * on the write-through rules, flush, shutdown and exit (intake.ts).
 *
 * Invariants:
 * - Every record handed to run() ends in exactly one of: an appended frame, a dead letter
 *   (sanitised, bounded, with its seq), or the append outcome's `dropped` (counted by the caller).
 * - Records are processed in seq order; the provenance chain links them in that order.
 * - The provenance state is written after the append and the dead letters (so a crash never
 *   claims more than reached the spool).
 * - With a signing key, at most one signature per drain (when one is due, see
 *   provenance/stamper.ts): the head of the chain after the drain's last
 *   stamped record is signed and the signature spliced into that record's stamp
 *   (`audit_provenance.signature`, the stamp's last member in canonical order, outside the
 *   hash); after the append the head is anchored in the digest log — only when that record
 *   reached the spool. A record too close to the size limit to take the signature keeps its
 *   stamp unsigned (the digest log still holds the head, the next drain's head covers it).
 * - Per record: one pass over the attributes, one canonical encoding, one SHA-256, one UTF-8
 *   encoding (staging.ts: written as soon as it is stamped, so that the string dies young); no
 *   JSON.parse (but with `openapiSpec`), no syscall. Per drain: one spool write, at most one
 *   dead-letter write, one provenance write.
 */
import { type ContractViolation, MAX_EVENT_DATA_BYTES } from '@kubernaut/datastorage-contract';
import type { ReadableLogRecord } from '@opentelemetry/sdk-logs';
import {
  type EventValidator,
  type Prepared,
  type ProvenanceFields,
  type StampedBytes,
  stampPrepared,
  stampPreparedInto,
  stampRoom,
  type TimestampOrder,
} from '../map/index.ts';
import type { ProvenanceStamper } from '../provenance/index.ts';
import { type DeadLetter, type DeadLetterFile, MAX_ENTRY_CHARS } from '../spool/dead-letter.ts';
import { eventText } from '../spool/frame.ts';
import { laneOf } from '../spool/spool.ts';
import type {
  AppendOptions,
  AppendOutcome,
  AuditSpool,
  EncodedEvent,
  Reservation,
} from '../spool/types.ts';
import { type PrepareCounts, type PreparedItem, Preparer } from './prepare.ts';
import { Staging } from './staging.ts';

/** Settled and empty: the inner batch processor never waits on a resource detector. */
const STATIC_RESOURCE = Object.freeze({
  attributes: Object.freeze({}),
  asyncAttributesPending: false,
});

/** A record between emit() and the spool; also the token the inner BatchLogRecordProcessor holds. */
export class PendingRecord {
  /** What the inner BatchLogRecordProcessor reads: a settled, static resource (on the prototype). */
  declare readonly resource: typeof STATIC_RESOURCE;
  record: ReadableLogRecord | undefined;
  readonly emittedAt: number;
  /** Provenance seq (0 without provenance). */
  readonly seq: number;
  /** Position in the FIFO (1, 2, 3 …). */
  readonly n: number;

  constructor(record: ReadableLogRecord, emittedAt: number, seq: number, n: number) {
    this.record = record;
    this.emittedAt = emittedAt;
    this.seq = seq;
    this.n = n;
  }
}
// One shared field of the prototype, not one per record.
Object.defineProperty(PendingRecord.prototype, 'resource', { value: STATIC_RESOURCE });

/**
 * What became of one record of a tracked drain (`offer()` of the processor): on the spool,
 * dead-lettered because DataStorage can never store it (with why), or not kept (spool full, a
 * write error, closed).
 */
export type RecordOutcome =
  | { kind: 'appended' }
  | { kind: 'invalid'; detail: string }
  | { kind: 'dropped'; reason: 'full' | 'error' | 'closed' };

/** Options of one drain. */
export interface DrainRunOptions {
  /** Spool room reserved for this drain (admission); the append uses it first. */
  reservation?: Reservation | undefined;
  /** Filled with the outcome of every record of the drain (only when given: it costs a map entry each). */
  outcomes?: Map<PendingRecord, RecordOutcome> | undefined;
  /** Let the spool write on the thread pool (AppendOptions.deferWrite): the batch timer's drains. */
  deferWrite?: boolean | undefined;
}

const APPENDED: RecordOutcome = Object.freeze({ kind: 'appended' });
const DEFER: AppendOptions = Object.freeze({ deferWrite: true });

/** What one drain did. */
export interface DrainResult {
  records: number;
  appended: number;
  deadLettered: number;
  /** Dead letters by first violation reason. */
  invalid: Map<string, number>;
  /** Invalid optional fields left out, by reason. */
  omitted: Map<string, number>;
  /** A short description of the last dead letter (for diag). */
  lastProblem: string | undefined;
  regressed: number;
  outcome: AppendOutcome;
}

/** A DrainResult of `records` records, `appended` of them appended, nothing else counted. */
export function drainResult(records: number, appended: number): DrainResult {
  return {
    records,
    appended,
    deadLettered: 0,
    invalid: new Map(),
    omitted: new Map(),
    lastProblem: undefined,
    regressed: 0,
    outcome: { frames: [], dropped: [] },
  };
}

export interface DrainDeps {
  spool: AuditSpool;
  stamper: ProvenanceStamper | undefined;
  deadLetters: DeadLetterFile;
  order: TimestampOrder;
  /** The exporter's OpenAPI validator, once loaded (`openapiSpec`). */
  openApi(): EventValidator | undefined;
}

export class Drain {
  private readonly _d: DrainDeps;
  private readonly _preparer: Preparer;
  /** Each stamped event's UTF-8 bytes until the drain's append (staging.ts). */
  private readonly _staging = new Staging();
  /** What the last stamp wrote (one object, refilled per record). */
  private readonly _stamped: StampedBytes = { bytes: 0, hash: undefined, provEnd: undefined };
  /** The provenance of the record being stamped (one object, refilled per record). */
  private readonly _fields: ProvenanceFields = {
    producer_id: '',
    session_id: '',
    seq: 0,
    prev_hash: null,
    recovered: undefined,
    original_timestamp: undefined,
    record_id: undefined,
  };

  constructor(deps: DrainDeps) {
    this._d = deps;
    this._preparer = new Preparer({
      order: deps.order,
      openApi: deps.openApi,
      stamped: deps.stamper !== undefined,
    });
  }

  /**
   * Drains `records` (in FIFO order): prepares and stamps each in turn, then appends what was
   * stamped with one write. Each record's prepared JSON is dropped as soon as it is stamped, so
   * a batch keeps one string per record alive, not two (fewer bytes survive a scavenge and are
   * promoted to the old space). Never throws.
   */
  run(records: readonly PendingRecord[], options?: DrainRunOptions): DrainResult {
    const now = Date.now();
    const producerId = this._d.stamper?.producerId;
    const prep = this._preparer;
    prep.begin();
    const c = this._begin(records.length, options);
    let maxSeq = 0;
    for (const p of records) {
      const record = p.record;
      p.record = undefined;
      if (p.seq > maxSeq) maxSeq = p.seq;
      if (record === undefined) continue;
      this._stamp(c, prep.prepare(record, p.seq, p.emittedAt, now, producerId), p);
    }
    if (maxSeq > c.maxSeq) c.maxSeq = maxSeq;
    return this._finish(c, prep.takeCounts(), options);
  }

  /**
   * The second half of a drain: stamps the prepared items in order (a seq of 0 is assigned
   * here), appends the stamped events with one spool write, dead-letters the invalid ones with
   * their seq, and writes the provenance state. `owners[i]` is the pending record of
   * `items[i]` (for the outcomes of a tracked drain); `maxSeq`: the highest seq the batch
   * covered (records taken by an earlier drain included). Never throws.
   */
  commit(
    items: readonly PreparedItem[],
    counts: PrepareCounts,
    options?: DrainRunOptions & { owners?: readonly PendingRecord[]; maxSeq?: number },
  ): DrainResult {
    const c = this._begin(items.length, options);
    if (options?.maxSeq !== undefined && options.maxSeq > c.maxSeq) c.maxSeq = options.maxSeq;
    for (let i = 0; i < items.length; i++) {
      this._stamp(c, items[i] as PreparedItem, options?.owners?.[i]);
    }
    return this._finish(c, counts, options);
  }

  private _begin(records: number, options: DrainRunOptions | undefined): Commit {
    const lanes = this._d.spool.meta.lanes;
    this._staging.begin();
    const byLane: EncodedEvent[][] = [];
    for (let i = 0; i < lanes; i++) byLane.push([]);
    const outcomes = options?.outcomes;
    return {
      byLane,
      dead: [],
      owners: outcomes === undefined ? undefined : new Map<EncodedEvent, PendingRecord>(),
      outcomes,
      maxSeq: 0,
      headEvent: undefined,
      headProvEnd: 0,
      result: drainResult(records, 0),
    };
  }

  /** Stamps one prepared item into `c` (or makes its dead letter), in seq order. */
  private _stamp(c: Commit, it: PreparedItem, owner: PendingRecord | undefined): void {
    const stamper = this._d.stamper;
    let seq = it.seq;
    if (seq === 0 && stamper !== undefined) seq = stamper.next();
    if (seq > c.maxSeq) c.maxSeq = seq;
    let violations: readonly ContractViolation[];
    let snapshot: unknown;
    if (it.ok) {
      const fields =
        stamper === undefined
          ? undefined
          : stamper.fieldsInto(this._fields, seq, it.original, it.rid);
      const event: EncodedEvent = {
        json: '',
        bytes: 0,
        emittedAt: it.emittedAt,
        provSeq: seq,
        lane: laneOf(it.cid, c.byLane.length),
        utf8: undefined,
        utf8At: undefined,
      };
      const refused = this._stampBytes(it.prepared, fields, event);
      if (refused === undefined) {
        const st = this._stamped;
        if (st.hash !== undefined) stamper?.linked(seq, st.hash);
        (c.byLane[event.lane] as EncodedEvent[]).push(event);
        if (c.owners !== undefined && owner !== undefined) {
          c.owners.set(event, owner);
          c.outcomes?.set(owner, APPENDED);
        }
        if (st.provEnd !== undefined) {
          c.headEvent = event;
          c.headProvEnd = st.provEnd;
        }
        return;
      }
      // Over the size limit once stamped: its snapshot is its event without the stamp.
      violations = [refused];
      snapshot = { event: it.prepared.json.slice(0, MAX_ENTRY_CHARS) };
    } else {
      violations = it.violations;
      snapshot = it.record;
    }
    c.dead.push(this._deadLetter(snapshot, violations, seq, c.result));
    if (owner !== undefined) {
      c.outcomes?.set(owner, { kind: 'invalid', detail: c.result.lastProblem as string });
    }
  }

  /**
   * Stamps a prepared event into `event` (its UTF-8 bytes in the staging buffer, or its JSON):
   * written there directly when it can be (stampPreparedInto: no event-sized string), else
   * stamped as a string and copied in, else (staging full) kept as that string. Its hash and
   * provEnd are left in `_stamped`. Returns the violation when it is over the size limit once
   * stamped. No object per record but `event`.
   */
  private _stampBytes(
    prepared: Extract<Prepared, { ok: true }>,
    fields: ProvenanceFields | undefined,
    event: EncodedEvent,
  ): ContractViolation | undefined {
    const staging = this._staging;
    const st = this._stamped;
    const buf = staging.reserve(stampRoom(prepared));
    if (
      buf !== undefined &&
      stampPreparedInto(prepared, fields, buf, staging.offset, st) !== undefined
    ) {
      event.bytes = st.bytes;
      event.utf8 = buf;
      event.utf8At = staging.commit(st.bytes);
      return undefined;
    }
    const enc = stampPrepared(prepared, fields);
    if (!enc.ok) return enc.violation;
    st.bytes = enc.bytes;
    st.hash = enc.hash;
    st.provEnd = enc.provEnd;
    const at = staging.put(enc.json, enc.bytes);
    event.bytes = enc.bytes;
    if (at >= 0) {
      event.utf8 = staging.buffer;
      event.utf8At = at;
    } else {
      event.json = enc.json;
    }
    return undefined;
  }

  /** Signs the head when due, appends with one write, dead-letters, writes the provenance state. */
  private _finish(
    c: Commit,
    counts: PrepareCounts,
    options: DrainRunOptions | undefined,
  ): DrainResult {
    const d = this._d;
    const stamper = d.stamper;
    const { result, owners, outcomes } = c;
    const head =
      c.headEvent === undefined ? undefined : { event: c.headEvent, provEnd: c.headProvEnd };
    result.omitted = counts.omitted;
    result.regressed = counts.regressed;
    const signed = head === undefined ? undefined : stamper?.drainHead();
    if (signed !== undefined && head !== undefined) {
      const member = `,"signature":{"key_id":${JSON.stringify(signed.key_id)},"sig":${JSON.stringify(signed.sig)},"time":${JSON.stringify(signed.time)}}`;
      const e = head.event;
      if (e.bytes + member.length <= MAX_EVENT_DATA_BYTES) {
        const json = unstage(e);
        e.json = json.slice(0, head.provEnd) + member + json.slice(head.provEnd);
        e.bytes += member.length;
      }
    }
    const events = c.byLane.length === 1 ? (c.byLane[0] as EncodedEvent[]) : c.byLane.flat();
    if (events.length > 0) {
      result.outcome = d.spool.append(
        events,
        options?.reservation,
        options?.deferWrite === true ? DEFER : undefined,
      );
      for (const f of result.outcome.frames) result.appended += f.count;
      if (owners !== undefined && outcomes !== undefined) {
        for (const dropped of result.outcome.dropped) {
          const outcome: RecordOutcome = { kind: 'dropped', reason: dropped.reason };
          for (const ev of dropped.events) {
            const owner = owners.get(ev);
            if (owner !== undefined) outcomes.set(owner, outcome);
          }
        }
      }
      if (signed !== undefined && !droppedHead(result.outcome, head?.event)) {
        stamper?.anchor(signed);
      } else if (signed === undefined && head !== undefined) {
        stamper?.signLater();
      }
    }
    if (c.dead.length > 0) d.deadLetters.write(c.dead);
    if (c.maxSeq > 0) stamper?.drained(c.maxSeq);
    return result;
  }

  private _deadLetter(
    snapshot: unknown,
    violations: readonly ContractViolation[],
    seq: number,
    result: DrainResult,
  ): DeadLetter {
    const reason = violations[0]?.reason ?? 'invalid';
    result.deadLettered++;
    result.invalid.set(reason, (result.invalid.get(reason) ?? 0) + 1);
    const detail = describe(violations);
    result.lastProblem = detail;
    return {
      reason,
      detail,
      event: { record: snapshot, violations: violations.slice(0, 20) },
      provenance:
        seq > 0 && this._d.stamper !== undefined ? this._d.stamper.rejected(seq) : undefined,
    };
  }
}

/** One drain's state between its records (see Drain._begin, _stamp, _finish). */
interface Commit {
  byLane: EncodedEvent[][];
  dead: DeadLetter[];
  owners: Map<EncodedEvent, PendingRecord> | undefined;
  outcomes: Map<PendingRecord, RecordOutcome> | undefined;
  /** The highest seq the drain covered. */
  maxSeq: number;
  /** The last stamped event (for the signature; no object per record for it). */
  headEvent: EncodedEvent | undefined;
  /** Where its stamp ends in its JSON. */
  headProvEnd: number;
  result: DrainResult;
}

/** The event's JSON as a string again (its staged bytes decoded, and no longer used). */
function unstage(e: EncodedEvent): string {
  if (e.utf8 === undefined) return e.json;
  e.json = eventText(e);
  e.utf8 = undefined;
  e.utf8At = undefined;
  return e.json;
}

/** True when the append dropped the record that carries the drain's signed head. */
function droppedHead(outcome: AppendOutcome, event: EncodedEvent | undefined): boolean {
  if (event === undefined) return true;
  for (const d of outcome.dropped) if (d.events.includes(event)) return true;
  return false;
}

/** The first violations, for a dead letter's detail and for diag. */
export function describe(violations: readonly ContractViolation[]): string {
  return violations
    .slice(0, 5)
    .map(
      (v) =>
        `${v.field || '(record)'}: ${v.reason} (${v.message.length > 300 ? `${v.message.slice(0, 300)}…` : v.message})`,
    )
    .join('; ');
}
