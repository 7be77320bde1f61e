// SPDX-License-Identifier: Apache-2.0
/*
 * A MeterProvider handed to the inner OTel BatchLogRecordProcessor as its (experimental)
 * `selfObsMeterProvider`. It records nothing; it only reports, synchronously, when the
 * batch processor counts a record as `error.type=queue_full` (dropped because its queue is
 * full), so that the record can be spooled instead of being lost.
 */
import {
  type Attributes,
  type Counter,
  createNoopMeter,
  type Meter,
  type MeterProvider,
} from '@opentelemetry/api';

const PROCESSED = 'otel.sdk.processor.log.processed';

export function createDropTap(onQueueFull: (count: number) => void): MeterProvider {
  const noop = createNoopMeter();
  const tapCounter: Counter = {
    add(value: number, attributes?: Attributes) {
      if (attributes?.['error.type'] === 'queue_full') onQueueFull(value);
    },
  };
  const meter: Meter = {
    createCounter: (name, options) =>
      name === PROCESSED ? tapCounter : noop.createCounter(name, options),
    createGauge: (name, options) => noop.createGauge(name, options),
    createHistogram: (name, options) => noop.createHistogram(name, options),
    createUpDownCounter: (name, options) => noop.createUpDownCounter(name, options),
    createObservableGauge: (name, options) => noop.createObservableGauge(name, options),
    createObservableCounter: (name, options) => noop.createObservableCounter(name, options),
    createObservableUpDownCounter: (name, options) =>
      noop.createObservableUpDownCounter(name, options),
    addBatchObservableCallback: (cb, observables) =>
      noop.addBatchObservableCallback(cb, observables),
    removeBatchObservableCallback: (cb, observables) =>
      noop.removeBatchObservableCallback(cb, observables),
  };
  return { getMeter: () => meter };
}
