// SPDX-License-Identifier: Apache-2.0
/*
 * Lazy meter resolution. NodeSDK registers its global MeterProvider after the log
 * record processors (and their exporters) are constructed, so a meter taken in a
 * constructor would be the no-op one forever. The meter is resolved at first use
 * instead: from the `meterProvider` option when given, else from the global API.
 */
import { type Meter, type MeterProvider, metrics } from '@opentelemetry/api';

/** Instrumentation scope name of every instrument of this package. */
export const METER_NAME = '@kubernaut/exporter-kubernaut-audit';
/** Instrumentation scope version. */
export const METER_VERSION = '0.1.0';

/** Returns a function that resolves the meter on its first call and caches it. */
export function lazyMeter(meterProvider?: MeterProvider): () => Meter {
  let meter: Meter | undefined;
  return () => {
    if (meter === undefined) {
      const provider = meterProvider ?? metrics.getMeterProvider();
      meter = provider.getMeter(METER_NAME, METER_VERSION);
    }
    return meter;
  };
}

/**
 * Creates an instrument on first use, so that the meter itself is resolved lazily.
 * `create` receives the meter; the instrument is cached.
 */
export function lazyInstrument<T>(getMeter: () => Meter, create: (meter: Meter) => T): () => T {
  let instrument: T | undefined;
  return () => {
    if (instrument === undefined) instrument = create(getMeter());
    return instrument;
  };
}
