// SPDX-License-Identifier: Apache-2.0
/*
 * Whatever a DataStorage (or what stands in its path) answers, as long as it answers well in the
 * end: a fast-check property over random scripts of answers that say nothing about the events
 * themselves (refusals, outages, odd Retry-After values, 2xx that are not acceptance, redirects,
 * resets before and after the commit, answers slower than the timeout, 202 into DataStorage's
 * DLQ), each consumed by one request, against both processors with random batch sizes,
 * correlations and emit chunks, sometimes shut down at once after emitting and followed by a new
 * processor on the same spool. Afterwards forceFlush() settles, and:
 *   - every record reached DataStorage (at least once), and nothing was dead-lettered;
 *   - per correlation, records were first stored in emit order;
 *   - every event DataStorage stored more than once was counted in
 *     `kubernaut.audit.duplicates_possible` (the resends after an ambiguous failure);
 *   - nothing DataStorage received broke the contract.
 * A second property adds records DataStorage rejects every time (400 naming the event, or 400
 * without an index: its own problem+json): each of those is dead-lettered once, with its seq,
 * and never stored; no other record is dead-lettered. At most every third record of a
 * correlation is such a record: a lane whose rejected records come more in a row than a storm's
 * threshold (log2 of the batch + 4), with nothing accepted anywhere meanwhile, is taken for a
 * rejection storm and waits (a known limit: the exporter's README, "What happens with each
 * answer"); this property found it (seed -323453677, path 23, before the limit was put here).
 */
import { captureDiag, type Fault, tempDir, testMetrics } from '@kubernaut/test-kit';
import { LoggerProvider } from '@opentelemetry/sdk-logs';
import type { MeterProvider } from '@opentelemetry/sdk-metrics';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  BOTH_PROCESSORS,
  deadLetters,
  deliveredIds,
  fastExporter,
  faultServerForFile,
  orderViolations,
} from './fixtures/harness.ts';
import { auditRecord } from './fixtures/support.ts';

const ds = await faultServerForFile({ checkSpec: true });

/**
 * Per attempt: slow answers below are on both sides of it. Generous for a loaded machine (the
 * suite runs files in parallel, the server on the test's own event loop): an answer that came
 * too late would be taken for no answer, and a rejection never be seen as one.
 */
const TIMEOUT_MILLIS = 1000;

const retryAfter = fc.constantFrom(
  undefined,
  '0',
  'Wed, 21 Oct 2015 07:28:00 GMT',
  'soon',
  '-5',
  '',
);

/** Answers that are no verdict on the events (a real DataStorage would accept them later). */
const noVerdict: fc.Arbitrary<Fault> = fc.oneof(
  retryAfter.map(
    (r): Fault => ({ type: 'unavailable', ...(r === undefined ? {} : { retryAfter: r }) }),
  ),
  retryAfter.map(
    (r): Fault => ({ type: 'rate-limited', ...(r === undefined ? {} : { retryAfter: r }) }),
  ),
  fc.constant<Fault>({ type: 'reset-before-read' }),
  fc.constant<Fault>({ type: 'reset-after-commit' }),
  fc.constant<Fault>({ type: 'dlq' }),
  fc.constant<Fault>({ type: 'unauthorized' }),
  fc
    .integer({ min: 0, max: 2 * TIMEOUT_MILLIS })
    .chain((delayMillis) =>
      fc.boolean().map((commit): Fault => ({ type: 'slow', delayMillis, commit })),
    ),
  fc.constantFrom<Fault>(
    { type: 'status', status: 200, rawBody: '<html>ok</html>' },
    { type: 'status', status: 204 },
    {
      type: 'status',
      status: 200,
      body: { status: 'ok' },
      headers: { 'content-type': 'application/json' },
    },
    {
      type: 'status',
      status: 201,
      body: { event_ids: [] },
      headers: { 'content-type': 'application/json' },
    },
    {
      type: 'status',
      status: 201,
      body: { event_ids: 'x' },
      headers: { 'content-type': 'application/json' },
    },
    { type: 'status', status: 202, body: {}, headers: { 'content-type': 'application/json' } },
    { type: 'status', status: 301, headers: { location: 'https://elsewhere.example/' } },
    { type: 'status', status: 400, rawBody: '<html>Bad Request (ingress)</html>' },
    { type: 'status', status: 403 },
    { type: 'status', status: 500, body: { title: 'internal error' } },
    { type: 'status', status: 502, rawBody: 'Bad Gateway' },
  ),
);

const scenarioShape = {
  faults: fc.array(noVerdict, { maxLength: 8 }),
  records: fc.integer({ min: 1, max: 40 }),
  correlations: fc.integer({ min: 1, max: 4 }),
  chunks: fc.integer({ min: 1, max: 4 }),
  maxExportBatchSize: fc.integer({ min: 1, max: 16 }),
  durability: fc.constantFrom<'batch' | 'sync'>('batch', 'sync'),
  /** Shut down right after emitting (20 ms to deliver), then a new processor on the spool. */
  restart: fc.boolean(),
};
const scenario = fc.record(scenarioShape);
type Scenario = typeof scenario extends fc.Arbitrary<infer T> ? T : never;

type Make = (typeof BOTH_PROCESSORS)[number][1];

/** A processor on `dir` with the scenario's options, its provider and logger. */
function open(
  make: Make,
  dir: string,
  s: { maxExportBatchSize: number; durability: 'batch' | 'sync' },
  extra: { meterProvider?: MeterProvider; shutdownTimeoutMillis?: number } = {},
) {
  const processor = make(ds, {
    exporter: fastExporter(ds, {
      meterProvider: extra.meterProvider,
      timeoutMillis: TIMEOUT_MILLIS,
    }),
    meterProvider: extra.meterProvider,
    maxExportBatchSize: s.maxExportBatchSize,
    spool: { directory: dir, durability: s.durability },
    ...(extra.shutdownTimeoutMillis === undefined
      ? {}
      : { shutdownTimeoutMillis: extra.shutdownTimeoutMillis }),
  });
  const provider = new LoggerProvider({ processors: [processor] });
  return { processor, provider, logger: provider.getLogger('answers') };
}

/**
 * Emits the scenario's records (ids `<prefix><correlation>:<i>`) in its chunks; with `restart`,
 * shuts the pipeline down at once and opens another on the same spool. Returns the one to
 * settle with.
 */
async function emitAll(
  make: Make,
  dir: string,
  s: Scenario,
  prefix: string,
  meterProvider?: MeterProvider,
) {
  let p = open(make, dir, s, {
    meterProvider,
    ...(s.restart ? { shutdownTimeoutMillis: 20 } : {}),
  });
  const per = Math.ceil(s.records / s.chunks);
  for (let i = 0; i < s.records; i++) {
    const cid = `${prefix}${i % s.correlations}`;
    p.logger.emit(auditRecord(`${cid}:${i}`, cid));
    if ((i + 1) % per === 0) await new Promise((r) => setImmediate(r));
  }
  if (s.restart) {
    await within(p.provider.shutdown(), 15_000, 'shutdown (20 ms to deliver)');
    p = open(make, dir, s, { meterProvider });
  }
  return p;
}

/** How many events DataStorage stored more than once (each copy beyond the first). */
function storedAgain(ids: readonly string[]): number {
  return ids.length - new Set(ids).size;
}

let run = 0;

/**
 * `promise`, or a rejection naming `what` when it has not settled after `ms`: a flush or a
 * shutdown that outlives its own bound is a finding, not a test timeout.
 */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} still running after ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * forceFlush() until everything is settled. A lone rejected event is dead-lettered once
 * DataStorage has accepted something since the rejections began (else DataStorage may be
 * refusing everything): when a flush times out, one more good record gives it that evidence.
 * Then good records until the script's unused answers are spent (they must not reach the next
 * run).
 */
async function settle(
  processor: { forceFlush(o: { timeoutMillis: number }): Promise<void> },
  emit: (id: string) => void,
  diag: { messages: string[] },
): Promise<void> {
  let pad = 0;
  for (let tries = 0; ; tries++) {
    try {
      await within(processor.forceFlush({ timeoutMillis: 1_000 }), 15_000, 'forceFlush(1000 ms)');
      break;
    } catch (err) {
      if ((err as Error).name !== 'TimeoutError' || tries >= 20) {
        // What a failing run needs to be understood: the answers and the warnings.
        const answers = ds.requests.slice(-30).map((q) => `${q.events}:${q.status}`);
        throw new Error(
          `${(err as Error).message}\nlast answers: ${answers.join(' ')}\ndiag: ${diag.messages.slice(-8).join('\n')}`,
        );
      }
      emit(`pad:${pad++}`);
    }
  }
  while (ds.pendingFaults > 0) {
    emit(`pad:${pad++}`);
    await within(processor.forceFlush({ timeoutMillis: 30_000 }), 45_000, 'forceFlush(30000 ms)');
  }
}

describe('any answers that are no verdict on the events, then good ones', () => {
  it.each(BOTH_PROCESSORS)(
    '%s: every record delivered in order, none dead-lettered, every duplicate counted',
    async (_name, make) => {
      const diag = captureDiag();
      try {
        await fc.assert(
          fc.asyncProperty(scenario, async (s) => {
            run++;
            const storedBefore = ds.received().length;
            const metrics = testMetrics();
            const dir = tempDir();
            for (const f of s.faults) ds.inject(f);
            const { processor, provider, logger } = await emitAll(
              make,
              dir,
              s,
              `ans-${run}-`,
              metrics.meterProvider,
            );
            try {
              await settle(
                processor,
                (id) => logger.emit(auditRecord(`ans-${run}-${id}`, `ans-${run}-pad`)),
                diag,
              );
              const stored = ds.received().slice(storedBefore);
              const ids = deliveredIds(ds).slice(storedBefore);
              const mine = ids.filter((id) => !id.includes('-pad:'));
              expect(new Set(mine).size).toBe(s.records);
              expect(deadLetters(dir)).toEqual([]);
              expect(orderViolations(ds, storedBefore)).toEqual([]);
              expect(stored.every((e) => e.event.correlation_id.startsWith(`ans-${run}-`))).toBe(
                true,
              );
              expect(
                await metrics.sum('kubernaut.audit.duplicates_possible'),
              ).toBeGreaterThanOrEqual(storedAgain(ids));
            } finally {
              await within(provider.shutdown(), 15_000, 'shutdown');
              await metrics.meterProvider.shutdown();
            }
          }),
          { numRuns: Number(process.env.ANS_RUNS ?? 15), endOnFailure: true },
        );
      } finally {
        diag.restore();
      }
    },
    240_000,
  );
});

const poisoned = fc.record({
  base: scenario,
  /** Which records DataStorage rejects every time, and how. */
  poison: fc.array(fc.constantFrom<'index' | 'schema' | undefined>('index', 'schema', undefined), {
    minLength: 40,
    maxLength: 40,
  }),
});

describe('records DataStorage rejects every time, among answers that are no verdict', () => {
  it.each(BOTH_PROCESSORS)(
    '%s: each rejected record dead-lettered once with its seq, every other one delivered',
    async (_name, make) => {
      const diag = captureDiag();
      try {
        await fc.assert(
          fc.asyncProperty(poisoned, async ({ base: s, poison }) => {
            run++;
            const prefix = `psn-${run}-`;
            const storedBefore = ds.received().length;
            const bad = new Map<string, 'index' | 'schema'>();
            for (let i = 0; i < s.records; i++) {
              // At most every third record of a correlation (see the module comment).
              const mode = Math.floor(i / s.correlations) % 3 === 0 ? poison[i] : undefined;
              if (mode !== undefined) bad.set(`${prefix}${i % s.correlations}:${i}`, mode);
            }
            for (const mode of ['index', 'schema'] as const) {
              ds.poison(
                (e) =>
                  bad.get(String((e.event_data as { fingerprint?: unknown }).fingerprint)) === mode,
                mode,
              );
            }
            const dir = tempDir();
            for (const f of s.faults) ds.inject(f);
            const { processor, provider, logger } = await emitAll(make, dir, s, prefix);
            try {
              await settle(
                processor,
                (id) => logger.emit(auditRecord(`${prefix}${id}`, `${prefix}pad`)),
                diag,
              );
              const ids = new Set(deliveredIds(ds).slice(storedBefore));
              for (let i = 0; i < s.records; i++) {
                const id = `${prefix}${i % s.correlations}:${i}`;
                expect(ids.has(id), id).toBe(!bad.has(id));
              }
              type Letter = {
                reason?: string;
                event?: {
                  event_data?: { fingerprint?: string; audit_provenance?: { seq?: number } };
                };
              };
              const letters = deadLetters(dir) as Letter[];
              const lettered = letters.map((l) => String(l.event?.event_data?.fingerprint));
              expect(lettered.sort()).toEqual([...bad.keys()].sort());
              for (const l of letters) {
                expect(l.reason).toBe('rejected');
                expect(l.event?.event_data?.audit_provenance?.seq).toBeGreaterThan(0);
              }
              expect(orderViolations(ds, storedBefore)).toEqual([]);
            } finally {
              await within(provider.shutdown(), 15_000, 'shutdown');
            }
          }),
          { numRuns: Number(process.env.ANS_RUNS ?? 10), endOnFailure: true },
        );
      } finally {
        diag.restore();
      }
    },
    240_000,
  );
});
