// SPDX-License-Identifier: Apache-2.0
/*
 * KubernautAuditExporter (DESIGN §3, §6): the public class, thin over deliver/.
 *
 * - Standalone under any OTel processor (`export()`): non-audit records are ignored and
 *   counted, invalid audit records are dead-lettered, valid ones are encoded once (./encode.ts)
 *   and delivered by the engine; retries stay within `timeoutMillis` in total, then the export
 *   reports FAILED (like the OTLP exporters). Concurrent export() calls are independent.
 * - Behind the spool it provides the AuditDeliverer (`createAuditDeliverer`): the same engine,
 *   retrying without end until every event is accepted or dead-lettered, or the signal aborts;
 *   its sleeps and sockets never keep the process alive; dead letters go to the writer the
 *   processor injects (the exporter itself is not modified).
 *
 * Code running here is called from application code paths: nothing throws out of it.
 */

import {
  AUDIT_EVENTS_BATCH_PATH,
  type AuditEventRequest,
  parseDateTime,
} from '@kubernaut/datastorage-contract';
import { errorText } from '@kubernaut/datastorage-contract/config';
import type { MeterProvider } from '@opentelemetry/api';
import { type ExportResult, ExportResultCode } from '@opentelemetry/core';
import type { LogRecordExporter, ReadableLogRecord } from '@opentelemetry/sdk-logs';
import {
  type ExporterConfigInput,
  type ResolvedExporterConfig,
  resolveExporterConfig,
} from '../config/exporter-env.ts';
import { BearerTokenSource } from '../deliver/bearer-token.ts';
import {
  type DeadLetterSink,
  deliverBatch,
  type EngineDeps,
  type EngineOptions,
  type EngineResult,
  type Sleeper,
} from '../deliver/engine.ts';
import { eventsBatch } from '../deliver/events-batch.ts';
import { HttpTransport } from '../deliver/http-transport.ts';
import { ComponentDiag } from '../measure/diag.ts';
import { ExporterMetrics } from '../measure/exporter-metrics.ts';
import { isAuditRecord } from '../select/index.ts';
import { normalizeDestination } from '../send/destination.ts';
import { createDeliveryHealth } from '../send/health.ts';
import type { AuditDeliverer, EventOutcome, OutgoingBatch } from '../send/types.ts';
import { exporterCreated } from '../setup-checks/index.ts';
import {
  type DeadLetterEntry,
  DeadLetterFile,
  deadLetterSink,
  defaultDeadLetterPath,
  recordSnapshot,
} from '../spool/dead-letter.ts';
import { encodeRecords } from './encode.ts';
import { type KubernautAuditExporterInternals, takeInternals } from './internals.ts';
import { loadSpec, type SpecState, type SpecValidator } from './openapi-spec.ts';

/** What became of one event handed to `deliverEvents()`. */
export type DeliveryOutcome = EventOutcome;

/** Per input index, in input order. */
export interface DeliveryResult {
  outcomes: DeliveryOutcome[];
}

/** Options of {@link KubernautAuditExporter}. Names are part of the public contract. */
export interface KubernautAuditExporterOptions extends ExporterConfigInput {
  /** Where metrics go [the global MeterProvider, resolved at first use]. */
  meterProvider?: MeterProvider;
}

/** Error of a failed standalone export (`ExportResult.error`). */
export class KubernautAuditExportError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'KubernautAuditExportError';
  }
}

/** A sleeper on real timers; `unref`: the wait does not keep the process alive. */
function timerSleeper(unref: boolean): Sleeper {
  return (ms, signal) =>
    new Promise<void>((resolve) => {
      if (signal?.aborted) return resolve();
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      if (unref) timer.unref();
      signal?.addEventListener('abort', done, { once: true });
    });
}

/** The OpenAPI validator of an exporter, as far as it is loaded. */
export interface OpenApiStatus {
  /** False while the spec is still loading. */
  settled: boolean;
  /** The validator, once loaded (never without `openapiSpec`). */
  validator?: SpecValidator;
}

/** Options of {@link createAuditDeliverer}. */
export interface AuditDelivererOptions {
  /** Where dead letters go [the exporter's own dead-letter file]. */
  deadLetters?: DeadLetterSink;
}

/** The AuditDeliverer of an exporter, with the destination it delivers to. */
export interface ExporterDeliverer extends AuditDeliverer {
  /** The normalised DataStorage base URL (undefined when none is configured). */
  readonly destination: string | undefined;
}

/** What the package's own code may do with an exporter beyond the LogRecordExporter API. */
interface ExporterAccess {
  is(value: unknown): value is KubernautAuditExporter;
  deliverEvents(
    e: KubernautAuditExporter,
    events: AuditEventRequest[],
    options: { signal?: AbortSignal },
  ): Promise<DeliveryResult>;
  deliverer(e: KubernautAuditExporter, options: AuditDelivererOptions): ExporterDeliverer;
  openApiValidator(e: KubernautAuditExporter): OpenApiStatus;
  given(e: KubernautAuditExporter): ExporterGiven;
}

/** What an exporter was built from: its options as given, and whether test hooks were set. */
export interface ExporterGiven {
  options: KubernautAuditExporterOptions;
  /** Test hooks were given (createExporter()): a copy of the options alone is not the same exporter. */
  hooked: boolean;
}

// Set by the class's static block: the methods behind it are private (`#`), not public API.
let access: ExporterAccess;

/** Exports audit log records to Kubernaut DataStorage. */
export class KubernautAuditExporter implements LogRecordExporter {
  private readonly _config: ResolvedExporterConfig;
  private readonly _metrics: ExporterMetrics;
  private readonly _diag: ComponentDiag;
  private readonly _transport: HttpTransport | undefined;
  private readonly _configError: string | undefined;
  private readonly _destination: string | undefined;
  private readonly _token: BearerTokenSource;
  /** Dependencies of the engine for standalone exports (ref'd waits: a caller awaits them). */
  private readonly _deps: EngineDeps;
  private readonly _internals: KubernautAuditExporterInternals;
  /** Acceptances seen by this exporter's standalone exports and deliverEvents() calls. */
  private readonly _health = createDeliveryHealth();
  private readonly _exports = new Set<Promise<unknown>>();
  private readonly _deliveries = new Set<Promise<unknown>>();
  private readonly _abort = new AbortController();
  /** The exporter's own dead-letter file (standalone exports; opened at the first dead letter). */
  private _deadLetterFile: DeadLetterFile | undefined;
  private readonly _deadLetters = deadLetterSink(() => this._ownDeadLetterFile());
  /** Loading of `openapiSpec` (undefined without one). */
  private readonly _spec: Promise<SpecState> | undefined;
  private _specState: SpecState | undefined;
  private _shutdown: Promise<void> | undefined;

  readonly #given: ExporterGiven;

  constructor(given: KubernautAuditExporterOptions = {}) {
    const options = given ?? {}; // `null` from JavaScript: no options
    const internals = takeInternals();
    this.#given = { options: { ...options }, hooked: Object.keys(internals).length > 0 };
    this._internals = internals;
    this._config = resolveExporterConfig(options, internals.env ?? process.env);
    this._metrics = new ExporterMetrics(
      options.meterProvider ? { meterProvider: options.meterProvider } : {},
    );
    this._diag = new ComponentDiag(`KubernautAuditExporter ${this._metrics.componentName}`);
    exporterCreated(this._diag);

    let url: URL | undefined;
    if (this._config.url === undefined) {
      this._configError =
        'no DataStorage URL: set the `url` option or the KUBERNAUT_AUDIT_ENDPOINT environment variable';
    } else {
      try {
        url = batchUrl(this._config.url);
        this._destination = normalizeDestination(this._config.url);
      } catch {
        this._configError = `the DataStorage URL ${JSON.stringify(redactUrl(this._config.url))} is not an http(s) URL (expected e.g. http://datastorage:8080)`;
      }
      if (url !== undefined && /[?#]/.test(this._config.url)) {
        this._diag.warn(
          `the query string and fragment of the DataStorage URL are ignored: requests go to ${url.origin}${url.pathname}`,
        );
      }
    }
    if (this._configError !== undefined) {
      this._diag.error(`${this._configError}; exports will fail`);
    } else if (url !== undefined) {
      this._transport = new HttpTransport({
        url,
        headers: this._config.headers,
        ...(this._config.ca === undefined ? {} : { ca: this._config.ca }),
        ...(this._config.cert === undefined ? {} : { cert: this._config.cert }),
        ...(this._config.key === undefined ? {} : { key: this._config.key }),
      });
    }
    if (this._config.openapiSpec !== undefined) {
      // Loaded in the background: the first export waits for it; records emitted through the
      // processor before it is ready are checked against the contract rules alone.
      this._spec = loadSpec(this._config.openapiSpec, internals.loadOpenApi).then((state) => {
        this._specState = state;
        if (state.kind === 'missing-libraries') {
          this._diag.error(`${state.message}; exports will fail`);
        } else if (state.kind === 'unusable') {
          this._diag.error(
            `openapiSpec cannot be loaded, event_data is only checked against the contract rules: ${state.message}`,
          );
        }
        return state;
      });
    }
    const now = internals.now ?? Date.now;
    this._token = new BearerTokenSource({
      ...(this._config.bearerToken === undefined ? {} : { token: this._config.bearerToken }),
      ...(this._config.bearerTokenFile === undefined ? {} : { file: this._config.bearerTokenFile }),
      now,
      onReadError: (code) =>
        this._diag.report(
          'error',
          'token-file',
          code === 'EINVALTOKEN'
            ? 'the bearer token file holds characters an HTTP header cannot carry (a line break or NUL inside the token?): it is not sent'
            : `cannot read the bearer token file (${code}${code === 'ENOTREG' ? ': not a regular file' : code === 'EFBIG' ? ': larger than 1 MiB' : ''})`,
        ),
    });
    const transport = this._transport;
    this._deps = {
      send: (body, opts) =>
        transport
          ? transport.send(body, opts)
          : Promise.resolve({
              kind: 'error',
              reason: 'aborted',
              code: 'unconfigured',
              sent: false,
            }),
      token: this._token,
      config: this._config,
      metrics: this._metrics,
      deadLetters: () => this._deadLetters,
      diag: this._diag,
      sleep: internals.sleep ?? timerSleeper(false),
      now,
      random: internals.random ?? Math.random,
    };
  }

  /** `otel.component.name` of this exporter's metrics. */
  get componentName(): string {
    return this._metrics.componentName;
  }

  /** Exports a batch of log records (LogRecordExporter). Never throws. */
  export(logs: ReadableLogRecord[], resultCallback: (result: ExportResult) => void): void {
    let done = false;
    const callback = (r: ExportResult) => {
      if (done) return;
      done = true;
      try {
        resultCallback(r);
      } catch (err) {
        this._diag.error('export result callback threw', err);
      }
    };
    if (this._shutdown !== undefined) {
      callback(failed('the exporter has been shut down'));
      return;
    }
    if (this._configError !== undefined) {
      callback(failed(this._configError));
      return;
    }
    const p = this._export(logs).then(callback, (err) => {
      this._diag.error('unexpected export error', err);
      callback(failed('unexpected export error'));
    });
    this._exports.add(p);
    void p.finally(() => this._exports.delete(p));
  }

  /** See {@link deliverEvents}. */
  async #deliverEvents(
    events: AuditEventRequest[],
    options: { signal?: AbortSignal } = {},
  ): Promise<DeliveryResult> {
    const json: string[] = [];
    const eventTime = new Float64Array(events.length);
    const index: number[] = [];
    const outcomes: DeliveryOutcome[] = events.map(() => 'pending');
    const unserialisable: AuditEventRequest[] = [];
    events.forEach((event, i) => {
      let text: string | undefined;
      try {
        text = JSON.stringify(event);
      } catch {
        text = undefined;
      }
      if (text === undefined) {
        unserialisable.push(event);
        outcomes[i] = 'dead_lettered';
        return;
      }
      eventTime[json.length] =
        typeof event.event_timestamp === 'string'
          ? (parseDateTime(event.event_timestamp) ?? Number.NaN)
          : Number.NaN;
      json.push(text);
      index.push(i);
    });
    if (unserialisable.length > 0) {
      await this._writeDeadLetters(
        unserialisable.map((event) => ({
          time: new Date(this._deps.now()).toISOString(),
          reason: 'unserializable',
          detail: 'event cannot be serialised as JSON',
          event,
        })),
      );
      this._metrics.deadLettered(unserialisable.length, 'unserializable');
    }
    if (json.length === 0) return { outcomes };
    const batch = eventsBatch({ json, eventTime: eventTime.subarray(0, json.length) });
    const r = await this.#deliverBatch(batch, { health: this._health, ...options }, this._deps);
    r.forEach((o, k) => {
      outcomes[index[k] as number] = o;
    });
    return { outcomes };
  }

  /** Runs the engine on `batch` unless the exporter cannot send. Never rejects. */
  async #deliverBatch(
    batch: OutgoingBatch,
    options: EngineOptions,
    deps: EngineDeps,
  ): Promise<EventOutcome[]> {
    const n = batch.seqs.length;
    const configError =
      this._configError ??
      ((await this._spec)?.kind === 'missing-libraries'
        ? (this._specState as { message: string }).message
        : undefined);
    if (this._shutdown !== undefined || configError !== undefined) {
      if (configError !== undefined) {
        this._diag.report('error', 'config', `${configError}; events stay pending`, n);
      } else {
        // Given to an AuditLogRecordProcessor and to something else that shut it down (another
        // processor, another provider): nothing can be delivered through it any more.
        this._diag.report(
          'error',
          'shut-down',
          'the exporter has been shut down (by another processor or provider it was also given to?) while an AuditLogRecordProcessor still delivers through it: audit records stay in the spool undelivered',
          n,
        );
      }
      return new Array<EventOutcome>(n).fill('pending');
    }
    const signal = options.signal
      ? AbortSignal.any([options.signal, this._abort.signal])
      : this._abort.signal;
    const p = this._run(batch, { ...options, signal }, deps);
    this._deliveries.add(p);
    try {
      return (await p).outcomes;
    } finally {
      this._deliveries.delete(p);
    }
  }

  /** See {@link createAuditDeliverer}. */
  #deliverer(options: AuditDelivererOptions): ExporterDeliverer {
    const deps: EngineDeps = {
      ...this._deps,
      ...(options.deadLetters === undefined
        ? {}
        : { deadLetters: () => options.deadLetters as DeadLetterSink }),
      // Behind the spool nothing the exporter owns keeps the process alive.
      sleep: this._internals.sleep ?? timerSleeper(true),
    };
    return {
      destination: this._destination,
      deliver: (batch, { signal, health, onRetry, moreBehind }) =>
        this.#deliverBatch(batch, { signal, health, unref: true, onRetry, moreBehind }, deps).catch(
          (err: unknown) => {
            this._diag.error('unexpected delivery error', errorText(err));
            return new Array<EventOutcome>(batch.seqs.length).fill('pending');
          },
        ),
    };
  }

  /** Resolves when every export() in flight has finished. */
  async forceFlush(): Promise<void> {
    while (this._exports.size > 0) {
      await Promise.allSettled([...this._exports]);
    }
  }

  /**
   * Fails later exports at once, waits for exports in flight, ends deliveries in flight
   * (their unsettled events are `pending`) and releases the connections.
   */
  shutdown(): Promise<void> {
    this._shutdown ??= (async () => {
      await this.forceFlush();
      this._abort.abort();
      await Promise.allSettled([...this._deliveries]);
      this._transport?.destroy();
      this._diag.flush();
      this._deadLetterFile?.close();
    })();
    return this._shutdown;
  }

  private async _export(logs: ReadableLogRecord[]): Promise<ExportResult> {
    const audit: ReadableLogRecord[] = [];
    for (const r of logs) if (isAuditRecord(r)) audit.push(r);
    this._metrics.ignored(logs.length - audit.length);
    if (audit.length === 0) return { code: ExportResultCode.SUCCESS };

    const spec = await this._spec;
    if (spec?.kind === 'missing-libraries') return failed(spec.message);
    const validator = spec?.kind === 'ready' ? spec.validator : undefined;
    const now = this._deps.now();
    const encoded = encodeRecords(audit, now, validator);
    for (const [reason, n] of encoded.omitted) this._metrics.fieldOmitted(reason, n);
    this._metrics.started(audit.length);
    const invalid = encoded.invalid;
    if (invalid.length > 0) {
      await this._writeDeadLetters(
        invalid.map(({ record, violations }) => ({
          time: new Date(now).toISOString(),
          reason: 'invalid',
          detail: violations.map((v) => `${v.field || '(record)'}: ${v.message}`).join('; '),
          event: recordSnapshot(record),
        })),
      );
      const byReason = new Map<string, number>();
      for (const { violations } of invalid) {
        const reason = violations[0]?.reason ?? 'invalid';
        byReason.set(reason, (byReason.get(reason) ?? 0) + 1);
      }
      for (const [reason, n] of byReason) this._metrics.deadLettered(n, reason);
      this._metrics.finished(invalid.length, 'invalid');
      this._diag.report(
        'warn',
        'invalid',
        `${invalid.length} invalid audit record(s) dead-lettered: ${invalid[0]?.violations[0]?.message ?? ''}`,
        invalid.length,
      );
    }
    if (encoded.json.length === 0) return { code: ExportResultCode.SUCCESS };

    const batch = eventsBatch({ json: encoded.json, eventTime: encoded.eventTime });
    const deadline = this._deps.now() + this._config.timeoutMillis;
    const r = await this._run(
      batch,
      { health: this._health, signal: this._abort.signal, deadline },
      this._deps,
      true,
    );
    let pending = 0;
    for (const o of r.outcomes) if (o === 'pending') pending++;
    if (pending === 0) return { code: ExportResultCode.SUCCESS };
    return failed(
      `${pending} audit event(s) not delivered within ${this._config.timeoutMillis} ms: ${r.lastError ?? 'export timed out'}`,
    );
  }

  /** Runs the engine and keeps the exporter metrics (inflight/exported) balanced. */
  private async _run(
    batch: OutgoingBatch,
    options: EngineOptions,
    deps: EngineDeps,
    alreadyStarted = false,
  ): Promise<EngineResult> {
    const n = batch.seqs.length;
    if (!alreadyStarted) this._metrics.started(n);
    const r = await deliverBatch(deps, batch, options);
    let accepted = 0;
    let dead = 0;
    for (const o of r.outcomes) {
      if (o === 'accepted') accepted++;
      else if (o === 'dead_lettered') dead++;
    }
    this._metrics.finished(accepted);
    this._metrics.finished(dead, 'dead_lettered');
    this._metrics.finished(
      n - accepted - dead,
      options.deadline === undefined ? 'aborted' : 'timeout',
    );
    return r;
  }

  /** See {@link openApiValidatorOf}. */
  #openApiValidator(): OpenApiStatus {
    if (this._spec === undefined) return { settled: true };
    const state = this._specState;
    if (state === undefined) return { settled: false };
    return state.kind === 'ready'
      ? { settled: true, validator: state.validator }
      : { settled: true };
  }

  private _ownDeadLetterFile(): DeadLetterFile {
    this._deadLetterFile ??= new DeadLetterFile({
      path:
        this._internals.deadLetterPath ?? defaultDeadLetterPath(this._internals.env ?? process.env),
      ...(this._internals.deadLetterMaxBytes === undefined
        ? {}
        : { maxBytes: this._internals.deadLetterMaxBytes }),
      onDropped: (n, reason) => this._metrics.deadLetterDropped(n, reason),
    });
    return this._deadLetterFile;
  }

  /** Writes dead letters of the exporter's own exports. */
  private _writeDeadLetters(entries: DeadLetterEntry[]): Promise<number> {
    return this._deadLetters.write(entries);
  }

  static {
    access = {
      is: (value) => typeof value === 'object' && value !== null && #deliverBatch in value,
      deliverEvents: (e, events, options) => e.#deliverEvents(events, options),
      deliverer: (e, options) => e.#deliverer(options),
      openApiValidator: (e) => e.#openApiValidator(),
      given: (e) => e.#given,
    };
  }
}

function batchUrl(base: string): URL {
  const u = new URL(base);
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('not http(s)');
  const prefix = u.pathname.replace(/\/+$/, '');
  u.pathname = `${prefix}${AUDIT_EVENTS_BATCH_PATH}`;
  u.search = '';
  u.hash = '';
  return u;
}

/**
 * `url` with the password of its user info replaced by `***`, also when it does not parse
 * (`user:secret@host:8080` without a scheme), for messages.
 */
function redactUrl(url: string): string {
  const slashes = url.indexOf('//');
  const start = slashes < 0 ? 0 : slashes + 2; // after `scheme://`, else from the start
  const rest = url.slice(start);
  const authority = rest.slice(0, rest.search(/[/?#]|$/));
  const at = authority.lastIndexOf('@');
  const colon = authority.indexOf(':');
  if (at < 0 || colon < 0 || colon > at) return url;
  return `${url.slice(0, start)}${authority.slice(0, colon)}:***${rest.slice(at)}`;
}

function failed(message: string): ExportResult {
  return { code: ExportResultCode.FAILED, error: new KubernautAuditExportError(message) };
}

/**
 * True when `value` is a KubernautAuditExporter of this copy of the package (an ESM and a
 * CommonJS copy loaded side by side do not share private state).
 * @experimental
 */
export function isKubernautAuditExporter(value: unknown): value is KubernautAuditExporter {
  return access.is(value);
}

/**
 * Delivers already mapped events in order, retrying without end until each is accepted
 * (201/202) or dead-lettered, or `signal` aborts: then the unsettled ones are `pending` and the
 * caller must deliver them later. Events older than 7 days are dead-lettered (`expired`) without
 * being sent. Never rejects.
 * @experimental
 */
export function deliverEvents(
  exporter: KubernautAuditExporter,
  events: AuditEventRequest[],
  options: { signal?: AbortSignal } = {},
): Promise<DeliveryResult> {
  return access.deliverEvents(exporter, events, options);
}

/**
 * The AuditDeliverer of `exporter` for the sender behind the spool: the exporter's URL,
 * credentials, TLS, timeouts and retry settings; dead letters through `options.deadLetters`.
 * The exporter is not modified. Its waits and sockets never keep the process alive.
 * @experimental
 */
export function createAuditDeliverer(
  exporter: KubernautAuditExporter,
  options: AuditDelivererOptions = {},
): ExporterDeliverer {
  return access.deliverer(exporter, options);
}

/**
 * The validator loaded from the exporter's `openapiSpec` once it is ready. The
 * AuditLogRecordProcessor uses it to validate records fully when they are emitted.
 */
export function openApiValidatorOf(exporter: KubernautAuditExporter): OpenApiStatus {
  return access.openApiValidator(exporter);
}

/** What `exporter` was built from (the off-thread processor builds its twin in its thread). */
export function exporterGivenOf(exporter: KubernautAuditExporter): ExporterGiven {
  return access.given(exporter);
}
