// SPDX-License-Identifier: Apache-2.0
/*
 * The Redis dead-letter queue (the upstream 202 path): when the database cannot be reached,
 * a validated batch is appended to a Redis stream as one entry and the client is told 202.
 * A worker in a consumer group writes queued entries once the database answers again, each
 * correlation's events in timestamp order, and acknowledges (and deletes) an entry only after
 * the transaction that stored it committed. Event ids are assigned before queueing and replays
 * skip ids already stored, so an entry re-delivered after a crash lands exactly once.
 */
import { hostname } from 'node:os';
import { Redis } from 'ioredis';
import type { PreparedEvent } from './events.ts';
import type { DataStorageLogger } from './logger.ts';
import { type AuditEventStore, MissingParentError } from './storage/repository.ts';
import { isTransient } from './storage/sql.ts';

/** Redis DLQ settings. */
export interface RedisDlqOptions {
  /** `redis://host:port/db`. */
  url: string;
  /** Stream key [audit:dlq:events]; poison entries go to `<stream>:dead`. */
  stream?: string;
  /** Consumer group [datastorage-dlq]. */
  group?: string;
  /** Consumer name [<hostname>-<pid>]. */
  consumer?: string;
  /** Entries idle this long in another consumer's pending list are claimed [30000]. */
  claimIdleMillis?: number;
  /** @experimental Longest wait between attempts while the database is down [5000]. */
  retryMaxDelayMillis?: number;
}

interface StreamEntry {
  id: string;
  /** Undefined when the entry cannot be decoded. */
  events: PreparedEvent[] | undefined;
  /** The entry was deleted from the stream but is still pending (already handled). */
  gone: boolean;
}

const ENTRY_VERSION = '1';
// Entries per read: at most 8 batches (≤ 40 MiB, ≤ 4000 events) in one transaction.
const READ_COUNT = 8;
const BLOCK_MILLIS = 500;

function fieldsToMap(fields: unknown): Map<string, string> {
  const m = new Map<string, string>();
  if (!Array.isArray(fields)) return m;
  for (let i = 0; i + 1 < fields.length; i += 2) m.set(String(fields[i]), String(fields[i + 1]));
  return m;
}

function parseEntries(raw: unknown): StreamEntry[] {
  if (!Array.isArray(raw)) return [];
  const out: StreamEntry[] = [];
  for (const item of raw) {
    if (!Array.isArray(item)) continue;
    const [id, fields] = item as [unknown, unknown];
    if (fields === null) {
      out.push({ id: String(id), events: undefined, gone: true });
      continue;
    }
    let events: PreparedEvent[] | undefined;
    try {
      const body = fieldsToMap(fields).get('events');
      const parsed: unknown = body === undefined ? undefined : JSON.parse(body);
      events = Array.isArray(parsed) ? (parsed as PreparedEvent[]) : undefined;
    } catch {
      events = undefined;
    }
    out.push({ id: String(id), events, gone: false });
  }
  return out;
}

/** Queue of batches waiting for the database, with the worker that drains it. */
export class RedisDeadLetterQueue {
  readonly stream: string;
  readonly group: string;
  readonly consumer: string;
  readonly #client: Redis;
  readonly #reader: Redis;
  readonly #logger: DataStorageLogger;
  readonly #claimIdle: number;
  readonly #maxDelay: number;
  #backlog = false;
  #enqueueSeq = 0;
  #inflightEnqueues = 0;
  #stopped = false;
  #worker: Promise<void> | undefined;
  #drainWaiters: Array<() => void> = [];
  #wake: (() => void) | undefined;

  constructor(options: RedisDlqOptions, logger: DataStorageLogger) {
    this.stream = options.stream ?? 'audit:dlq:events';
    this.group = options.group ?? 'datastorage-dlq';
    this.consumer = options.consumer ?? `${hostname()}-${process.pid}`;
    this.#claimIdle = options.claimIdleMillis ?? 30_000;
    this.#maxDelay = options.retryMaxDelayMillis ?? 5000;
    this.#logger = logger;
    const common = {
      lazyConnect: true,
      maxRetriesPerRequest: 1,
      enableOfflineQueue: false,
      retryStrategy: (n: number) => Math.min(100 * 2 ** n, 2000),
    };
    this.#client = new Redis(options.url, { ...common, commandTimeout: 5000 });
    this.#reader = new Redis(options.url, { ...common, commandTimeout: BLOCK_MILLIS + 5000 });
    for (const c of [this.#client, this.#reader]) {
      c.on('error', (err: Error) => this.#logger.debug('redis connection error', { err }));
    }
  }

  /** Connects, creates the consumer group and learns whether entries are waiting. */
  async open(): Promise<void> {
    await Promise.all([this.#client.connect(), this.#reader.connect()]);
    try {
      await this.#client.xgroup('CREATE', this.stream, this.group, '0', 'MKSTREAM');
    } catch (err) {
      if (!String((err as Error).message).includes('BUSYGROUP')) throw err;
    }
    const len = Number(await this.#client.xlen(this.stream));
    this.#backlog = len > 0;
  }

  /**
   * True while queued entries have not all been written. New batches then go to the queue
   * too, so that events of one correlation reach the database in order.
   */
  hasBacklog(): boolean {
    return this.#backlog;
  }

  /** Appends a batch as one stream entry (all or nothing). */
  async enqueue(events: readonly PreparedEvent[], reason: string): Promise<string> {
    this.#backlog = true;
    this.#enqueueSeq++;
    this.#inflightEnqueues++;
    try {
      const id = await this.#client.xadd(
        this.stream,
        '*',
        'v',
        ENTRY_VERSION,
        'queued_at',
        new Date().toISOString(),
        'reason',
        reason.slice(0, 500),
        'count',
        String(events.length),
        'events',
        JSON.stringify(events),
      );
      this.#wake?.();
      return String(id);
    } finally {
      this.#inflightEnqueues--;
    }
  }

  /** Resolves once nothing is waiting in the queue (at once when nothing is). */
  whenDrained(): Promise<void> {
    if (!this.#backlog) return Promise.resolve();
    return new Promise((resolve) => this.#drainWaiters.push(resolve));
  }

  /** Starts the worker that writes queued entries into the store. */
  start(store: AuditEventStore): void {
    if (this.#worker) return;
    this.#worker = this.#run(store).catch((err) =>
      this.#logger.error('dlq worker stopped on an unexpected error', { err }),
    );
  }

  /** Stops the worker (entries not yet written stay queued) and disconnects. */
  async close(): Promise<void> {
    this.#stopped = true;
    this.#wake?.();
    this.#reader.disconnect();
    await this.#worker;
    this.#client.disconnect();
    for (const w of this.#drainWaiters.splice(0)) w();
  }

  #sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const t = setTimeout(done, ms);
      function done() {
        clearTimeout(t);
        resolve();
      }
      this.#wake = done;
    }).finally(() => {
      this.#wake = undefined;
    });
  }

  #setDrained(): void {
    this.#backlog = false;
    for (const w of this.#drainWaiters.splice(0)) w();
  }

  async #read(): Promise<StreamEntry[]> {
    // 1. Our own pending entries (delivered before, not acknowledged: e.g. a previous run).
    const own = (await this.#reader.xreadgroup(
      'GROUP',
      this.group,
      this.consumer,
      'COUNT',
      READ_COUNT,
      'STREAMS',
      this.stream,
      '0',
    )) as unknown;
    let entries = parseEntries((own as [unknown, unknown][] | null)?.[0]?.[1]);
    if (entries.length > 0) return entries;
    // 2. Entries left pending by a consumer that went away.
    const claimed = (await this.#reader.xautoclaim(
      this.stream,
      this.group,
      this.consumer,
      this.#claimIdle,
      '0',
      'COUNT',
      READ_COUNT,
    )) as unknown;
    entries = parseEntries((claimed as unknown[] | null)?.[1]);
    if (entries.length > 0) return entries;
    // 3. New entries.
    const fresh = (await this.#reader.xreadgroup(
      'GROUP',
      this.group,
      this.consumer,
      'COUNT',
      READ_COUNT,
      'BLOCK',
      BLOCK_MILLIS,
      'STREAMS',
      this.stream,
      '>',
    )) as unknown;
    return parseEntries((fresh as [unknown, unknown][] | null)?.[0]?.[1]);
  }

  async #run(store: AuditEventStore): Promise<void> {
    let delay = Math.min(100, this.#maxDelay);
    while (!this.#stopped) {
      try {
        const seq = this.#enqueueSeq;
        const entries = await this.#read();
        if (entries.length === 0) {
          if (this.#backlog && seq === this.#enqueueSeq && this.#inflightEnqueues === 0) {
            const pending = (await this.#client.xpending(this.stream, this.group)) as unknown[];
            if (Number(pending?.[0] ?? 0) === 0) this.#setDrained();
          }
          delay = Math.min(100, this.#maxDelay);
          continue;
        }
        this.#backlog = true;
        while (!this.#stopped) {
          if (await this.#write(store, entries)) break;
          await this.#sleep(delay);
          delay = Math.min(delay * 2, this.#maxDelay);
        }
        delay = Math.min(100, this.#maxDelay);
      } catch (err) {
        if (this.#stopped) break;
        this.#logger.warn('dlq worker: redis unavailable, retrying', { err });
        await this.#sleep(delay);
        delay = Math.min(delay * 2, this.#maxDelay);
      }
    }
  }

  /** Writes entries; false when the database is still unavailable (retry later). */
  async #write(store: AuditEventStore, entries: StreamEntry[]): Promise<boolean> {
    await this.#ack(entries.filter((e) => e.gone).map((e) => e.id));
    const poison = entries.filter((e) => !e.gone && e.events === undefined);
    for (const p of poison) await this.#deadLetter(p, 'unreadable entry');
    const good = entries.filter((e) => e.events !== undefined);
    if (good.length === 0) return true;
    try {
      const events = good.flatMap((e) => e.events!);
      const r = await store.insertEvents(events, { skipExisting: true, resolveParents: true });
      await this.#ack(good.map((e) => e.id));
      this.#logger.info('dlq entries written', {
        entries: good.length,
        inserted: r.inserted,
        skipped_existing: r.skipped,
      });
      return true;
    } catch (err) {
      if (store.db.isUnavailable(err) || isTransient(err)) {
        this.#logger.debug('dlq worker: database still unavailable', { err });
        return false;
      }
      if (good.length > 1) {
        // Isolate the entry at fault; the others are written.
        for (const e of good) {
          if (!(await this.#write(store, [e]))) return false;
        }
        return true;
      }
      const reason = err instanceof MissingParentError ? err.message : String(err);
      await this.#deadLetter(good[0]!, reason);
      return true;
    }
  }

  async #ack(ids: string[]): Promise<void> {
    if (ids.length === 0) return;
    await this.#client.xack(this.stream, this.group, ...ids);
    await this.#client.xdel(this.stream, ...ids);
  }

  async #deadLetter(entry: StreamEntry, reason: string): Promise<void> {
    this.#logger.error('dlq entry cannot be stored; moved to the dead stream', {
      entry_id: entry.id,
      stream: `${this.stream}:dead`,
      reason,
    });
    const raw = (await this.#client.xrange(this.stream, entry.id, entry.id)) as unknown[];
    const fields = Array.isArray(raw?.[0]) ? ((raw[0] as unknown[])[1] as string[]) : [];
    await this.#client.xadd(
      `${this.stream}:dead`,
      '*',
      'reason',
      reason,
      'source_id',
      entry.id,
      ...fields,
    );
    await this.#ack([entry.id]);
  }
}
