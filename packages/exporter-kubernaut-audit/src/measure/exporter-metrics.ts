// SPDX-License-Identifier: Apache-2.0
/*
 * Metrics of the KubernautAuditExporter (DESIGN §7). OTel SDK self-observability
 * names where they exist (`otel.sdk.exporter.*`), our own `kubernaut.audit.*`
 * namespace for what OTel has no name for. Instruments are created on first use so
 * that a global MeterProvider registered after construction is honoured.
 */
import type { Attributes, MeterProvider } from '@opentelemetry/api';
import { lazyInstrument, lazyMeter } from '../measure/meter.ts';

/** `otel.component.type` of the exporter. */
export const EXPORTER_COMPONENT_TYPE = 'kubernaut_audit_exporter';

export const METRIC_EXPORTER_LOG_EXPORTED = 'otel.sdk.exporter.log.exported';
export const METRIC_EXPORTER_LOG_INFLIGHT = 'otel.sdk.exporter.log.inflight';
export const METRIC_EXPORTER_OPERATION_DURATION = 'otel.sdk.exporter.operation.duration';
export const METRIC_AUDIT_DEAD_LETTERED = 'kubernaut.audit.dead_lettered';
export const METRIC_AUDIT_RETRIES = 'kubernaut.audit.retries';
export const METRIC_AUDIT_DUPLICATES_POSSIBLE = 'kubernaut.audit.duplicates_possible';
export const METRIC_AUDIT_POISON = 'kubernaut.audit.poison';
export const METRIC_AUDIT_UNEXPECTED_RESPONSE = 'kubernaut.audit.delivery.unexpected_response';
export const METRIC_AUDIT_IGNORED = 'kubernaut.audit.exporter.ignored';
export const METRIC_AUDIT_FIELDS_OMITTED = 'kubernaut.audit.exporter.fields_omitted';

export const ATTR_OTEL_COMPONENT_TYPE = 'otel.component.type';
export const ATTR_OTEL_COMPONENT_NAME = 'otel.component.name';
export const ATTR_ERROR_TYPE = 'error.type';
export const ATTR_HTTP_RESPONSE_STATUS_CODE = 'http.response.status_code';
export const ATTR_AUDIT_REASON = 'kubernaut.audit.reason';

let componentCounter = 0;

export interface ExporterMetricsOptions {
  meterProvider?: MeterProvider;
}

/** Records the exporter's instruments; every method is safe to call at any time. */
export class ExporterMetrics {
  /** `otel.component.name`, `kubernaut_audit_exporter/<n>`. */
  readonly componentName: string;
  private readonly _attrs: Attributes;
  private readonly _exported;
  private readonly _inflight;
  private readonly _duration;
  private readonly _deadLettered;
  private readonly _retries;
  private readonly _duplicates;
  private readonly _ignored;
  private readonly _omitted;
  private readonly _poison;
  private readonly _unexpected;

  constructor(options: ExporterMetricsOptions = {}) {
    this.componentName = `${EXPORTER_COMPONENT_TYPE}/${componentCounter++}`;
    this._attrs = {
      [ATTR_OTEL_COMPONENT_TYPE]: EXPORTER_COMPONENT_TYPE,
      [ATTR_OTEL_COMPONENT_NAME]: this.componentName,
    };
    const meter = lazyMeter(options.meterProvider);
    this._exported = lazyInstrument(meter, (m) =>
      m.createCounter(METRIC_EXPORTER_LOG_EXPORTED, {
        unit: '{log_record}',
        description:
          'The number of log records for which the export has finished, either successful or failed.',
      }),
    );
    this._inflight = lazyInstrument(meter, (m) =>
      m.createUpDownCounter(METRIC_EXPORTER_LOG_INFLIGHT, {
        unit: '{log_record}',
        description:
          'The number of log records which were passed to the exporter, but that have not been exported yet.',
      }),
    );
    this._duration = lazyInstrument(meter, (m) =>
      m.createHistogram(METRIC_EXPORTER_OPERATION_DURATION, {
        unit: 's',
        description: 'The duration of one HTTP request to DataStorage.',
      }),
    );
    this._deadLettered = lazyInstrument(meter, (m) =>
      m.createCounter(METRIC_AUDIT_DEAD_LETTERED, {
        unit: '{event}',
        description: 'Audit events written to the dead-letter file instead of DataStorage.',
      }),
    );
    this._retries = lazyInstrument(meter, (m) =>
      m.createCounter(METRIC_AUDIT_RETRIES, {
        unit: '{request}',
        description: 'Requests to DataStorage that will be retried, by reason.',
      }),
    );
    this._duplicates = lazyInstrument(meter, (m) =>
      m.createCounter(METRIC_AUDIT_DUPLICATES_POSSIBLE, {
        unit: '{event}',
        description:
          'Events resent that DataStorage may already have stored: after an ambiguous failure (a timeout or reset after the request was sent), or marked sent by a process that ended before the answer.',
      }),
    );
    this._poison = lazyInstrument(meter, (m) =>
      m.createCounter(METRIC_AUDIT_POISON, {
        unit: '{event}',
        description:
          'Events quarantined as poison: the same server error again and again while DataStorage accepted other events (dead-lettered, replayable).',
      }),
    );
    this._unexpected = lazyInstrument(meter, (m) =>
      m.createCounter(METRIC_AUDIT_UNEXPECTED_RESPONSE, {
        unit: '{response}',
        description:
          "Answers that are not DataStorage's (a 2xx without its body, a 400 that is not its problem+json): a misconfiguration; the events are retried.",
      }),
    );
    this._ignored = lazyInstrument(meter, (m) =>
      m.createCounter(METRIC_AUDIT_IGNORED, {
        unit: '{log_record}',
        description: 'Log records passed to the exporter that are not audit records.',
      }),
    );
    this._omitted = lazyInstrument(meter, (m) =>
      m.createCounter(METRIC_AUDIT_FIELDS_OMITTED, {
        unit: '{field}',
        description: 'Invalid optional fields left out of a delivered event, by reason.',
      }),
    );
  }

  /** Records that `count` records entered the exporter (inflight). */
  started(count: number): void {
    if (count > 0) this._inflight().add(count, this._attrs);
  }

  /** Records that `count` records left the exporter, failed when `errorType` is set. */
  finished(count: number, errorType?: string): void {
    if (count <= 0) return;
    this._inflight().add(-count, this._attrs);
    this._exported().add(
      count,
      errorType === undefined ? this._attrs : { ...this._attrs, [ATTR_ERROR_TYPE]: errorType },
    );
  }

  /** Duration of one HTTP request; `status` when a response arrived. */
  request(seconds: number, status: number | undefined, errorType?: string): void {
    const attrs: Attributes = { ...this._attrs };
    if (status !== undefined) attrs[ATTR_HTTP_RESPONSE_STATUS_CODE] = status;
    if (errorType !== undefined) attrs[ATTR_ERROR_TYPE] = errorType;
    this._duration().record(seconds, attrs);
  }

  deadLettered(count: number, reason: string): void {
    if (count > 0) this._deadLettered().add(count, { ...this._attrs, [ATTR_AUDIT_REASON]: reason });
  }

  /** A retry, by reason: the status code (`"503"`), `timeout` or `network`. */
  retry(reason: string): void {
    this._retries().add(1, { ...this._attrs, [ATTR_AUDIT_REASON]: reason });
  }

  duplicatesPossible(count: number): void {
    if (count > 0) this._duplicates().add(count, this._attrs);
  }

  poison(count: number): void {
    if (count > 0) this._poison().add(count, this._attrs);
  }

  /** An answer that is not DataStorage's, by status. */
  unexpectedResponse(status: number | undefined): void {
    this._unexpected().add(
      1,
      status === undefined
        ? this._attrs
        : { ...this._attrs, [ATTR_HTTP_RESPONSE_STATUS_CODE]: status },
    );
  }

  ignored(count: number): void {
    if (count > 0) this._ignored().add(count, this._attrs);
  }

  fieldOmitted(reason: string, count = 1): void {
    if (count > 0) this._omitted().add(count, { ...this._attrs, [ATTR_AUDIT_REASON]: reason });
  }
}
