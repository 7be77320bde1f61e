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
 * - Per record: one pass over the attributes, one canonical encoding, one SHA-256; no JSON.parse
 *   (but with `openapiSpec`), no syscall. Per drain: one spool write, at most one dead-letter
 *   write, one provenance write.
 */
import { ATTR_AUDIT_RECORD_ID } from '@kubernaut/audit-semantic-conventions';
import { type ContractViolation, MAX_EVENT_DATA_BYTES } from '@kubernaut/datastorage-contract';
import type { ReadableLogRecord } from '@opentelemetry/sdk-logs';
import {
  checkOpenApi,
  ENVELOPE_UNSTORABLE,
  type Encoded,
  type EventValidator,
  encodeEvent,
  fillDefaults,
  type MappedEvent,
  mapRecord,
  type TimestampOrder,
} from '../map/index.ts';
import type { ProvenanceStamper } from '../provenance/index.ts';
import { type DeadLetter, type DeadLetterFile, recordSnapshot } from '../spool/dead-letter.ts';
import { laneOf } from '../spool/spool.ts';
import type { AppendOutcome, AuditSpool, EncodedEvent, Reservation } from '../spool/types.ts';

/** A record between emit() and the spool; also the token the inner BatchLogRecordProcessor holds. */
export class PendingRecord {
  /** What the inner BatchLogRecordProcessor reads: a settled, static resource. */
  readonly resource = STATIC_RESOURCE;
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

/** Settled and empty: the inner batch processor never waits on a resource detector. */
const STATIC_RESOURCE = Object.freeze({
  attributes: Object.freeze({}),
  asyncAttributesPending: false,
});

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
}

const APPENDED: RecordOutcome = Object.freeze({ kind: 'appended' });

type Encoding =
  | { kind: 'ok'; m: MappedEvent; enc: Extract<Encoded, { ok: true }>; cid: string }
  | { kind: 'invalid'; violations: ContractViolation[] }
  | { kind: 'retry' };

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

  constructor(deps: DrainDeps) {
    this._d = deps;
  }

  /** Drains `records` (in FIFO order). Never throws. */
  run(records: readonly PendingRecord[], options?: DrainRunOptions): DrainResult {
    const d = this._d;
    const outcomes = options?.outcomes;
    const owners = outcomes === undefined ? undefined : new Map<EncodedEvent, PendingRecord>();
    const lanes = d.spool.meta.lanes;
    const byLane: EncodedEvent[][] = [];
    for (let i = 0; i < lanes; i++) byLane.push([]);
    const dead: DeadLetter[] = [];
    const result: DrainResult = {
      records: records.length,
      appended: 0,
      deadLettered: 0,
      invalid: new Map(),
      omitted: new Map(),
      lastProblem: undefined,
      regressed: 0,
      outcome: { frames: [], dropped: [] },
    };
    const now = Date.now();
    const openApi = d.openApi();
    const regressedBefore = d.order.regressed;
    let maxSeq = 0;
    let head: { event: EncodedEvent; provEnd: number } | undefined;
    for (const p of records) {
      const record = p.record;
      p.record = undefined;
      if (p.seq > maxSeq) maxSeq = p.seq;
      if (record === undefined) continue;
      // Strings are checked for storability on the encoded event; when one fails, the record
      // is mapped again with the check (rare) to learn which field, and encoded once more.
      let e = this._encode(record, p.seq, now, openApi, false);
      if (e.kind === 'retry') e = this._encode(record, p.seq, now, openApi, true);
      if (e.kind !== 'ok') {
        const violations = e.kind === 'invalid' ? e.violations : [ENVELOPE_UNSTORABLE];
        dead.push(this._deadLetter(record, violations, p.seq, result));
        outcomes?.set(p, { kind: 'invalid', detail: result.lastProblem as string });
        continue;
      }
      const { m, enc, cid } = e;
      for (const o of m.omitted)
        result.omitted.set(o.reason, (result.omitted.get(o.reason) ?? 0) + 1);
      d.order.commit(cid, m.envelope.event_timestamp as string);
      if (enc.hash !== undefined) d.stamper?.linked(p.seq, enc.hash);
      const lane = laneOf(cid, lanes);
      const event: EncodedEvent = {
        json: enc.json,
        bytes: enc.bytes,
        emittedAt: p.emittedAt,
        provSeq: p.seq,
        lane,
      };
      (byLane[lane] as EncodedEvent[]).push(event);
      if (owners !== undefined) {
        owners.set(event, p);
        outcomes?.set(p, APPENDED);
      }
      if (enc.provEnd !== undefined) head = { event, provEnd: enc.provEnd };
    }
    const signed = head === undefined ? undefined : d.stamper?.drainHead();
    if (signed !== undefined && head !== undefined) {
      const member = `,"signature":{"key_id":${JSON.stringify(signed.key_id)},"sig":${JSON.stringify(signed.sig)},"time":${JSON.stringify(signed.time)}}`;
      const e = head.event;
      if (e.bytes + member.length <= MAX_EVENT_DATA_BYTES) {
        e.json = e.json.slice(0, head.provEnd) + member + e.json.slice(head.provEnd);
        e.bytes += member.length;
      }
    }
    result.regressed = d.order.regressed - regressedBefore;
    const events = lanes === 1 ? (byLane[0] as EncodedEvent[]) : byLane.flat();
    if (events.length > 0) {
      result.outcome = d.spool.append(events, options?.reservation);
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
        d.stamper?.anchor(signed);
      } else if (signed === undefined && head !== undefined) {
        d.stamper?.signLater();
      }
    }
    if (dead.length > 0) d.deadLetters.write(dead);
    if (maxSeq > 0) d.stamper?.drained(maxSeq);
    return result;
  }

  /** Maps, orders, stamps and encodes one record (see run()). */
  private _encode(
    record: ReadableLogRecord,
    seq: number,
    now: number,
    openApi: EventValidator | undefined,
    storability: boolean,
  ): Encoding {
    const d = this._d;
    const mapped = mapRecord(record, { now, storability });
    if (!mapped.ok) return { kind: 'invalid', violations: mapped.violations };
    const m = mapped.event;
    const env = m.envelope;
    const cid = env.correlation_id as string;
    env.event_timestamp = d.order.check(cid, env.event_timestamp as string);
    const original = d.order.original;
    const rid =
      d.stamper === undefined ? undefined : recordIdOf(record, d.stamper.producerId, seq, m);
    let enc = encodeEvent(env, m.data, d.stamper?.fields(seq, original, rid));
    if (!enc.ok && enc.violation === ENVELOPE_UNSTORABLE) {
      return storability ? { kind: 'invalid', violations: [enc.violation] } : { kind: 'retry' };
    }
    if (enc.ok && openApi !== undefined) {
      const { fatal, changed } = checkOpenApi(m, enc.json, openApi);
      if (fatal.length > 0) return { kind: 'invalid', violations: [...fatal, ...m.omitted] };
      if (changed) {
        enc = encodeEvent(fillDefaults(env), m.data, d.stamper?.fields(seq, original, rid));
      }
    }
    if (!enc.ok) return { kind: 'invalid', violations: [enc.violation, ...m.omitted] };
    return { kind: 'ok', m, enc, cid };
  }

  private _deadLetter(
    record: ReadableLogRecord,
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
      event: { record: recordSnapshot(record), violations: violations.slice(0, 20) },
      provenance:
        seq > 0 && this._d.stamper !== undefined ? this._d.stamper.rejected(seq) : undefined,
    };
  }
}

/** Longest `audit.record.id` kept in the stamp. */
const MAX_RECORD_ID_CHARS = 255;

/**
 * The caller's `audit.record.id` (OTEP 0267) to keep in the stamp: a string of 1–255 characters
 * that is not the id the processor itself set at emit (`<producer_id>/<seq>`). Another value is
 * left out and counted as an omitted field.
 */
function recordIdOf(
  record: ReadableLogRecord,
  producerId: string,
  seq: number,
  m: MappedEvent,
): string | undefined {
  const attrs = record.attributes as Record<string, unknown> | undefined;
  const v = attrs?.[ATTR_AUDIT_RECORD_ID];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string' || v === '' || v.length > MAX_RECORD_ID_CHARS) {
    m.omitted.push({
      field: ATTR_AUDIT_RECORD_ID,
      reason: typeof v === 'string' ? (v === '' ? 'empty' : 'too_long') : 'invalid_type',
      message: `${ATTR_AUDIT_RECORD_ID} must be a string of 1 to ${MAX_RECORD_ID_CHARS} characters; left out of the provenance`,
    });
    return undefined;
  }
  return v === `${producerId}/${seq}` ? undefined : v;
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
