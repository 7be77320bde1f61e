// SPDX-License-Identifier: Apache-2.0
/*
 * The Redis dead-letter queue (the upstream 202 path). A validated batch that cannot be written
 * because the database is unreachable is appended to a Redis stream as one entry and the client
 * is told 202. Redis keys (all derived from the stream key S):
 *
 *   S            the stream: one entry per batch (its events, with ids assigned)
 *   S:backlog    hash correlation_id -> events of it still queued, shared by every server
 *   S:stats      hash {events, bytes} queued, checked against the bound at every append
 *   S:lease      which server drains the queue (one at a time, so that the queue is written in
 *                order); renewed while it works, taken over when it expires
 *   S:dead       entries that can never be stored, with the reason
 *
 * Appending (a Lua script) is atomic: bound check, consumer group (re)created when missing
 * (Redis restarted empty), XADD and the backlog counts, so an entry answered 202 is always
 * readable by the group. Removing an entry (after the transaction that stored its events
 * committed, or after dead-lettering it) is atomic too, and happens once: XDEL decides, then the
 * backlog counts go down. A server writes a batch directly whenever the database answers and no
 * correlation of the batch has queued events; otherwise it queues it behind them, so each
 * correlation's events reach the database in the order they were accepted, whichever server
 * accepted them. Event ids are assigned before queueing and replays skip ids already stored, so
 * an entry delivered twice lands once.
 */
import { hostname } from 'node:os';
import { errorText } from '@kubernaut/datastorage-contract/config';
import { Redis } from 'ioredis';
import type { PreparedEvent } from './events.ts';
import type { DataStorageLogger } from './logger.ts';
import { type AuditEventStore, MissingParentError } from './storage/repository.ts';
import { isTransient, sqlState } from './storage/sql.ts';

/** Redis DLQ settings. */
export interface RedisDlqOptions {
  /** `redis://host:port/db`. */
  url: string;
  /** Stream key [audit:dlq:events]; other keys are derived from it (`<stream>:dead`, ...). */
  stream?: string;
  /** Consumer group [datastorage-dlq]. */
  group?: string;
  /** Consumer name [<hostname>-<pid>]. */
  consumer?: string;
  /** @deprecated Ignored: a server drains only while it holds the queue's lease. */
  claimIdleMillis?: number;
  /** Events the queue may hold; a batch beyond it is answered 503 with Retry-After [100000]. */
  maxQueuedEvents?: number;
  /** Bytes of events the queue may hold; beyond it, 503 with Retry-After [268435456]. */
  maxQueuedBytes?: number;
  /**
   * The queue counts as stuck (readiness fails) when its oldest entry has not moved for this
   * long while the database answers, or when Redis kept failing for this long [60000].
   */
  stuckAfterMillis?: number;
  /** @experimental How long a drainer's lease lasts without renewal [15000]. */
  leaseMillis?: number;
  /** @experimental Longest wait between attempts while the database is down [5000]. */
  retryMaxDelayMillis?: number;
}

/** The queue is at its bound: the batch was not queued. */
export class DlqFullError extends Error {
  constructor() {
    super('the dead-letter queue is full');
    this.name = 'DlqFullError';
  }
}

/** What the queue holds (for metrics and readiness). */
export interface DlqSnapshot {
  entries: number;
  events: number;
  bytes: number;
  /** Age of the oldest entry in seconds (0 when empty). */
  oldestAgeSeconds: number;
}

/** Callbacks for metrics. */
export interface DlqHooks {
  /** Events of queued entries committed to the database. */
  written?(events: number): void;
  /** Entries moved to the dead stream. */
  deadLettered?(entries: number): void;
}

/** Health of the queue as /readyz reports it. */
export interface DlqHealth {
  stuck: boolean;
  detail?: string;
}

interface StreamEntry {
  id: string;
  /** Undefined when the entry cannot be decoded. */
  events: PreparedEvent[] | undefined;
  /** The entry was deleted from the stream but is still pending (already handled). */
  gone: boolean;
}

const ENTRY_VERSION = '2';
// Entries per read: at most 8 batches (≤ 40 MiB, ≤ 4000 events) in one transaction.
const READ_COUNT = 8;
const BLOCK_MILLIS = 500;

// KEYS: stream, backlog, stats. ARGV: group, max events, max bytes, events, bytes, queued_at,
// reason, backlog JSON, events JSON, then correlation/count pairs.
const APPEND_LUA = `
local stats_events = tonumber(redis.call('HGET', KEYS[3], 'events') or '0')
local stats_bytes = tonumber(redis.call('HGET', KEYS[3], 'bytes') or '0')
local n = tonumber(ARGV[4])
local b = tonumber(ARGV[5])
if stats_events + n > tonumber(ARGV[2]) or stats_bytes + b > tonumber(ARGV[3]) then
  return false
end
local made = redis.pcall('XGROUP', 'CREATE', KEYS[1], ARGV[1], '0', 'MKSTREAM')
local created = 1
if type(made) == 'table' and made.err then
  if not string.find(made.err, 'BUSYGROUP') then return made end
  created = 0
end
local id = redis.call('XADD', KEYS[1], '*', 'v', '${ENTRY_VERSION}', 'queued_at', ARGV[6],
  'reason', ARGV[7], 'count', ARGV[4], 'bytes', ARGV[5], 'backlog', ARGV[8], 'events', ARGV[9])
redis.call('HINCRBY', KEYS[3], 'events', n)
redis.call('HINCRBY', KEYS[3], 'bytes', b)
for i = 10, #ARGV, 2 do
  redis.call('HINCRBY', KEYS[2], ARGV[i], tonumber(ARGV[i + 1]))
end
return {id, created}
`;

// KEYS: stream, backlog, stats. ARGV: group, entry ids. Removes each entry once (XDEL decides)
// and takes its events off the backlog and the stats.
const REMOVE_LUA = `
local removed = 0
for i = 2, #ARGV do
  local id = ARGV[i]
  local found = redis.call('XRANGE', KEYS[1], id, id)
  redis.call('XACK', KEYS[1], ARGV[1], id)
  if redis.call('XDEL', KEYS[1], id) == 1 and found[1] then
    removed = removed + 1
    local f = found[1][2]
    local backlog, count, bytes = nil, 0, 0
    for j = 1, #f, 2 do
      if f[j] == 'backlog' then backlog = f[j + 1]
      elseif f[j] == 'count' then count = tonumber(f[j + 1]) or 0
      elseif f[j] == 'bytes' then bytes = tonumber(f[j + 1]) or 0 end
    end
    if backlog then
      for cid, k in pairs(cjson.decode(backlog)) do
        if redis.call('HINCRBY', KEYS[2], cid, -k) <= 0 then redis.call('HDEL', KEYS[2], cid) end
      end
      if redis.call('HINCRBY', KEYS[3], 'events', -count) <= 0 then
        redis.call('HDEL', KEYS[3], 'events')
      end
      if redis.call('HINCRBY', KEYS[3], 'bytes', -bytes) <= 0 then
        redis.call('HDEL', KEYS[3], 'bytes')
      end
    end
  end
end
return removed
`;

// KEYS: lease. ARGV: holder, ttl. Takes or renews the lease; 1 when held by ARGV[1].
const LEASE_LUA = `
local holder = redis.call('GET', KEYS[1])
if holder == false or holder == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
`;

// KEYS: lease. ARGV: holder. Gives the lease up when held by ARGV[1].
const RELEASE_LUA = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;

type ScriptClient = Redis & {
  dlqAppend(...args: Array<string | number>): Promise<[string, number] | null>;
  dlqRemove(...args: Array<string | number>): Promise<number>;
  dlqLease(...args: Array<string | number>): Promise<number>;
  dlqRelease(...args: Array<string | number>): Promise<number>;
};

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

const isNoGroup = (err: unknown) => /NOGROUP/.test(String((err as Error | undefined)?.message));

/** Milliseconds part of a stream entry id. */
const entryMillis = (id: string) => Number(id.slice(0, id.indexOf('-')));

/**
 * An error that says something is wrong with the events themselves: the entry can never be
 * stored (a missing parent, a value the database refuses). Anything else is retried.
 */
function isPoison(err: unknown): boolean {
  if (err instanceof MissingParentError) return true;
  const state = sqlState(err);
  return state !== undefined && (state.startsWith('22') || state.startsWith('23'));
}

/** Queue of batches waiting for the database, with the worker that drains it. */
export class RedisDeadLetterQueue {
  readonly stream: string;
  readonly group: string;
  readonly consumer: string;
  readonly #backlogKey: string;
  readonly #statsKey: string;
  readonly #leaseKey: string;
  readonly #deadKey: string;
  readonly #client: ScriptClient;
  readonly #reader: Redis;
  readonly #logger: DataStorageLogger;
  readonly #maxDelay: number;
  readonly #maxEvents: number;
  readonly #maxBytes: number;
  readonly #stuckAfter: number;
  readonly #leaseMillis: number;
  #empty = true;
  #stopped = false;
  #worker: Promise<void> | undefined;
  #drainWaiters: Array<() => void> = [];
  #wake: (() => void) | undefined;
  #holder = false;
  /** The oldest entry seen and since when it has been the oldest. */
  #oldest: { id: string; since: number } | undefined;
  /** Since when Redis has been failing for the worker (undefined: it answers). */
  #redisFailingSince: number | undefined;
  /** The last write of queued events failed for a reason other than an unreachable database. */
  #writeError: string | undefined;
  #snapshot: DlqSnapshot = { entries: 0, events: 0, bytes: 0, oldestAgeSeconds: 0 };

  readonly #hooks: DlqHooks;

  constructor(options: RedisDlqOptions, logger: DataStorageLogger, hooks: DlqHooks = {}) {
    this.#hooks = hooks;
    this.stream = options.stream ?? 'audit:dlq:events';
    this.group = options.group ?? 'datastorage-dlq';
    this.consumer = options.consumer ?? `${hostname()}-${process.pid}-${Date.now().toString(36)}`;
    this.#backlogKey = `${this.stream}:backlog`;
    this.#statsKey = `${this.stream}:stats`;
    this.#leaseKey = `${this.stream}:lease`;
    this.#deadKey = `${this.stream}:dead`;
    this.#maxDelay = options.retryMaxDelayMillis ?? 5000;
    this.#maxEvents = options.maxQueuedEvents ?? 100_000;
    this.#maxBytes = options.maxQueuedBytes ?? 256 * 1024 * 1024;
    this.#stuckAfter = options.stuckAfterMillis ?? 60_000;
    this.#leaseMillis = options.leaseMillis ?? 15_000;
    this.#logger = logger;
    const common = {
      lazyConnect: true,
      maxRetriesPerRequest: 1,
      enableOfflineQueue: false,
      retryStrategy: (n: number) => Math.min(100 * 2 ** n, 2000),
    };
    this.#client = new Redis(options.url, { ...common, commandTimeout: 5000 }) as ScriptClient;
    this.#reader = new Redis(options.url, { ...common, commandTimeout: BLOCK_MILLIS + 5000 });
    this.#client.defineCommand('dlqAppend', { numberOfKeys: 3, lua: APPEND_LUA });
    this.#client.defineCommand('dlqRemove', { numberOfKeys: 3, lua: REMOVE_LUA });
    this.#client.defineCommand('dlqLease', { numberOfKeys: 1, lua: LEASE_LUA });
    this.#client.defineCommand('dlqRelease', { numberOfKeys: 1, lua: RELEASE_LUA });
    for (const c of [this.#client, this.#reader]) {
      c.on('error', (err: Error) => this.#logger.debug('redis connection error', { err }));
    }
  }

  /** Connects, creates the consumer group and learns whether entries are waiting. */
  async open(): Promise<void> {
    await Promise.all([this.#client.connect(), this.#reader.connect()]);
    await this.#ensureGroup();
    this.#empty = Number(await this.#client.xlen(this.stream)) === 0;
  }

  async #ensureGroup(): Promise<boolean> {
    try {
      await this.#client.xgroup('CREATE', this.stream, this.group, '0', 'MKSTREAM');
      return true;
    } catch (err) {
      if (!String((err as Error).message).includes('BUSYGROUP')) throw err;
      return false;
    }
  }

  /**
   * True when events of any of these correlations are queued (by any server): a batch of them
   * must then be queued behind them. Rejects when Redis cannot be asked.
   */
  async hasBacklog(correlationIds: readonly string[]): Promise<boolean> {
    if (correlationIds.length === 0) return false;
    const counts = await this.#client.hmget(this.#backlogKey, ...correlationIds);
    return counts.some((c) => c !== null && Number(c) > 0);
  }

  /**
   * Appends a batch as one entry (all or nothing). Rejects with DlqFullError at the bound, and
   * with Redis's error when it cannot be reached: the batch is then not accepted.
   */
  async enqueue(events: readonly PreparedEvent[], reason: string): Promise<string> {
    const backlog: Record<string, number> = {};
    for (const e of events) backlog[e.correlation_id] = (backlog[e.correlation_id] ?? 0) + 1;
    const payload = JSON.stringify(events);
    const bytes = Buffer.byteLength(payload);
    const pairs: Array<string | number> = [];
    for (const [cid, n] of Object.entries(backlog)) pairs.push(cid, n);
    const r = await this.#client.dlqAppend(
      this.stream,
      this.#backlogKey,
      this.#statsKey,
      this.group,
      this.#maxEvents,
      this.#maxBytes,
      events.length,
      bytes,
      new Date().toISOString(),
      reason.slice(0, 500),
      JSON.stringify(backlog),
      payload,
      ...pairs,
    );
    if (r === null) throw new DlqFullError();
    const [id, created] = r;
    if (Number(created) === 1) this.#logGroupLost();
    this.#empty = false;
    this.#wake?.();
    return String(id);
  }

  /** Resolves once nothing is waiting in the queue (at once when nothing is). */
  whenDrained(): Promise<void> {
    if (this.#empty) return Promise.resolve();
    return new Promise((resolve) => this.#drainWaiters.push(resolve));
  }

  /** What the queue held when the worker last looked. */
  snapshot(): DlqSnapshot {
    return { ...this.#snapshot };
  }

  /** Whether the queue is stuck; `databaseUp` says whether the database answers right now. */
  health(databaseUp: boolean): DlqHealth {
    const now = Date.now();
    if (
      this.#redisFailingSince !== undefined &&
      now - this.#redisFailingSince >= this.#stuckAfter
    ) {
      return { stuck: true, detail: 'the dead-letter queue cannot reach Redis' };
    }
    if (!databaseUp || this.#empty) return { stuck: false };
    if (this.#writeError !== undefined) {
      return { stuck: true, detail: `queued events cannot be written: ${this.#writeError}` };
    }
    if (this.#oldest !== undefined && now - this.#oldest.since >= this.#stuckAfter) {
      return {
        stuck: true,
        detail: `the oldest queued entry has not moved for ${Math.round((now - this.#oldest.since) / 1000)} s`,
      };
    }
    return { stuck: false };
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
    if (this.#holder) {
      await this.#client.dlqRelease(this.#leaseKey, this.consumer).catch(() => {});
    }
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
    this.#empty = true;
    this.#oldest = undefined;
    this.#writeError = undefined;
    for (const w of this.#drainWaiters.splice(0)) w();
  }

  /** Looks at the queue: size, oldest entry (for readiness and metrics). */
  async #observe(): Promise<void> {
    const [len, stats, first] = await Promise.all([
      this.#client.xlen(this.stream),
      this.#client.hmget(this.#statsKey, 'events', 'bytes'),
      this.#client.xrange(this.stream, '-', '+', 'COUNT', 1),
    ]);
    const now = Date.now();
    const oldest = first[0]?.[0];
    this.#snapshot = {
      entries: Number(len),
      events: Number(stats[0] ?? 0),
      bytes: Number(stats[1] ?? 0),
      oldestAgeSeconds: oldest === undefined ? 0 : Math.max(0, (now - entryMillis(oldest)) / 1000),
    };
    if (oldest === undefined) {
      this.#setDrained();
      return;
    }
    this.#empty = false;
    if (this.#oldest?.id !== oldest) this.#oldest = { id: oldest, since: now };
  }

  async #read(): Promise<StreamEntry[]> {
    // 1. Our own pending entries (delivered before, not acknowledged).
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
    // 2. Entries left pending by an earlier holder of the lease: older than any new entry, so
    // they are written first (the lease says that holder stopped draining).
    const claimed = (await this.#reader.xautoclaim(
      this.stream,
      this.group,
      this.consumer,
      0,
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
        await this.#observe();
        // Take or renew the lease: one server drains at a time, so entries go in order.
        this.#holder =
          Number(await this.#client.dlqLease(this.#leaseKey, this.consumer, this.#leaseMillis)) ===
          1;
        this.#redisFailingSince = undefined;
        if (!this.#holder) {
          // Another server drains the queue; keep watching it (readiness, metrics, drained).
          await this.#sleep(BLOCK_MILLIS);
          continue;
        }
        const entries = await this.#read();
        if (entries.length === 0) continue;
        this.#empty = false;
        if (await this.#write(store, entries)) {
          this.#writeError = undefined;
          delay = Math.min(100, this.#maxDelay);
        } else {
          await this.#sleep(delay);
          delay = Math.min(delay * 2, this.#maxDelay);
        }
      } catch (err) {
        if (this.#stopped) break;
        if (isNoGroup(err)) {
          // Redis lost the group (restarted empty, or the key was deleted): recreate it.
          try {
            if (await this.#ensureGroup()) this.#logGroupLost();
            continue;
          } catch {
            // Redis trouble: below.
          }
        }
        this.#redisFailingSince ??= Date.now();
        this.#logger.warn('dlq worker: redis unavailable, retrying', { err });
        await this.#sleep(delay);
        delay = Math.min(delay * 2, this.#maxDelay);
      }
    }
  }

  #logGroupLost(): void {
    this.#logger.error(
      'the dead-letter queue had lost its consumer group (Redis restarted empty, or its keys were deleted): recreated; entries queued before are lost',
      { stream: this.stream },
    );
  }

  /** Writes entries; false when they must be tried again later. */
  async #write(store: AuditEventStore, entries: StreamEntry[]): Promise<boolean> {
    await this.#remove(entries.filter((e) => e.gone).map((e) => e.id));
    const poison = entries.filter((e) => !e.gone && e.events === undefined);
    for (const p of poison) await this.#deadLetter(p, 'unreadable entry');
    const good = entries.filter((e) => e.events !== undefined);
    if (good.length === 0) return true;
    try {
      const events = good.flatMap((e) => e.events!);
      const r = await store.insertEvents(events, { skipExisting: true, resolveParents: true });
      await this.#remove(good.map((e) => e.id));
      this.#hooks.written?.(r.inserted);
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
      if (!isPoison(err)) {
        // Not the events' fault (permissions, a bug, a trigger): keep them, retry, and say so
        // through readiness.
        this.#writeError = errorText(err);
        this.#logger.error('dlq worker: queued events cannot be written; retrying', { err });
        return false;
      }
      if (good.length > 1) {
        // Isolate the entry at fault; the others are written.
        for (const e of good) {
          if (!(await this.#write(store, [e]))) return false;
        }
        return true;
      }
      const reason = errorText(err);
      await this.#deadLetter(good[0]!, reason);
      return true;
    }
  }

  async #remove(ids: string[]): Promise<void> {
    if (ids.length === 0) return;
    await this.#client.dlqRemove(this.stream, this.#backlogKey, this.#statsKey, this.group, ...ids);
  }

  async #deadLetter(entry: StreamEntry, reason: string): Promise<void> {
    this.#logger.error('dlq entry cannot be stored; moved to the dead stream', {
      entry_id: entry.id,
      stream: this.#deadKey,
      reason,
    });
    const raw = (await this.#client.xrange(this.stream, entry.id, entry.id)) as unknown[];
    const fields = Array.isArray(raw?.[0]) ? ((raw[0] as unknown[])[1] as string[]) : [];
    await this.#client.xadd(this.#deadKey, '*', 'reason', reason, 'source_id', entry.id, ...fields);
    await this.#remove([entry.id]);
    this.#hooks.deadLettered?.(1);
  }
}
