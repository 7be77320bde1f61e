// SPDX-License-Identifier: Apache-2.0
/*
 * The delivery thread's metrics, carried to the application thread's MeterProvider.
 *
 * In the delivery thread, the pipeline's metrics code (measure/) is given a RecordingMeterProvider:
 * its instruments record every `add`/`record` as a plain tuple, and its observable instruments
 * keep their callbacks. `take()` returns what was defined and recorded since the last call and
 * runs the observable callbacks once (a snapshot). On the application thread, MeterReplay creates
 * the same instruments (name, kind, description, unit, advice) on the real MeterProvider, replays
 * the recorded calls in order, and reports each observable instrument's latest snapshot from its
 * own callback.
 *
 * Invariants: nothing here throws into the caller (a replay that fails is dropped with the
 * error returned to the caller once); what is taken is plain data (structured-clone safe);
 * observable values are at most one snapshot period old; `close()` removes every callback
 * registered on the real meters.
 */
import type {
  Attributes,
  BatchObservableCallback,
  BatchObservableResult,
  Meter,
  MeterOptions,
  MeterProvider,
  MetricOptions,
  Observable,
  ObservableCallback,
  ObservableResult,
} from '@opentelemetry/api';

type SyncKind = 'counter' | 'upDownCounter' | 'histogram' | 'gauge';
type ObservableKind = 'observableCounter' | 'observableUpDownCounter' | 'observableGauge';
export type InstrumentKind = SyncKind | ObservableKind;

/** One instrument defined in the delivery thread. */
export interface InstrumentDef {
  id: number;
  /** Which provider it belongs to (the processor's or the exporter's). */
  role: string;
  meter: { name: string; version?: string | undefined; options?: MeterOptions | undefined };
  kind: InstrumentKind;
  name: string;
  options?: MetricOptions | undefined;
}

/** What the delivery thread measured since the last take. */
export interface MetricsBatch {
  defs: InstrumentDef[];
  /** [instrument id, value, attributes] in the order they were recorded. */
  calls: Array<[number, number, Attributes | undefined]>;
  /** The observable instruments' values now: [instrument id, value, attributes]. */
  observed: Array<[number, number, Attributes | undefined]>;
}

/** Records the delivery thread's metrics for MeterReplay. */
export class MetricsRecorder {
  private _nextId = 1;
  private _defs: InstrumentDef[] = [];
  private _calls: MetricsBatch['calls'] = [];
  private readonly _single = new Map<number, Set<ObservableCallback>>();
  private readonly _batch = new Set<{ cb: BatchObservableCallback; ids: Set<number> }>();

  /** A MeterProvider whose instruments record here, tagged with `role`. */
  provider(role: string): MeterProvider {
    return { getMeter: (name, version, options) => this._meter(role, { name, version, options }) };
  }

  /** True when something was recorded since the last take (observables aside). */
  get dirty(): boolean {
    return this._defs.length > 0 || this._calls.length > 0;
  }

  /** What was defined and recorded since the last take, and a snapshot of the observables. */
  take(): MetricsBatch {
    const observed: MetricsBatch['observed'] = [];
    for (const [id, callbacks] of this._single) {
      const result: ObservableResult = {
        observe: (value, attributes) => {
          if (typeof value === 'number') observed.push([id, value, attributes]);
        },
      };
      for (const cb of callbacks) runCallback(() => cb(result));
    }
    for (const { cb, ids } of this._batch) {
      const result: BatchObservableResult = {
        observe: (observable, value, attributes) => {
          const id = (observable as { id?: unknown }).id;
          if (typeof id === 'number' && ids.has(id) && typeof value === 'number')
            observed.push([id, value, attributes]);
        },
      };
      runCallback(() => cb(result));
    }
    const batch = { defs: this._defs, calls: this._calls, observed };
    this._defs = [];
    this._calls = [];
    return batch;
  }

  private _meter(role: string, meter: InstrumentDef['meter']): Meter {
    const define = (kind: InstrumentKind, name: string, options?: MetricOptions): number => {
      const id = this._nextId++;
      this._defs.push({ id, role, meter, kind, name, options });
      return id;
    };
    const sync = (kind: SyncKind) => (name: string, options?: MetricOptions) => {
      const id = define(kind, name, options);
      const rec = (value: number, attributes?: Attributes) => {
        if (typeof value === 'number') this._calls.push([id, value, attributes]);
      };
      return { add: rec, record: rec };
    };
    const observable = (kind: ObservableKind) => (name: string, options?: MetricOptions) => {
      const id = define(kind, name, options);
      const callbacks = new Set<ObservableCallback>();
      this._single.set(id, callbacks);
      return {
        id,
        addCallback: (cb: ObservableCallback) => void callbacks.add(cb),
        removeCallback: (cb: ObservableCallback) => void callbacks.delete(cb),
      };
    };
    const batches = this._batch;
    const entries = new Map<
      BatchObservableCallback,
      { cb: BatchObservableCallback; ids: Set<number> }
    >();
    return {
      createCounter: sync('counter'),
      createUpDownCounter: sync('upDownCounter'),
      createHistogram: sync('histogram'),
      createGauge: sync('gauge'),
      createObservableCounter: observable('observableCounter'),
      createObservableUpDownCounter: observable('observableUpDownCounter'),
      createObservableGauge: observable('observableGauge'),
      addBatchObservableCallback(cb: BatchObservableCallback, observables: Observable[]) {
        const ids = new Set<number>();
        for (const o of observables) {
          const id = (o as { id?: unknown }).id;
          if (typeof id === 'number') ids.add(id);
        }
        const entry = { cb, ids };
        entries.set(cb, entry);
        batches.add(entry);
      },
      removeBatchObservableCallback(cb: BatchObservableCallback) {
        const entry = entries.get(cb);
        if (entry === undefined) return;
        entries.delete(cb);
        batches.delete(entry);
      },
    } as unknown as Meter;
  }
}

function runCallback(f: () => unknown): void {
  try {
    const r = f();
    if (r instanceof Promise) r.catch(() => undefined); // async callbacks: not awaited
  } catch {
    // an observable callback that throws reports nothing this time
  }
}

interface Replayed {
  kind: InstrumentKind;
  sync?: { add?(v: number, a?: Attributes): void; record?(v: number, a?: Attributes): void };
  observable?: Observable;
}

/** Replays the delivery thread's metrics onto real MeterProviders (application thread). */
export class MeterReplay {
  private readonly _providers: (role: string) => MeterProvider;
  private readonly _instruments = new Map<number, Replayed>();
  private readonly _meters = new Map<string, Meter>();
  /** The latest snapshot of the observables, by instrument id. */
  private _observed = new Map<number, Array<[number, Attributes | undefined]>>();
  private readonly _callbacks: Array<() => void> = [];
  private readonly _overrides: ReadonlyMap<string, () => number>;

  /**
   * `providers(role)`: the real MeterProvider of a role, resolved at first use. `overrides`: the
   * observable instruments whose value this thread knows better (by name; e.g. the queue that
   * lives on the application thread), reported with the delivery thread's attributes.
   */
  constructor(
    providers: (role: string) => MeterProvider,
    overrides: ReadonlyMap<string, () => number> = new Map(),
  ) {
    this._providers = providers;
    this._overrides = overrides;
  }

  /** Applies one batch from the delivery thread. */
  apply(batch: MetricsBatch): void {
    for (const def of batch.defs) this._define(def);
    for (const [id, value, attributes] of batch.calls) {
      const i = this._instruments.get(id)?.sync;
      if (i?.add !== undefined) i.add(value, attributes);
      else i?.record?.(value, attributes);
    }
    const observed = new Map<number, Array<[number, Attributes | undefined]>>();
    for (const [id, value, attributes] of batch.observed) {
      const list = observed.get(id);
      if (list === undefined) observed.set(id, [[value, attributes]]);
      else list.push([value, attributes]);
    }
    this._observed = observed;
  }

  /** Removes every callback registered on the real meters. */
  close(): void {
    for (const remove of this._callbacks.splice(0)) remove();
    this._observed.clear();
  }

  private _define(def: InstrumentDef): void {
    const key = `${def.role}\u0000${def.meter.name}\u0000${def.meter.version ?? ''}`;
    let meter = this._meters.get(key);
    if (meter === undefined) {
      meter = this._providers(def.role).getMeter(
        def.meter.name,
        def.meter.version,
        def.meter.options,
      );
      this._meters.set(key, meter);
    }
    const m = meter;
    switch (def.kind) {
      case 'counter':
        this._instruments.set(def.id, {
          kind: def.kind,
          sync: m.createCounter(def.name, def.options),
        });
        return;
      case 'upDownCounter':
        this._instruments.set(def.id, {
          kind: def.kind,
          sync: m.createUpDownCounter(def.name, def.options),
        });
        return;
      case 'histogram':
        this._instruments.set(def.id, {
          kind: def.kind,
          sync: m.createHistogram(def.name, def.options),
        });
        return;
      case 'gauge':
        this._instruments.set(def.id, {
          kind: def.kind,
          sync: m.createGauge(def.name, def.options),
        });
        return;
      default: {
        const o =
          def.kind === 'observableCounter'
            ? m.createObservableCounter(def.name, def.options)
            : def.kind === 'observableUpDownCounter'
              ? m.createObservableUpDownCounter(def.name, def.options)
              : m.createObservableGauge(def.name, def.options);
        const override = this._overrides.get(def.name);
        const cb: ObservableCallback = (result) => {
          for (const [value, attributes] of this._observed.get(def.id) ?? []) {
            result.observe(override === undefined ? value : override(), attributes);
          }
        };
        o.addCallback(cb);
        this._callbacks.push(() => o.removeCallback(cb));
        this._instruments.set(def.id, { kind: def.kind, observable: o });
      }
    }
  }
}
