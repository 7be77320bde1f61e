// SPDX-License-Identifier: Apache-2.0
/*
 * A fault-injecting DataStorage on 127.0.0.1 for tests: a small node:http server that
 * implements `POST /api/v1/audit/events/batch` like the real service (DESIGN §5) and can
 * be scripted to misbehave.
 *
 * Behaviour of the batch endpoint, in order:
 *   1. `reset-before-read` fault → the socket is destroyed before the body is read.
 *   2. Body over `maxBodyBytes` (5 MiB) → 413.
 *   3. `token` set and the request lacks `Authorization: Bearer <token>` → 401.
 *   4. The next queued fault (see {@link Fault}) that answers without storing → that answer.
 *   5. Not a JSON array / empty → 400; more than `maxBatchEvents` (500) → 400
 *      `batch-size-exceeded`.
 *   6. EVERY event is validated against the upstream spec (OpenApiValidator) and the
 *      contract envelope rules; each invalid event is recorded in `specViolations`
 *      (tests assert it stays empty). Spec failures answer 400 without an index
 *      ("did not pass OpenAPI schema validation"), envelope failures 400 `event at index N`.
 *   7. Poison rules ({@link FaultServer.poison}) → 400 with or without an index, or any status.
 *   8. Stored all-or-nothing with generated uuids → 201 `{event_ids, message}` in input
 *      order; or the fault's variant: 202 (server DLQ, still stored), reset after commit,
 *      slow answer.
 *
 * Also `GET /api/v1/audit/events` (filters `correlation_id`, `event_type`, `limit`, `offset`;
 * newest first) and `GET /readyz`, plus in-process inspection: `received()`,
 * `countByCorrelation()`, `duplicates()`, `requests`, `waitForEvents(n)`.
 *
 * Control: `inject(fault, times)` queues faults (FIFO, one per batch request);
 * `poison(match, 'index' | 'schema')` rejects matching events persistently; `setToken(t)`
 * requires a bearer token; `stop()` refuses connections until `listen()` reopens the same
 * port; `close()` ends it. `FaultServer.start({ tls: { key, cert } })` serves HTTPS.
 *
 * Usage:
 *   const ds = await FaultServer.start();
 *   ds.inject({ type: 'unavailable' }, 3).inject({ type: 'rate-limited', retryAfter: '2' });
 *   ... new KubernautAuditExporter({ url: ds.url }) ...
 *   expect(ds.specViolations).toEqual([]);
 *   await ds.close();
 */
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import {
  AUDIT_EVENTS_BATCH_PATH,
  AUDIT_EVENTS_PATH,
  type AuditEventRequest,
  type ContractViolation,
  PROBLEM_TYPE_BASE,
  validateAuditEventRequest,
} from '@kubernaut/datastorage-contract';
import { BodyError, readBody, sendJson, sendProblem } from '@kubernaut/datastorage-contract/http';
import { OpenApiValidator } from '@kubernaut/datastorage-contract/openapi';
import { specPath } from './spec.ts';

/** One scripted misbehaviour, consumed by one batch request. */
export type Fault =
  /** 503 Service Unavailable (problem+json); optional Retry-After. */
  | { type: 'unavailable'; retryAfter?: string }
  /** 429 Too Many Requests with `Retry-After` (seconds or HTTP date) when given. */
  | { type: 'rate-limited'; retryAfter?: string }
  /** 400 `event at index N failed validation` (nothing stored). */
  | { type: 'reject-index'; index: number }
  /** 400 schema failure without an index (nothing stored). */
  | { type: 'schema-error' }
  /** 413 Request Entity Too Large. */
  | { type: 'too-large' }
  /** 400 batch-size-exceeded. */
  | { type: 'batch-size-exceeded' }
  /** 401 Unauthorized. */
  | { type: 'unauthorized' }
  /**
   * Any other answer, nothing stored: `body` as JSON (problem+json unless `headers` say
   * otherwise), or `rawBody` as is (an HTML page of an ingress; default type text/html).
   */
  | {
      type: 'status';
      status: number;
      body?: unknown;
      rawBody?: string;
      headers?: Record<string, string>;
    }
  /** 202: queued to the server's DLQ; counts as stored. */
  | { type: 'dlq' }
  /** Connection reset before the body is read (nothing stored). */
  | { type: 'reset-before-read' }
  /** Events stored, then the connection is reset instead of answering. */
  | { type: 'reset-after-commit' }
  /**
   * Answer after `delayMillis`. `commit` (default true): store at once, before the delay
   * (a slow acknowledgement); false: store after the delay only if the client still waits.
   */
  | { type: 'slow'; delayMillis: number; commit?: boolean };

/**
 * What a poisoned event makes the server answer: 400 naming its index, 400 without an index
 * (schema failure), or any status with a problem+json body (`detail` default "internal error").
 */
export type PoisonMode = 'index' | 'schema' | { status: number; detail?: string };

export interface FaultServerOptions {
  /** Spec to validate against [specPath()]. */
  specPath?: string;
  /** [500] */
  maxBatchEvents?: number;
  /** [5 MiB] */
  maxBodyBytes?: number;
  /** Require this bearer token. */
  token?: string;
  /** Port to listen on [0: any free port]. */
  port?: number;
  /** Serve HTTPS with this key and certificate (PEM). */
  tls?: { key: string | Buffer; cert: string | Buffer };
  /**
   * Clock for DataStorage's timestamp window, in ms since the epoch [Date.now]. A test that
   * gives the client a fixed clock gives the server the same one, so nothing compares a fixed
   * date with the wall clock.
   */
  now?: () => number;
}

export interface StoredEvent {
  event_id: string;
  /** 201 or 202. */
  status: number;
  event: AuditEventRequest;
  /** Index of the request (in `requests`) that stored it. */
  request: number;
}

export interface RequestLogEntry {
  /** Events in the body (0 when it was not read or not an array). */
  events: number;
  /** HTTP status answered, or `reset`. */
  status: number | 'reset';
  /** The fault applied, if any. */
  fault?: Fault['type'];
  /** The Authorization header received (tests check rotation; never log it). */
  authorization?: string;
}

export interface SpecViolationRecord {
  event: unknown;
  violations: ContractViolation[];
}

/** Compiled validators by spec path, shared by the servers of one test file. */
const validators = new Map<string, OpenApiValidator>();

export class FaultServer {
  /** Every batch request, in arrival order. */
  readonly requests: RequestLogEntry[] = [];
  /** Received events that failed the spec or envelope rules (should stay empty). */
  readonly specViolations: SpecViolationRecord[] = [];
  private readonly _stored: StoredEvent[] = [];
  private readonly _faults: Fault[] = [];
  private readonly _poison: Array<{ match: (e: AuditEventRequest) => boolean; mode: PoisonMode }> =
    [];
  private readonly _validator: OpenApiValidator;
  private readonly _maxEvents: number;
  private readonly _maxBytes: number;
  private readonly _now: () => number;
  private readonly _server: http.Server;
  private readonly _sockets = new Set<Socket>();
  private readonly _timers = new Set<ReturnType<typeof setTimeout>>();
  private _waiters: Array<{ n: number; resolve: () => void }> = [];
  private _token: string | undefined;
  private readonly _scheme: 'http' | 'https';
  private _port = 0;
  private _listening = false;

  private constructor(options: FaultServerOptions) {
    const path = options.specPath ?? specPath();
    let validator = validators.get(path);
    if (validator === undefined) {
      validator = OpenApiValidator.fromFile(path);
      validators.set(path, validator);
    }
    this._validator = validator;
    this._maxEvents = options.maxBatchEvents ?? 500;
    this._maxBytes = options.maxBodyBytes ?? 5 * 1024 * 1024;
    this._token = options.token;
    this._now = options.now ?? Date.now;
    this._port = options.port ?? 0;
    const handler = (req: http.IncomingMessage, res: http.ServerResponse) => this._handle(req, res);
    this._server = options.tls
      ? https.createServer({ key: options.tls.key, cert: options.tls.cert }, handler)
      : http.createServer(handler);
    this._scheme = options.tls ? 'https' : 'http';
    this._server.keepAliveTimeout = 5_000;
    this._server.on('connection', (s: Socket) => {
      this._sockets.add(s);
      s.on('close', () => this._sockets.delete(s));
    });
  }

  /** Creates and starts a server on 127.0.0.1. */
  static async start(options: FaultServerOptions = {}): Promise<FaultServer> {
    const s = new FaultServer(options);
    await s.listen();
    return s;
  }

  /** Base URL, e.g. `http://127.0.0.1:41234`. */
  get url(): string {
    return `${this._scheme}://127.0.0.1:${this._port}`;
  }

  get port(): number {
    return this._port;
  }

  /** Queues `fault` for the next `times` batch requests (after those already queued). */
  inject(fault: Fault, times = 1): this {
    for (let i = 0; i < times; i++) this._faults.push(fault);
    return this;
  }

  /** Faults still queued. */
  get pendingFaults(): number {
    return this._faults.length;
  }

  /**
   * Persistently rejects any batch containing an event that `match`es: `index` answers
   * 400 `event at index N` (handler-level), `schema` answers 400 without an index,
   * `{ status }` answers that status (e.g. 500 for an event that breaks the server).
   */
  poison(match: (e: AuditEventRequest) => boolean, mode: PoisonMode): this {
    this._poison.push({ match, mode });
    return this;
  }

  /** Requires (or, with undefined, stops requiring) this bearer token. */
  setToken(token: string | undefined): void {
    this._token = token;
  }

  /** Accepted events (201 and 202), in storage order. */
  received(): StoredEvent[] {
    return [...this._stored];
  }

  /** Accepted events per correlation id. */
  countByCorrelation(): Map<string, number> {
    const m = new Map<string, number>();
    for (const s of this._stored) {
      m.set(s.event.correlation_id, (m.get(s.event.correlation_id) ?? 0) + 1);
    }
    return m;
  }

  /** Stored events identical (same JSON) to an event stored before them. */
  duplicates(): number {
    const seen = new Set<string>();
    let dup = 0;
    for (const s of this._stored) {
      const k = JSON.stringify(s.event);
      if (seen.has(k)) dup++;
      else seen.add(k);
    }
    return dup;
  }

  /** Resolves once at least `n` events are stored. */
  waitForEvents(n: number): Promise<void> {
    if (this._stored.length >= n) return Promise.resolve();
    return new Promise((resolve) => this._waiters.push({ n, resolve }));
  }

  /** Starts (or restarts, on the same port) listening. */
  async listen(): Promise<void> {
    if (this._listening) return;
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error) => reject(err);
      this._server.once('error', onError);
      this._server.listen(this._port, '127.0.0.1', () => {
        this._server.off('error', onError);
        resolve();
      });
    });
    this._port = (this._server.address() as AddressInfo).port;
    this._listening = true;
  }

  /** Stops listening and drops every connection: clients get ECONNREFUSED until `listen()`. */
  async stop(): Promise<void> {
    if (!this._listening) return;
    this._listening = false;
    const closed = new Promise<void>((resolve) => this._server.close(() => resolve()));
    for (const s of this._sockets) s.destroy();
    this._server.closeAllConnections();
    await closed;
  }

  /** Stops for good: also cancels pending slow answers. */
  async close(): Promise<void> {
    for (const t of this._timers) clearTimeout(t);
    this._timers.clear();
    await this.stop();
  }

  private _handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (req.method === 'GET' && url.pathname === '/readyz') {
      sendJson(res, 200, { status: 'ready' });
      return;
    }
    if (req.method === 'GET' && url.pathname === AUDIT_EVENTS_PATH) {
      this._query(url, res);
      return;
    }
    if (req.method !== 'POST' || url.pathname !== AUDIT_EVENTS_BATCH_PATH) {
      req.resume();
      sendProblem(res, 404, 'not-found', 'Not Found', `no route ${url.pathname}`);
      return;
    }
    const log: RequestLogEntry = { events: 0, status: 0 };
    if (typeof req.headers.authorization === 'string')
      log.authorization = req.headers.authorization;
    this.requests.push(log);
    const requestIndex = this.requests.length - 1;

    if (this._faults[0]?.type === 'reset-before-read') {
      this._faults.shift();
      log.fault = 'reset-before-read';
      log.status = 'reset';
      req.socket.destroy();
      return;
    }
    const declared = Number(req.headers['content-length'] ?? Number.NaN);
    if (declared > this._maxBytes) res.setHeader('connection', 'close');
    readBody(req, this._maxBytes).then(
      (raw) => this._batch(raw, req, res, log, requestIndex),
      (err: unknown) => {
        if (!(err instanceof BodyError) || err.kind !== 'too_large') return;
        log.status = 413;
        // Answer once the client has sent it all (the rest is drained), as a real server does.
        const tooLarge = () =>
          sendProblem(
            res,
            413,
            'request-too-large',
            'Request Entity Too Large',
            'Request body exceeds the maximum allowed size.',
          );
        if (req.complete || declared > this._maxBytes) tooLarge();
        else req.once('end', tooLarge);
      },
    );
  }

  private _batch(
    raw: Buffer,
    req: http.IncomingMessage,
    res: http.ServerResponse,
    log: RequestLogEntry,
    requestIndex: number,
  ): undefined {
    let body: unknown;
    try {
      body = JSON.parse(raw.toString('utf8'));
    } catch {
      body = undefined;
    }
    if (Array.isArray(body)) log.events = body.length;

    if (this._token !== undefined && req.headers.authorization !== `Bearer ${this._token}`) {
      log.status = 401;
      sendProblem(res, 401, 'unauthorized', 'Unauthorized', 'missing or invalid bearer token');
      return;
    }

    const fault = this._faults.shift();
    if (fault) log.fault = fault.type;
    const answer = (
      status: number,
      type: string,
      title: string,
      detail: string,
      headers?: Record<string, string>,
    ): undefined => {
      log.status = status;
      sendProblem(res, status, type, title, detail, headers === undefined ? {} : { headers });
      return undefined;
    };
    switch (fault?.type) {
      case 'unavailable':
        return answer(
          503,
          'service-unavailable',
          'Service Unavailable',
          'database unavailable',
          retryAfter(fault.retryAfter),
        );
      case 'rate-limited':
        return answer(
          429,
          'rate-limit-exceeded',
          'Too Many Requests',
          'rate limit exceeded',
          retryAfter(fault.retryAfter),
        );
      case 'reject-index':
        return answer(
          400,
          'validation-error',
          'Validation Error',
          `event at index ${fault.index} failed validation`,
        );
      case 'schema-error':
        return answer(
          400,
          'validation-error',
          'Validation Error',
          'The request did not pass OpenAPI schema validation (2 errors)',
        );
      case 'too-large':
        return answer(
          413,
          'request-too-large',
          'Request Entity Too Large',
          'Request body exceeds the maximum allowed size.',
        );
      case 'batch-size-exceeded':
        return answer(
          400,
          'batch-size-exceeded',
          'Batch Size Exceeded',
          `batch size ${log.events} exceeds maximum allowed batch size of ${log.events - 1}`,
        );
      case 'unauthorized':
        return answer(401, 'unauthorized', 'Unauthorized', 'missing or invalid bearer token');
      case 'status': {
        log.status = fault.status;
        if (fault.rawBody !== undefined) {
          res.writeHead(fault.status, { 'content-type': 'text/html', ...fault.headers });
          res.end(fault.rawBody);
          return;
        }
        res.writeHead(fault.status, {
          'content-type': 'application/problem+json',
          ...fault.headers,
        });
        res.end(
          JSON.stringify(
            fault.body ?? {
              type: `${PROBLEM_TYPE_BASE}error`,
              title: 'Error',
              status: fault.status,
            },
          ),
        );
        return;
      }
      default:
        break;
    }

    if (!Array.isArray(body)) {
      return answer(
        400,
        'invalid_request',
        'Invalid Request',
        'The request body must be a valid JSON array of audit event objects',
      );
    }
    if (body.length === 0)
      return answer(400, 'validation-error', 'Validation Error', 'batch cannot be empty');
    if (body.length > this._maxEvents) {
      return answer(
        400,
        'batch-size-exceeded',
        'Batch Size Exceeded',
        `batch size ${body.length} exceeds maximum allowed batch size of ${this._maxEvents}`,
      );
    }

    // Validate every event (so that violations anywhere are recorded), then answer for the first.
    let schemaErrors = 0;
    let envelopeIndex: number | undefined;
    body.forEach((ev, i) => {
      const spec = this._validator.validate(ev);
      const envelope = validateAuditEventRequest(ev, { now: this._now() });
      if (spec.length > 0 || envelope.length > 0) {
        this.specViolations.push({ event: ev, violations: [...spec, ...envelope] });
      }
      schemaErrors += spec.length;
      if (envelope.length > 0 && envelopeIndex === undefined) envelopeIndex = i;
    });
    if (schemaErrors > 0) {
      return answer(
        400,
        'validation-error',
        'Validation Error',
        `The request did not pass OpenAPI schema validation (${schemaErrors} errors)`,
      );
    }
    if (envelopeIndex !== undefined) {
      return answer(
        400,
        'validation-error',
        'Validation Error',
        `event at index ${envelopeIndex} failed validation`,
      );
    }
    const events = body as AuditEventRequest[];
    for (const rule of this._poison) {
      const i = events.findIndex(rule.match);
      if (i < 0) continue;
      if (rule.mode === 'index') {
        return answer(
          400,
          'validation-error',
          'Validation Error',
          `event at index ${i}: parent event does not exist`,
        );
      }
      if (typeof rule.mode === 'object') {
        return answer(
          rule.mode.status,
          'internal-error',
          'Internal Server Error',
          rule.mode.detail ?? 'internal error',
        );
      }
      return answer(
        400,
        'validation-error',
        'Validation Error',
        'The request did not pass OpenAPI schema validation (1 errors)',
      );
    }

    const status = fault?.type === 'dlq' ? 202 : 201;
    const store = (): string[] => {
      const ids = events.map((event) => {
        const event_id = randomUUID();
        this._stored.push({ event_id, status, event, request: requestIndex });
        return event_id;
      });
      this._wake();
      return ids;
    };
    const respond = (ids: string[]) => {
      log.status = status;
      if (status === 202) {
        sendJson(res, 202, {
          status: 'accepted',
          message: `${ids.length} audit events queued for processing`,
        });
      } else {
        sendJson(res, 201, {
          event_ids: ids,
          message: `${ids.length} audit events created successfully`,
        });
      }
    };
    if (fault?.type === 'reset-after-commit') {
      store();
      log.status = 'reset';
      req.socket.destroy();
      return;
    }
    if (fault?.type === 'slow') {
      const commitFirst = fault.commit !== false;
      const ids = commitFirst ? store() : [];
      const t = setTimeout(() => {
        this._timers.delete(t);
        if (req.socket.destroyed) {
          if (log.status === 0) log.status = 'reset';
          return;
        }
        respond(commitFirst ? ids : store());
      }, fault.delayMillis);
      this._timers.add(t);
      return;
    }
    respond(store());
  }

  private _query(url: URL, res: http.ServerResponse): void {
    const p = url.searchParams;
    let rows = this._stored.map((s) => ({ ...s.event, event_id: s.event_id }));
    const cid = p.get('correlation_id');
    if (cid) rows = rows.filter((r) => r.correlation_id === cid);
    const type = p.get('event_type');
    if (type) rows = rows.filter((r) => r.event_type === type);
    rows.reverse();
    const limit = Math.min(1000, Math.max(1, Number(p.get('limit') ?? 100) || 100));
    const offset = Math.max(0, Number(p.get('offset') ?? 0) || 0);
    sendJson(res, 200, {
      data: rows.slice(offset, offset + limit),
      pagination: { limit, offset, total: rows.length, has_more: offset + limit < rows.length },
    });
  }

  private _wake(): void {
    const n = this._stored.length;
    const ready = this._waiters.filter((w) => w.n <= n);
    this._waiters = this._waiters.filter((w) => w.n > n);
    for (const w of ready) w.resolve();
  }
}

function retryAfter(v: string | undefined): Record<string, string> | undefined {
  return v === undefined ? undefined : { 'retry-after': v };
}
