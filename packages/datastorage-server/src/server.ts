// SPDX-License-Identifier: Apache-2.0
/*
 * The reference DataStorage audit API (DESIGN §8) over node:http: write (single and batch),
 * query, verify-chain and readiness, on PGlite or PostgreSQL, with an optional Redis DLQ.
 *
 * Every refusal, including those of node's HTTP parser, is a problem answer, logged and
 * counted; the bytes of request bodies held at once are bounded (maxBufferedBodyBytes); a body
 * is stored only as the exact UTF-8 text sent; `100 Continue` is sent only for a body that will
 * be read; and the answers of one connection keep their order (a parser refusal waits for the
 * answers of the requests read before it).
 */

import { isUtf8 } from 'node:buffer';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse, STATUS_CODES } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { canonicalize } from '@kubernaut/audit-provenance';
import {
  AUDIT_EVENTS_BATCH_PATH,
  AUDIT_EVENTS_PATH,
  type AuditEventRequest,
  type ContractViolation,
  FIELD_MAX_LENGTH,
  isStorableString,
  type JsonShape,
  jsonShape,
  MAX_BATCH_BYTES,
  MAX_BATCH_EVENTS,
  MAX_EVENT_DATA_DEPTH,
  PROBLEM_CONTENT_TYPE,
  problem,
  READYZ_PATH,
  VERIFY_CHAIN_PATH,
  validateAuditEventRequest,
} from '@kubernaut/datastorage-contract';
import {
  BodyError,
  closeGracefully,
  mediaType,
  readBody,
  sendJson,
  sendProblem,
} from '@kubernaut/datastorage-contract/http';
import {
  createPrometheusMetrics,
  type ManagementServer,
  startManagementServer,
} from '@kubernaut/datastorage-contract/management';
import { OpenApiValidator } from '@kubernaut/datastorage-contract/openapi';
import type { MeterProvider } from '@opentelemetry/api';
import {
  type Authenticator,
  type AuthOptions,
  type AuthVerb,
  createAuthenticator,
} from './auth.ts';
import { DlqFullError, RedisDeadLetterQueue, type RedisDlqOptions } from './dlq.ts';
import { type PreparedEvent, prepareEvent } from './events.ts';
import { isPlainJsonString } from './hash.ts';
import { findUnrepresentableNumber } from './json-body.ts';
import { createJsonLogger, type DataStorageLogger, type LogLevel } from './logger.ts';
import { ServerMetrics, serverMeter } from './metrics.ts';
import { parseAuditEventsQuery } from './query-params.ts';
import { openPglite } from './storage/pglite.ts';
import type { PgliteHandle } from './storage/pglite-handle.ts';
import { openPostgres } from './storage/postgres.ts';
import {
  AuditEventStore,
  ChainKeyMissingError,
  type StoredEventRow,
} from './storage/repository.ts';
import type { SqlDatabase } from './storage/sql.ts';

/** Where events are stored. */
export type StorageOptions =
  | {
      kind: 'pglite';
      /** Data directory; in memory when absent. */
      dataDir?: string;
      /** @experimental An open PGlite to use (left open by close()). */
      instance?: PgliteHandle;
      /**
       * @experimental In memory only: a directory caching a freshly initialised cluster, so
       * that a start loads it (under 1 s) instead of running initdb (4–5 s of CPU). Created
       * when missing; a cache that cannot be used is reported and replaced. Give it the trust
       * of a data directory: what it holds is what the server starts from.
       */
      cacheDir?: string;
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
  /**
   * Request bodies held at once, across all connections, in bytes [64 MiB]: a body is counted
   * (its Content-Length, or the route's limit when chunked) from before it is read until its
   * answer is sent. A request that would pass the budget is answered 503 with Retry-After
   * without its body being read; one request alone is always let through.
   */
  maxBufferedBodyBytes?: number;
  /**
   * Bearer-token authentication of /api/v1/* (a token file, or Kubernetes TokenReview and
   * SubjectAccessReview). Without it every API request is served: loopback use only.
   */
  auth?: AuthOptions;
  /**
   * File holding the HMAC-SHA256 key of the hash chain (at least 32 bytes; one trailing newline
   * is ignored). Without a key, events are hashed with plain SHA-256, which anyone who can write
   * to the database can recompute.
   */
  chainKeyFile?: string;
  /** The chain key itself (instead of chainKeyFile). */
  chainKey?: string | Buffer;
  /**
   * Port of the management server (GET /metrics, /healthz, /livez, /readyz); 0 picks a free one
   * [none: no management server]. The command defaults to 8081, as upstream.
   */
  managementPort?: number;
  /** Interface of the management server [the API's host]. */
  managementHost?: string;
  /**
   * Where the server's metrics go [with a management port: its own MeterProvider served on
   * /metrics; without: nowhere].
   */
  meterProvider?: MeterProvider;
}

/** Shortest chain key accepted, in bytes. */
const MIN_CHAIN_KEY_BYTES = 32;

/** The chain key of the options, checked; undefined without one. */
function loadChainKey(options: DataStorageServerOptions): Buffer | undefined {
  let key: Buffer;
  if (options.chainKeyFile !== undefined) {
    try {
      key = readFileSync(options.chainKeyFile);
    } catch (err) {
      throw new Error(
        `cannot read the chain key file ${options.chainKeyFile}: ${(err as NodeJS.ErrnoException).code ?? err}`,
      );
    }
    // A key written with `echo` or an editor ends with a newline that is not part of it.
    if (key.at(-1) === 0x0a) key = key.subarray(0, key.at(-2) === 0x0d ? -2 : -1);
  } else if (options.chainKey !== undefined) {
    key = Buffer.isBuffer(options.chainKey) ? options.chainKey : Buffer.from(options.chainKey);
  } else {
    return undefined;
  }
  if (key.length < MIN_CHAIN_KEY_BYTES) {
    throw new Error(`the chain key must be at least ${MIN_CHAIN_KEY_BYTES} bytes`);
  }
  return Buffer.from(key);
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
  /** Base URL of the management server, when there is one. */
  readonly managementUrl: string | undefined;
  /** Stops accepting, finishes in-flight requests, stops the DLQ worker, closes the database. */
  close(): Promise<void>;
}

const VERIFY_BODY_LIMIT = 64 * 1024;
const DEFAULT_MAX_BUFFERED_BODY_BYTES = 64 * 1024 * 1024;

/** The status of a request node's HTTP parser refused, by error code (else 400). */
const CLIENT_ERROR_STATUS: Record<string, number> = {
  HPE_HEADER_OVERFLOW: 431,
  HPE_CHUNK_EXTENSIONS_OVERFLOW: 413,
  ERR_HTTP_REQUEST_TIMEOUT: 408,
};
const CLIENT_ERROR_PROBLEM: Record<number, { type: string; title: string; detail: string }> = {
  400: {
    type: 'invalid_request',
    title: 'Invalid Request',
    detail: 'the request is not valid HTTP/1.1',
  },
  408: {
    type: 'request-timeout',
    title: 'Request Timeout',
    detail: 'the request was not received in time',
  },
  413: {
    type: 'request-too-large',
    title: 'Request Entity Too Large',
    detail: 'the request is too large',
  },
  431: {
    type: 'request-header-fields-too-large',
    title: 'Request Header Fields Too Large',
    detail: 'the request line or headers are too large',
  },
};
const READY_TIMEOUT_MS = 2000;

/** What a handler knows of its request beyond node's: the authenticated user, if any. */
interface RequestContext {
  user: string | undefined;
}
type Handler = (
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
  ctx: RequestContext,
) => Promise<void>;

/** A route: its handler and the verbs (Kubernetes RBAC) a caller needs, as upstream. */
interface Route {
  handler: Handler;
  verbs: readonly AuthVerb[];
}
const READ: readonly AuthVerb[] = ['get'];
const WRITE: readonly AuthVerb[] = ['get', 'create'];
const API_PREFIX = '/api/v1/';

class HttpError extends Error {
  readonly status: number;
  readonly type: string;
  readonly title: string;
  readonly headers: Record<string, string>;
  constructor(
    status: number,
    type: string,
    title: string,
    detail: string,
    headers: Record<string, string> = {},
  ) {
    super(detail);
    this.status = status;
    this.type = type;
    this.title = title;
    this.headers = headers;
  }
}

const validation = (detail: string) =>
  new HttpError(400, 'validation-error', 'Validation Error', detail);
const invalidRequest = (detail: string) =>
  new HttpError(400, 'invalid_request', 'Invalid Request', detail);
const invalidEventData = (detail: string) =>
  new HttpError(400, 'invalid_event_data', 'Invalid Event Data', detail);

const REQUEST_ID_RE = /^[\x21-\x7e]{1,200}$/;

/** The client's X-Request-ID when it is a sane token (echoed back), else undefined. */
function clientRequestId(header: string | string[] | undefined): string | undefined {
  return typeof header === 'string' && REQUEST_ID_RE.test(header) ? header : undefined;
}

/** Upstream looks up a `parent_event_id: null` as the nil uuid, which never exists. */
const NIL_UUID = '00000000-0000-0000-0000-000000000000';
/** Upstream's limit on the verify-chain correlation_id, in bytes. */
const MAX_VERIFY_CORRELATION_ID_BYTES = 256;

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
    ...(options.cacheDir === undefined ? {} : { cacheDir: options.cacheDir }),
    onCacheProblem: (message, err) => logger.warn(`PGlite cache: ${message}`, { err }),
  });
}

function describeStorage(options: StorageOptions): Record<string, unknown> {
  if (options.kind === 'pglite') {
    return {
      storage: 'pglite',
      data_dir: options.dataDir ?? '(memory)',
      ...(options.dataDir === undefined && options.cacheDir !== undefined
        ? { cache_dir: options.cacheDir }
        : {}),
    };
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
  const auth: Authenticator | undefined = options.auth
    ? createAuthenticator(options.auth, logger)
    : undefined;

  const chainKey = loadChainKey(options);
  const db = await openDatabase(storageOptions, logger);
  let store: AuditEventStore;
  try {
    store = await AuditEventStore.open(db, new Date(), chainKey ? { chainKey } : {});
  } catch (err) {
    await db.close().catch(() => {});
    throw err;
  }
  // Metrics: into the given provider, else (with a management port) one served on /metrics.
  const prometheus =
    options.meterProvider === undefined && options.managementPort !== undefined
      ? createPrometheusMetrics('kubernaut-datastorage')
      : undefined;
  let dlq: RedisDeadLetterQueue | undefined;
  const metrics = new ServerMetrics(
    serverMeter(options.meterProvider ?? prometheus?.meterProvider),
    {
      ...(options.redis ? { dlq: () => dlq?.snapshot() } : {}),
      ...(db.poolStats ? { pool: () => db.poolStats?.() } : {}),
    },
  );
  if (options.redis) {
    dlq = new RedisDeadLetterQueue(options.redis, logger, {
      written: (n) => metrics.written(n, 'dlq'),
      deadLettered: (n) => metrics.deadLettered(n),
    });
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
  // Bytes of request bodies held now (see maxBufferedBodyBytes), and the requests that asked
  // for `100 Continue` and have not had it yet (it is sent only once the body will be read).
  const bodyBudget = options.maxBufferedBodyBytes ?? DEFAULT_MAX_BUFFERED_BODY_BYTES;
  let bufferedBodyBytes = 0;
  const awaitingContinue = new WeakSet<IncomingMessage>();

  /**
   * Validation of a list of events: nesting depth first (before anything recursive runs),
   * then the schema (failures name no index, as upstream), then the handler checks (index).
   * `plainStrings` of the result: no string of the stored rows needs JSON escaping (see
   * canonicalEventDocument).
   */
  function validateEvents(
    events: unknown[],
    single: boolean,
    text: string,
    user: string | undefined,
  ): { prepared: PreparedEvent[]; plainStrings: boolean } {
    const at = (i: number) => (single ? 'audit event' : `event at index ${i}`);
    // The body is valid UTF-8, decoded (no lone surrogate: UTF-8 cannot encode one) and valid
    // JSON (no raw control character in a string): a string parsed from it can hold a NUL or an
    // unpaired surrogate only through a `\u` escape, and a character JSON escapes only through a
    // backslash. Without them, those checks are answered for the whole body at once.
    const noBackslash = text.indexOf('\\') === -1;
    const storable = noBackslash || text.indexOf('\\u') === -1;
    const shapes: Array<JsonShape | undefined> = new Array(events.length);
    for (let i = 0; i < events.length; i++) {
      const data = (events[i] as { event_data?: unknown } | null)?.event_data;
      if (data !== null && typeof data === 'object') {
        const shape = jsonShape(data, MAX_EVENT_DATA_DEPTH, !storable);
        if (shape.depth > MAX_EVENT_DATA_DEPTH) {
          throw validation(`${at(i)}: event_data nests deeper than ${MAX_EVENT_DATA_DEPTH} levels`);
        }
        shapes[i] = shape;
      }
    }
    const bad = findUnrepresentableNumber(text);
    if (bad !== undefined) {
      throw invalidEventData(
        single || bad.index === undefined
          ? `audit event has invalid event_data: the number ${bad.literal} cannot be stored as sent`
          : `event at index ${bad.index} has invalid event_data: the number ${bad.literal} cannot be stored as sent`,
      );
    }
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
    // The server's own values (ids, timestamps, defaults, the database's IP text) are plain;
    // a user name that replaces the actor must be too.
    let plainStrings = noBackslash;
    for (let i = 0; i < events.length; i++) {
      const ev = events[i] as Record<string, unknown>;
      // The canonical JSON of event_data (stored and hashed) is written first: its length is
      // the size the contract checks, which spares serialising event_data a second time. (It
      // came from JSON.parse, within the depth limit, every number finite: canonicalize
      // cannot fail on it.)
      const data = ev !== null && typeof ev === 'object' ? ev.event_data : undefined;
      const json =
        data !== null && typeof data === 'object' && !Array.isArray(data)
          ? canonicalize(data)
          : undefined;
      // Upstream accepts an outer event_type that differs from event_data.event_type (the
      // payload schema follows event_data.event_type); event_data must still name one.
      const violations = validateAuditEventRequest(ev, {
        now,
        eventDataBytes: json === undefined ? undefined : Buffer.byteLength(json, 'utf8'),
        eventDataShape: Array.isArray(data) ? undefined : shapes[i],
        storability: !storable,
      }).filter((v) => v.reason !== 'event_type_mismatch');
      if (violations.length > 0) throw validation(`${at(i)}: ${summarise(violations)}`);
      const inner = (ev.event_data as Record<string, unknown>).event_type;
      if (typeof inner !== 'string' || inner.length === 0) {
        throw validation(`${at(i)}: event_data.event_type is required`);
      }
      const e = prepareEvent(ev as unknown as AuditEventRequest, json);
      if (ev.parent_event_id === null) e.parent_event_id = NIL_UUID;
      // As upstream: a request authenticated as a person (not a service account) is recorded
      // as that person's action, whatever actor the body names.
      if (
        user !== undefined &&
        !user.startsWith('system:serviceaccount:') &&
        user.length <= FIELD_MAX_LENGTH.actor_id
      ) {
        e.actor_type = 'user';
        e.actor_id = user;
        if (plainStrings && !isPlainJsonString(user)) plainStrings = false;
      }
      prepared.push(e);
    }
    return { prepared, plainStrings };
  }

  /**
   * Stores events (201), or queues them to the DLQ (202) when the database is unreachable or
   * when events of one of their correlations are still queued (by any server), so that each
   * correlation's events reach the database in the order they were accepted. Answers 503 when
   * neither can take them, when the queue is full, or when a parent cannot be checked.
   */
  async function persist(
    events: PreparedEvent[],
    single: boolean,
    plainStrings: boolean,
  ): Promise<{ queued: boolean }> {
    const unavailable = (detail: string, retryAfter = '5') =>
      new HttpError(503, 'service-unavailable', 'Service Unavailable', detail, {
        'retry-after': retryAfter,
      });
    const queue = async (reason: string, err?: unknown) => {
      if (!dlq) {
        logger.error('database unavailable and no DLQ configured', { err, events: events.length });
        throw unavailable('the database is unavailable; retry later');
      }
      try {
        await dlq.enqueue(events, reason);
      } catch (qerr) {
        if (qerr instanceof DlqFullError) {
          logger.warn('the dead-letter queue is full; batch not accepted', {
            reason,
            events: events.length,
          });
          throw unavailable('the dead-letter queue is full; retry later', '30');
        }
        logger.error('database and DLQ both unavailable; batch not accepted', {
          err,
          dlq_err: qerr,
          events: events.length,
        });
        throw unavailable('the database and the dead-letter queue are unavailable; retry later');
      }
      logger.warn('batch queued to the DLQ', { reason, events: events.length, err });
      metrics.queued(events.length);
      return { queued: true };
    };

    // Parents must already exist (their ids come from earlier 201 answers). A parent that
    // cannot be checked is not accepted on faith: the whole entry would fail later.
    const withParent = events.filter((e) => e.parent_event_id !== null);
    if (withParent.length > 0) {
      let found: Map<string, string>;
      try {
        found = await store.findEventDates(withParent.map((e) => e.parent_event_id!));
      } catch (err) {
        if (db.isUnavailable(err)) {
          logger.warn('parent events cannot be checked: database unavailable', { err });
          throw unavailable('the parent event cannot be checked while the database is unavailable');
        }
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
    if (dlq) {
      let behind = false;
      try {
        behind = await dlq.hasBacklog([...new Set(events.map((e) => e.correlation_id))]);
      } catch (err) {
        // Redis down: nothing can be drained from it either; write directly.
        logger.warn('cannot ask the DLQ for queued events of these correlations', { err });
      }
      if (behind) return queue('earlier events of the same correlation are queued');
    }
    try {
      await store.insertEvents(events, { plainStrings });
      metrics.written(events.length, 'direct');
      return { queued: false };
    } catch (err) {
      if (db.isUnavailable(err)) return queue('database unavailable', err);
      throw err;
    }
  }

  const tooLarge = (req: IncomingMessage) => {
    req.resume();
    return new HttpError(
      413,
      'request-too-large',
      'Request Entity Too Large',
      'Request body exceeds the maximum allowed size.',
    );
  };

  /**
   * Reads a JSON body: 413 past `limit` (before `100 Continue` when it is declared), 503 over
   * the budget of bodies in flight, 400 (`malformed`) when it is not UTF-8 or does not parse.
   */
  async function readJson(
    req: IncomingMessage,
    res: ServerResponse,
    limit: number,
    malformed: () => HttpError,
  ): Promise<{ value: unknown; text: string }> {
    const declared = Number(req.headers['content-length']);
    const known = req.headers['content-length'] !== undefined && Number.isFinite(declared);
    if (known && declared > limit) throw tooLarge(req);
    // The body's bytes are held from now until the answer is sent: many clients holding large
    // bodies at once must not grow the heap without bound.
    const need = known ? declared : limit;
    if (bufferedBodyBytes > 0 && bufferedBodyBytes + need > bodyBudget) {
      logger.warn('request bodies in flight over budget; request not read', {
        path: req.url,
        bytes: need,
        buffered: bufferedBodyBytes,
        budget: bodyBudget,
      });
      req.resume();
      throw new HttpError(
        503,
        'service-unavailable',
        'Service Unavailable',
        'the server holds too many request bodies; retry later',
        { 'retry-after': '1' },
      );
    }
    bufferedBodyBytes += need;
    res.once('close', () => {
      bufferedBodyBytes -= need;
    });
    if (awaitingContinue.delete(req)) res.writeContinue();
    let body: Buffer;
    try {
      body = await readBody(req, limit);
    } catch (err) {
      if (err instanceof BodyError && err.kind === 'too_large') throw tooLarge(req);
      throw err;
    }
    // Decoding would silently turn invalid bytes into U+FFFD: stored, and vouched for by the
    // hash chain, as something the client never sent. JSON text is UTF-8 (RFC 8259).
    if (!isUtf8(body)) {
      const m = malformed();
      throw new HttpError(m.status, m.type, m.title, 'the request body is not valid UTF-8');
    }
    const text = body.toString('utf8');
    try {
      return { value: JSON.parse(text), text };
    } catch {
      throw malformed();
    }
  }

  const createBatch: Handler = async (req, res, _url, ctx) => {
    const { value: body, text } = await readJson(req, res, MAX_BATCH_BYTES, () =>
      invalidRequest('The request body must be a valid JSON array of audit event objects'),
    );
    if (body === null) throw validation('batch cannot be empty');
    if (!Array.isArray(body)) {
      throw invalidRequest(
        typeof body === 'object'
          ? 'request body must be a JSON array, not a single object'
          : 'The request body must be a valid JSON array of audit event objects',
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
    const { prepared: events, plainStrings } = validateEvents(body, false, text, ctx.user);
    const { queued } = await persist(events, false, plainStrings);
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

  const createOne: Handler = async (req, res, _url, ctx) => {
    const { value: body, text } = await readJson(req, res, MAX_BATCH_BYTES, () =>
      invalidRequest('The request body could not be parsed as valid JSON'),
    );
    if (body === null) throw validation('audit event request failed validation');
    if (typeof body !== 'object' || Array.isArray(body)) {
      throw invalidRequest(
        'request body must be a JSON object (use /api/v1/audit/events/batch for arrays)',
      );
    }
    const { prepared: events, plainStrings } = validateEvents([body], true, text, ctx.user);
    const { queued } = await persist(events, true, plainStrings);
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
    const invalidBody = () =>
      new HttpError(
        400,
        'invalid-request-body',
        'Invalid Request Body',
        'The request body could not be parsed as JSON',
      );
    const { value: body } = await readJson(req, res, VERIFY_BODY_LIMIT, invalidBody);
    if (body !== null && (typeof body !== 'object' || Array.isArray(body))) throw invalidBody();
    const cid = body === null ? undefined : (body as { correlation_id?: unknown }).correlation_id;
    if (cid !== undefined && cid !== null && typeof cid !== 'string') throw invalidBody();
    if (typeof cid !== 'string' || cid.length === 0) {
      throw new HttpError(
        400,
        'missing-correlation-id',
        'Missing Required Field',
        "Field 'correlation_id' is required",
      );
    }
    if (Buffer.byteLength(cid, 'utf8') > MAX_VERIFY_CORRELATION_ID_BYTES) {
      throw new HttpError(
        400,
        'invalid-correlation-id',
        'Invalid Correlation ID',
        `Field 'correlation_id' exceeds maximum length of ${MAX_VERIFY_CORRELATION_ID_BYTES} characters`,
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
    let result: Awaited<ReturnType<AuditEventStore['verifyChain']>>;
    try {
      result = await store.verifyChain(cid);
    } catch (err) {
      if (!(err instanceof ChainKeyMissingError)) throw err;
      logger.error('cannot verify a keyed chain without the chain key', { correlation_id: cid });
      throw new HttpError(500, 'verify-chain/internal-error', 'Verification Failed', err.message);
    }
    if (!result.is_valid) {
      logger.warn('hash chain verification failed', {
        correlation_id: cid,
        problems: result.tampered_events.length,
      });
    }
    // As upstream, an empty tampered_events list is left out of the answer.
    const { tampered_events, ...rest } = result;
    sendJson(res, 200, tampered_events.length > 0 ? result : rest);
  };

  /** Ready when not closing, the database answers and the DLQ (if any) is not stuck. */
  async function readiness(): Promise<{ ready: boolean; detail: string }> {
    if (closing) return { ready: false, detail: 'shutting down' };
    let timer: NodeJS.Timeout | undefined;
    const db = await Promise.race([
      store.ping(),
      new Promise<'unavailable'>((resolve) => {
        timer = setTimeout(() => resolve('unavailable'), READY_TIMEOUT_MS);
      }),
    ]);
    clearTimeout(timer);
    if (db === 'unavailable') return { ready: false, detail: 'database unavailable' };
    if (db === 'schema_missing') {
      return {
        ready: false,
        detail:
          'the database has lost the audit_events tables (dropped or restored empty?); restart the server to migrate it',
      };
    }
    const health = dlq?.health(true);
    if (health?.stuck) return { ready: false, detail: health.detail ?? 'dead-letter queue stuck' };
    return { ready: true, detail: 'ready' };
  }

  const readyz: Handler = async (_req, res) => {
    const r = await readiness();
    if (r.ready) {
      const q = dlq?.snapshot();
      sendJson(res, 200, {
        status: 'ready',
        dlq_backlog: (q?.entries ?? 0) > 0,
        ...(q ? { dlq: q } : {}),
      });
    } else {
      sendProblem(res, 503, 'service-unavailable', 'Service Unavailable', r.detail, {
        headers: { 'retry-after': '5' },
      });
    }
  };

  const routes: Record<string, Record<string, Route>> = {
    [AUDIT_EVENTS_PATH]: {
      POST: { handler: createOne, verbs: WRITE },
      GET: { handler: queryEvents, verbs: READ },
    },
    [AUDIT_EVENTS_BATCH_PATH]: { POST: { handler: createBatch, verbs: WRITE } },
    [VERIFY_CHAIN_PATH]: { POST: { handler: verifyChain, verbs: WRITE } },
    [READYZ_PATH]: { GET: { handler: readyz, verbs: [] } },
  };

  /** Authenticates an /api/v1/* request; throws the 401/403/503 to answer. */
  async function authenticate(
    req: IncomingMessage,
    path: string,
    verbs: readonly AuthVerb[],
  ): Promise<string | undefined> {
    if (!auth) return undefined;
    const d = await auth.check(req.headers.authorization, verbs);
    if (d.ok) return d.user;
    const fields = {
      reason: d.reason,
      path,
      method: req.method,
      remote_address: req.socket.remoteAddress,
      ...(d.user === undefined ? {} : { user: d.user }),
    };
    if (d.status === 401) {
      logger.info('request not authenticated', fields);
      throw new HttpError(401, 'unauthorized', 'Unauthorized', d.detail, {
        'www-authenticate':
          d.reason === 'invalid_token'
            ? 'Bearer realm="kubernaut-datastorage", error="invalid_token"'
            : 'Bearer realm="kubernaut-datastorage"',
      });
    }
    if (d.status === 403) {
      logger.info('request not authorised', fields);
      throw new HttpError(403, 'forbidden', 'Forbidden', d.detail);
    }
    logger.warn('request not authenticated: auth service unavailable', fields);
    throw new HttpError(503, 'service-unavailable', 'Service Unavailable', d.detail);
  }

  let inflight = 0;
  let idle: (() => void) | undefined;

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    res.setHeader('x-request-id', clientRequestId(req.headers['x-request-id']) ?? randomUUID());
    const route = routes[url.pathname];
    try {
      const match = route?.[req.method ?? ''];
      // Every /api/v1/* request is authenticated first, even one for no route: nothing about
      // the API (not even which paths exist) is told to an unauthenticated client.
      const ctx: RequestContext = { user: undefined };
      if (url.pathname.startsWith(API_PREFIX)) {
        ctx.user = await authenticate(req, url.pathname, match?.verbs ?? READ);
      }
      if (!route) {
        throw new HttpError(404, 'not-found', 'Not Found', `no resource at ${url.pathname}`);
      }
      if (!match) {
        res.setHeader('allow', Object.keys(route).join(', '));
        throw new HttpError(
          405,
          'method-not-allowed',
          'Method Not Allowed',
          `${req.method} is not allowed on ${url.pathname}`,
        );
      }
      // JSON only: a form or text/plain body (a CORS "simple request") is refused unread.
      if (req.method === 'POST' && mediaType(req.headers['content-type']) !== 'application/json') {
        req.resume();
        throw new HttpError(
          415,
          'unsupported-media-type',
          'Unsupported Media Type',
          'the request body must be application/json',
        );
      }
      await match.handler(req, res, url, ctx);
    } catch (err) {
      if (err instanceof BodyError && err.kind === 'aborted') {
        logger.info('client aborted the request', {
          path: url.pathname,
          method: req.method,
          remote_address: req.socket.remoteAddress,
        });
        res.destroy();
        return;
      }
      if (err instanceof HttpError) {
        if (err.status >= 500)
          logger.warn('request failed', { path: url.pathname, detail: err.message });
        else
          logger.debug('request rejected', {
            path: url.pathname,
            status: err.status,
            detail: err.message,
          });
        if (err.status === 401 || err.status === 403 || err.status === 415) req.resume();
        // A client that waits for `100 Continue` never had it: its body will not follow, so
        // the connection cannot carry another request after this answer.
        const close: Record<string, string> = awaitingContinue.has(req)
          ? { connection: 'close' }
          : {};
        sendProblem(res, err.status, err.type, err.title, err.message, {
          instance: url.pathname,
          headers: {
            ...(err.status === 503 ? { 'retry-after': '5' } : {}),
            ...err.headers,
            ...close,
          },
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

  // The responses of each connection not yet sent (with their requests), and what to do once
  // those that must go first are sent.
  const unanswered = new WeakMap<Socket, Map<ServerResponse, IncomingMessage>>();
  const afterAnswers = new WeakMap<Socket, () => void>();
  /**
   * Whether a response of `pending` must be sent before a malformed request is refused: its
   * request was read whole, or its answer has started. (A request whose body is the malformed
   * part gets the refusal as its answer: its body will never end.)
   */
  const mustAnswerFirst = (pending: Map<ServerResponse, IncomingMessage> | undefined) => {
    for (const [res, req] of pending ?? []) if (req.complete || res.headersSent) return true;
    return false;
  };

  /**
   * A request node's parser refused (bad framing, a Content-Length that disagrees with the
   * body, headers too large, too slow): answered like every other refusal, with a problem body,
   * logged and counted, then the connection is closed. Requests read before it on the same
   * connection (pipelined) are answered first: HTTP/1.1 answers in order, and a client must
   * never read this 400 as the answer to a batch that was stored.
   */
  function refuseMalformed(err: NodeJS.ErrnoException, socket: Socket): void {
    const code = err.code ?? 'unknown';
    // Parser errors are HPE_*; anything else (ECONNRESET, EPIPE) is the connection failing,
    // which no request is refused for: an aborted request is reported by its handler.
    const status = CLIENT_ERROR_STATUS[code] ?? (code.startsWith('HPE_') ? 400 : undefined);
    if (status === undefined) {
      logger.debug('connection failed', { code, remote_address: socket.remoteAddress });
      socket.destroy();
      return;
    }
    logger.info('malformed request refused', {
      code,
      status,
      remote_address: socket.remoteAddress,
    });
    metrics.request(0, '_OTHER', undefined, status);
    const refuse = () => {
      if (!socket.writable) {
        socket.destroy();
        return;
      }
      const p = CLIENT_ERROR_PROBLEM[status] ?? CLIENT_ERROR_PROBLEM[400]!;
      const body = JSON.stringify(problem(status, p.type, p.title, `${p.detail} (${code})`));
      socket.end(
        `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\ncontent-type: ${PROBLEM_CONTENT_TYPE}\r\n` +
          `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
      );
      socket.destroySoon();
    };
    if (mustAnswerFirst(unanswered.get(socket))) afterAnswers.set(socket, refuse);
    else refuse();
  }

  const server = createServer((req, res) => {
    inflight++;
    const started = performance.now();
    const socket = req.socket;
    let pending = unanswered.get(socket);
    if (pending === undefined) {
      pending = new Map();
      unanswered.set(socket, pending);
    }
    pending.set(res, req);
    res.on('finish', () => {
      const path = (req.url ?? '/').split('?', 1)[0]!;
      metrics.request(
        (performance.now() - started) / 1000,
        req.method ?? 'GET',
        routes[path] ? path : undefined,
        res.statusCode,
      );
    });
    res.on('close', () => {
      inflight--;
      if (inflight === 0) idle?.();
      pending.delete(res);
      const then = mustAnswerFirst(pending) ? undefined : afterAnswers.get(socket);
      if (then) {
        afterAnswers.delete(socket);
        then();
      }
    });
    handle(req, res).catch((err) => {
      logger.error('unhandled request error', { err });
      if (!res.headersSent) sendProblem(res, 500, 'internal-error', 'Internal Server Error');
      else res.destroy();
    });
  });
  server.keepAliveTimeout = 65_000;
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    refuseMalformed(err, socket as Socket);
  });
  // `Expect: 100-continue`: the request is handled at once, and `100 Continue` is sent only
  // when its body is about to be read (readJson); a request refused before (401, 413 by its
  // Content-Length, 415, 503) gets its final answer instead and its body is never invited.
  server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
    awaitingContinue.add(req);
    server.emit('request', req, res);
  });

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
  let management: ManagementServer | undefined;
  if (options.managementPort !== undefined) {
    try {
      management = await startManagementServer({
        host: options.managementHost ?? host,
        port: options.managementPort,
        metrics: prometheus,
        readiness,
        onError: (msg, err) => logger.error(msg, { err }),
      });
    } catch (err) {
      server.close();
      await dlq?.close().catch(() => {});
      await db.close().catch(() => {});
      throw err;
    }
  }
  const port = (server.address() as AddressInfo).port;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  logger.info('datastorage listening', {
    url,
    ...describeStorage(storageOptions),
    openapi: options.openapiSpec ?? null,
    dlq: options.redis ? (options.redis.stream ?? 'audit:dlq:events') : null,
    management: management?.url ?? null,
    auth: auth?.mode ?? 'none',
    chain: chainKey ? 'hmac-sha256' : 'sha256-unkeyed',
  });
  if (!auth) {
    logger.warn(
      'authentication is off: anyone who can reach the port can read and write audit events',
    );
  }

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
      // The management port answers (readyz: 503) until the rest has stopped.
      await management?.close();
      await prometheus?.shutdown();
      logger.info('datastorage stopped');
    })();
    return closed;
  };

  return {
    url,
    port,
    store,
    whenDlqDrained: () => dlq?.whenDrained() ?? Promise.resolve(),
    managementUrl: management?.url,
    close,
  };
}
