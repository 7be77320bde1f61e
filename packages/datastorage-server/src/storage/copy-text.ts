// SPDX-License-Identifier: Apache-2.0
/*
 * Rows of PostgreSQL's COPY text format (pure): one line per event, columns separated by tabs,
 * `\N` for NULL, backslash, newline, CR and tab escaped. The lines of a batch are encoded as
 * UTF-8 straight into one growing Buffer, the COPY data sent as is: no string of the whole batch
 * is built (its rope of thousands of pieces cost more to flatten than the encoding itself).
 */
import type { PreparedEvent } from '../events.ts';

// (Strings reaching here hold no NUL: validation refused them.)
const COPY_SPECIAL = /[\\\n\r\t]/;
const COPY_SPECIAL_ALL = /[\\\n\r\t]/g;
const COPY_ESCAPES: Record<string, string> = {
  '\\': '\\\\',
  '\n': '\\n',
  '\r': '\\r',
  '\t': '\\t',
};

/** A field of COPY's text format. */
export function copyField(v: string | number | boolean | null): string {
  if (v === null) return '\\N';
  if (typeof v !== 'string') return String(v);
  return COPY_SPECIAL.test(v) ? v.replace(COPY_SPECIAL_ALL, (c) => COPY_ESCAPES[c]!) : v;
}

/**
 * One row of the COPY text format, columns in the store's COPY column order. `doc` is the
 * event's canonical document (or the hash input: the previous hash, hex, then the document):
 * it holds every text field JSON-escaped, so when it has no backslash no field holds a
 * backslash, a newline, a CR or a tab, and nothing needs COPY escaping.
 */
export function copyLine(
  e: PreparedEvent,
  doc: string,
  hash: string,
  prev: string,
  algorithm: string,
  pos: number | bigint,
): string {
  if (doc.indexOf('\\') === -1) {
    const f = (v: string | number | null) => (v === null ? '\\N' : v);
    return (
      `${e.event_id}\t${e.version}\t${e.event_timestamp}\t${e.event_date}` +
      `\t${e.event_type}\t${e.event_category}\t${e.event_action}\t${e.event_outcome}` +
      `\t${e.actor_type}\t${e.actor_id}\t${f(e.actor_ip)}\t${e.resource_type}\t${e.resource_id}` +
      `\t${e.correlation_id}\t${f(e.parent_event_id)}\t${f(e.parent_event_date)}` +
      `\t${f(e.namespace)}\t${f(e.cluster_id)}\t${e.event_data}\t${f(e.severity)}` +
      `\t${f(e.duration_ms)}\t${f(e.error_code)}\t${f(e.error_message)}\t${e.retention_days}` +
      `\t${e.is_sensitive ? 't' : 'f'}\t${hash}\t${prev}\t${algorithm}\t${pos}\n`
    );
  }
  return (
    `${e.event_id}\t${copyField(e.version)}\t${e.event_timestamp}\t${e.event_date}` +
    `\t${copyField(e.event_type)}\t${copyField(e.event_category)}\t${copyField(e.event_action)}` +
    `\t${copyField(e.event_outcome)}\t${copyField(e.actor_type)}\t${copyField(e.actor_id)}` +
    `\t${copyField(e.actor_ip)}\t${copyField(e.resource_type)}\t${copyField(e.resource_id)}` +
    `\t${copyField(e.correlation_id)}\t${copyField(e.parent_event_id)}` +
    `\t${copyField(e.parent_event_date)}\t${copyField(e.namespace)}\t${copyField(e.cluster_id)}` +
    `\t${copyField(e.event_data)}\t${copyField(e.severity)}\t${copyField(e.duration_ms)}` +
    `\t${copyField(e.error_code)}\t${copyField(e.error_message)}\t${e.retention_days}` +
    `\t${e.is_sensitive ? 't' : 'f'}\t${hash}\t${prev}\t${algorithm}\t${pos}\n`
  );
}

/** Lines appended as UTF-8 into one Buffer that grows as needed. */
export class CopyRows {
  #buf: Buffer;
  #length = 0;

  /** `expectedBytes`: a guess of the total size (the buffer grows past it when needed). */
  constructor(expectedBytes: number) {
    this.#buf = Buffer.allocUnsafe(Math.max(1024, expectedBytes));
  }

  add(line: string): void {
    // At most 3 UTF-8 bytes per UTF-16 unit.
    const need = this.#length + line.length * 3;
    if (need > this.#buf.length) {
      const grown = Buffer.allocUnsafe(Math.max(need, this.#buf.length * 2));
      this.#buf.copy(grown, 0, 0, this.#length);
      this.#buf = grown;
    }
    this.#length += this.#buf.write(line, this.#length, 'utf8');
  }

  /** The lines so far (a view of the buffer, valid until the next add). */
  bytes(): Buffer {
    return this.#buf.subarray(0, this.#length);
  }
}
