// SPDX-License-Identifier: Apache-2.0
/*
 * The audit OTLP bridge (DESIGN §9): an OTLP/HTTP logs receiver (`POST /v1/logs`, protobuf and
 * JSON, gzip or identity) that converts each OTLP log record into the record shape the OTel SDK
 * hands to processors and feeds it to an `AuditLogRecordProcessor`.
 *
 * Invariant: a success covers exactly records on the spool on disk (or rejected for good in
 * partial_success). Admission reserves spool room before a body is read (its declared length),
 * grows it once the records are known, and the records are offered to the processor under it,
 * appended all or nothing; whatever does not fit, or cannot be written to disk, is refused with
 * 503 + Retry-After, nothing of the request kept (but for records a failing disk made the spool
 * hold in memory: they are delivered once it writes again, and a retry may duplicate them).
 *
 * With a management port it also serves GET /metrics (its own metrics and those of the processor
 * and exporter, in the Prometheus text format), /healthz and /livez (liveness) and /readyz
 * (readiness: the spool is open on disk, below its high watermark, and the bridge is not closing),
 * through the management server shared with the reference DataStorage.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ContractViolation } from '@kubernaut/datastorage-contract';
import { numberOption } from '@kubernaut/datastorage-contract/config';
import {
  BodyError,
  closeGracefully,
  mediaType,
  readBody,
} from '@kubernaut/datastorage-contract/http';
import {
  createPrometheusMetrics,
  type ManagementServer,
  type PrometheusMetrics,
  type Readiness,
  startManagementServer,
} from '@kubernaut/datastorage-contract/management';
import {
  AuditLogRecordProcessor,
  KubernautAuditExporter,
} from '@kubernaut/exporter-kubernaut-audit';
import {
  type AuditOfferResult,
  ComponentDiag,
  DEFAULT_SPOOL_MAX_BYTES,
  isAuditRecord,
  mapLogRecord,
  type Reservation,
  readProcessorEnv,
  spoolUsageOf,
} from '@kubernaut/exporter-kubernaut-audit/experimental';
import {
  type Counter,
  type DiagLogger,
  diag,
  type MeterProvider,
  metrics,
  type ObservableCallback,
  type ObservableGauge,
  ROOT_CONTEXT,
} from '@opentelemetry/api';
import type { LogRecordProcessor } from '@opentelemetry/sdk-logs';
import { BearerAuth } from './auth.ts';
import { type BridgedLogRecord, convertExportRequest } from './convert.ts';
import { gunzipBody } from './http-body.ts';
import {
  decodeExportLogsRequest,
  encodeExportLogsResponse,
  encodeStatus,
  OtlpDecodeError,
  type OtlpEncoding,
} from './proto/codec.ts';

/** The OTLP/HTTP logs path. */
export const OTLP_LOGS_PATH = '/v1/logs';
/** The longest delay a Node.js timer can wait (ms). */
const MAX_TIMER_MILLIS = 2_147_483_647;

/** Default limit on a request body, compressed and decompressed [16 MiB]. */
export const DEFAULT_MAX_REQUEST_BODY_BYTES = 16 * 1024 * 1024;
/** Default bound on the request bodies held in memory at once, all requests together [64 MiB]. */
export const DEFAULT_MAX_INFLIGHT_BODY_BYTES = 64 * 1024 * 1024;
/**
 * Default bound on the values one request may decode into, per byte of `maxRequestBodyBytes`
 * [1/16: 1,048,576 for 16 MiB]. Realistic audit records take about 18 bytes of protobuf per
 * value (31 values in 550 bytes); decoding costs 300-550 bytes of memory per value.
 */
export const DEFAULT_BODY_BYTES_PER_VALUE = 16;
/** Default time a request may take to arrive whole, headers and body [30000]. */
export const DEFAULT_REQUEST_TIMEOUT_MILLIS = 30_000;
/** Default spool size of the processor the bridge builds [env KUBERNAUT_AUDIT_SPOOL_MAX_BYTES, else the processor's default, 2 GiB]. */
export const DEFAULT_BRIDGE_SPOOL_MAX_BYTES = DEFAULT_SPOOL_MAX_BYTES;

/** A structured log line from the bridge. */
export type BridgeLogger = (
  level: 'debug' | 'info' | 'warn' | 'error',
  message: string,
  fields?: Record<string, unknown>,
) => void;

export interface OtlpBridgeOptions {
  /** Interface to listen on ['127.0.0.1']. */
  host?: string;
  /** TCP port; 0 picks a free one [4318]. */
  port?: number;
  /**
   * The processor records are fed to. An `AuditLogRecordProcessor` takes them through `offer()`
   * under the bridge's admission; any other must have written each audit record durably when
   * `onEmit` returns, else the bridge's "success" does not mean "durable". The caller owns it:
   * `close()` does not shut it down. [an `AuditLogRecordProcessor` built from `exporter` and
   * `spool`, owned by the bridge]
   * @experimental
   */
  processor?: LogRecordProcessor;
  /** Exporter for the processor the bridge builds [one built from the environment]. */
  exporter?: KubernautAuditExporter;
  /** Spool of the processor the bridge builds; durability is always `'sync'`. */
  spool?: { directory?: string; maxBytes?: number };
  /** How long `close()` keeps delivering before leaving the rest in the spool [30000]. */
  shutdownTimeoutMillis?: number;
  /** Limit on the request body, before and after gzip decoding [16 MiB] (→ 413). */
  maxRequestBodyBytes?: number;
  /**
   * Most values one request may decode into: log records, attributes, AnyValues, resources and
   * scopes (protobuf messages below the request; JSON objects and arrays) [maxRequestBodyBytes /
   * 16: 1,048,576 for 16 MiB] (→ 413, checked before decoding). Decoding costs memory per value,
   * not per byte: without it, 16 MiB of two-byte empty records decode into gigabytes.
   */
  maxRequestValues?: number;
  /**
   * Bound on the request bodies held in memory at once, all connections together [64 MiB]: a
   * request is counted for its declared Content-Length (a chunked one for maxRequestBodyBytes)
   * before it is read; past the bound it is answered 503 + Retry-After.
   * @experimental
   */
  maxInflightBodyBytes?: number;
  /**
   * Time a request may take to arrive whole, headers and body [30000]; a connection silent for
   * a third of it mid-request is closed too (a stalled or trickling client frees what it holds).
   * @experimental
   */
  requestTimeoutMillis?: number;
  /** Require `Authorization: Bearer <token>` (→ 401). */
  bearerToken?: string;
  /** Like `bearerToken`, read from a file that is re-read when it changes. */
  bearerTokenFile?: string;
  /** `Retry-After` seconds sent with 503 [5]. */
  retryAfterSeconds?: number;
  /**
   * Answer 503 while the spool would hold more than this share of `spool.maxBytes` with the
   * request [0.9]. For an `AuditLogRecordProcessor` (the bridge's own or one given).
   * @experimental
   */
  spoolHighWatermark?: number;
  /**
   * Where the bridge's metrics, and those of the processor it builds, go [`prometheus`'s
   * provider; else, with a management port, a Prometheus MeterProvider of the bridge's own,
   * served on /metrics; else the global MeterProvider].
   */
  meterProvider?: MeterProvider;
  /**
   * Port of the management server (GET /metrics, /healthz, /livez, /readyz); 0 picks a free one
   * [none]. The command defaults to 8888, the port of the Collector's own telemetry.
   */
  managementPort?: number;
  /** Interface of the management server [`host`]. */
  managementHost?: string;
  /**
   * The metrics served on the management port's /metrics [one the bridge creates, when it has a
   * management port and no `meterProvider`]. Give its `meterProvider` to the exporter too, so
   * that the exporter's metrics are served beside the bridge's (the command does). The caller
   * owns it: `close()` does not shut it down.
   */
  prometheus?: PrometheusMetrics;
  /** Structured log sink [OTel `diag`]. */
  logger?: BridgeLogger;
}

/** A running bridge. */
export interface OtlpBridge {
  /** Base URL, e.g. `http://127.0.0.1:4318`; the logs endpoint is `${url}/v1/logs`. */
  readonly url: string;
  readonly port: number;
  /** Base URL of the management server, when there is one. */
  readonly managementUrl: string | undefined;
  /** The processor the records are fed to (e.g. to `forceFlush()` it). */
  readonly processor: LogRecordProcessor;
  /**
   * Stops accepting requests, waits for the requests in flight, then shuts down the processor
   * when the bridge built it (what is undelivered stays in the spool for the next start).
   */
  close(): Promise<void>;
}

/** Counts of one request's log records. */
interface RequestOutcome {
  accepted: number;
  rejected: number;
  ignored: number;
  /** Why records were rejected, by index in the request. */
  errors: Array<{ index: number; text: string }>;
}

/**
 * Spool bytes reserved per audit record, beyond the decoded request's size, before the records
 * are offered: what a record adds on the spool (the envelope's defaults, the provenance stamp,
 * the frame index) over its OTLP form. Frames measured at 1.5–4x the protobuf request for
 * realistic to tiny events; the rest of the spool serves when an estimate falls short.
 */
const FRAME_BYTES_PER_RECORD_ESTIMATE = 1024;

const MAX_ERROR_DETAILS = 5;
const MAX_ERROR_MESSAGE_CHARS = 2000;
const NAMESPACE = 'audit OTLP bridge';

const defaultLogger = (): BridgeLogger => {
  const component = diag.createComponentLogger({ namespace: NAMESPACE });
  return (level, message, fields) =>
    component[level](fields ? `${message} ${JSON.stringify(fields)}` : message);
};

/** The bridge's structured logger as the diag logger of its rate-limited warnings. */
function asDiagLogger(log: BridgeLogger): DiagLogger {
  const line =
    (level: 'debug' | 'info' | 'warn' | 'error') =>
    (message: string, ...args: unknown[]) =>
      log(level, message, args[0] as Record<string, unknown> | undefined);
  return {
    error: line('error'),
    warn: line('warn'),
    info: line('info'),
    debug: line('debug'),
    verbose: line('debug'),
  };
}

/** Starts the audit OTLP bridge; resolves once it listens. */
export async function startOtlpBridge(options: OtlpBridgeOptions = {}): Promise<OtlpBridge> {
  const log = options.logger ?? defaultLogger();
  // Warnings that a flood of bad requests repeats: one line, then one summary per interval.
  const limited = new ComponentDiag(NAMESPACE, { logger: asDiagLogger(log) });
  const warnLimited = (message: string, fields: Record<string, unknown>) =>
    limited.report('warn', message, message, 1, fields);
  const maxBody = positive(
    'maxRequestBodyBytes',
    options.maxRequestBodyBytes,
    DEFAULT_MAX_REQUEST_BODY_BYTES,
    log,
  );
  const inflightMax = positive(
    'maxInflightBodyBytes',
    options.maxInflightBodyBytes,
    Math.max(DEFAULT_MAX_INFLIGHT_BODY_BYTES, maxBody),
    log,
  );
  const maxValues = positive(
    'maxRequestValues',
    options.maxRequestValues,
    Math.max(1, Math.ceil(maxBody / DEFAULT_BODY_BYTES_PER_VALUE)),
    log,
  );
  let requestTimeout = positive(
    'requestTimeoutMillis',
    options.requestTimeoutMillis,
    DEFAULT_REQUEST_TIMEOUT_MILLIS,
    log,
  );
  if (requestTimeout > MAX_TIMER_MILLIS) {
    // Node's socket timers cannot wait longer (and warn on the process when asked to).
    log(
      'warn',
      `requestTimeoutMillis ${requestTimeout} is longer than a timer can wait; using ${MAX_TIMER_MILLIS}`,
    );
    requestTimeout = MAX_TIMER_MILLIS;
  }
  let inflightBytes = 0;
  const retryAfter = String(Math.max(1, Math.ceil(options.retryAfterSeconds ?? 5)));
  const auth = new BearerAuth({
    ...(options.bearerToken !== undefined && { bearerToken: options.bearerToken }),
    ...(options.bearerTokenFile !== undefined && { bearerTokenFile: options.bearerTokenFile }),
    onWarning: warnLimited,
  });

  // Metrics: the given provider, else the given Prometheus one, else (with a management port)
  // a Prometheus provider of the bridge's own, else the global one.
  const ownPrometheus =
    options.managementPort !== undefined &&
    options.meterProvider === undefined &&
    options.prometheus === undefined
      ? createPrometheusMetrics('kubernaut-audit-otlp-bridge')
      : undefined;
  const served = options.prometheus ?? ownPrometheus;
  const meterProvider = options.meterProvider ?? served?.meterProvider;

  const ownsProcessor = options.processor === undefined;
  let spoolDir: string | undefined;
  let spoolMaxBytes = 0;
  let processor: LogRecordProcessor;
  if (options.processor) {
    processor = options.processor;
  } else {
    const env = readProcessorEnv();
    spoolDir = options.spool?.directory ?? env.spoolDirectory;
    if (!spoolDir) {
      throw new Error(
        'the audit OTLP bridge needs a spool directory (spool.directory or KUBERNAUT_AUDIT_SPOOL_DIR)',
      );
    }
    spoolMaxBytes = positive(
      'spool.maxBytes',
      options.spool?.maxBytes ?? env.spoolMaxBytes,
      DEFAULT_BRIDGE_SPOOL_MAX_BYTES,
      log,
    );
    processor = new AuditLogRecordProcessor({
      exporter: options.exporter ?? new KubernautAuditExporter(),
      spool: { directory: spoolDir, maxBytes: spoolMaxBytes, durability: 'sync' },
      ...(options.shutdownTimeoutMillis !== undefined && {
        shutdownTimeoutMillis: options.shutdownTimeoutMillis,
      }),
      ...(meterProvider && { meterProvider }),
    });
  }
  if (!options.processor && (processor as AuditLogRecordProcessor).spoolKind !== 'file') {
    // The bridge tells the Collector "durable" only when records are on disk; with a
    // memory-only spool that would be a lie, so it does not start.
    await processor.shutdown().catch(() => undefined);
    await ownPrometheus?.shutdown();
    throw new Error(
      `the audit OTLP bridge cannot open its spool directory ${spoolDir} for writing; it refuses to acknowledge records it cannot keep`,
    );
  }
  const highWatermark = Math.min(1, Math.max(0, options.spoolHighWatermark ?? 0.9));

  const meter = (meterProvider ?? metrics.getMeterProvider()).getMeter(
    '@kubernaut/audit-otlp-bridge',
  );
  const requestCounter: Counter = meter.createCounter('kubernaut.audit.bridge.requests', {
    description: 'OTLP/HTTP export requests answered by the audit bridge, by status code',
    unit: '{request}',
  });
  const recordCounter: Counter = meter.createCounter('kubernaut.audit.bridge.log_records', {
    description:
      'OTLP log records received by the audit bridge, by outcome (accepted, rejected, ignored, refused)',
    unit: '{record}',
  });

  let closing = false;
  const inFlight = new Set<Promise<void>>();

  // An AuditLogRecordProcessor (the bridge's own, or one given) takes each request's records
  // through offer(), under a spool reservation made at admission; any other processor through
  // onEmit, trusted to be durable when it returns.
  const auditProcessor = processor instanceof AuditLogRecordProcessor ? processor : undefined;

  // Spool pressure (readiness): the processor's own count of what its spool holds (frame bytes
  // of unacknowledged records and reservations), O(1).
  const spoolUnderPressure = (): boolean => {
    const usage = spoolUsageOf(processor);
    if (usage === undefined) return false;
    return usage.bytes > usage.maxBytes * highWatermark;
  };

  // What admission sees of the spool, for the "spool nearly full" alert: the spool's own count
  // of unacknowledged frame bytes against the bound.
  const spoolGauges: Array<[ObservableGauge, ObservableCallback]> = [];
  if (spoolUsageOf(processor) !== undefined) {
    const usageGauge = meter.createObservableGauge('kubernaut.audit.bridge.spool.usage', {
      unit: 'By',
      description:
        "Bytes the bridge's spool holds as admission counts them (frames of unacknowledged records and reservations); requests are refused above spool.maxBytes x the high watermark.",
    });
    const capacityGauge = meter.createObservableGauge('kubernaut.audit.bridge.spool.capacity', {
      unit: 'By',
      description: "The bound of the bridge's spool (spool.maxBytes).",
    });
    spoolGauges.push(
      [usageGauge, (r) => r.observe(spoolUsageOf(processor)?.bytes ?? 0)],
      [capacityGauge, (r) => r.observe(spoolUsageOf(processor)?.maxBytes ?? spoolMaxBytes)],
    );
    for (const [gauge, callback] of spoolGauges) gauge.addCallback(callback);
  }

  const send = (
    res: ServerResponse,
    status: number,
    body: Uint8Array | string,
    contentType: string,
    headers: Record<string, string> = {},
  ) => {
    requestCounter.add(1, { 'http.response.status_code': status });
    if (res.headersSent) return;
    res.writeHead(status, {
      'Content-Type': contentType,
      'Content-Length': String(Buffer.byteLength(body)),
      ...headers,
    });
    res.end(body);
  };
  const sendStatus = (
    res: ServerResponse,
    status: number,
    message: string,
    encoding: OtlpEncoding,
    headers: Record<string, string> = {},
  ) => {
    // google.rpc.Code: 3 INVALID_ARGUMENT, 16 UNAUTHENTICATED, 14 UNAVAILABLE, 8 RESOURCE_EXHAUSTED.
    const code =
      status === 401 ? 16 : status === 503 ? 14 : status === 413 || status === 429 ? 8 : 3;
    // An unread (too large) body is not drained: the connection is closed after the answer.
    const extra: Record<string, string> = status === 413 ? { Connection: 'close' } : {};
    send(res, status, encodeStatus(code, message, encoding), contentTypeOf(encoding), {
      ...extra,
      ...headers,
    });
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = (req.url ?? '/').split('?')[0];
    if (path !== OTLP_LOGS_PATH) {
      sendStatus(
        res,
        404,
        `not found: ${path}; OTLP logs are received at ${OTLP_LOGS_PATH}`,
        'json',
      );
      req.resume();
      return;
    }
    if (req.method !== 'POST') {
      sendStatus(res, 405, `method ${req.method} not allowed on ${OTLP_LOGS_PATH}`, 'json', {
        Allow: 'POST',
      });
      req.resume();
      return;
    }
    const encoding = encodingOf(req.headers['content-type']);
    // Node keeps the first of several Authorization headers; a proxy may read the last. A
    // request that carries two credentials is malformed, whichever one is right.
    if ((req.headersDistinct.authorization?.length ?? 0) > 1) {
      sendStatus(res, 400, 'more than one Authorization header', encoding ?? 'json');
      req.resume();
      return;
    }
    if (!auth.check(req.headers.authorization)) {
      sendStatus(res, 401, 'missing or invalid bearer token', encoding ?? 'json', {
        'WWW-Authenticate': 'Bearer',
      });
      req.resume();
      return;
    }
    if (!encoding) {
      sendStatus(
        res,
        415,
        `unsupported content type ${JSON.stringify(req.headers['content-type'] ?? '')}; use application/x-protobuf or application/json`,
        'json',
      );
      req.resume();
      return;
    }
    const contentEncoding = String(req.headers['content-encoding'] ?? 'identity')
      .trim()
      .toLowerCase();
    if (contentEncoding !== 'gzip' && contentEncoding !== 'identity' && contentEncoding !== '') {
      sendStatus(res, 415, `unsupported content encoding ${contentEncoding}; use gzip`, encoding);
      req.resume();
      return;
    }
    if (closing) {
      sendStatus(res, 503, 'the audit bridge is shutting down', encoding, {
        'Retry-After': retryAfter,
      });
      req.resume();
      return;
    }

    // Admission, before the body is read when its length is declared: spool room for it.
    const refuse = (records: number | undefined, reason: string) => {
      if (records) recordCounter.add(records, { 'kubernaut.audit.bridge.outcome': 'refused' });
      warnLimited('refused an OTLP request: spool full or bridge closing', {
        ...(records !== undefined && { records }),
        reason,
      });
      sendStatus(
        res,
        503,
        'the audit spool is full or the bridge is closing; retry later',
        encoding,
        { 'Retry-After': retryAfter },
      );
    };
    const admission = new Admission(auditProcessor, highWatermark);
    const declared = contentLengthOf(req);
    // Memory: the body is counted before it is read (a chunked one for the largest allowed).
    const held = Math.min(declared ?? maxBody, maxBody);
    if (inflightBytes + held > inflightMax && inflightBytes > 0) {
      refuse(undefined, 'too many request bodies in memory');
      req.resume();
      return;
    }
    inflightBytes += held;
    try {
      if (declared !== undefined && declared <= maxBody && !admission.take(declared)) {
        refuse(undefined, 'no spool room for the request');
        req.resume();
        return;
      }

      let body: Buffer;
      try {
        body = await readBody(req, maxBody);
        if (declared === undefined && !admission.take(body.length)) {
          refuse(undefined, 'no spool room for the request');
          return;
        }
        if (contentEncoding === 'gzip') body = await gunzipBody(body, maxBody);
      } catch (err) {
        if (err instanceof BodyError && err.kind === 'too_large') {
          sendStatus(res, 413, err.message, encoding);
        } else if (err instanceof BodyError && err.kind === 'bad_encoding') {
          sendStatus(res, 400, err.message, encoding);
        } else {
          log('debug', 'request body not received', { error: String(err) });
          res.destroy();
        }
        return;
      }

      let request: ReturnType<typeof decodeExportLogsRequest>;
      try {
        request = decodeExportLogsRequest(body, encoding, { maxValues });
      } catch (err) {
        const message = err instanceof OtlpDecodeError ? err.message : String(err);
        const tooLarge = err instanceof OtlpDecodeError && err.kind === 'too_large';
        warnLimited(
          tooLarge
            ? 'rejected an OTLP request of too many values'
            : 'rejected an undecodable OTLP request',
          { encoding, bytes: body.length, error: message },
        );
        sendStatus(res, tooLarge ? 413 : 400, message, encoding);
        return;
      }

      const converted = convertExportRequest(request);
      const records: BridgedLogRecord[] = [];
      const at: number[] = [];
      const outcome: RequestOutcome = { accepted: 0, rejected: 0, ignored: 0, errors: [] };
      converted.forEach((item, index) => {
        if (item.ok) {
          records.push(item.record);
          at.push(index);
        } else {
          outcome.rejected++;
          outcome.errors.push({ index, text: item.error });
        }
      });
      // Now the records are known: room for their frames, estimated from the decoded size
      // (a 503 here still means "nothing taken").
      const audit = records.filter((r) => isAuditRecord(r)).length;
      if (closing || !admission.take(body.length + audit * FRAME_BYTES_PER_RECORD_ESTIMATE)) {
        refuse(converted.length, closing ? 'closing' : 'no spool room for the records');
        return;
      }

      let taken: AuditOfferResult;
      try {
        taken = auditProcessor
          ? auditProcessor.offer(records, admission.reservation)
          : emitEach(processor, records);
      } catch (err) {
        // The processor must not throw; if it does, nothing in this request is known durable.
        log('error', 'the audit processor failed while taking records', { error: String(err) });
        refuse(converted.length, 'processor error');
        return;
      }
      if (auditProcessor && taken.appended > 0 && spoolUsageOf(auditProcessor)?.durable === false) {
        // The spool's disk write failed: the records are held in memory (written when the disk
        // takes them again), not durable. Nothing is acknowledged; a retry may duplicate them.
        log('warn', 'the spool could not write a request to disk; the request is refused', {
          records: taken.appended,
        });
        refuse(converted.length, 'the spool is not writing to disk');
        return;
      }
      if (taken.dropped.length > 0) {
        // Not all on the spool: nothing is acknowledged, the client resends the request.
        log('warn', 'audit records of a request could not be spooled; the request is refused', {
          dropped: taken.dropped.length,
          reason: taken.dropped[0]?.reason,
        });
        refuse(converted.length, 'the spool did not keep every record');
        return;
      }
      outcome.ignored = taken.ignored;
      outcome.accepted = taken.appended;
      for (const { index, detail } of taken.invalid) {
        outcome.rejected++;
        outcome.errors.push({ index: at[index] as number, text: detail });
      }
      outcome.errors.sort((a, b) => a.index - b.index);

      if (outcome.accepted) {
        recordCounter.add(outcome.accepted, { 'kubernaut.audit.bridge.outcome': 'accepted' });
      }
      if (outcome.ignored) {
        recordCounter.add(outcome.ignored, { 'kubernaut.audit.bridge.outcome': 'ignored' });
      }
      let partial: { rejectedLogRecords: number; errorMessage: string } | undefined;
      if (outcome.rejected) {
        recordCounter.add(outcome.rejected, { 'kubernaut.audit.bridge.outcome': 'rejected' });
        partial = { rejectedLogRecords: outcome.rejected, errorMessage: errorMessage(outcome) };
        warnLimited('rejected invalid audit log records', {
          rejected: outcome.rejected,
          accepted: outcome.accepted,
          detail: partial.errorMessage,
        });
      }
      send(res, 200, encodeExportLogsResponse(partial, encoding), contentTypeOf(encoding));
    } finally {
      inflightBytes -= held;
      admission.release();
    }
  };

  const server: Server = createServer(
    {
      requestTimeout: requestTimeout,
      headersTimeout: Math.min(requestTimeout, 60_000),
      // How often Node checks requestTimeout and headersTimeout [30 s by default].
      connectionsCheckingInterval: Math.max(50, Math.min(5_000, Math.floor(requestTimeout / 4))),
    },
    (req, res) => {
      const task = handle(req, res)
        .catch((err: unknown) => {
          log('error', 'unexpected error while handling an OTLP request', { error: String(err) });
          if (!res.headersSent) sendStatus(res, 500, 'internal error', 'json');
          else res.destroy();
        })
        .finally(() => inFlight.delete(task));
      inFlight.add(task);
    },
  );
  // A connection silent mid-request for a third of requestTimeout is closed (Node destroys a
  // socket that times out when nobody listens for it); idle keep-alive ones by keepAliveTimeout.
  server.setTimeout(Math.max(50, Math.floor(requestTimeout / 3)));
  server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    // What Node's HTTP parser refused, answered as OTLP answers (a google.rpc.Status), then
    // the connection is closed: 408 for a request not whole in time (the client may retry
    // it), 431 for headers over Node's limit, 400 for anything else.
    if (!socket.writable) {
      socket.destroy();
      return;
    }
    const [status, code, message] = clientErrorAnswer(err.code);
    const body = encodeStatus(code, message, 'json');
    socket.end(
      Buffer.concat([
        Buffer.from(
          `HTTP/1.1 ${status}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`,
        ),
        body,
      ]),
    );
  });

  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port ?? 4318, options.host ?? '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    // Release the spool (and its lock) of a processor nobody else will shut down.
    if (ownsProcessor) await processor.shutdown().catch(() => undefined);
    await ownPrometheus?.shutdown();
    throw err;
  }

  /** Ready to take records durably: not closing, the spool on disk, below its high watermark. */
  const readiness = async (): Promise<Readiness> => {
    if (closing) return { ready: false, detail: 'shutting down' };
    if (ownsProcessor && (processor as AuditLogRecordProcessor).spoolKind !== 'file') {
      return {
        ready: false,
        detail: 'the spool is not on disk (memory-only): records not durable',
      };
    }
    if (spoolUsageOf(processor)?.durable === false) {
      return {
        ready: false,
        detail: 'the spool cannot write to disk: records would be held in memory only',
      };
    }
    if (spoolUnderPressure()) {
      return {
        ready: false,
        detail: `the spool is over ${Math.round(highWatermark * 100)} % of its bound: refusing records until DataStorage takes them`,
      };
    }
    return { ready: true, detail: 'ready' };
  };
  let management: ManagementServer | undefined;
  if (options.managementPort !== undefined) {
    try {
      management = await startManagementServer({
        host: options.managementHost ?? options.host ?? '127.0.0.1',
        port: options.managementPort,
        metrics: served,
        readiness,
        onError: (message, err) => log('error', message, { error: String(err) }),
      });
    } catch (err) {
      await closeGracefully(server, Promise.resolve());
      if (ownsProcessor) await processor.shutdown().catch(() => undefined);
      await ownPrometheus?.shutdown();
      throw err;
    }
  }

  const address = server.address() as AddressInfo;
  const hostForUrl = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `http://${hostForUrl}:${address.port}`;
  const instance = randomUUID();
  log('info', 'audit OTLP bridge listening', {
    url,
    path: OTLP_LOGS_PATH,
    management: management?.url ?? null,
    auth: auth.enabled,
    spoolDir,
    instance,
  });

  let closed: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closed ??= (async () => {
      closing = true;
      try {
        await closeGracefully(server, Promise.allSettled([...inFlight]));
        if (ownsProcessor) await processor.shutdown();
      } finally {
        // The management port answers (readyz: 503) until the rest has stopped.
        for (const [gauge, callback] of spoolGauges) gauge.removeCallback(callback);
        await management?.close();
        await ownPrometheus?.shutdown();
      }
      limited.flush();
      log('info', 'audit OTLP bridge stopped', { instance });
    })();
    return closed;
  };

  return { url, port: address.port, managementUrl: management?.url, processor, close };
}

/**
 * The status line, google.rpc.Code (4 DEADLINE_EXCEEDED, 3 INVALID_ARGUMENT) and message
 * answering an error of Node's HTTP parser.
 */
function clientErrorAnswer(code: string | undefined): [string, number, string] {
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    return ['408 Request Timeout', 4, 'the request did not arrive whole in time'];
  }
  if (code === 'HPE_HEADER_OVERFLOW') {
    return ['431 Request Header Fields Too Large', 3, 'the request headers are too large'];
  }
  return ['400 Bad Request', 3, `malformed HTTP request (${code ?? 'parse error'})`];
}

function encodingOf(contentType: string | undefined): OtlpEncoding | undefined {
  const media = mediaType(contentType);
  if (media === 'application/x-protobuf') return 'protobuf';
  if (media === 'application/json') return 'json';
  return undefined;
}

function contentTypeOf(encoding: OtlpEncoding): string {
  return encoding === 'protobuf' ? 'application/x-protobuf' : 'application/json';
}

/**
 * Spool room held for one request: taken before its body is read (the declared length stands in
 * for its frames), grown once its records are known, released when it is answered (what the
 * append used is no longer reserved). Admits nothing above `spoolHighWatermark` of the bound.
 */
class Admission {
  reservation: Reservation | undefined;
  private readonly _processor: AuditLogRecordProcessor | undefined;
  private readonly _highWatermark: number;

  constructor(processor: AuditLogRecordProcessor | undefined, highWatermark: number) {
    this._processor = processor;
    this._highWatermark = highWatermark;
  }

  /**
   * Holds room for `bytes` in all; false when that does not fit, or when the spool is not
   * writing to disk (records would only be held in memory): then nothing is held.
   */
  take(bytes: number): boolean {
    const p = this._processor;
    if (p === undefined) return true;
    const usage = spoolUsageOf(p);
    if (usage !== undefined && !usage.durable) {
      this.release();
      return false;
    }
    const held = this.reservation?.bytes ?? 0;
    if (bytes <= held) return true;
    this.release();
    if (usage !== undefined && usage.bytes - held + bytes > usage.maxBytes * this._highWatermark) {
      return false;
    }
    this.reservation = p.reserve(Math.max(1, bytes));
    return this.reservation !== undefined;
  }

  release(): void {
    this.reservation?.release();
    this.reservation = undefined;
  }
}

/** The declared body length, when there is a valid one. */
function contentLengthOf(req: IncomingMessage): number | undefined {
  const v = req.headers['content-length'];
  if (v === undefined || !/^\d+$/.test(v)) return undefined;
  return Number(v);
}

/**
 * Feeds a processor other than an AuditLogRecordProcessor record by record (it must have written
 * each audit record durably when `onEmit` returns); invalid audit records are found by mapping.
 */
function emitEach(processor: LogRecordProcessor, records: BridgedLogRecord[]): AuditOfferResult {
  const result: AuditOfferResult = { appended: 0, ignored: 0, invalid: [], dropped: [] };
  records.forEach((record, index) => {
    if (!isAuditRecord(record)) {
      result.ignored++;
      return;
    }
    const mapped = mapLogRecord(record);
    // Invalid audit records go to the processor too: it dead-letters them with the reason.
    processor.onEmit(record, ROOT_CONTEXT);
    if (mapped.ok) result.appended++;
    else result.invalid.push({ index, detail: describeViolations(mapped.violations) });
  });
  return result;
}

function describeViolations(violations: ContractViolation[]): string {
  return violations.map((v) => `${v.field}: ${v.message} (${v.reason})`).join('; ');
}

function errorMessage(outcome: RequestOutcome): string {
  const shown = outcome.errors
    .slice(0, MAX_ERROR_DETAILS)
    .map((e) => `log record ${e.index}: ${e.text}`)
    .join(' | ');
  const more = outcome.errors.length - MAX_ERROR_DETAILS;
  const text = `${outcome.rejected} log record(s) rejected (invalid audit records are dead-lettered by the bridge): ${shown}${
    more > 0 ? ` | and ${more} more` : ''
  }`;
  return text.length > MAX_ERROR_MESSAGE_CHARS
    ? `${text.slice(0, MAX_ERROR_MESSAGE_CHARS)}…`
    : text;
}

/** A positive size option, else `fallback` (an invalid one is logged). */
function positive(
  name: string,
  value: number | undefined,
  fallback: number,
  log: BridgeLogger,
): number {
  const n = numberOption(name, value, { above: 0 }, (m) => log('warn', `${m}; using ${fallback}`));
  return n ?? fallback;
}
