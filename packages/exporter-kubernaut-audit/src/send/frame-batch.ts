// SPDX-License-Identifier: Apache-2.0
/*
 * An OutgoingBatch over spool frames: the events of a lane, taken in order from one or more
 * frames. Nothing is decoded: a frame whose events are all in the batch is sent as its own
 * body (the frame body IS a request body); otherwise the body is `[` + the events' byte
 * slices joined by `,` + `]`, consecutive events of a frame as one slice, sent as parts
 * (no copy) or, when the subset is scattered into many runs, copied once into one buffer.
 */
import { eventTimesOf } from '../deliver/event-time.ts';
import type { RequestBody } from '../deliver/request-body.ts';
import type { Frame } from './spool-port.ts';
import type { OutgoingBatch } from './types.ts';

const OPEN = 0x5b;
const COMMA = 0x2c;
const CLOSE = 0x5d;
const OPEN_PART = Buffer.from('[');
const COMMA_PART = Buffer.from(',');
const CLOSE_PART = Buffer.from(']');
/** More parts than this and the body is copied into one buffer. */
const MAX_PARTS = 64;

/** The events `[from, to)` of a frame. */
export interface FramePart {
  frame: Frame;
  /** Events of the frame, ascending (indexes into the frame). */
  events: readonly number[];
}

/** An OutgoingBatch of the given parts, in order. */
export function frameBatch(parts: readonly FramePart[]): OutgoingBatch {
  const frames: Frame[] = [];
  const frameOf: number[] = [];
  const eventOf: number[] = [];
  const seqs: number[] = [];
  for (const p of parts) {
    const f = frames.push(p.frame) - 1;
    for (const e of p.events) {
      frameOf.push(f);
      eventOf.push(e);
      seqs.push(p.frame.firstSeq + e);
    }
  }
  const n = seqs.length;
  let times: Float64Array | undefined;
  const frameAt = (k: number): Frame => frames[frameOf[k] as number] as Frame;
  const at = (k: number): [Frame, number] => [frameAt(k), eventOf[k] as number];

  /**
   * The run of `indexes` that starts at position r: consecutive events e0..e1 of one frame f,
   * `s` the position after it.
   */
  function runAt(
    indexes: readonly number[],
    r: number,
  ): { f: Frame; e0: number; e1: number; s: number } {
    const [f, e0] = at(indexes[r] as number);
    let e1 = e0;
    let s = r + 1;
    while (s < indexes.length) {
      const k = indexes[s] as number;
      if (frames[frameOf[k] as number] !== f || eventOf[k] !== e1 + 1) break;
      e1++;
      s++;
    }
    return { f, e0, e1, s };
  }

  /**
   * The body as parts: a run of consecutive events of one frame is one slice of the frame's
   * bytes (with the frame's own `[` or `]` when the run starts or ends it), joined by `,`.
   * Scattered subsets (many runs, e.g. a bisection's halves) are copied into one buffer
   * instead: many tiny writes would cost more than one copy.
   */
  function build(indexes: readonly number[]): RequestBody {
    if (indexes.length === 0) return Buffer.from('[]');
    const parts: Buffer[] = [];
    let closed = false;
    let r = 0;
    while (r < indexes.length) {
      const { f, e0, e1, s } = runAt(indexes, r);
      let start = f.offset[e0] as number;
      let end = (f.offset[e1] as number) + (f.length[e1] as number);
      if (r === 0 && e0 === 0)
        start = 0; // the frame's own `[`
      else parts.push(r === 0 ? OPEN_PART : COMMA_PART);
      if (s === indexes.length && e1 === f.count - 1) {
        end = f.body.length; // its `]`
        closed = true;
      }
      parts.push(f.body.subarray(start, end));
      r = s;
      if (parts.length > MAX_PARTS) return copy(indexes);
    }
    if (!closed) parts.push(CLOSE_PART);
    return parts.length === 1 ? (parts[0] as Buffer) : parts;
  }

  /** The body copied into one buffer, one copy per run. */
  function copy(indexes: readonly number[]): Buffer {
    let total = 2 + Math.max(0, indexes.length - 1);
    for (const k of indexes) {
      const [f, e] = at(k);
      total += f.length[e] as number;
    }
    const out = Buffer.allocUnsafe(total);
    out[0] = OPEN;
    let pos = 1;
    let r = 0;
    while (r < indexes.length) {
      const { f, e0, e1, s } = runAt(indexes, r);
      if (r > 0) out[pos++] = COMMA;
      const start = f.offset[e0] as number;
      const end = (f.offset[e1] as number) + (f.length[e1] as number);
      pos += f.body.copy(out, pos, start, end);
      r = s;
    }
    out[pos++] = CLOSE;
    return pos === total ? out : out.subarray(0, pos);
  }

  const all = Array.from({ length: n }, (_, k) => k);
  return {
    seqs,
    body(indexes?: readonly number[]): RequestBody {
      const list = indexes ?? all;
      if (list.length === n && frames.length === 1) {
        const f = frames[0] as Frame;
        if (n === f.count) return f.body;
      }
      return build(list);
    },
    eventJson(k: number): string {
      const [f, e] = at(k);
      const off = f.offset[e] as number;
      return f.body.toString('utf8', off, off + (f.length[e] as number));
    },
    // Called per event on the delivery path: no [frame, event] pair allocated.
    emittedAt: (k) => frameAt(k).emittedAt[eventOf[k] as number] as number,
    provSeq: (k) => frameAt(k).provSeq[eventOf[k] as number] as number,
    possiblyDelivered: (k) => frameAt(k).sentBefore?.[eventOf[k] as number] === 1,
    eventTime(k: number): number {
      if (times === undefined) {
        // All at once: one search pass per part.
        times = new Float64Array(n);
        let at = 0;
        for (const p of parts) {
          eventTimesOf(p.frame.body, p.frame.offset, p.frame.length, p.events, times, at);
          at += p.events.length;
        }
      }
      return times[k] as number;
    },
  };
}
