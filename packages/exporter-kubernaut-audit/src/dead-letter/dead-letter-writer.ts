// SPDX-License-Identifier: Apache-2.0
/*
 * Dead letters: audit events that can never be accepted by DataStorage (invalid,
 * rejected by the server, expired) are appended as JSON lines to a local file, so that
 * nothing is lost silently. One line per event:
 *
 *   {"time":"<RFC 3339>","reason":"<reason>","detail":"<text>","status":400,"event":{...}}
 *
 * The file is created with mode 0600 in directories created with mode 0700, opened
 * lazily (no file until the first dead letter), and bounded by `maxBytes`: over the
 * bound, entries are dropped, counted and logged. Writes never throw.
 */
import { type FileHandle, open, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { MeterProvider } from '@opentelemetry/api';
import { ComponentDiag } from '../measure/diag.ts';
import { lazyInstrument, lazyMeter } from '../measure/meter.ts';
import { nodeFs } from '../spool/fs.ts';
import { ensureDirectory } from '../spool/fsutil.ts';

/** Default bound of the dead-letter file: 100 MiB. */
export const DEFAULT_DEAD_LETTER_MAX_BYTES = 100 * 1024 * 1024;
export const METRIC_AUDIT_DEAD_LETTER_DROPPED = 'kubernaut.audit.dead_letter.dropped';

/** One line of the dead-letter file. */
export interface DeadLetterEntry {
  /** When the entry was written (RFC 3339). */
  time: string;
  /** Machine-readable reason, e.g. `rejected`, `invalid`, `expired`. */
  reason: string;
  /** Human-readable detail (the server's problem detail, the violations). */
  detail: string;
  /** HTTP status of the answer that rejected the event, when there was one. */
  status?: number;
  /** The AuditEventRequest, or what could be mapped of the record. */
  event: unknown;
}

export interface DeadLetterWriterOptions {
  /** File to append to. */
  path: string;
  /** Entries that would grow the file beyond this size are dropped and counted [100 MiB]. */
  maxBytes?: number;
  /** Where the `kubernaut.audit.dead_letter.dropped` counter goes [global]. */
  meterProvider?: MeterProvider;
}

/**
 * The default dead-letter path of a standalone exporter:
 * `<os tmpdir>/kubernaut-audit/<OTEL_SERVICE_NAME or "default">/dead-letter.jsonl`,
 * the same directory as the processor's default spool.
 */
export function defaultDeadLetterPath(env: NodeJS.ProcessEnv = process.env): string {
  const service = (env.OTEL_SERVICE_NAME ?? '').trim() || 'default';
  const safe = service.replace(/[^A-Za-z0-9._-]/g, '_').replace(/^\.+/, '_');
  return join(tmpdir(), 'kubernaut-audit', safe, 'dead-letter.jsonl');
}

/** Appends dead letters to a bounded JSON-lines file. Safe under concurrent calls. */
export class DeadLetterWriter {
  readonly path: string;
  readonly maxBytes: number;
  private _handle: Promise<FileHandle | undefined> | undefined;
  private _size = 0;
  private _chain: Promise<unknown> = Promise.resolve();
  private _written = 0;
  private _dropped = 0;
  private _closed = false;
  private readonly _diag = new ComponentDiag('kubernaut-audit dead letters');
  private readonly _droppedCounter;

  constructor(options: DeadLetterWriterOptions) {
    this.path = options.path;
    const max = options.maxBytes;
    this.maxBytes =
      typeof max === 'number' && Number.isFinite(max) && max > 0
        ? max
        : DEFAULT_DEAD_LETTER_MAX_BYTES;
    const meter = lazyMeter(options.meterProvider);
    this._droppedCounter = lazyInstrument(meter, (m) =>
      m.createCounter(METRIC_AUDIT_DEAD_LETTER_DROPPED, {
        unit: '{event}',
        description: 'Dead letters that could not be written (file bound reached or I/O error).',
      }),
    );
  }

  /** Entries written so far by this writer. */
  get written(): number {
    return this._written;
  }

  /** Entries dropped so far (bound reached, I/O error, closed). */
  get dropped(): number {
    return this._dropped;
  }

  /**
   * Appends entries (`time` is filled in when absent). Resolves to the number written;
   * never rejects. Entries are written in call order.
   */
  write(entries: Array<Omit<DeadLetterEntry, 'time'> & { time?: string }>): Promise<number> {
    const run = this._chain.then(() => this._append(entries));
    this._chain = run.catch(() => undefined);
    return run.catch(() => 0);
  }

  /** Waits for pending writes, then closes the file. Later writes are dropped. */
  async close(): Promise<void> {
    this._closed = true;
    await this._chain;
    const h = await this._handle;
    this._handle = undefined;
    await h?.close().catch(() => undefined);
    this._diag.flush();
  }

  private _open(): Promise<FileHandle | undefined> {
    this._handle ??= (async () => {
      try {
        // Not mkdir({ recursive }): it never settles on some virtual filesystems (/proc).
        ensureDirectory(nodeFs, dirname(this.path), 0o700);
        const h = await open(this.path, 'a', 0o600);
        await h.chmod(0o600).catch(() => undefined);
        this._size = (await stat(this.path)).size;
        return h;
      } catch (err) {
        this._diag.report(
          'error',
          'open',
          `cannot open dead-letter file ${this.path} (${errorCode(err)}); dead letters are dropped and counted`,
        );
        this._handle = undefined; // retry opening on the next write
        return undefined;
      }
    })();
    return this._handle;
  }

  private async _append(
    entries: Array<Omit<DeadLetterEntry, 'time'> & { time?: string }>,
  ): Promise<number> {
    if (entries.length === 0) return 0;
    if (this._closed) {
      this._drop(entries.length, 'closed', 'dead-letter writer is closed');
      return 0;
    }
    const h = await this._open();
    if (h === undefined) {
      this._drop(entries.length, 'io_error', 'dead-letter file cannot be opened');
      return 0;
    }
    const lines: string[] = [];
    let bytes = 0;
    let over = 0;
    for (const e of entries) {
      const line = `${serialize(e)}\n`;
      const n = Buffer.byteLength(line, 'utf8');
      if (this._size + bytes + n > this.maxBytes) {
        over++;
        continue;
      }
      lines.push(line);
      bytes += n;
    }
    if (over > 0) {
      this._drop(
        over,
        'max_bytes',
        `dead-letter file ${this.path} reached its bound of ${this.maxBytes} bytes`,
      );
    }
    if (lines.length === 0) return 0;
    try {
      await h.appendFile(lines.join(''), 'utf8');
      this._size += bytes;
      this._written += lines.length;
      return lines.length;
    } catch (err) {
      this._drop(
        lines.length,
        'io_error',
        `cannot write dead-letter file ${this.path} (${errorCode(err)})`,
      );
      return 0;
    }
  }

  private _drop(count: number, reason: string, message: string): void {
    this._dropped += count;
    try {
      this._droppedCounter().add(count, { 'kubernaut.audit.reason': reason });
    } catch {
      // metrics must never break dead-lettering
    }
    this._diag.report(
      'error',
      `drop:${reason}`,
      `${message}: ${count} dead letter(s) dropped`,
      count,
    );
  }
}

function serialize(e: Omit<DeadLetterEntry, 'time'> & { time?: string }): string {
  const entry: DeadLetterEntry = {
    time: e.time ?? new Date().toISOString(),
    reason: e.reason,
    detail: e.detail,
    ...(e.status === undefined ? {} : { status: e.status }),
    event: e.event,
  };
  try {
    return JSON.stringify(entry);
  } catch {
    // An event that cannot be serialised (cycle, BigInt): keep what can be said about it.
    return JSON.stringify({ ...entry, event: String(e.event) });
  }
}

function errorCode(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : err instanceof Error ? err.name : 'error';
}
