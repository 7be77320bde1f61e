// SPDX-License-Identifier: Apache-2.0
/*
 * The reference DataStorage audit API (DESIGN §8) over node:http: write (single and batch),
 * query, verify-chain and readiness, on PGlite or PostgreSQL, with an optional Redis DLQ.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  AUDIT_EVENTS_BATCH_PATH,
  AUDIT_EVENTS_PATH,
  type AuditEventRequest,
  type ContractViolation,
  FIELD_MAX_LENGTH,
  isStorableString,
  MAX_BATCH_BYTES,
  MAX_BATCH_EVENTS,
  READYZ_PATH,
  VERIFY_CHAIN_PATH,
  validateAuditEventRequest,
} from '@kubernaut/datastorage-contract';
import {
  BodyError,
  closeGracefully,
  readBody,
  sendJson,
  sendProblem,
} from '@kubernaut/datastorage-contract/http';
import { OpenApiValidator } from '@kubernaut/datastorage-contract/openapi';
import { RedisDeadLetterQueue, type RedisDlqOptions } from './dlq.ts';
import { type PreparedEvent, prepareEvent } from './events.ts';
import { createJsonLogger, type DataStorageLogger, type LogLevel } from './logger.ts';
import { parseAuditEventsQuery } from './query-params.ts';
import { openPglite, type PgliteHandle } from './storage/pglite.ts';
import { openPostgres } from './storage/postgres.ts';
import { AuditEventStore, type StoredEventRow } from './storage/repository.ts';
import type { SqlDatabase } from './storage/sql.ts';

/** Where events are stored. */
export type StorageOptions =
  | {
      kind: 'pglite';
      /** Data directory; in memory when absent. */
      dataDir?: string;
      /** @experimental An open PGlite to use (left open by close()). */
      instance?: PgliteHandle;
    }
  | {
      kind: 'postgres';
      connectionString: string;
      /** Pool size [10]. */
      poolSize?: number;
    };

export interface DataStorageServerOptions {
  /** Port to listen on [8080]; 0 picks a free one. */
  port?: number;
  /** Interface to listen on [127.0.0.1]. */
  host?: string;
  /** Storage backend [in-memory PGlite]. */
  storage?: StorageOptions;
  /** Path of the DataStorage OpenAPI file: when given, every event is validated against it. */
  openapiSpec?: string;
  /** Redis DLQ: batches go there (202) when the database cannot be reached. */
  redis?: RedisDlqOptions;
  /** Logger [JSON lines on stderr at `logLevel`]. */
  logger?: DataStorageLogger;
  /** Level of the default logger [info]. */
  logLevel?: LogLevel;
  /** Log nothing (tests). */
  quiet?: boolean;
  /** close() waits this long for in-flight requests before cutting connections [10000]. */
  shutdownTimeoutMillis?: number;
}

/** A running server. */
export interface DataStorageServer {
  /** Base URL, e.g. `http://127.0.0.1:8080`. */
  readonly url: string;
  readonly port: number;
  /** @experimental The store behind the API (tests, embedding). */
  readonly store: AuditEventStore;
  /**
   * @experimental Resolves when the Redis DLQ holds nothing more to write (at once without
   * a DLQ).
   */
  whenDlqDrained(): Promise<void>;
  /** Stops accepting, finishes in-flight requests, stops the DLQ worker, closes the database. */
  close(): Promise<void>;
}

const VERIFY_BODY_LIMIT = 64 * 1024;
const READY_TIMEOUT_MS = 2000;

type Handler = (req: IncomingMessage, res: ServerResponse, url: URL) => Promise<void>;

class HttpError extends Error {
  readonly status: number;
  readonly type: string;
  readonly title: string;
  constructor(status: number, type: string, title: string, detail: string) {
    super(detail);
    this.status = status;
    this.type = type;
    this.title = title;
  }
}

const validation = (detail: string) =>
  new HttpError(400, 'validation-error', 'Validation Error', detail);

function summarise(violations: ContractViolation[]): string {
  return violations.map((v) => (v.field ? `${v.field}: ${v.message}` : v.message)).join('; ');
}

/** The response body of a stored row: null columns are left out. */
function toApiEvent(row: StoredEventRow): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(row)) {
    if (v === null || k === 'chain_position') continue;
    out[k] = v;
  }
  return out;
}

async function openDatabase(
  options: StorageOptions,
  logger: DataStorageLogger,
): Promise<SqlDatabase> {
  if (options.kind === 'postgres') {
    return openPostgres({
      connectionString: options.connectionString,
      ...(options.poolSize === undefined ? {} : { max: options.poolSize }),
      onIdleError: (err) => logger.warn('idle database connection failed', { err }),
    });
  }
  return openPglite({
    ...(options.dataDir === undefined ? {} : { dataDir: options.dataDir }),
    ...(options.instance === undefined ? {} : { instance: options.instance }),
  });
}

function describeStorage(options: StorageOptions): Record<string, unknown> {
  if (options.kind === 'pglite') {
    return { storage: 'pglite', data_dir: options.dataDir ?? '(memory)' };
  }
  const u = URL.canParse(options.connectionString) ? new URL(options.connectionString) : undefined;
  // Never log credentials.
  return { storage: 'postgres', database: u ? `${u.host}${u.pathname}` : '(unparsed)' };
}

/** Starts the reference DataStorage server. */
export async function startDataStorageServer(
  options: DataStorageServerOptions = {},
): Promise<DataStorageServer> {
  const logger =
    options.logger ??
    createJsonLogger({
      level: options.quiet ? 'silent' : (options.logLevel ?? 'info'),
      base: { component: 'kubernaut-datastorage' },
    });
  const storageOptions: StorageOptions = options.storage ?? { kind: 'pglite' };
  const schema = options.openapiSpec ? OpenApiValidator.fromFile(options.openapiSpec) : undefined;

  const db = await openDatabase(storageOptions, logger);
  let store: AuditEventStore;
  try {
    store = await AuditEventStore.open(db);
  } catch (err) {
    await db.close().catch(() => {});
    throw err;
  }
  let dlq: RedisDeadLetterQueue | undefined;
  if (options.redis) {
    dlq = new RedisDeadLetterQueue(options.redis, logger);
    try {
      await dlq.open();
    } catch (err) {
      await dlq.close().catch(() => {});
      await db.close().catch(() => {});
      throw err;
    }
    dlq.start(store);
  }
  let closing = false;

  /** Validation of a list of events: schema first (no index), then handler checks (index). */
  function validateEvents(events: unknown[], single: boolean): PreparedEvent[] {
    if (schema) {
      let errors = 0;
      for (const e of events) errors += schema.validate(e).length;
      if (errors > 0) {
        throw validation(
          single
            ? `audit event did not pass OpenAPI schema validation (${errors} errors)`
            : `batch did not pass OpenAPI schema validation (${errors} errors)`,
        );
      }
    }
    const now = Date.now();
    const prepared: PreparedEvent[] = [];
    for (let i = 0; i < events.length; i++) {
      const at = single ? 'audit event' : `event at index ${i}`;
      const violations = validateAuditEventRequest(events[i], { now });
      if (violations.length > 0) throw validation(`${at}: ${summarise(violations)}`);
      prepared.push(prepareEvent(events[i] as AuditEventRequest));
    }
    return prepared;
  }

  /** Stores events (201) or queues them to the DLQ when the database is unreachable (202). */
  async function persist(events: PreparedEvent[], single: boolean): Promise<{ queued: boolean }> {
    const queue = async (reason: string, err?: unknown) => {
      if (!dlq) {
        logger.error('database unavailable and no DLQ configured', { err, events: events.length });
        throw new HttpError(
          503,
          'service-unavailable',
          'Service Unavailable',
          'the database is unavailable; retry later',
        );
      }
      try {
        await dlq.enqueue(events, reason);
      } catch (qerr) {
        logger.error('database and DLQ both unavailable; batch not accepted', {
          err,
          dlq_err: qerr,
          events: events.length,
        });
        throw new HttpError(
          503,
          'service-unavailable',
          'Service Unavailable',
          'the database and the dead-letter queue are unavailable; retry later',
        );
      }
      logger.warn('batch queued to the DLQ', { reason, events: events.length, err });
      return { queued: true };
    };

    // Parents must already exist (their ids come from earlier 201 answers).
    const withParent = events.filter((e) => e.parent_event_id !== null);
    if (withParent.length > 0) {
      let found: Map<string, string>;
      try {
        found = await store.findEventDates(withParent.map((e) => e.parent_event_id!));
      } catch (err) {
        if (db.isUnavailable(err)) return queue('database unavailable (parent lookup)', err);
        throw err;
      }
      for (let i = 0; i < events.length; i++) {
        const e = events[i]!;
        if (e.parent_event_id === null) continue;
        const date = found.get(e.parent_event_id);
        if (date === undefined) {
          throw validation(
            single
              ? 'parent event does not exist'
              : `event at index ${i}: parent event does not exist`,
          );
        }
        e.parent_event_date = date;
      }
    }
    if (dlq?.hasBacklog()) return queue('earlier batches are still queued');
    try {
      await store.insertEvents(events);
      return { queued: false };
    } catch (err) {
      if (db.isUnavailable(err)) return queue('database unavailable', err);
      throw err;
    }
  }

  async function readJson(req: IncomingMessage, limit: number): Promise<unknown> {
    let body: Buffer;
    try {
      body = await readBody(req, limit);
    } catch (err) {
      if (err instanceof BodyError && err.kind === 'too_large') {
        req.resume();
        throw new HttpError(413, 'payload-too-large', 'Payload Too Large', err.message);
      }
      throw err;
    }
    try {
      return JSON.parse(body.toString('utf8'));
    } catch {
      throw new HttpError(
        400,
        'invalid-request',
        'Invalid Request',
        'the request body could not be parsed as JSON',
      );
    }
  }

  const createBatch: Handler = async (req, res) => {
    const body = await readJson(req, MAX_BATCH_BYTES);
    if (!Array.isArray(body)) {
      throw new HttpError(
        400,
        'invalid-request',
        'Invalid Request',
        'request body must be a JSON array of audit events',
      );
    }
    if (body.length === 0) throw validation('batch cannot be empty');
    if (body.length > MAX_BATCH_EVENTS) {
      throw new HttpError(
        400,
        'batch-size-exceeded',
        'Batch Size Exceeded',
        `batch size ${body.length} exceeds maximum allowed batch size of ${MAX_BATCH_EVENTS}`,
      );
    }
    const events = validateEvents(body, false);
    const { queued } = await persist(events, false);
    if (queued) {
      sendJson(res, 202, {
        status: 'accepted',
        message: `${events.length} audit events queued for async processing via DLQ`,
        count: events.length,
      });
      return;
    }
    logger.debug('batch stored', { events: events.length });
    sendJson(res, 201, {
      event_ids: events.map((e) => e.event_id),
      message: `${events.length} audit events created successfully`,
    });
  };

  const createOne: Handler = async (req, res) => {
    const body = await readJson(req, MAX_BATCH_BYTES);
    if (body === null || typeof body !== 'object' || Array.isArray(body)) {
      throw new HttpError(
        400,
        'invalid-request',
        'Invalid Request',
        'request body must be a JSON object (use /api/v1/audit/events/batch for arrays)',
      );
    }
    const events = validateEvents([body], true);
    const { queued } = await persist(events, true);
    if (queued) {
      sendJson(res, 202, {
        status: 'accepted',
        message: 'audit event queued for async processing',
      });
      return;
    }
    sendJson(res, 201, {
      event_id: events[0]!.event_id,
      event_timestamp: events[0]!.event_timestamp,
      message: 'Audit event created successfully',
    });
  };

  const queryEvents: Handler = async (_req, res, url) => {
    const parsed = parseAuditEventsQuery(url.searchParams);
    if (!parsed.ok) throw validation(parsed.detail);
    const q = parsed.query;
    const { rows, total } = await store.queryEvents(q);
    sendJson(res, 200, {
      data: rows.map(toApiEvent),
      pagination: {
        limit: q.limit,
        offset: q.offset,
        total,
        has_more: q.offset + rows.length < total,
      },
    });
  };

  const verifyChain: Handler = async (req, res) => {
    const body = await readJson(req, VERIFY_BODY_LIMIT);
    const cid =
      body !== null && typeof body === 'object'
        ? (body as { correlation_id?: unknown }).correlation_id
        : undefined;
    if (typeof cid !== 'string' || cid.length === 0) {
      throw new HttpError(
        400,
        'missing-correlation-id',
        'Missing Required Field',
        "Field 'correlation_id' is required",
      );
    }
    if ([...cid].length > FIELD_MAX_LENGTH.correlation_id) {
      throw new HttpError(
        400,
        'invalid-correlation-id',
        'Invalid Correlation ID',
        `Field 'correlation_id' exceeds maximum length of ${FIELD_MAX_LENGTH.correlation_id} characters`,
      );
    }
    if (!isStorableString(cid)) {
      throw new HttpError(
        400,
        'invalid-correlation-id',
        'Invalid Correlation ID',
        "Field 'correlation_id' contains a NUL character or an unpaired surrogate",
      );
    }
    const result = await store.verifyChain(cid);
    if (!result.is_valid) {
      logger.warn('hash chain verification failed', {
        correlation_id: cid,
        problems: result.tampered_events.length,
      });
    }
    sendJson(res, 200, result);
  };

  const readyz: Handler = async (_req, res) => {
    let ok = !closing;
    if (ok) {
      let timer: NodeJS.Timeout | undefined;
      ok = await Promise.race([
        store.ping(),
        new Promise<boolean>((resolve) => {
          timer = setTimeout(() => resolve(false), READY_TIMEOUT_MS);
        }),
      ]);
      clearTimeout(timer);
    }
    if (ok) {
      sendJson(res, 200, { status: 'ready', dlq_backlog: dlq?.hasBacklog() ?? false });
    } else {
      sendProblem(
        res,
        503,
        'service-unavailable',
        'Service Unavailable',
        closing ? 'shutting down' : 'database unavailable',
        {
          headers: { 'retry-after': '5' },
        },
      );
    }
  };

  const routes: Record<string, Record<string, Handler>> = {
    [AUDIT_EVENTS_PATH]: { POST: createOne, GET: queryEvents },
    [AUDIT_EVENTS_BATCH_PATH]: { POST: createBatch },
    [VERIFY_CHAIN_PATH]: { POST: verifyChain },
    [READYZ_PATH]: { GET: readyz },
  };

  let inflight = 0;
  let idle: (() => void) | undefined;

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const route = routes[url.pathname];
    try {
      if (!route) {
        throw new HttpError(404, 'not-found', 'Not Found', `no resource at ${url.pathname}`);
      }
      const handler = route[req.method ?? ''];
      if (!handler) {
        res.setHeader('allow', Object.keys(route).join(', '));
        throw new HttpError(
          405,
          'method-not-allowed',
          'Method Not Allowed',
          `${req.method} is not allowed on ${url.pathname}`,
        );
      }
      await handler(req, res, url);
    } catch (err) {
      if (err instanceof HttpError) {
        if (err.status >= 500)
          logger.warn('request failed', { path: url.pathname, detail: err.message });
        else
          logger.debug('request rejected', {
            path: url.pathname,
            status: err.status,
            detail: err.message,
          });
        sendProblem(res, err.status, err.type, err.title, err.message, {
          instance: url.pathname,
          ...(err.status === 503 ? { headers: { 'retry-after': '5' } } : {}),
        });
        return;
      }
      if (db.isUnavailable(err)) {
        logger.warn('database unavailable', { path: url.pathname, err });
        sendProblem(
          res,
          503,
          'service-unavailable',
          'Service Unavailable',
          'the database is unavailable',
          {
            instance: url.pathname,
            headers: { 'retry-after': '5' },
          },
        );
        return;
      }
      logger.error('internal error', { path: url.pathname, err });
      sendProblem(
        res,
        500,
        'internal-error',
        'Internal Server Error',
        'the request could not be processed',
        {
          instance: url.pathname,
        },
      );
    }
  }

  const server = createServer((req, res) => {
    inflight++;
    res.on('close', () => {
      inflight--;
      if (inflight === 0) idle?.();
    });
    handle(req, res).catch((err) => {
      logger.error('unhandled request error', { err });
      if (!res.headersSent) sendProblem(res, 500, 'internal-error', 'Internal Server Error');
      else res.destroy();
    });
  });
  server.keepAliveTimeout = 65_000;

  const host = options.host ?? '127.0.0.1';
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port ?? 8080, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    await dlq?.close().catch(() => {});
    await db.close().catch(() => {});
    throw err;
  }
  server.on('error', (err) => logger.error('http server error', { err }));
  const port = (server.address() as AddressInfo).port;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  logger.info('datastorage listening', {
    url,
    ...describeStorage(storageOptions),
    openapi: options.openapiSpec ?? null,
    dlq: options.redis ? (options.redis.stream ?? 'audit:dlq:events') : null,
  });

  let closed: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closed ??= (async () => {
      closing = true;
      const drained =
        inflight === 0
          ? Promise.resolve()
          : new Promise<void>((resolve) => {
              idle = resolve;
            });
      await closeGracefully(server, drained, options.shutdownTimeoutMillis ?? 10_000);
      await dlq?.close();
      await db.close();
      logger.info('datastorage stopped');
    })();
    return closed;
  };

  return {
    url,
    port,
    store,
    whenDlqDrained: () => dlq?.whenDrained() ?? Promise.resolve(),
    close,
  };
}
