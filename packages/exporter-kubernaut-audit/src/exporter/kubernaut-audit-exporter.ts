// SPDX-License-Identifier: Apache-2.0
/*
 * KubernautAuditExporter (DESIGN §3, §6): maps audit log records onto DataStorage
 * AuditEventRequests and POSTs them to `/api/v1/audit/events/batch`.
 *
 * - Standalone under any OTel processor (`export()`): non-audit records are ignored and
 *   counted, invalid audit records are dead-lettered, valid events are sent; retries stay
 *   within `timeoutMillis` in total, then the export reports FAILED (like the OTLP exporters).
 * - Behind the spool (`deliver()`, used by AuditLogRecordProcessor): retries without end
 *   until every event is accepted or dead-lettered, or the signal aborts.
 *
 * Code running here is called from application code paths: nothing throws out of it.
 */

import {
  AUDIT_EVENTS_BATCH_PATH,
  type AuditEventRequest,
  type ContractViolation,
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
import { DeadLetterWriter, defaultDeadLetterPath } from '../dead-letter/dead-letter-writer.ts';
import { ComponentDiag } from '../diag/component-diag.ts';
import { isAuditRecord, mapLogRecord } from '../mapping/index.ts';
import { ExporterMetrics } from '../metrics/exporter-metrics.ts';
import { exporterCreated } from '../setup-checks/index.ts';
import { BearerTokenSource } from '../transport/bearer-token.ts';
import { HttpTransport } from '../transport/http-transport.ts';
import {
  type DeliveryDeps,
  type DeliveryResult,
  type RunResult,
  runDelivery,
  type Sleeper,
} from './delivery.ts';
import { type KubernautAuditExporterInternals, takeInternals } from './internals.ts';
import { loadSpec, type SpecState, type SpecValidator } from './openapi-spec.ts';

export type { DeliveryOutcome, DeliveryResult } from './delivery.ts';

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

const defaultSleep: Sleeper = (ms, signal) =>
  new Promise<void>((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });

/** The OpenAPI validator of an exporter, as far as it is loaded. */
export interface OpenApiStatus {
  /** False while the spec is still loading. */
  settled: boolean;
  /** The validator, once loaded (never without `openapiSpec`). */
  validator?: SpecValidator;
}

/** What the package's own code may do with an exporter beyond the LogRecordExporter API. */
interface ExporterAccess {
  is(value: unknown): value is KubernautAuditExporter;
  deliver(
    e: KubernautAuditExporter,
    events: AuditEventRequest[],
    options: { signal?: AbortSignal },
  ): Promise<DeliveryResult>;
  setDeadLetterWriter(e: KubernautAuditExporter, writer: DeadLetterWriter): void;
  openApiValidator(e: KubernautAuditExporter): OpenApiStatus;
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
  private readonly _token: BearerTokenSource;
  private readonly _deps: DeliveryDeps;
  private readonly _internals: KubernautAuditExporterInternals;
  private readonly _exports = new Set<Promise<unknown>>();
  private readonly _deliveries = new Set<Promise<unknown>>();
  private readonly _abort = new AbortController();
  private _deadLetter: DeadLetterWriter | undefined;
  private _ownsDeadLetter = false;
  /** Loading of `openapiSpec` (undefined without one). */
  private readonly _spec: Promise<SpecState> | undefined;
  private _specState: SpecState | undefined;
  private _shutdown: Promise<void> | undefined;

  constructor(options: KubernautAuditExporterOptions = {}) {
    const internals = takeInternals();
    this._internals = internals;
    this._config = resolveExporterConfig(options, internals.env ?? process.env);
    this._metrics = new ExporterMetrics(
      options.meterProvider ? { meterProvider: options.meterProvider } : {},
    );
    this._diag = new ComponentDiag(`KubernautAuditExporter ${this._metrics.componentName}`);
    exporterCreated(this._diag);
    this._deadLetter = internals.deadLetter;

    let url: URL | undefined;
    if (this._config.url === undefined) {
      this._configError =
        'no DataStorage URL: set the `url` option or the KUBERNAUT_AUDIT_ENDPOINT environment variable';
    } else {
      try {
        url = batchUrl(this._config.url);
      } catch {
        this._configError = 'the DataStorage URL is not a valid http(s) URL';
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
        this._diag.report('error', 'token-file', `cannot read the bearer token file (${code})`),
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
      deadLetter: () => this._deadLetterWriter(),
      diag: this._diag,
      sleep: internals.sleep ?? defaultSleep,
      now,
      random: internals.random ?? Math.random,
    };
  }

  /** `otel.component.name` of this exporter's metrics. */
  get componentName(): string {
    return this._metrics.componentName;
  }

  /** See {@link useDeadLetterWriter}. */
  #setDeadLetterWriter(writer: DeadLetterWriter): void {
    const own = this._ownsDeadLetter ? this._deadLetter : undefined;
    this._deadLetter = writer;
    this._ownsDeadLetter = false;
    void own?.close();
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
  async #deliver(
    events: AuditEventRequest[],
    options: { signal?: AbortSignal } = {},
  ): Promise<DeliveryResult> {
    const configError =
      this._configError ??
      ((await this._spec)?.kind === 'missing-libraries'
        ? (this._specState as { message: string }).message
        : undefined);
    if (this._shutdown !== undefined || configError !== undefined) {
      if (configError !== undefined) {
        this._diag.report('error', 'config', `${configError}; events stay pending`, events.length);
      }
      return { outcomes: events.map(() => 'pending') };
    }
    const signal = options.signal
      ? AbortSignal.any([options.signal, this._abort.signal])
      : this._abort.signal;
    const p = this._run(events, signal, undefined);
    this._deliveries.add(p);
    try {
      const r = await p;
      // The caller resends pending events: those of an ambiguous attempt may duplicate.
      this._metrics.duplicatesPossible(r.ambiguous);
      return { outcomes: r.outcomes };
    } catch (err) {
      this._diag.error('unexpected delivery error', err);
      return { outcomes: events.map(() => 'pending') };
    } finally {
      this._deliveries.delete(p);
    }
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
      if (this._ownsDeadLetter) await this._deadLetter?.close();
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
    const events: AuditEventRequest[] = [];
    const invalid: Array<{ record: ReadableLogRecord; violations: ContractViolation[] }> = [];
    for (const record of audit) {
      let mapped: ReturnType<typeof mapLogRecord>;
      try {
        mapped = mapLogRecord(record, { now, ...(validator ? { openApi: validator } : {}) });
      } catch (err) {
        mapped = {
          ok: false,
          violations: [{ field: '', reason: 'invalid_record', message: errorText(err) }],
        };
      }
      if (mapped.ok) {
        events.push(mapped.event);
        for (const o of mapped.omitted) this._metrics.fieldOmitted(o.reason);
      } else {
        invalid.push({ record, violations: mapped.violations });
      }
    }
    this._metrics.started(audit.length);
    if (invalid.length > 0) {
      await this._deadLetterWriter().write(
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
    if (events.length === 0) return { code: ExportResultCode.SUCCESS };

    const deadline = this._deps.now() + this._config.timeoutMillis;
    const r = await this._run(events, this._abort.signal, deadline, true);
    if (r.outcomes.every((o) => o !== 'pending')) return { code: ExportResultCode.SUCCESS };
    const pending = r.outcomes.filter((o) => o === 'pending').length;
    return failed(
      `${pending} audit event(s) not delivered within ${this._config.timeoutMillis} ms: ${r.lastError ?? 'export timed out'}`,
    );
  }

  /** Runs a delivery and keeps the exporter metrics (inflight/exported) balanced. */
  private async _run(
    events: AuditEventRequest[],
    signal: AbortSignal,
    deadline: number | undefined,
    alreadyStarted = false,
  ): Promise<RunResult> {
    if (!alreadyStarted) this._metrics.started(events.length);
    let r: RunResult;
    try {
      r = await runDelivery(this._deps, events, { signal, deadline });
    } catch (err) {
      this._diag.error('unexpected delivery error', err);
      r = { outcomes: events.map(() => 'pending'), ambiguous: 0, lastError: 'unexpected error' };
    }
    let accepted = 0;
    let dead = 0;
    for (const o of r.outcomes) {
      if (o === 'accepted') accepted++;
      else if (o === 'dead_lettered') dead++;
    }
    const pending = r.outcomes.length - accepted - dead;
    this._metrics.finished(accepted);
    this._metrics.finished(dead, 'dead_lettered');
    this._metrics.finished(pending, deadline === undefined ? 'aborted' : 'timeout');
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

  private _deadLetterWriter(): DeadLetterWriter {
    if (this._deadLetter === undefined) {
      const env = this._internals.env ?? process.env;
      this._deadLetter = new DeadLetterWriter({
        path: this._internals.deadLetterPath ?? defaultDeadLetterPath(env),
        ...(this._internals.deadLetterMaxBytes === undefined
          ? {}
          : { maxBytes: this._internals.deadLetterMaxBytes }),
      });
      this._ownsDeadLetter = true;
    }
    return this._deadLetter;
  }

  static {
    access = {
      is: (value) => typeof value === 'object' && value !== null && #deliver in value,
      deliver: (e, events, options) => e.#deliver(events, options),
      setDeadLetterWriter: (e, writer) => e.#setDeadLetterWriter(writer),
      openApiValidator: (e) => e.#openApiValidator(),
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

function failed(message: string): ExportResult {
  return { code: ExportResultCode.FAILED, error: new KubernautAuditExportError(message) };
}

/** What a dead letter keeps of a record that could not be mapped. */
function recordSnapshot(record: ReadableLogRecord): Record<string, unknown> {
  try {
    return {
      event_name: record.eventName,
      timestamp: record.hrTime,
      observed_timestamp: record.hrTimeObserved,
      attributes: record.attributes,
      body: record.body,
    };
  } catch {
    return {};
  }
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
 * being sent. Never rejects. What the AuditLogRecordProcessor's sender calls.
 * @experimental
 */
export function deliverEvents(
  exporter: KubernautAuditExporter,
  events: AuditEventRequest[],
  options: { signal?: AbortSignal } = {},
): Promise<DeliveryResult> {
  return access.deliver(exporter, events, options);
}

/**
 * Makes `exporter` write dead letters through `writer` (e.g. the processor's, so that one file
 * holds them all). The caller keeps ownership of the writer.
 * @experimental
 */
export function useDeadLetterWriter(
  exporter: KubernautAuditExporter,
  writer: DeadLetterWriter,
): void {
  access.setDeadLetterWriter(exporter, writer);
}

/**
 * The validator loaded from the exporter's `openapiSpec` once it is ready. The
 * AuditLogRecordProcessor uses it to validate records fully when they are emitted.
 */
export function openApiValidatorOf(exporter: KubernautAuditExporter): OpenApiStatus {
  return access.openApiValidator(exporter);
}
