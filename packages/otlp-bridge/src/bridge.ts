// SPDX-License-Identifier: Apache-2.0
/*
 * The audit OTLP bridge (DESIGN §9): an OTLP/HTTP logs receiver (`POST /v1/logs`, protobuf and
 * JSON, gzip or identity) that converts each OTLP log record into the record shape the OTel SDK
 * hands to processors and feeds it to an `AuditLogRecordProcessor` whose spool is written
 * synchronously. The bridge answers only after every record of the request is on the spool, so a
 * success tells the Collector the records are durable and its retry / persistent queue only has
 * to cover what was not acknowledged.
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
  ComponentDiag,
  DEFAULT_SPOOL_MAX_BYTES,
  isAuditRecord,
  mapLogRecord,
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
import { convertExportRequest } from './convert.ts';
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
/** Default limit on a request body, compressed and decompressed [16 MiB]. */
export const DEFAULT_MAX_REQUEST_BODY_BYTES = 16 * 1024 * 1024;
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
   * The processor records are fed to. It must have written each audit record durably when
   * `onEmit` returns (an `AuditLogRecordProcessor` with `spool.durability: 'sync'`), else the
   * bridge's "success" does not mean "durable". The caller owns it: `close()` does not shut it
   * down. [an `AuditLogRecordProcessor` built from `exporter` and `spool`, owned by the bridge]
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
  /** Require `Authorization: Bearer <token>` (→ 401). */
  bearerToken?: string;
  /** Like `bearerToken`, read from a file that is re-read when it changes. */
  bearerTokenFile?: string;
  /** `Retry-After` seconds sent with 503 [5]. */
  retryAfterSeconds?: number;
  /**
   * Answer 503 while the spool holds more than this share of `spool.maxBytes` [0.9].
   * Only for the processor the bridge builds.
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
  errors: string[];
}

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
  const retryAfter = String(Math.max(1, Math.ceil(options.retryAfterSeconds ?? 5)));
  const auth = new BearerAuth({
    ...(options.bearerToken !== undefined && { bearerToken: options.bearerToken }),
    ...(options.bearerTokenFile !== undefined && { bearerTokenFile: options.bearerTokenFile }),
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

  // Spool pressure: the processor's own count of what its spool holds (frame bytes of
  // unacknowledged records and reservations), O(1); the request's size stands in for the frames
  // its records will take. A readiness probe passes 0 (it only looks).
  const spoolUnderPressure = (incoming: number): boolean => {
    const usage = ownsProcessor ? spoolUsageOf(processor) : undefined;
    if (usage === undefined) return false;
    return usage.bytes + incoming > usage.maxBytes * highWatermark;
  };

  // What admission sees of the spool, for the "spool nearly full" alert: the spool's own count
  // of unacknowledged frame bytes against the bound.
  const spoolGauges: Array<[ObservableGauge, ObservableCallback]> = [];
  if (ownsProcessor && spoolUsageOf(processor) !== undefined) {
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

    let body: Buffer;
    try {
      body = await readBody(req, maxBody);
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
      request = decodeExportLogsRequest(body, encoding);
    } catch (err) {
      const message = err instanceof OtlpDecodeError ? err.message : String(err);
      warnLimited('rejected an undecodable OTLP request', {
        encoding,
        bytes: body.length,
        error: message,
      });
      sendStatus(res, 400, message, encoding);
      return;
    }

    const converted = convertExportRequest(request);
    // Pressure is checked before any record is handed on: a 503 means "nothing taken".
    if (closing || spoolUnderPressure(body.length)) {
      recordCounter.add(converted.length, { 'kubernaut.audit.bridge.outcome': 'refused' });
      warnLimited('refused an OTLP request: spool full or bridge closing', {
        records: converted.length,
        closing,
      });
      sendStatus(
        res,
        503,
        'the audit spool is full or the bridge is closing; retry later',
        encoding,
        {
          'Retry-After': retryAfter,
        },
      );
      return;
    }

    const outcome: RequestOutcome = { accepted: 0, rejected: 0, ignored: 0, errors: [] };
    try {
      converted.forEach((item, index) => {
        if (!item.ok) {
          outcome.rejected++;
          outcome.errors.push(`log record ${index}: ${item.error}`);
          return;
        }
        const record = item.record;
        if (!isAuditRecord(record)) {
          outcome.ignored++;
          return;
        }
        const mapped = mapLogRecord(record);
        // Invalid audit records go to the processor too: it dead-letters them with the reason.
        processor.onEmit(record, ROOT_CONTEXT);
        if (mapped.ok) {
          outcome.accepted++;
        } else {
          outcome.rejected++;
          outcome.errors.push(`log record ${index}: ${describeViolations(mapped.violations)}`);
        }
      });
    } catch (err) {
      // The processor must not throw; if it does, nothing in this request is known durable.
      log('error', 'the audit processor failed while taking records', { error: String(err) });
      recordCounter.add(converted.length, { 'kubernaut.audit.bridge.outcome': 'refused' });
      sendStatus(res, 503, 'the audit processor failed; retry later', encoding, {
        'Retry-After': retryAfter,
      });
      return;
    }

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
  };

  const server: Server = createServer((req, res) => {
    const task = handle(req, res)
      .catch((err: unknown) => {
        log('error', 'unexpected error while handling an OTLP request', { error: String(err) });
        if (!res.headersSent) sendStatus(res, 500, 'internal error', 'json');
        else res.destroy();
      })
      .finally(() => inFlight.delete(task));
    inFlight.add(task);
  });
  server.on('clientError', (_err, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
    else socket.destroy();
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
    if (spoolUnderPressure(0)) {
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

function encodingOf(contentType: string | undefined): OtlpEncoding | undefined {
  const media = mediaType(contentType);
  if (media === 'application/x-protobuf') return 'protobuf';
  if (media === 'application/json') return 'json';
  return undefined;
}

function contentTypeOf(encoding: OtlpEncoding): string {
  return encoding === 'protobuf' ? 'application/x-protobuf' : 'application/json';
}

function describeViolations(violations: ContractViolation[]): string {
  return violations.map((v) => `${v.field}: ${v.message} (${v.reason})`).join('; ');
}

function errorMessage(outcome: RequestOutcome): string {
  const shown = outcome.errors.slice(0, MAX_ERROR_DETAILS).join(' | ');
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
