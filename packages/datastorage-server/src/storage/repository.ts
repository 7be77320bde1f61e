// SPDX-License-Identifier: Apache-2.0
/*
 * The audit_events store: monthly partitions created on demand, one linear hash chain per
 * correlation (appended under advisory locks, its head kept in audit_event_chain_heads), one
 * transaction per batch (PostgreSQL: three round trips, the rows in one COPY; PGlite: one
 * multi-row INSERT), queries and chain checks in chain order.
 */

import { canonicalize } from '@kubernaut/audit-provenance';
import { needsIpNormalisation, type PreparedEvent } from '../events.ts';
import {
  canonicalEventDocument,
  computeEventHash,
  correlationLockKey,
  HASH_HMAC_SHA256,
  HASH_SHA256_UNKEYED,
  hashText,
} from '../hash.ts';
import type { AuditEventsQuery } from '../query-params.ts';
import { CopyBinaryRows } from './copy-binary.ts';
import { CopyRows, copyLine } from './copy-text.ts';
import { migrate } from './migrations.ts';
import { isTransient, type SqlDatabase, type SqlQueryable, sqlArray, sqlState } from './sql.ts';

/** A row as read back: the stored fields with the server's text forms. */
export interface StoredEventRow {
  event_id: string;
  version: string;
  event_timestamp: string;
  event_date: string;
  event_type: string;
  event_category: string;
  event_action: string;
  event_outcome: string;
  actor_type: string;
  actor_id: string;
  actor_ip: string | null;
  resource_type: string;
  resource_id: string;
  correlation_id: string;
  parent_event_id: string | null;
  parent_event_date: string | null;
  namespace: string | null;
  cluster_id: string | null;
  event_data: Record<string, unknown>;
  severity: string | null;
  duration_ms: number | null;
  error_code: string | null;
  error_message: string | null;
  retention_days: number;
  is_sensitive: boolean;
  event_hash: string;
  previous_event_hash: string;
  hash_algorithm: string;
  chain_position: string;
  legal_hold: boolean;
}

/** One broken link or altered event found by verifyChain (spec: TamperedEvent). */
export interface TamperedEvent {
  event_id: string;
  event_timestamp: string;
  expected_hash: string;
  actual_hash: string;
  previous_hash: string;
  message: string;
}

/** Result of verifyChain (spec: VerifyChainResponse). */
export interface ChainVerification {
  correlation_id: string;
  is_valid: boolean;
  total_events: number;
  verified_events: number;
  tampered_events: TamperedEvent[];
  verification_time: string;
  message: string;
}

/** A chain hashed with the chain key cannot be verified by a server that lacks the key. */
export class ChainKeyMissingError extends Error {
  constructor() {
    super(
      'events of this chain are hashed with HMAC-SHA256 (hmac-sha256) and this server has no chain key',
    );
    this.name = 'ChainKeyMissingError';
  }
}

/** A referenced parent event that does not exist (index into the events given). */
export class MissingParentError extends Error {
  readonly indexes: number[];
  constructor(indexes: number[]) {
    super(`parent event does not exist (events ${indexes.join(', ')})`);
    this.name = 'MissingParentError';
    this.indexes = indexes;
  }
}

export interface InsertOptions {
  /** Leave out events whose event_id is already stored (DLQ replays: exactly once). */
  skipExisting?: boolean;
  /** Look up parent_event_date of events queued before their parent could be checked. */
  resolveParents?: boolean;
  /**
   * No string field of the events holds a character JSON escapes (the server knows it of a
   * request body without a backslash): their canonical documents are written unscanned.
   */
  plainStrings?: boolean;
}

const SELECT_COLUMNS = `event_id::text AS event_id, event_version AS version,
  to_char(event_timestamp AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS event_timestamp,
  to_char(event_date, 'YYYY-MM-DD') AS event_date,
  event_type, event_category, event_action, event_outcome, actor_type, actor_id,
  host(actor_ip) AS actor_ip, resource_type, resource_id, correlation_id,
  parent_event_id::text AS parent_event_id,
  to_char(parent_event_date, 'YYYY-MM-DD') AS parent_event_date,
  namespace, cluster_id, event_data, severity, duration_ms, error_code, error_message,
  retention_days, is_sensitive, event_hash, previous_event_hash, hash_algorithm,
  chain_position::text AS chain_position, legal_hold`;

// Rows travel as one JSON array: each element is the event's canonical document (already
// built for its hash) extended with the unhashed columns, expanded by jsonb_to_recordset.
const ROW_TYPES = [
  ['event_id', 'uuid'],
  ['version', 'text'],
  ['event_timestamp', 'timestamptz'],
  ['event_date', 'date'],
  ['event_type', 'text'],
  ['event_category', 'text'],
  ['event_action', 'text'],
  ['event_outcome', 'text'],
  ['actor_type', 'text'],
  ['actor_id', 'text'],
  ['actor_ip', 'inet'],
  ['resource_type', 'text'],
  ['resource_id', 'text'],
  ['correlation_id', 'text'],
  ['parent_event_id', 'uuid'],
  ['parent_event_date', 'date'],
  ['namespace', 'text'],
  ['cluster_id', 'text'],
  ['event_data', 'jsonb'],
  ['severity', 'text'],
  ['duration_ms', 'integer'],
  ['error_code', 'text'],
  ['error_message', 'text'],
  ['retention_days', 'integer'],
  ['is_sensitive', 'boolean'],
  ['event_hash', 'text'],
  ['previous_event_hash', 'text'],
  ['hash_algorithm', 'text'],
  ['chain_position', 'bigint'],
] as const;

const INSERT_SQL = `INSERT INTO audit_events (${ROW_TYPES.map(([c]) => (c === 'version' ? 'event_version' : c)).join(', ')})
SELECT ${ROW_TYPES.map(([c]) => `r.${c}`).join(', ')}
FROM jsonb_to_recordset($1::jsonb) AS r(${ROW_TYPES.map(([c, t]) => `${c} ${t}`).join(', ')})`;

const COPY_COLUMNS = ROW_TYPES.map(([c]) => (c === 'version' ? 'event_version' : c));
const COPY_SQL = `COPY audit_events (${COPY_COLUMNS.join(', ')}) FROM STDIN`;
const COPY_BINARY_SQL = `${COPY_SQL} (FORMAT binary)`;

// One round trip before the rows (BEGIN travels with it): the advisory lock of each
// correlation (keys sorted: writers cannot deadlock; unnest yields them in array order), then,
// in a statement of its own (its snapshot taken after the locks), the heads of the chains. One
// round trip after the rows: the heads moved (audit_chain_advance, which fails with 40001 when
// a head is not where it was read), and the COMMIT. Values travel as array literals.
function lockScript(keys: readonly bigint[], correlationIds: readonly string[]): string {
  return `SELECT count(pg_advisory_xact_lock(k)) FROM unnest(${sqlArray(keys, 'bigint')}) AS k;
SELECT h.correlation_id::text AS correlation_id, h.chain_position::text AS chain_position, h.event_hash
FROM unnest(${sqlArray(correlationIds, 'text')}) AS c(cid)
JOIN audit_event_chain_heads h ON h.correlation_id = c.cid`;
}

function advanceStatement(a: {
  cids: string[];
  from: string[];
  to: string[];
  ids: string[];
  hashes: string[];
}): string {
  return `SELECT audit_chain_advance(${sqlArray(a.cids, 'text')}, ${sqlArray(a.from, 'bigint')}, ${sqlArray(a.to, 'bigint')}, ${sqlArray(a.ids, 'uuid')}, ${sqlArray(a.hashes, 'text')})`;
}

const PARTITION_LOCK = 'pg_advisory_xact_lock(1802071156, 2)';
const VERIFY_PAGE = 5000;

function nextMonth(month: string): string {
  const [y, m] = month.split('-').map(Number) as [number, number];
  // Years zero-padded: PostgreSQL reads '1-02' as 2001, not 0001.
  const year = (n: number) => String(n).padStart(4, '0');
  return m === 12 ? `${year(y + 1)}-01` : `${year(y)}-${String(m + 1).padStart(2, '0')}`;
}

/** Settings of the store. */
export interface AuditEventStoreOptions {
  /** HMAC-SHA256 key of the chain; without it, events are hashed with plain SHA-256. */
  chainKey?: Buffer;
}

/** Storage of audit events in the `audit_events` table (PGlite or PostgreSQL). */
export class AuditEventStore {
  readonly db: SqlDatabase;
  readonly #key: Buffer | undefined;
  readonly #algorithm: string;
  #partitions = new Map<string, Promise<void>>();

  constructor(db: SqlDatabase, options: AuditEventStoreOptions = {}) {
    this.db = db;
    this.#key = options.chainKey;
    this.#algorithm = this.#key ? HASH_HMAC_SHA256 : HASH_SHA256_UNKEYED;
  }

  /** Applies migrations and creates the partitions of this month and the next. */
  static async open(
    db: SqlDatabase,
    now = new Date(),
    options: AuditEventStoreOptions = {},
  ): Promise<AuditEventStore> {
    await migrate(db);
    const store = new AuditEventStore(db, options);
    const month = now.toISOString().slice(0, 7);
    await store.ensurePartitions([`${month}-01`, `${nextMonth(month)}-01`]);
    return store;
  }

  /**
   * Whether the database answers (`unavailable` when not) and still holds the server's tables
   * (`schema_missing` when it was dropped and created again empty, or restored without them:
   * every request would fail until the server is restarted and migrates it).
   */
  async ping(): Promise<'ok' | 'unavailable' | 'schema_missing'> {
    let rows: Array<{ ok: boolean }>;
    try {
      rows = await this.db.query<{ ok: boolean }>(
        "SELECT to_regclass('audit_events') IS NOT NULL AND to_regclass('audit_event_chain_heads') IS NOT NULL AS ok",
      );
    } catch {
      return 'unavailable';
    }
    return rows[0]?.ok === true ? 'ok' : 'schema_missing';
  }

  /** Creates the monthly partitions holding these dates (YYYY-MM-DD), once each. */
  async ensurePartitions(dates: Iterable<string>): Promise<void> {
    const waits: Promise<void>[] = [];
    for (const d of dates) {
      const month = d.slice(0, 7);
      let p = this.#partitions.get(month);
      if (!p) {
        p = this.#createPartition(month);
        this.#partitions.set(month, p);
        p.catch(() => this.#partitions.delete(month));
      }
      waits.push(p);
    }
    await Promise.all(waits);
  }

  async #createPartition(month: string): Promise<void> {
    if (!/^\d{4}-\d{2}$/.test(month)) throw new Error(`invalid partition month ${month}`);
    const name = `audit_events_${month.replace('-', '_')}`;
    // Each partition has a unique (correlation_id, chain_position) index: a unique index of the
    // partitioned table would have to include event_date (see migration 3).
    const sql = `CREATE TABLE IF NOT EXISTS ${name} PARTITION OF audit_events
      FOR VALUES FROM ('${month}-01') TO ('${nextMonth(month)}-01');
      CREATE UNIQUE INDEX IF NOT EXISTS ${name}_chain ON ${name} (correlation_id, chain_position)`;
    try {
      await this.db.transaction(async (tx) => {
        await tx.query(`SELECT ${PARTITION_LOCK}`);
        await tx.exec(sql);
      });
    } catch (err) {
      // Another process created it between our check and our CREATE: that is success.
      if (sqlState(err) !== '42P07' && sqlState(err) !== '23505') throw err;
    }
  }

  /** event_date of each stored event among `ids`. */
  async findEventDates(ids: string[], q: SqlQueryable = this.db): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    if (ids.length === 0) return out;
    const rows = await q.query<{ event_id: string; event_date: string }>(
      `SELECT event_id::text AS event_id, to_char(event_date, 'YYYY-MM-DD') AS event_date
       FROM audit_events WHERE event_id = ANY($1::uuid[])`,
      [ids],
    );
    for (const r of rows) out.set(r.event_id, r.event_date);
    return out;
  }

  /**
   * Inserts events in one transaction, each appended to the chain of its correlation_id in the
   * order given (commit order; timestamps play no part). All or nothing.
   */
  async insertEvents(
    events: readonly PreparedEvent[],
    options: InsertOptions = {},
  ): Promise<{ inserted: number; skipped: number }> {
    if (events.length === 0) return { inserted: 0, skipped: 0 };
    await this.ensurePartitions(new Set(events.map((e) => e.event_date)));
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.#insertTx(events, options);
      } catch (err) {
        if (attempt >= 3) throw err;
        if (sqlState(err) === '23514' && /no partition/i.test(String((err as Error).message))) {
          // A partition dropped behind our back: forget what we knew and create it again.
          this.#partitions.clear();
          await this.ensurePartitions(new Set(events.map((e) => e.event_date)));
        } else if (!isTransient(err)) {
          throw err;
        }
      }
    }
  }

  #insertTx(
    input: readonly PreparedEvent[],
    options: InsertOptions,
  ): Promise<{ inserted: number; skipped: number }> {
    return this.db.transaction(async (tx) => {
      const correlationIds = [...new Set(input.map((e) => e.correlation_id))].sort();
      const keys = [...new Set(correlationIds.map(correlationLockKey))].sort((a, b) =>
        a < b ? -1 : a > b ? 1 : 0,
      );
      const heads = await tx.script<{
        correlation_id: string;
        event_hash: string;
        chain_position: string;
      }>(lockScript(keys, correlationIds));

      let events: PreparedEvent[] = [...input];
      if (options.skipExisting) {
        const existing = await this.findEventDates(
          events.map((e) => e.event_id),
          tx,
        );
        events = events.filter((e) => !existing.has(e.event_id));
        if (events.length === 0) return { inserted: 0, skipped: input.length };
      }
      if (options.resolveParents) {
        const pending = events.filter((e) => e.parent_event_id && !e.parent_event_date);
        if (pending.length > 0) {
          const found = await this.findEventDates(
            pending.map((e) => e.parent_event_id!),
            tx,
          );
          const missing: number[] = [];
          events = events.map((e, i) => {
            if (!e.parent_event_id || e.parent_event_date) return e;
            const date = found.get(e.parent_event_id);
            if (date === undefined) missing.push(i);
            return { ...e, parent_event_date: date ?? null };
          });
          if (missing.length > 0) throw new MissingParentError(missing);
        }
      }
      if (events.some(needsIpNormalisation)) {
        // Hash actor_ip in the text form the inet column gives back.
        const ips = [...new Set(events.filter(needsIpNormalisation).map((e) => e.actor_ip!))];
        const rows = await tx.query<{ a: string; h: string }>(
          'SELECT a, host(a::inet) AS h FROM unnest($1::text[]) AS a',
          [ips],
        );
        const canon = new Map(rows.map((r) => [r.a, r.h]));
        events = events.map((e) =>
          needsIpNormalisation(e) ? { ...e, actor_ip: canon.get(e.actor_ip!) ?? e.actor_ip } : e,
        );
      }

      const head = new Map(heads.map((h) => [h.correlation_id, h]));
      const byCorrelation = new Map<string, PreparedEvent[]>();
      for (const e of events) {
        const list = byCorrelation.get(e.correlation_id);
        if (list) list.push(e);
        else byCorrelation.set(e.correlation_id, [e]);
      }
      const plain = options.plainStrings === true;
      const key = this.#key;
      const algorithm = this.#algorithm;
      // PostgreSQL: the rows go through COPY FROM STDIN, in the binary format when every value
      // has a binary form here (see copy-binary.ts), else in the text format; PGlite has no
      // COPY from the client, and gets one INSERT ... SELECT FROM jsonb_to_recordset.
      const copy = tx.copyFrom !== undefined;
      const build = (format: 'binary' | 'text' | 'json') => {
        const advance = {
          cids: [] as string[],
          from: [] as string[],
          to: [] as string[],
          ids: [] as string[],
          hashes: [] as string[],
        };
        // (A row is its document, ~100 bytes more.)
        const bin = format === 'binary' ? new CopyBinaryRows(events.length * 1024) : undefined;
        const rows = format === 'text' ? new CopyRows(events.length * 1024) : undefined;
        let data = '[';
        let n = 0;
        for (const [cid, list] of byCorrelation) {
          const h = head.get(cid);
          let prev = h?.event_hash ?? '';
          const from = String(h?.chain_position ?? 0);
          // Positions count in doubles while they are exact (always, in practice), else BigInt.
          let pos: number | bigint = Number(from);
          if (!Number.isSafeInteger(pos + list.length)) pos = BigInt(from);
          for (const e of list) {
            pos = typeof pos === 'number' ? pos + 1 : pos + 1n;
            const doc = canonicalEventDocument(e, e.event_data, plain);
            // The hash input: flattened once, by the hash, and then scanned by COPY's escaping.
            const input = prev + doc;
            const hash = hashText(input, key);
            if (bin) {
              if (!bin.add(e, hash, prev, algorithm, pos)) return undefined;
            } else if (rows) {
              rows.add(copyLine(e, input, hash, prev, algorithm, pos));
            } else {
              data +=
                `${n === 0 ? '' : ','}${doc.slice(0, -1)},"event_date":${JSON.stringify(e.event_date)}` +
                `,"parent_event_date":${JSON.stringify(e.parent_event_date)},"event_hash":"${hash}"` +
                `,"previous_event_hash":"${prev}","hash_algorithm":"${algorithm}","chain_position":${pos}}`;
            }
            n++;
            prev = hash;
          }
          advance.cids.push(cid);
          advance.from.push(from);
          advance.to.push(String(pos));
          advance.ids.push(list[list.length - 1]!.event_id);
          advance.hashes.push(prev);
        }
        return { advance, n, bin, rows, data: `${data}]` };
      };
      const built = (copy ? build('binary') : undefined) ?? build(copy ? 'text' : 'json')!;
      const { advance, n } = built;
      if (built.bin) await tx.copyFrom!(COPY_BINARY_SQL, built.bin.bytes());
      else if (built.rows) await tx.copyFrom!(COPY_SQL, built.rows.bytes());
      else await tx.query(INSERT_SQL, [built.data], 'audit_insert_recordset');
      await tx.script(advanceStatement(advance), { commit: true });
      return { inserted: n, skipped: input.length - events.length };
    });
  }

  /** Events matching the filters, newest first, and the total number of matches. */
  async queryEvents(q: AuditEventsQuery): Promise<{ rows: StoredEventRow[]; total: number }> {
    const where: string[] = [];
    const params: unknown[] = [];
    const add = (cond: (p: string) => string, value: unknown) => {
      params.push(value);
      where.push(cond(`$${params.length}`));
    };
    if (q.correlationId !== undefined) add((p) => `correlation_id = ${p}`, q.correlationId);
    if (q.eventType !== undefined) add((p) => `event_type = ${p}`, q.eventType);
    if (q.eventCategory !== undefined) add((p) => `event_category = ${p}`, q.eventCategory);
    if (q.eventOutcome !== undefined) add((p) => `event_outcome = ${p}`, q.eventOutcome);
    if (q.severity !== undefined) add((p) => `severity = ${p}`, q.severity);
    if (q.since !== undefined) {
      add((p) => `event_timestamp >= ${p}::timestamptz`, q.since);
    }
    if (q.until !== undefined) {
      add((p) => `event_timestamp <= ${p}::timestamptz`, q.until);
    }
    if (q.detailKey !== undefined && q.detailValue !== undefined) {
      params.push(q.detailKey, q.detailValue);
      where.push(`event_data ->> $${params.length - 1}::text = $${params.length}`);
    }
    const whereSql = where.length > 0 ? `WHERE ${where.join(' AND ')}` : '';
    const pageParams = [...params, q.limit, q.offset];
    const [rows, count] = await Promise.all([
      this.db.query<StoredEventRow>(
        // ORDER BY names the table's columns (e.), not the text aliases of the select list.
        `SELECT ${SELECT_COLUMNS} FROM audit_events e ${whereSql}
         ORDER BY e.event_timestamp DESC, e.chain_position DESC, e.event_id DESC
         LIMIT $${params.length + 1} OFFSET $${params.length + 2}`,
        pageParams,
      ),
      this.db.query<{ total: number }>(
        `SELECT count(*)::int AS total FROM audit_events ${whereSql}`,
        params,
      ),
    ]);
    return { rows, total: Number(count[0]?.total ?? 0) };
  }

  /**
   * Walks the chain of a correlation_id in chain (position) order, recomputing each event's
   * hash from its stored fields with the algorithm it names and checking each link to its
   * predecessor, then compares the last event with the recorded head of the chain (so that
   * the newest events cannot be removed unnoticed). With a chain key, an event hashed without
   * it is not vouched for. Throws ChainKeyMissingError for a keyed chain and no key.
   */
  async verifyChain(correlationId: string): Promise<ChainVerification> {
    const tampered: TamperedEvent[] = [];
    const key = this.#key;
    let total = 0;
    let verified = 0;
    let prev = '';
    let last: StoredEventRow | undefined;
    let cursor: { pos: string; id: string } | undefined;
    for (;;) {
      const rows: StoredEventRow[] = await this.db.query<StoredEventRow>(
        `SELECT ${SELECT_COLUMNS} FROM audit_events e
         WHERE e.correlation_id = $1
           ${cursor ? 'AND (e.chain_position, e.event_id) > ($3::bigint, $4::uuid)' : ''}
         ORDER BY e.chain_position, e.event_id LIMIT $2`,
        cursor ? [correlationId, VERIFY_PAGE, cursor.pos, cursor.id] : [correlationId, VERIFY_PAGE],
      );
      for (const row of rows) {
        total++;
        let ok = true;
        const problem = (message: string, expected: string, actual: string, previous: string) => {
          ok = false;
          tampered.push({
            event_id: row.event_id,
            event_timestamp: row.event_timestamp,
            expected_hash: expected,
            actual_hash: actual,
            previous_hash: previous,
            message,
          });
        };
        if (row.previous_event_hash !== prev) {
          problem(
            'Broken link: previous_event_hash does not match the preceding event (an event was removed, inserted or reordered)',
            prev,
            row.previous_event_hash,
            prev,
          );
        }
        const keyed = row.hash_algorithm === HASH_HMAC_SHA256;
        if (keyed && key === undefined) throw new ChainKeyMissingError();
        if (!keyed && row.hash_algorithm !== HASH_SHA256_UNKEYED) {
          problem(
            `Unknown hash algorithm ${JSON.stringify(row.hash_algorithm)}`,
            '',
            row.event_hash,
            row.previous_event_hash,
          );
        } else if (!keyed && key !== undefined) {
          // Anyone who can write to the database can make an unkeyed hash: with a chain key
          // configured, such an event is not vouched for (and cannot downgrade a keyed chain).
          problem(
            'Hashed without the chain key (sha256-unkeyed): the event cannot be vouched for against a database writer',
            '',
            row.event_hash,
            row.previous_event_hash,
          );
        } else {
          const expected = computeEventHash(
            row.previous_event_hash,
            { ...row, duration_ms: row.duration_ms === null ? null : Number(row.duration_ms) },
            canonicalize(row.event_data),
            keyed ? key : undefined,
          );
          if (expected !== row.event_hash) {
            problem(
              'Event hash mismatch: stored fields were altered after the event was written',
              expected,
              row.event_hash,
              row.previous_event_hash,
            );
          }
        }
        if (ok) verified++;
        prev = row.event_hash;
        last = row;
      }
      if (rows.length < VERIFY_PAGE) break;
      const end = rows[rows.length - 1]!;
      cursor = { pos: end.chain_position, id: end.event_id };
    }

    // The recorded head: the newest event the servers wrote to this chain.
    const [head] = await this.db.query<{
      chain_position: string;
      event_id: string;
      event_hash: string;
    }>(
      `SELECT chain_position::text AS chain_position, event_id::text AS event_id, event_hash
       FROM audit_event_chain_heads WHERE correlation_id = $1`,
      [correlationId],
    );
    if (head !== undefined) {
      const lastPos = BigInt(last?.chain_position ?? 0);
      const headPos = BigInt(head.chain_position);
      if (headPos > lastPos) {
        const missing = headPos - lastPos;
        tampered.push({
          event_id: last?.event_id ?? head.event_id,
          event_timestamp: last?.event_timestamp ?? '',
          expected_hash: head.event_hash,
          actual_hash: last?.event_hash ?? '',
          previous_hash: last?.previous_event_hash ?? '',
          message: `Chain head mismatch: the newest ${missing} event${missing === 1n ? '' : 's'} of the chain (up to position ${headPos}) are missing`,
        });
      } else if (last !== undefined && (headPos < lastPos || head.event_hash !== last.event_hash)) {
        tampered.push({
          event_id: last.event_id,
          event_timestamp: last.event_timestamp,
          expected_hash: head.event_hash,
          actual_hash: last.event_hash,
          previous_hash: last.previous_event_hash,
          message: `Chain head mismatch: the last event is not the head the servers recorded (position ${headPos})`,
        });
      }
    }

    const isValid = tampered.length === 0;
    return {
      correlation_id: correlationId,
      is_valid: isValid,
      total_events: total,
      verified_events: verified,
      tampered_events: tampered,
      verification_time: new Date().toISOString(),
      message:
        total === 0 && isValid
          ? 'No events found for correlation_id'
          : isValid
            ? 'Hash chain verified successfully: no tampering detected'
            : `Hash chain verification FAILED: ${tampered.length} problem(s) found`,
    };
  }
}
