// SPDX-License-Identifier: Apache-2.0
/*
 * Metrics of AuditLogRecordProcessor (DESIGN §7). The meter is resolved lazily, at first use,
 * from the `meterProvider` option else the global provider (NodeSDK registers its provider
 * after the processors are constructed).
 */
import type { Attributes, Counter, Histogram, Meter, MeterProvider } from '@opentelemetry/api';
import { lazyMeter } from './meter.ts';

export const PROCESSOR_COMPONENT_TYPE = 'audit_log_record_processor';

let componentCounter = 0;

/** Live values the observable instruments read. */
export interface ProcessorObservations {
  queueSize(): number;
  queueCapacity(): number;
  spoolBytes(): number;
  /** ms since the oldest unacknowledged spool record was appended; undefined when empty. */
  spoolOldestAgeMillis(): number | undefined;
  memoryOnly(): boolean;
}

interface Instruments {
  processed: Counter;
  drift: Histogram;
  slow: Counter;
  latency: Histogram;
  spoolDropped: Counter;
  spoolCorrupted: Counter;
  invalid: Counter;
}

/** Instruments of one processor instance; every method is safe to call at any time. */
export class ProcessorMetrics {
  readonly componentName: string;
  private readonly _meter: () => Meter;
  private readonly _observations: ProcessorObservations;
  private readonly _attrs: Attributes;
  private _instruments: Instruments | undefined;

  constructor(options: { meterProvider?: MeterProvider; observations: ProcessorObservations }) {
    this._meter = lazyMeter(options.meterProvider);
    this._observations = options.observations;
    this.componentName = `${PROCESSOR_COMPONENT_TYPE}/${componentCounter++}`;
    this._attrs = {
      'otel.component.type': PROCESSOR_COMPONENT_TYPE,
      'otel.component.name': this.componentName,
    };
  }

  /** Resolves the meter and registers the observable instruments (idempotent). */
  resolve(): void {
    this._get();
  }

  private _get(): Instruments {
    if (this._instruments) return this._instruments;
    const meter = this._meter();
    const attrs = this._attrs;
    const obs = this._observations;
    const instruments: Instruments = {
      processed: meter.createCounter('otel.sdk.processor.log.processed', {
        unit: '{log_record}',
        description:
          'Audit log records whose processing finished (written to the spool), or failed with error.type.',
      }),
      drift: meter.createHistogram('kubernaut.audit.timer.drift', {
        unit: 'ms',
        description: 'How late a timer-driven batch export started against scheduledDelayMillis.',
      }),
      slow: meter.createCounter('kubernaut.audit.export.slow', {
        unit: '{export}',
        description: 'Exports that took longer than slowExportThresholdMillis.',
      }),
      latency: meter.createHistogram('kubernaut.audit.delivery.latency', {
        unit: 'ms',
        description: 'Time from emit() to acceptance by DataStorage.',
      }),
      spoolDropped: meter.createCounter('kubernaut.audit.spool.dropped', {
        unit: '{log_record}',
        description: 'Audit records dropped because the spool was full (maxBytes) or not writable.',
      }),
      spoolCorrupted: meter.createCounter('kubernaut.audit.spool.corrupted', {
        unit: '{log_record}',
        description: 'Corrupted or torn spool records detected, skipped and counted.',
      }),
      invalid: meter.createCounter('kubernaut.audit.invalid', {
        unit: '{violation}',
        description:
          'Contract violations found at emit, by kubernaut.audit.reason: in dead-lettered records and in optional fields left out.',
      }),
    };
    meter
      .createObservableUpDownCounter('otel.sdk.processor.log.queue.size', {
        unit: '{log_record}',
        description: 'Audit records emitted and not yet written to the spool.',
      })
      .addCallback((r) => r.observe(obs.queueSize(), attrs));
    meter
      .createObservableUpDownCounter('otel.sdk.processor.log.queue.capacity', {
        unit: '{log_record}',
        description: 'Capacity of the in-memory batch queue (maxQueueSize).',
      })
      .addCallback((r) => r.observe(obs.queueCapacity(), attrs));
    meter
      .createObservableGauge('kubernaut.audit.spool.bytes', {
        unit: 'By',
        description: 'Bytes of unacknowledged records in the spool.',
      })
      .addCallback((r) => r.observe(obs.spoolBytes(), attrs));
    meter
      .createObservableGauge('kubernaut.audit.spool.oldest_age', {
        unit: 'ms',
        description: 'Age of the oldest unacknowledged spool record.',
      })
      .addCallback((r) => r.observe(obs.spoolOldestAgeMillis() ?? 0, attrs));
    meter
      .createObservableGauge('kubernaut.audit.spool.memory_only', {
        unit: '1',
        description: '1 when the spool could not be opened and records are kept in memory only.',
      })
      .addCallback((r) => r.observe(obs.memoryOnly() ? 1 : 0, attrs));
    this._instruments = instruments;
    return instruments;
  }

  /** Records written to the spool (processing finished successfully). */
  processed(count: number): void {
    if (count > 0) this._get().processed.add(count, this._attrs);
  }

  /** Records that failed processing (`queue_full` even though spooled, `invalid`, `spool_full`). */
  processedError(count: number, errorType: string): void {
    if (count > 0) this._get().processed.add(count, { ...this._attrs, 'error.type': errorType });
  }

  invalid(reason: string): void {
    this._get().invalid.add(1, { ...this._attrs, 'kubernaut.audit.reason': reason });
  }

  timerDrift(millis: number): void {
    this._get().drift.record(Math.max(0, millis), this._attrs);
  }

  slowExport(stage: 'spool' | 'deliver'): void {
    this._get().slow.add(1, { ...this._attrs, 'kubernaut.audit.stage': stage });
  }

  deliveryLatency(millis: number): void {
    this._get().latency.record(Math.max(0, millis), this._attrs);
  }

  spoolDropped(count: number, reason: 'full' | 'error' | 'closed'): void {
    if (count > 0)
      this._get().spoolDropped.add(count, { ...this._attrs, 'kubernaut.audit.reason': reason });
  }

  spoolCorrupted(count: number): void {
    if (count > 0) this._get().spoolCorrupted.add(count, this._attrs);
  }
}
