// SPDX-License-Identifier: Apache-2.0
/*
 * Metrics of the sender (DESIGN §7): whether the spool belongs to another destination, and
 * how many frame bytes the lanes hold in memory (bounded by the lane budgets). Observable
 * gauges, registered at the first `start()` (so that a global MeterProvider registered after
 * construction is used) and removed by `close()`.
 */
import type {
  Attributes,
  BatchObservableCallback,
  Meter,
  MeterProvider,
  Observable,
} from '@opentelemetry/api';
import { lazyMeter } from './meter.ts';

export const METRIC_SPOOL_DESTINATION_MISMATCH = 'kubernaut.audit.spool.destination_mismatch';
export const METRIC_SENDER_MEMORY = 'kubernaut.audit.sender.memory';

export interface SenderMetricsOptions {
  meterProvider?: MeterProvider;
  /** 1 while the spool's destination differs from the exporter's, else 0. */
  destinationMismatch: () => number;
  /** Frame bytes the lanes hold in memory. */
  heldBytes: () => number;
}

export class SenderMetrics {
  private readonly _meter: () => Meter;
  private readonly _opts: SenderMetricsOptions;
  private _registered: { meter: Meter; cb: BatchObservableCallback; obs: Observable[] } | undefined;
  private _closed = false;

  constructor(options: SenderMetricsOptions) {
    this._opts = options;
    this._meter = lazyMeter(options.meterProvider);
  }

  /** Registers the observable gauges (once). Never throws. */
  start(attrs: Attributes = {}): void {
    if (this._registered !== undefined || this._closed) return;
    try {
      const meter = this._meter();
      const mismatch = meter.createObservableGauge(METRIC_SPOOL_DESTINATION_MISMATCH, {
        unit: '1',
        description:
          '1 while the spool belongs to another DataStorage than the exporter: its records are not sent.',
      });
      const memory = meter.createObservableGauge(METRIC_SENDER_MEMORY, {
        unit: 'By',
        description: 'Frame bytes the sender holds in memory (bounded by the lane budgets).',
      });
      const cb: BatchObservableCallback = (r) => {
        r.observe(mismatch, this._opts.destinationMismatch(), attrs);
        r.observe(memory, this._opts.heldBytes(), attrs);
      };
      meter.addBatchObservableCallback(cb, [mismatch, memory]);
      this._registered = { meter, cb, obs: [mismatch, memory] };
    } catch {
      // metrics are best effort
    }
  }

  /** Removes the callbacks. */
  close(): void {
    this._closed = true;
    const r = this._registered;
    this._registered = undefined;
    try {
      r?.meter.removeBatchObservableCallback(r.cb, r.obs);
    } catch {
      // ignore
    }
  }
}
