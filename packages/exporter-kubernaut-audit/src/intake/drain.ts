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
 * - Per record: one pass over the attributes, one canonical encoding, one SHA-256; no JSON.parse
 *   (but with `openapiSpec`), no syscall. Per drain: one spool write, at most one dead-letter
 *   write, one provenance write.
 */
import type { ContractViolation } from '@kubernaut/datastorage-contract';
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
import type { DeadLetter, DeadLetterFile } from '../spool/dead-letter.ts';
import { laneOf } from '../spool/spool.ts';
import type { AppendOutcome, AuditSpool, EncodedEvent } from '../spool/types.ts';

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
  run(records: readonly PendingRecord[]): DrainResult {
    const d = this._d;
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
        continue;
      }
      const { m, enc, cid } = e;
      for (const o of m.omitted)
        result.omitted.set(o.reason, (result.omitted.get(o.reason) ?? 0) + 1);
      d.order.commit(cid, m.envelope.event_timestamp as string);
      if (enc.hash !== undefined) d.stamper?.linked(p.seq, enc.hash);
      const lane = laneOf(cid, lanes);
      (byLane[lane] as EncodedEvent[]).push({
        json: enc.json,
        bytes: enc.bytes,
        emittedAt: p.emittedAt,
        provSeq: p.seq,
        lane,
      });
    }
    result.regressed = d.order.regressed - regressedBefore;
    const events = lanes === 1 ? (byLane[0] as EncodedEvent[]) : byLane.flat();
    if (events.length > 0) {
      result.outcome = d.spool.append(events);
      for (const f of result.outcome.frames) result.appended += f.count;
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
    let enc = encodeEvent(env, m.data, d.stamper?.fields(seq, original));
    if (!enc.ok && enc.violation === ENVELOPE_UNSTORABLE) {
      return storability ? { kind: 'invalid', violations: [enc.violation] } : { kind: 'retry' };
    }
    if (enc.ok && openApi !== undefined) {
      const { fatal, changed } = checkOpenApi(m, enc.json, openApi);
      if (fatal.length > 0) return { kind: 'invalid', violations: [...fatal, ...m.omitted] };
      if (changed) enc = encodeEvent(fillDefaults(env), m.data, d.stamper?.fields(seq, original));
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
      event: { record: snapshot(record), violations: violations.slice(0, 20) },
      provenance:
        seq > 0 && this._d.stamper !== undefined ? this._d.stamper.rejected(seq) : undefined,
    };
  }
}

/** What a dead letter keeps of a record (sanitised and bounded when written). */
function snapshot(record: ReadableLogRecord): Record<string, unknown> {
  try {
    return {
      event_name: record.eventName,
      timestamp: record.hrTime,
      observed_timestamp: record.hrTimeObserved,
      attributes: record.attributes,
      body: record.body,
    };
  } catch {
    return {};
  }
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
