// SPDX-License-Identifier: Apache-2.0
/* Metrics through a real MeterProvider with an in-memory (pull) reader. */
import type { Attributes } from '@opentelemetry/api';
import {
  type DataPoint,
  type Histogram,
  MeterProvider,
  MetricReader,
  type ResourceMetrics,
} from '@opentelemetry/sdk-metrics';

/** A pull metric reader: `collect()` on demand. */
export class TestMetricReader extends MetricReader {
  protected override onShutdown(): Promise<void> {
    return Promise.resolve();
  }
  protected override onForceFlush(): Promise<void> {
    return Promise.resolve();
  }
}

export interface TestMetrics {
  meterProvider: MeterProvider;
  reader: TestMetricReader;
  /** Every data point, by instrument name. */
  collect(): Promise<Map<string, Array<DataPoint<unknown>>>>;
  /** The data points of `name`. */
  points(name: string): Promise<Array<DataPoint<unknown>>>;
  /** Sum of the points of `name` whose attributes include `attrs` (histograms: their counts). */
  sum(name: string, attrs?: Attributes): Promise<number>;
  /** Count of the histogram points of `name` whose attributes include `attrs`. */
  histogramCount(name: string, attrs?: Attributes): Promise<number>;
  /** The first histogram point of `name`. */
  histogram(name: string): Promise<Histogram | undefined>;
}

/** A MeterProvider whose metrics a test can read back. */
export function testMetrics(): TestMetrics {
  const reader = new TestMetricReader();
  const meterProvider = new MeterProvider({ readers: [reader] });
  const collect = async () => {
    const { resourceMetrics } = (await reader.collect()) as { resourceMetrics: ResourceMetrics };
    const out = new Map<string, Array<DataPoint<unknown>>>();
    for (const sm of resourceMetrics.scopeMetrics) {
      for (const m of sm.metrics) {
        const list = out.get(m.descriptor.name) ?? [];
        list.push(...(m.dataPoints as Array<DataPoint<unknown>>));
        out.set(m.descriptor.name, list);
      }
    }
    return out;
  };
  const points = async (name: string) => (await collect()).get(name) ?? [];
  const matches = (p: DataPoint<unknown>, attrs: Attributes = {}) =>
    Object.entries(attrs).every(([k, v]) => p.attributes[k] === v);
  const total = async (name: string, attrs: Attributes | undefined, histogramsOnly: boolean) => {
    let n = 0;
    for (const p of await points(name)) {
      if (!matches(p, attrs)) continue;
      if (typeof p.value === 'number') n += histogramsOnly ? 0 : p.value;
      else n += (p.value as Histogram).count;
    }
    return n;
  };
  return {
    meterProvider,
    reader,
    collect,
    points,
    sum: (name, attrs) => total(name, attrs, false),
    histogramCount: (name, attrs) => total(name, attrs, true),
    histogram: async (name) => (await points(name))[0]?.value as Histogram | undefined,
  };
}
