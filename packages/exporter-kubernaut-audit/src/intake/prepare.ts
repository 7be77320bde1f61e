// SPDX-License-Identifier: Apache-2.0
/*
 * The first half of a drain: one record → mapped, validated, put in its correlation's timestamp
 * order and encoded up to its provenance stamp (map/encode.ts prepareEvent), or, when
 * DataStorage can never store it, the violations and a snapshot for its dead letter.
 *
 * It needs no spool, no seq and no stamper, so it runs where the record was emitted: on the
 * application thread of ThreadedAuditLogRecordProcessor, in the drain itself otherwise
 * (drain.ts stamps, appends and dead-letters what it prepared).
 *
 * Invariants:
 * - A PreparedItem is plain data (it can cross to another thread) but for `record`, the
 *   snapshot of an invalid record, which the caller makes cloneable where it must
 *   (sanitisedSnapshots()).
 * - Per record: one pass over the attributes, one canonical encoding; no JSON.parse (but with
 *   `openapiSpec`), no syscall.
 * - Never throws: a record that throws when read is an invalid item.
 */
import { ATTR_AUDIT_RECORD_ID } from '@kubernaut/audit-semantic-conventions';
import type { ContractViolation } from '@kubernaut/datastorage-contract';
import { errorText } from '@kubernaut/datastorage-contract/config';
import type { ReadableLogRecord } from '@opentelemetry/sdk-logs';
import {
  checkOpenApi,
  ENVELOPE_UNSTORABLE,
  type EventValidator,
  fillDefaults,
  type MappedEvent,
  mapRecord,
  type Prepared,
  prepareEvent,
  type TimestampOrder,
} from '../map/index.ts';
import { ownAttributes } from '../select/index.ts';
import { MAX_ENTRY_CHARS, recordSnapshot, sanitiseToJson } from '../spool/dead-letter.ts';

/** One record, prepared: ready to be stamped and appended, or to be dead-lettered. */
export type PreparedItem =
  | {
      ok: true;
      /** Provenance seq, 0 when it is assigned at the stamp (the delivery thread). */
      seq: number;
      emittedAt: number;
      cid: string;
      /** The canonical JSON with the provenance placeholder, and actor_ip's JSON length. */
      prepared: Extract<Prepared, { ok: true }>;
      /** The record's own timestamp when monotonicTimestamps moved it forward. */
      original: string | undefined;
      /** The caller's audit.record.id, kept in the stamp. */
      rid: string | undefined;
    }
  | {
      ok: false;
      seq: number;
      emittedAt: number;
      violations: ContractViolation[];
      /** The record's snapshot for its dead letter (recordSnapshot, or its sanitised JSON parsed). */
      record: unknown;
    };

/** What a batch's preparation counted besides its items (for the metrics). */
export interface PrepareCounts {
  /** Invalid optional fields left out, by reason. */
  omitted: Map<string, number>;
  /** Records whose timestamp was earlier than their correlation's previous one. */
  regressed: number;
}

export interface PreparerOptions {
  order: TimestampOrder;
  /** The OpenAPI validator, once loaded (`openapiSpec`). */
  openApi(): EventValidator | undefined;
  /** Whether the events get a provenance stamp (a placeholder is left for it). */
  stamped: boolean;
}

/** _encode's answer for "map again with the storability check". */
const RETRY: unique symbol = Symbol('retry with the storability check');

/** Longest `audit.record.id` kept in the stamp. */
const MAX_RECORD_ID_CHARS = 255;

export class Preparer {
  private readonly _o: PreparerOptions;
  private _counts: PrepareCounts = { omitted: new Map(), regressed: 0 };
  private _regressedBefore = 0;
  private _openApi: EventValidator | undefined;

  constructor(options: PreparerOptions) {
    this._o = options;
    this._regressedBefore = options.order.regressed;
  }

  /** Starts a batch: the OpenAPI validator is read once per batch. */
  begin(): void {
    this._openApi = this._o.openApi();
  }

  /**
   * Prepares one record. `producerId`: the processor's own, when it named the record at emit
   * (`<producer_id>/<seq>` is then not the caller's record id).
   */
  prepare(
    record: ReadableLogRecord,
    seq: number,
    emittedAt: number,
    now: number,
    producerId?: string,
  ): PreparedItem {
    try {
      // Strings are checked for storability on the encoded event; when one fails, the record
      // is mapped again with the check (rare) to learn which field, and encoded once more.
      let e = this._encode(record, seq, emittedAt, now, false, producerId);
      if (e === RETRY) e = this._encode(record, seq, emittedAt, now, true, producerId);
      if (e !== RETRY && e.ok) return e;
      const violations = e === RETRY ? [ENVELOPE_UNSTORABLE] : e.violations;
      return { ok: false, seq, emittedAt, violations, record: recordSnapshot(record) };
    } catch (err) {
      const violations: ContractViolation[] = [
        { field: '', reason: 'invalid_record', message: errorText(err, 200) },
      ];
      return { ok: false, seq, emittedAt, violations, record: {} };
    }
  }

  /** What was counted since the last take. */
  takeCounts(): PrepareCounts {
    const counts = this._counts;
    const regressed = this._o.order.regressed;
    counts.regressed = regressed - this._regressedBefore;
    this._regressedBefore = regressed;
    this._counts = { omitted: new Map(), regressed: 0 };
    return counts;
  }

  private _count(reason: string): void {
    const m = this._counts.omitted;
    m.set(reason, (m.get(reason) ?? 0) + 1);
  }

  /**
   * Maps, orders and encodes one record: its item when it can be stamped (the one object per
   * record), its violations when it cannot, RETRY when a string DataStorage cannot store was
   * found without the storability check (the caller maps again with it).
   */
  private _encode(
    record: ReadableLogRecord,
    seq: number,
    emittedAt: number,
    now: number,
    storability: boolean,
    producerId: string | undefined,
  ): PreparedItem | { ok: false; violations: ContractViolation[] } | typeof RETRY {
    const o = this._o;
    const mapped = mapRecord(record, { now, storability });
    if (!mapped.ok) return { ok: false, violations: mapped.violations };
    const m = mapped.event;
    const env = m.envelope;
    const cid = env.correlation_id as string;
    env.event_timestamp = o.order.check(cid, env.event_timestamp as string);
    const original = o.order.original;
    const rid = o.stamped ? recordIdOf(record, producerId, seq, m) : undefined;
    let p = prepareEvent(env, m.data, o.stamped);
    if (!p.ok && p.violation === ENVELOPE_UNSTORABLE) {
      return storability ? { ok: false, violations: [p.violation] } : RETRY;
    }
    const openApi = this._openApi;
    if (p.ok && openApi !== undefined) {
      const { fatal, changed } = checkOpenApi(m, p.json, openApi);
      if (fatal.length > 0) return { ok: false, violations: [...fatal, ...m.omitted] };
      if (changed) p = prepareEvent(fillDefaults(env), m.data, o.stamped);
    }
    if (!p.ok) return { ok: false, violations: [p.violation, ...m.omitted] };
    o.order.commit(cid, env.event_timestamp as string);
    const omitted = m.omitted;
    for (let i = 0; i < omitted.length; i++) this._count((omitted[i] as ContractViolation).reason);
    return { ok: true, seq, emittedAt, cid, prepared: p, original, rid };
  }
}

/**
 * The caller's `audit.record.id` (OTEP 0267) to keep in the stamp: a string of 1–255 characters
 * that is not the id the processor itself set at emit (`<producer_id>/<seq>`). Another value is
 * left out and counted as an omitted field.
 */
function recordIdOf(
  record: ReadableLogRecord,
  producerId: string | undefined,
  seq: number,
  m: MappedEvent,
): string | undefined {
  const v = ownAttributes(record.attributes)[ATTR_AUDIT_RECORD_ID];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string' || v === '' || v.length > MAX_RECORD_ID_CHARS) {
    m.omitted.push({
      field: ATTR_AUDIT_RECORD_ID,
      reason: typeof v === 'string' ? (v === '' ? 'empty' : 'too_long') : 'invalid_type',
      message: `${ATTR_AUDIT_RECORD_ID} must be a string of 1 to ${MAX_RECORD_ID_CHARS} characters; left out of the provenance`,
    });
    return undefined;
  }
  return producerId !== undefined && v === `${producerId}/${seq}` ? undefined : v;
}

/**
 * `items` with the snapshot of each invalid record replaced by its sanitised, size-capped copy
 * (what the dead-letter file would write), so that the items can be posted to another thread:
 * a snapshot may hold values structured clone refuses (functions, symbols, proxies).
 */
export function sanitisedSnapshots(items: PreparedItem[]): PreparedItem[] {
  return items.map((it) => {
    if (it.ok) return it;
    let record: unknown;
    try {
      record = JSON.parse(sanitiseToJson(it.record, MAX_ENTRY_CHARS));
    } catch {
      record = {};
    }
    return { ...it, record };
  });
}
