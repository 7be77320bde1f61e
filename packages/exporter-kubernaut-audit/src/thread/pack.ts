// SPDX-License-Identifier: Apache-2.0
/*
 * A batch of prepared records, packed for postMessage: the canonical JSON of every record in one
 * string, the correlation ids in another, the numbers in typed arrays, and the rare parts (a
 * moved timestamp, a caller's record id, an invalid record) beside them. Structured clone then
 * copies a few flat buffers instead of a graph of small objects: a fraction of the cost on both
 * threads.
 *
 * Invariants: unpack(pack(items)) equals items, in order (property-tested); pack() reads the
 * items only; the invalid records' snapshots are cloned as they are (see sanitisedSnapshots()
 * for those that cannot be). Never throws for items of intake/prepare.ts.
 */
import type { PreparedItem } from '../intake/prepare.ts';

type Valid = Extract<PreparedItem, { ok: true }>;
type Invalid = Extract<PreparedItem, { ok: false }>;

export interface PackedItems {
  n: number;
  /** Every valid record's canonical JSON, one after the other; ends[i]: where record i's ends. */
  text: string;
  ends: Int32Array;
  cids: string;
  cidEnds: Int32Array;
  emittedAt: Float64Array;
  seq: Float64Array;
  /** The placeholder's offset in the record's JSON (-1: unstamped), and its length. */
  provAt: Int32Array;
  provLength: number;
  /** actor_ip's JSON length (-1: none). */
  ipLength: Int32Array;
  /** [index, original timestamp, caller's record id] where either is set. */
  extras: Array<[number, string | undefined, string | undefined]>;
  /** [index, the invalid item] (its text and cid are empty). */
  invalid: Array<[number, Invalid]>;
}

/** Packs `items` (see the invariants). */
export function pack(items: readonly PreparedItem[]): PackedItems {
  const n = items.length;
  const ends = new Int32Array(n);
  const cidEnds = new Int32Array(n);
  const emittedAt = new Float64Array(n);
  const seq = new Float64Array(n);
  const provAt = new Int32Array(n);
  const ipLength = new Int32Array(n);
  const extras: PackedItems['extras'] = [];
  const invalid: PackedItems['invalid'] = [];
  let text = '';
  let cids = '';
  let provLength = 0;
  for (let i = 0; i < n; i++) {
    const it = items[i] as PreparedItem;
    emittedAt[i] = it.emittedAt;
    seq[i] = it.seq;
    if (it.ok) {
      const p = it.prepared;
      text += p.json;
      cids += it.cid;
      provAt[i] = p.stamped ? p.provAt : -1;
      provLength = p.provLength;
      ipLength[i] = p.ipLength ?? -1;
      if (it.original !== undefined || it.rid !== undefined) extras.push([i, it.original, it.rid]);
    } else {
      provAt[i] = -1;
      ipLength[i] = -1;
      invalid.push([i, it]);
    }
    ends[i] = text.length;
    cidEnds[i] = cids.length;
  }
  return {
    n,
    text,
    ends,
    cids,
    cidEnds,
    emittedAt,
    seq,
    provAt,
    provLength,
    ipLength,
    extras,
    invalid,
  };
}

/** The items `pack()` packed, in order. */
export function unpack(b: PackedItems): PreparedItem[] {
  const out: PreparedItem[] = new Array(b.n);
  let start = 0;
  let cidStart = 0;
  for (let i = 0; i < b.n; i++) {
    const end = b.ends[i] as number;
    const cidEnd = b.cidEnds[i] as number;
    const provAt = b.provAt[i] as number;
    const ip = b.ipLength[i] as number;
    const item: Valid = {
      ok: true,
      seq: b.seq[i] as number,
      emittedAt: b.emittedAt[i] as number,
      cid: b.cids.slice(cidStart, cidEnd),
      prepared: {
        ok: true,
        json: b.text.slice(start, end),
        stamped: provAt >= 0,
        ipLength: ip < 0 ? undefined : ip,
        provAt,
        provLength: b.provLength,
      },
      original: undefined,
      rid: undefined,
    };
    out[i] = item;
    start = end;
    cidStart = cidEnd;
  }
  for (const [i, original, rid] of b.extras) {
    const it = out[i] as Valid;
    it.original = original;
    it.rid = rid;
  }
  for (const [i, it] of b.invalid) out[i] = it;
  return out;
}
