// SPDX-License-Identifier: Apache-2.0
/*
 * The design floor of issue 11's cost table, as a reference row for scenarios 1 and 7 (not a
 * product): the pipeline's own steps with nothing around them. Selects audit records at emit;
 * every 512 records (or 1 s after the first) maps and validates them (the exporter's mapRecord), stamps and
 * serialises each once with its SHA-256 chain hash over the same bytes (encodeEvent), writes one
 * CRC frame of the batch (the spool's format) with one writeSync, and posts the frame's body as
 * the request. A 201 whose event_ids count matches is success.
 *
 * What it leaves out, and the audit pipeline pays for: OTel's BatchLogRecordProcessor as the
 * batcher and its queue limit, lanes (one request per correlation group), the sent/ack log,
 * acknowledged-segment deletion, recovery, durable seq reservations, per-correlation timestamp
 * order, dead letters, retries, backoff, settlement for forceFlush, metrics and diag. It does not
 * retry: a failed request fails forceFlush().
 *
 * `deferDrain` (scenario 1, which times each emit()): the 512th record's drain runs in a
 * microtask after its emit() returns, as OTel's BatchLogRecordProcessor starts an export (and
 * so the audit processor's drain) after the emit that filled a batch; without it that emit
 * would carry the whole batch's work.
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import {
  type EncodedEvent,
  encodeEvent,
  frameBytesOf,
  isAuditRecord,
  mapRecord,
  writeFrame,
} from '@kubernaut/exporter-kubernaut-audit/experimental';
import type {
  LogRecordProcessor,
  ReadableLogRecord,
  ReadWriteLogRecord,
} from '@opentelemetry/sdk-logs';

const BATCH = 512;
const DELAY_MILLIS = 1000;

export class FloorProcessor implements LogRecordProcessor {
  private readonly _url: URL;
  private readonly _fd: number;
  private readonly _agent = new http.Agent({ keepAlive: true });
  private _pending: ReadableLogRecord[] = [];
  private _timer: NodeJS.Timeout | undefined;
  private readonly _inflight = new Set<Promise<void>>();
  private _seq = 0;
  private _prev: string | null = null;
  private readonly _deferDrain: boolean;
  private _drainQueued = false;

  /**
   * `url`: DataStorage's base URL; `directory`: where its one segment file goes; `deferDrain`:
   * see the module comment.
   */
  constructor(options: { url: string; directory: string; deferDrain?: boolean }) {
    this._url = new URL('/api/v1/audit/events/batch', options.url);
    this._fd = openSync(join(options.directory, 'floor.kaf'), 'a');
    this._deferDrain = options.deferDrain === true;
  }

  onEmit(record: ReadWriteLogRecord): void {
    if (!isAuditRecord(record)) return;
    this._pending.push(record);
    if (this._pending.length >= BATCH) {
      if (!this._deferDrain) this._drain();
      else if (!this._drainQueued) {
        this._drainQueued = true;
        queueMicrotask(() => {
          this._drainQueued = false;
          this._drain();
        });
      }
    } else if (this._timer === undefined) {
      this._timer = setTimeout(() => this._drain(), DELAY_MILLIS);
      this._timer.unref();
    }
  }

  async forceFlush(): Promise<void> {
    this._drain();
    await Promise.all([...this._inflight]);
  }

  async shutdown(): Promise<void> {
    await this.forceFlush();
    closeSync(this._fd);
    this._agent.destroy();
  }

  private _drain(): void {
    if (this._timer !== undefined) clearTimeout(this._timer);
    this._timer = undefined;
    const records = this._pending;
    this._pending = [];
    if (records.length === 0) return;
    const now = Date.now();
    const events: EncodedEvent[] = [];
    let bytes = 0;
    for (const r of records) {
      const m = mapRecord(r, { now, storability: false });
      if (!m.ok) continue;
      const seq = ++this._seq;
      const e = encodeEvent(m.event.envelope, m.event.data, {
        producer_id: 'floor',
        session_id: 'floor',
        seq,
        prev_hash: this._prev,
      });
      if (!e.ok) continue;
      this._prev = e.hash ?? null;
      events.push({ json: e.json, bytes: e.bytes, emittedAt: now, provSeq: seq, lane: 0 });
      bytes += e.bytes;
    }
    if (events.length === 0) return;
    const frameBytes = frameBytesOf(events.length, bytes);
    const buf = Buffer.allocUnsafe(frameBytes);
    const frame = writeFrame(buf, 0, 0, this._seq - events.length + 1, now, events, frameBytes);
    writeSync(this._fd, buf);
    const sent = this._post(frame.body, events.length).finally(() => this._inflight.delete(sent));
    this._inflight.add(sent);
  }

  private _post(body: Buffer, count: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const req = http.request(
        this._url,
        {
          method: 'POST',
          agent: this._agent,
          headers: { 'content-type': 'application/json', 'content-length': body.length },
        },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => {
            text += c;
          });
          res.on('end', () => {
            let ids: unknown;
            try {
              ids = (JSON.parse(text) as { event_ids?: unknown }).event_ids;
            } catch {
              ids = undefined;
            }
            if (res.statusCode === 201 && Array.isArray(ids) && ids.length === count) resolve();
            else reject(new Error(`floor: HTTP ${res.statusCode} for ${count} events`));
          });
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  }
}
