// SPDX-License-Identifier: Apache-2.0
/*
 * The dead-letter file beside the spool: audit records that can never be accepted by
 * DataStorage, one JSON line each, so that nothing is lost silently:
 *
 *   {"time":"<RFC 3339>","reason":"<reason>","detail":"<text>","status":400,"event":{...}}
 *
 * Invariants:
 * - Bounded in memory and time: every entry is written through a bounded, sanitising copy
 *   (at most MAX_ENTRY_CHARS of JSON, depth and node counts limited, shared references and
 *   cycles cut, BigInt written as its decimal text with an `n`, functions and symbols as text),
 *   so a hostile record (a DAG of shared references, a BigInt body) costs microseconds, never
 *   seconds, and never loses its provenance: `audit_provenance` (the seq) is written first and
 *   is never cut.
 * - Bounded on disk by the file's real size: before each write the file is measured (fstat), so
 *   two writers, or a file grown by someone else, never take it past `maxBytes`. Entries over the
 *   bound are dropped, counted (`onDropped`) and reported.
 * - Synchronous: when write() returns, the entries are in the OS (or dropped and counted).
 * - The file belongs to the spool's lock holder; a process without the lock writes its own file
 *   (see deadLetterPathFor). Mode 0600 in a 0700 directory. Never throws.
 */
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { AUDIT_EVENT_DATA_PROVENANCE_KEY } from '@kubernaut/audit-semantic-conventions';
import { DEAD_LETTER_FILE } from '@kubernaut/audit-spool-format';
import { errorText } from '@kubernaut/datastorage-contract/config';
import type { ReadableLogRecord } from '@opentelemetry/sdk-logs';
import { ComponentDiag } from '../measure/diag.ts';
import { nodeFs, type SpoolFs } from './fs.ts';
import { closeQuietly, ensureDirectory, writeFully } from './fsutil.ts';

export { DEAD_LETTER_FILE };

/** Default bound of the dead-letter file: 100 MiB. */
export const DEFAULT_DEAD_LETTER_MAX_BYTES = 100 * 1024 * 1024;
/** Largest JSON of one sanitised entry value. */
export const MAX_ENTRY_CHARS = 64 * 1024;

/** One dead letter. */
export interface DeadLetter {
  /** Machine-readable reason, e.g. `invalid_type`, `rejected`, `expired`, `poison`. */
  reason: string;
  /** Human-readable detail. */
  detail: string;
  /** HTTP status of the answer that rejected the event, when there was one. */
  status?: number;
  /** The event, or what could be read of the record (sanitised when written). */
  event: unknown;
  /** Written first, never cut: `{producer_id, session_id, seq}` of a record rejected at drain. */
  provenance?: { producer_id: string; session_id: string; seq: number } | undefined;
}

/** A dead letter as the delivery engine hands it over (the file writes its own time). */
export interface DeadLetterEntry {
  time?: string;
  reason: string;
  detail: string;
  status?: number;
  event: unknown;
}

/**
 * The dead-letter file of a standalone KubernautAuditExporter (one not inside an
 * AuditLogRecordProcessor, whose dead letters go beside its spool):
 * `<os tmpdir>/kubernaut-audit/<OTEL_SERVICE_NAME or "default">/dead-letter.jsonl`.
 */
export function defaultDeadLetterPath(env: NodeJS.ProcessEnv = process.env): string {
  const service = (env.OTEL_SERVICE_NAME ?? '').trim() || 'default';
  // Cut to what a file name can hold (255 bytes); names that fit are kept whole.
  const safe = service
    .replace(/[^A-Za-z0-9._-]/g, '_')
    .replace(/^\.+/, '_')
    .slice(0, 240);
  return join(tmpdir(), 'kubernaut-audit', safe, DEAD_LETTER_FILE);
}

/**
 * The delivery engine's dead letters written into `file()`, each with the provenance of its
 * event (`event_data.audit_provenance`: producer, session, seq) kept.
 */
export function deadLetterSink(file: () => DeadLetterFile): {
  write(entries: readonly DeadLetterEntry[]): Promise<number>;
} {
  return {
    write: async (entries) =>
      file().write(
        entries.map((e) => ({
          reason: e.reason,
          detail: e.detail,
          ...(e.status === undefined ? {} : { status: e.status }),
          event: e.event,
          provenance: provenanceOf(e.event),
        })),
      ),
  };
}

/** `{producer_id, session_id, seq}` of an event's provenance, so that a dead letter keeps it. */
export function provenanceOf(event: unknown): DeadLetter['provenance'] {
  const data = (event as { event_data?: unknown } | null)?.event_data;
  if (data === null || typeof data !== 'object') return undefined;
  const p = Object.getOwnPropertyDescriptor(data, AUDIT_EVENT_DATA_PROVENANCE_KEY)?.value as
    | { producer_id?: unknown; session_id?: unknown; seq?: unknown }
    | undefined;
  if (
    typeof p?.producer_id !== 'string' ||
    typeof p.session_id !== 'string' ||
    typeof p.seq !== 'number'
  ) {
    return undefined;
  }
  return { producer_id: p.producer_id, session_id: p.session_id, seq: p.seq };
}

export interface DeadLetterFileOptions {
  path: string;
  /** [100 MiB] */
  maxBytes?: number;
  fs?: SpoolFs;
  /** Dead letters that could not be written, by reason (`max_bytes`, `io_error`, `closed`). */
  onDropped?: (count: number, reason: string) => void;
}

const log = new ComponentDiag('kubernaut-audit dead letters');

export class DeadLetterFile {
  private _path: string;
  private readonly _max: number;
  private readonly _fs: SpoolFs;
  private readonly _onDropped: ((count: number, reason: string) => void) | undefined;
  private _fd: number | undefined;
  private _closed = false;
  private _written = 0;
  private _dropped = 0;

  constructor(options: DeadLetterFileOptions) {
    this._path = options.path;
    const max = options.maxBytes;
    this._max =
      typeof max === 'number' && Number.isFinite(max) && max > 0
        ? max
        : DEFAULT_DEAD_LETTER_MAX_BYTES;
    this._fs = options.fs ?? nodeFs;
    this._onDropped = options.onDropped;
  }

  get path(): string {
    return this._path;
  }

  get written(): number {
    return this._written;
  }

  get dropped(): number {
    return this._dropped;
  }

  /**
   * Writes to `path` from now on (the spool's own file once its lock is taken). The same path
   * opens it again at the next write (the spool directory was re-created: the file held open
   * may be gone with it).
   */
  moveTo(path: string): void {
    if (this._fd !== undefined) closeQuietly(this._fs, this._fd);
    this._fd = undefined;
    this._path = path;
  }

  /** Appends `entries` with one write. Returns how many were written. Never throws. */
  write(entries: readonly DeadLetter[]): number {
    if (entries.length === 0) return 0;
    if (this._closed) {
      this._drop(entries.length, 'closed', 'the dead-letter file is closed');
      return 0;
    }
    const time = new Date().toISOString();
    let text = '';
    for (const e of entries) text += `${serialise(e, time)}\n`;
    const bytes = Buffer.byteLength(text);
    try {
      if (this._fd === undefined) {
        ensureDirectory(this._fs, dirname(this._path), 0o700);
        this._fd = this._fs.openSync(this._path, 'a', 0o600);
      }
      const size = this._fs.fstatSync(this._fd).size;
      if (size + bytes > this._max) return this._writeWithin(entries, time, size);
      writeFully(this._fs, this._fd, Buffer.from(text), null);
      this._written += entries.length;
      return entries.length;
    } catch (err) {
      this._drop(entries.length, 'io_error', `cannot write ${this._path} (${errorText(err)})`);
      return 0;
    }
  }

  /** Writes the entries that fit the bound; the rest is dropped and counted. */
  private _writeWithin(entries: readonly DeadLetter[], time: string, size: number): number {
    let text = '';
    let bytes = size;
    let fit = 0;
    for (const e of entries) {
      const line = `${serialise(e, time)}\n`;
      const n = Buffer.byteLength(line);
      if (bytes + n > this._max) continue;
      text += line;
      bytes += n;
      fit++;
    }
    if (fit > 0) writeFully(this._fs, this._fd as number, Buffer.from(text), null);
    this._written += fit;
    if (fit < entries.length) {
      this._drop(
        entries.length - fit,
        'max_bytes',
        `dead-letter file ${this._path} reached its bound of ${this._max} bytes`,
      );
    }
    return fit;
  }

  private _drop(count: number, reason: string, message: string): void {
    this._dropped += count;
    try {
      this._onDropped?.(count, reason);
    } catch {
      // counting must never break dead-lettering
    }
    log.report('error', `drop:${reason}`, `${message}: ${count} dead letter(s) dropped`, count);
  }

  close(): void {
    this._closed = true;
    if (this._fd !== undefined) closeQuietly(this._fs, this._fd);
    this._fd = undefined;
    log.flush();
  }
}

function serialise(e: DeadLetter, time: string): string {
  let s = `{"time":${JSON.stringify(time)},"reason":${JSON.stringify(String(e.reason))},"detail":${JSON.stringify(truncate(String(e.detail), 2000))}`;
  if (e.status !== undefined) s += `,"status":${Number(e.status) || 0}`;
  s += `,"event":${sanitisedEvent(e.event, e.provenance)}}`;
  return s;
}

function truncate(s: string, max: number): string {
  return s.length <= max ? s : `${s.slice(0, max)}…`;
}

/** The event as JSON: the provenance first (never cut), then the rest within the bound. */
function sanitisedEvent(event: unknown, provenance: DeadLetter['provenance']): string {
  if (provenance === undefined) return sanitiseToJson(event, MAX_ENTRY_CHARS);
  const prov = `"audit_provenance":{"producer_id":${JSON.stringify(provenance.producer_id)},"session_id":${JSON.stringify(provenance.session_id)},"seq":${Number(provenance.seq)}}`;
  if (event === null || typeof event !== 'object' || Array.isArray(event)) {
    return `{${prov},"value":${sanitiseToJson(event, MAX_ENTRY_CHARS)}}`;
  }
  const rest = sanitiseToJson(event, MAX_ENTRY_CHARS);
  if (!rest.startsWith('{')) return `{${prov},"value":${rest}}`; // it could not be read as an object
  return rest === '{}' ? `{${prov}}` : `{${prov},${rest.slice(1)}`;
}

const MAX_DEPTH = 12;
const MAX_NODES = 5000;

/**
 * JSON of a bounded, sanitised copy of `value`: about `maxChars` characters at most (what does
 * not fit is cut, marked `"…(truncated)"`, and the JSON closed), at most MAX_DEPTH levels and
 * MAX_NODES nodes; an object met a second time is written as `"[shared reference]"` (so a DAG
 * or a cycle costs its size once). Never throws.
 */
export function sanitiseToJson(value: unknown, maxChars: number): string {
  const st: SanState = {
    out: '',
    budget: maxChars,
    nodes: MAX_NODES,
    seen: new Set(),
    stack: [],
    cut: false,
  };
  try {
    write(value, 0, st);
  } catch (err) {
    return unreadable(err);
  }
  return st.out;
}

/** The JSON string written for a value whose reading threw. */
function unreadable(err: unknown): string {
  return JSON.stringify(`[unreadable: ${errorText(err, 200)}]`);
}

interface Open {
  close: '}' | ']';
  /** Output length after the last complete member. */
  safe: number;
  first: boolean;
}

interface SanState {
  out: string;
  budget: number;
  nodes: number;
  seen: Set<object>;
  stack: Open[];
  cut: boolean;
}

/** Cuts the output at the innermost container's last complete member and closes everything. */
function cut(st: SanState): false {
  st.cut = true;
  const top = st.stack[st.stack.length - 1];
  if (top === undefined) {
    st.out = '"…(truncated)"';
    return false;
  }
  let out = st.out.slice(0, top.safe) + (top.first ? '' : ',');
  out += top.close === '}' ? '"…":"(truncated)"' : '"…(truncated)"';
  for (let i = st.stack.length - 1; i >= 0; i--) out += (st.stack[i] as Open).close;
  st.out = out;
  st.stack.length = 0;
  return false;
}

function put(st: SanState, s: string): boolean {
  if (st.cut) return false;
  if (s.length > st.budget) return cut(st);
  st.out += s;
  st.budget -= s.length;
  return true;
}

function done(st: SanState): void {
  const top = st.stack[st.stack.length - 1];
  if (top !== undefined && !st.cut) {
    top.safe = st.out.length;
    top.first = false;
  }
}

function write(v: unknown, depth: number, st: SanState): void {
  if (st.cut) return;
  st.nodes--;
  switch (typeof v) {
    case 'string':
      put(
        st,
        JSON.stringify(v.length > st.budget ? `${v.slice(0, Math.max(0, st.budget - 20))}…` : v),
      );
      return;
    case 'number':
      put(st, Number.isFinite(v) ? String(v) : JSON.stringify(String(v)));
      return;
    case 'boolean':
      put(st, v ? 'true' : 'false');
      return;
    case 'bigint':
      put(st, JSON.stringify(`${v.toString()}n`));
      return;
    case 'undefined':
      put(st, 'null');
      return;
    case 'function':
      put(st, JSON.stringify('[function]'));
      return;
    case 'symbol':
      put(st, JSON.stringify(v.toString()));
      return;
  }
  if (v === null) {
    put(st, 'null');
    return;
  }
  const obj = v as object;
  if (st.seen.has(obj)) {
    put(st, '"[shared reference]"');
    return;
  }
  if (depth >= MAX_DEPTH || st.nodes <= 0) {
    put(st, '"[too deep or too large]"');
    return;
  }
  // What the value is, read before anything of it is written: a Proxy's trap or a getter may
  // throw, and the value is then written as "[unreadable: …]" (the line stays valid JSON).
  let length = 0;
  let keys: string[] | undefined;
  try {
    if (obj instanceof Uint8Array) {
      const n = Math.min(obj.byteLength, st.budget);
      const b64 = Buffer.from(obj.buffer, obj.byteOffset, n).toString('base64');
      put(st, JSON.stringify(`base64:${b64}`));
      return;
    }
    if (obj instanceof Date) {
      put(st, JSON.stringify(Number.isNaN(obj.getTime()) ? 'Invalid Date' : obj.toISOString()));
      return;
    }
    if (Array.isArray(obj)) length = obj.length;
    else keys = Object.keys(obj);
  } catch (err) {
    put(st, unreadable(err));
    return;
  }
  st.seen.add(obj);
  const isArray = keys === undefined;
  if (!put(st, isArray ? '[' : '{')) return;
  st.stack.push({ close: isArray ? ']' : '}', safe: st.out.length, first: true });
  if (keys === undefined) {
    const arr = obj as unknown[];
    for (let i = 0; i < length; i++) {
      if (i > 0 && !put(st, ',')) return;
      let c: unknown;
      try {
        c = arr[i];
      } catch (err) {
        if (!put(st, unreadable(err))) return;
        done(st);
        continue;
      }
      write(c, depth + 1, st);
      if (st.cut) return;
      done(st);
    }
  } else {
    let first = true;
    for (const key of keys) {
      let c: unknown;
      let failed: string | undefined;
      try {
        c = (obj as Record<string, unknown>)[key];
      } catch (err) {
        failed = unreadable(err);
      }
      if (c === undefined && failed === undefined) continue;
      if (!put(st, `${first ? '' : ','}${JSON.stringify(key)}:`)) return;
      first = false;
      if (failed !== undefined) {
        if (!put(st, failed)) return;
      } else {
        write(c, depth + 1, st);
        if (st.cut) return;
      }
      done(st);
    }
  }
  const top = st.stack.pop() as Open;
  st.out += top.close;
  done(st);
}

/** What a dead letter keeps of a record that could not be mapped (sanitised and bounded when written). */
export function recordSnapshot(record: ReadableLogRecord): Record<string, unknown> {
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
