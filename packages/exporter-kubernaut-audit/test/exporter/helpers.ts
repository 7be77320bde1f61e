/* Shared helpers of the exporter tests: events, a metrics reader, temp dirs, a recording sleeper. */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AuditEventRequest } from '@kubernaut/exporter-kubernaut-audit';
import type { Attributes } from '@opentelemetry/api';
import {
  type DataPoint,
  type Histogram,
  MeterProvider,
  MetricReader,
  type ResourceMetrics,
} from '@opentelemetry/sdk-metrics';
import { realisticPayload } from '../../../../test/support/payloads.ts';

export { FaultServer } from '../../../../test/support/fault-server.ts';

let seq = 0;

/** A valid AuditEventRequest with a unique correlation id. */
export function auditEvent(overrides: Partial<AuditEventRequest> = {}): AuditEventRequest {
  const n = ++seq;
  const eventType = overrides.event_type ?? 'gateway.signal.received';
  return {
    version: '1.0',
    event_type: eventType,
    event_timestamp: new Date().toISOString(),
    event_category: 'gateway',
    event_action: 'received',
    event_outcome: 'success',
    correlation_id: `corr-${process.pid}-${n}`,
    actor_type: 'service',
    actor_id: 'payments-gateway',
    event_data: realisticPayload(eventType),
    ...overrides,
  };
}

export function auditEvents(count: number): AuditEventRequest[] {
  return Array.from({ length: count }, () => auditEvent());
}

/** A pull metric reader for tests: `collect()` on demand. */
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
  /** Sum of the points of `name` whose attributes include `attrs`. */
  sum(name: string, attrs?: Attributes): Promise<number>;
  /** Histogram point count of `name` whose attributes include `attrs`. */
  histogramCount(name: string, attrs?: Attributes): Promise<number>;
  /** All points of `name`. */
  points(name: string): Promise<Array<DataPoint<unknown>>>;
}

export function testMetrics(): TestMetrics {
  const reader = new TestMetricReader();
  const meterProvider = new MeterProvider({ readers: [reader] });
  const points = async (name: string): Promise<Array<DataPoint<unknown>>> => {
    const { resourceMetrics } = (await reader.collect()) as { resourceMetrics: ResourceMetrics };
    const out: Array<DataPoint<unknown>> = [];
    for (const sm of resourceMetrics.scopeMetrics) {
      for (const m of sm.metrics) {
        if (m.descriptor.name === name) out.push(...(m.dataPoints as Array<DataPoint<unknown>>));
      }
    }
    return out;
  };
  const matches = (p: DataPoint<unknown>, attrs: Attributes = {}) =>
    Object.entries(attrs).every(([k, v]) => p.attributes[k] === v);
  return {
    meterProvider,
    points,
    async sum(name, attrs) {
      let total = 0;
      for (const p of await points(name)) if (matches(p, attrs)) total += p.value as number;
      return total;
    },
    async histogramCount(name, attrs) {
      let total = 0;
      for (const p of await points(name)) {
        if (matches(p, attrs)) total += (p.value as Histogram).count;
      }
      return total;
    },
  };
}

/** A temp directory removed by `cleanup()`. */
export function tempDir(): { dir: string; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'kn-exporter-test-'));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Lines of a JSON-lines file ([] when absent). */
export function readJsonLines(path: string): Array<Record<string, unknown>> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/**
 * A sleeper that records the delays asked for and returns at once; `onSleep` runs before
 * it returns (e.g. to bring a server back).
 */
export function recordingSleeper(onSleep?: (ms: number, call: number) => void | Promise<void>): {
  delays: number[];
  sleep: (ms: number) => Promise<void>;
} {
  const delays: number[] = [];
  return {
    delays,
    async sleep(ms: number) {
      delays.push(ms);
      await onSleep?.(ms, delays.length);
    },
  };
}
