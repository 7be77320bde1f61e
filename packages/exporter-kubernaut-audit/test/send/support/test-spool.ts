// SPDX-License-Identifier: Apache-2.0
/*
 * A small AuditSpool for the sender's tests (test code, not a product spool): frames in
 * memory, cut and indexed as the format-2 design says (≤ 500 events, < 5 MiB, body = the
 * request body), acks and SENT marks; with `directory`, every append and mark is also written
 * synchronously to two JSON-lines files, so that a process killed with SIGKILL leaves them for
 * the next one (which sees its predecessor's SENT marks as `sentBefore`).
 *
 * It records what the tests assert on: every readLane (disk reads), and the order of SENT
 * marks and acks.
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type {
  AppendOutcome,
  AuditSpool,
  EncodedEvent,
  Frame,
  Reservation,
  SeqRange,
  SpoolMeta,
  SpoolStats,
} from '../../../src/send/spool-port.ts';
import { eventText } from '../../../src/spool/frame.ts';

const MAX_EVENTS = 500;
const MAX_BODY = 5 * 1024 * 1024;
/** Frame header + per-event index, as the format-2 frame counts them. */
const HEAD_BYTES = 32;
const INDEX_BYTES = 24;

export interface TestSpoolOptions {
  lanes?: number;
  destination?: string;
  /** Persist to this directory (frames.jsonl, marks.jsonl) and recover from it. */
  directory?: string;
}

interface StoredFrame {
  lane: number;
  firstSeq: number;
  appendedAt: number;
  emittedAt: number[];
  provSeq: number[];
  json: string[];
}

export class TestSpool implements AuditSpool {
  readonly kind: 'file' | 'memory';
  readonly meta: SpoolMeta;
  /** Every readLane call: lane, afterSeq, frames returned. */
  readonly reads: Array<{ lane: number; afterSeq: number; frames: number }> = [];
  /** SENT marks and acks, in call order. */
  readonly marks: Array<{ kind: 'sent' | 'ack'; ranges: SeqRange[] }> = [];
  private readonly _frames: Frame[] = [];
  private readonly _acked = new Set<number>();
  private readonly _sent = new Set<number>();
  private readonly _dir: string | undefined;
  private _lastSeq = 0;

  constructor(options: TestSpoolOptions = {}) {
    this._dir = options.directory;
    this.kind = this._dir === undefined ? 'memory' : 'file';
    this.meta = {
      producerId: 'test-producer',
      destination: options.destination,
      service: 'test',
      lanes: options.lanes ?? 4,
      format: 2,
    };
    if (this._dir !== undefined) this._recover(this._dir);
  }

  append(events: readonly EncodedEvent[]): AppendOutcome {
    const frames: Frame[] = [];
    let i = 0;
    while (i < events.length) {
      const lane = (events[i] as EncodedEvent).lane;
      const group: EncodedEvent[] = [];
      let bytes = 2;
      while (i < events.length && group.length < MAX_EVENTS) {
        const e = events[i] as EncodedEvent;
        if (e.lane !== lane) break;
        if (group.length > 0 && bytes + e.bytes + 1 >= MAX_BODY) break;
        bytes += e.bytes + (group.length > 0 ? 1 : 0);
        group.push(e);
        i++;
      }
      const stored: StoredFrame = {
        lane,
        firstSeq: this._lastSeq + 1,
        appendedAt: Date.now(),
        emittedAt: group.map((e) => e.emittedAt),
        provSeq: group.map((e) => e.provSeq),
        json: group.map((e) => eventText(e)),
      };
      this._lastSeq += group.length;
      if (this._dir !== undefined) {
        appendFileSync(join(this._dir, 'frames.jsonl'), `${JSON.stringify(stored)}\n`);
      }
      const f = toFrame(stored);
      this._frames.push(f);
      frames.push(f);
    }
    return { frames, dropped: [] };
  }

  reserve(bytes: number): Reservation {
    return { bytes, release: () => {} };
  }

  readLane(
    lane: number,
    afterSeq: number,
    maxBytes: number,
    alloc?: (bytes: number) => Buffer,
  ): Frame[] {
    const out: Frame[] = [];
    let bytes = 0;
    for (const f of this._frames) {
      if (f.lane !== lane || f.firstSeq + f.count - 1 <= afterSeq) continue;
      let pending = false;
      for (let s = Math.max(f.firstSeq, afterSeq + 1); s < f.firstSeq + f.count; s++) {
        if (!this._acked.has(s)) {
          pending = true;
          break;
        }
      }
      if (!pending) continue;
      if (out.length > 0 && bytes + f.frameBytes > maxBytes) break;
      if (alloc === undefined) out.push(f);
      else {
        // read back into the caller's memory, as the file spool does
        const body = alloc(f.body.length);
        f.body.copy(body);
        out.push({ ...f, body });
      }
      bytes += f.frameBytes;
    }
    this.reads.push({ lane, afterSeq, frames: out.length });
    return out;
  }

  /** The lane of the frame holding `seq` (-1 when none). */
  laneOf(seq: number): number {
    for (const f of this._frames)
      if (seq >= f.firstSeq && seq < f.firstSeq + f.count) return f.lane;
    return -1;
  }

  isAcked(seq: number): boolean {
    return this._acked.has(seq);
  }

  /** True when `seq` was marked SENT (by this process or a predecessor). */
  isSent(seq: number): boolean {
    return this._sent.has(seq);
  }

  markSent(ranges: readonly SeqRange[]): void {
    this.marks.push({ kind: 'sent', ranges: ranges.map((r) => ({ ...r })) });
    for (const r of ranges) for (let s = r.from; s <= r.to; s++) this._sent.add(s);
    this._persistMark('sent', ranges);
  }

  ack(ranges: readonly SeqRange[]): void {
    this.marks.push({ kind: 'ack', ranges: ranges.map((r) => ({ ...r })) });
    for (const r of ranges) for (let s = r.from; s <= r.to; s++) this._acked.add(s);
    this._persistMark('ack', ranges);
  }

  oldestUnackedSeq(): number {
    for (let s = 1; s <= this._lastSeq; s++) if (!this._acked.has(s)) return s;
    return Number.POSITIVE_INFINITY;
  }

  lastSeq(): number {
    return this._lastSeq;
  }

  stats(): SpoolStats {
    let records = 0;
    let bytes = 0;
    for (const f of this._frames) {
      let live = 0;
      for (let s = f.firstSeq; s < f.firstSeq + f.count; s++) if (!this._acked.has(s)) live++;
      records += live;
      if (live > 0) bytes += f.frameBytes;
    }
    return { records, bytes };
  }

  settleWrites(): void {}

  close(): void {}

  private _persistMark(kind: 'sent' | 'ack', ranges: readonly SeqRange[]): void {
    if (this._dir === undefined) return;
    appendFileSync(
      join(this._dir, 'marks.jsonl'),
      `${JSON.stringify({ kind, ranges: ranges.map((r) => [r.from, r.to]) })}\n`,
    );
  }

  private _recover(dir: string): void {
    mkdirSync(dir, { recursive: true });
    const lines = (file: string) =>
      existsSync(join(dir, file))
        ? readFileSync(join(dir, file), 'utf8')
            .split('\n')
            .filter((l) => l.length > 0)
        : [];
    const stored: StoredFrame[] = [];
    for (const l of lines('frames.jsonl')) {
      try {
        stored.push(JSON.parse(l) as StoredFrame);
      } catch {
        // a torn last line (killed while writing): skipped
      }
    }
    for (const l of lines('marks.jsonl')) {
      let m: { kind: 'sent' | 'ack'; ranges: Array<[number, number]> };
      try {
        m = JSON.parse(l) as typeof m;
      } catch {
        continue;
      }
      const set = m.kind === 'ack' ? this._acked : this._sent;
      for (const [from, to] of m.ranges) for (let s = from; s <= to; s++) set.add(s);
    }
    for (const sf of stored) {
      const f = toFrame(sf);
      const sentBefore = new Uint8Array(f.count);
      let any = false;
      for (let e = 0; e < f.count; e++) {
        const s = f.firstSeq + e;
        if (this._sent.has(s) && !this._acked.has(s)) {
          sentBefore[e] = 1;
          any = true;
        }
      }
      if (any) f.sentBefore = sentBefore;
      this._frames.push(f);
      this._lastSeq = Math.max(this._lastSeq, f.firstSeq + f.count - 1);
    }
  }
}

function toFrame(sf: StoredFrame): Frame {
  const count = sf.json.length;
  const offset = new Uint32Array(count);
  const length = new Uint32Array(count);
  const parts: Buffer[] = [Buffer.from('[')];
  let pos = 1;
  sf.json.forEach((j, k) => {
    if (k > 0) {
      parts.push(Buffer.from(','));
      pos++;
    }
    const b = Buffer.from(j, 'utf8');
    offset[k] = pos;
    length[k] = b.length;
    parts.push(b);
    pos += b.length;
  });
  parts.push(Buffer.from(']'));
  const body = Buffer.concat(parts);
  return {
    lane: sf.lane,
    firstSeq: sf.firstSeq,
    count,
    appendedAt: sf.appendedAt,
    emittedAt: Float64Array.from(sf.emittedAt),
    provSeq: Float64Array.from(sf.provSeq),
    offset,
    length,
    body,
    frameBytes: HEAD_BYTES + INDEX_BYTES * count + body.length,
  };
}

/** fnv1a32, the lane hash of the design. */
export function fnv1a32(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** EncodedEvents of AuditEventRequests, lane by correlation id, grouped per lane in order. */
export function encodeEvents(
  events: ReadonlyArray<{ correlation_id: string }>,
  lanes: number,
  emittedAt = Date.now(),
): EncodedEvent[] {
  const byLane: EncodedEvent[][] = Array.from({ length: lanes }, () => []);
  events.forEach((ev, k) => {
    const json = JSON.stringify(ev);
    const lane = fnv1a32(ev.correlation_id) % lanes;
    byLane[lane]?.push({
      json,
      bytes: Buffer.byteLength(json),
      emittedAt,
      provSeq: k + 1,
      lane,
    });
  });
  return byLane.flat();
}
