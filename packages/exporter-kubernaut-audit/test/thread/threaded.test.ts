// SPDX-License-Identifier: Apache-2.0
/*
 * ThreadedAuditLogRecordProcessor: the audit pipeline with its delivery on a thread of its own.
 * Real SDK, a real worker thread, a loopback DataStorage stand-in (FaultServer), a real
 * MeterProvider with an in-memory reader. (Programs that end, and SIGKILL with the event loop
 * blocked, are in ../processor/exit.test.ts and blocked-loop.test.ts, for both processors.)
 */
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  AuditLogRecordProcessor,
  KubernautAuditExporter,
  ThreadedAuditLogRecordProcessor,
} from '@kubernaut/exporter-kubernaut-audit';
import {
  captureDiag,
  FaultServer,
  readJsonLines,
  specPath,
  tempDir,
  testMetrics,
} from '@kubernaut/test-kit';
import { type LogRecord, type MeterProvider, metrics } from '@opentelemetry/api';
import { LoggerProvider } from '@opentelemetry/sdk-logs';
import { describe, expect, it } from 'vitest';
import { loadSpec } from '../../src/exporter/openapi-spec.ts';
import { createThreadedProcessor } from '../../src/thread/create.ts';
import {
  deliveredIds,
  fastExporter,
  faultServerForFile,
  orderViolations,
} from '../processor/fixtures/harness.ts';
import { auditAttributes, auditBody, auditRecord } from '../processor/fixtures/support.ts';

const ds = await faultServerForFile({ checkSpec: true });

function threaded(options: ConstructorParameters<typeof ThreadedAuditLogRecordProcessor>[0] = {}): {
  processor: ThreadedAuditLogRecordProcessor;
  dir: string;
} {
  const dir = tempDir();
  const processor = new ThreadedAuditLogRecordProcessor({
    exporter: fastExporter(ds),
    spool: { directory: dir },
    shutdownTimeoutMillis: 5000,
    ...options,
  });
  return { processor, dir };
}

describe('ThreadedAuditLogRecordProcessor', () => {
  it('delivers every record, in emit order per correlation, on a thread of its own; forceFlush waits for DataStorage', async () => {
    const { processor } = threaded();
    expect(processor.deliveryThreadId).toBeGreaterThan(0);
    const provider = new LoggerProvider({ processors: [processor] });
    const logger = provider.getLogger('t');
    for (let i = 0; i < 1500; i++) logger.emit(auditRecord(`th-${i % 3}:${i}`, `th-${i % 3}`));
    await processor.forceFlush();
    const ids = new Set(deliveredIds(ds).filter((id) => id.startsWith('th-')));
    expect(ids.size).toBe(1500);
    expect(orderViolations(ds)).toEqual([]);
    expect(processor.spoolKind).toBe('file');
    await provider.shutdown();
    expect(processor.deliveryThreadId).toBeUndefined(); // the thread has ended
  });

  it('stamps provenance as the processor on the application thread does: one gap-free chain', async () => {
    const { processor } = threaded();
    const provider = new LoggerProvider({ processors: [processor] });
    for (let i = 0; i < 40; i++) provider.getLogger('t').emit(auditRecord(`pv-0:${i}`, 'pv-0'));
    await processor.forceFlush();
    const stamps = ds
      .received()
      .filter((s) => String(s.event.event_data.fingerprint).startsWith('pv-'))
      .map(
        (s) =>
          s.event.event_data.audit_provenance as {
            seq: number;
            prev_hash: string | null;
            hash: string;
          },
      );
    expect(stamps.map((p) => p.seq)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
    for (let i = 1; i < stamps.length; i++) {
      expect(stamps[i]?.prev_hash).toBe(stamps[i - 1]?.hash);
    }
    await provider.shutdown();
  });

  it('seqs are assigned at emit from blocks the delivery thread reserves; a clean shutdown gives the unused ones back', async () => {
    const dir = tempDir();
    const seqsOf = (prefix: string) =>
      ds
        .received()
        .filter((s) => String(s.event.event_data.fingerprint).startsWith(prefix))
        .map((s) => (s.event.event_data.audit_provenance as { seq: number }).seq);
    const first = new ThreadedAuditLogRecordProcessor({
      exporter: fastExporter(ds),
      spool: { directory: dir },
      maxExportBatchSize: 4, // blocks of 32 seqs: 100 records take several
    });
    const p1 = new LoggerProvider({ processors: [first] });
    for (let i = 0; i < 100; i++) p1.getLogger('t').emit(auditRecord(`sb-0:${i}`, 'sb-0'));
    await p1.shutdown();
    expect(seqsOf('sb-0:')).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
    const second = new ThreadedAuditLogRecordProcessor({
      exporter: fastExporter(ds),
      spool: { directory: dir },
    });
    const p2 = new LoggerProvider({ processors: [second] });
    for (let i = 0; i < 5; i++) p2.getLogger('t').emit(auditRecord(`sb-1:${i}`, 'sb-1'));
    await p2.shutdown();
    expect(seqsOf('sb-1:')).toEqual([101, 102, 103, 104, 105]); // no gap: nothing declared lost
  });

  it('dead-letters what DataStorage cannot store, with its seq — a value no thread can receive (a function) included — and delivers the rest', async () => {
    const { processor, dir } = threaded();
    const provider = new LoggerProvider({ processors: [processor] });
    const logger = provider.getLogger('t');
    logger.emit(auditRecord('dl-0:0', 'dl-0'));
    logger.emit({
      eventName: 'gateway.signal.received',
      body: { ...auditBody('dl-0:1'), handler: () => 'not data' } as unknown as LogRecord['body'],
      attributes: auditAttributes('dl-0:1', 'dl-0') as LogRecord['attributes'],
    });
    logger.emit({
      eventName: 'gateway.signal.received',
      body: { ...auditBody('dl-0:2'), note: 'nul\u0000inside' } as LogRecord['body'],
      attributes: auditAttributes('dl-0:2', 'dl-0') as LogRecord['attributes'],
    });
    logger.emit(auditRecord('dl-0:3', 'dl-0'));
    await processor.forceFlush();
    expect(deliveredIds(ds).filter((id) => id.startsWith('dl-'))).toEqual(['dl-0:0', 'dl-0:3']);
    const file = join(dir, 'dead-letter.jsonl');
    expect(existsSync(file)).toBe(true);
    const letters = readJsonLines(file) as Array<{
      reason: string;
      event: { audit_provenance?: { seq: number }; record?: { body?: Record<string, unknown> } };
    }>;
    expect(letters.map((l) => l.event.audit_provenance?.seq)).toEqual([2, 3]);
    expect(letters[0]?.event.record?.body?.fingerprint).toBe('dl-0:1'); // a sanitised copy
    expect(letters.map((l) => l.reason)).toEqual(['invalid_type', 'unstorable_string']);
    await provider.shutdown();
  });

  it("reports the pipeline's metrics on the application's MeterProvider, the queue as this thread holds it, and removes its callbacks at shutdown", async () => {
    const m = testMetrics();
    // The real SDK meters, with the observable callbacks registered on them counted.
    let live = 0;
    const track = <T extends object>(o: T): T =>
      new Proxy(o, {
        get(target, prop, receiver) {
          const v = Reflect.get(target, prop, receiver);
          if (prop === 'addCallback' || prop === 'removeCallback') {
            return (cb: unknown) => {
              live += prop === 'addCallback' ? 1 : -1;
              return (v as (cb: unknown) => void).call(target, cb);
            };
          }
          return v;
        },
      });
    const meterProvider: MeterProvider = {
      getMeter: (name, version, options) =>
        new Proxy(m.meterProvider.getMeter(name, version, options), {
          get(target, prop, receiver) {
            const v = Reflect.get(target, prop, receiver);
            if (typeof prop === 'string' && prop.startsWith('createObservable')) {
              return (...args: unknown[]) =>
                track((v as (...a: unknown[]) => object).apply(target, args));
            }
            return v;
          },
        }),
    };
    const { processor } = threaded({ meterProvider, scheduledDelayMillis: 60_000 });
    const provider = new LoggerProvider({ processors: [processor] });
    for (let i = 0; i < 30; i++) provider.getLogger('t').emit(auditRecord(`mt-0:${i}`, 'mt-0'));
    await processor.forceFlush();
    for (let i = 30; i < 35; i++) provider.getLogger('t').emit(auditRecord(`mt-0:${i}`, 'mt-0'));
    const all = await m.collect();
    const processed = (all.get('otel.sdk.processor.log.processed') ?? []).filter(
      (p) => p.attributes['error.type'] === undefined,
    );
    expect(processed.map((p) => p.value)).toEqual([30]);
    expect((all.get('otel.sdk.processor.log.queue.size') ?? []).map((p) => p.value)).toEqual([5]);
    const latency = all.get('kubernaut.audit.delivery.latency') ?? [];
    // One observation per accepted request: the 30 records of one correlation went as one.
    expect((latency[0]?.value as { count: number } | undefined)?.count).toBe(1);
    expect(live).toBeGreaterThan(0);
    await provider.shutdown();
    expect(live).toBe(0);
  });

  it('says what it cannot do on a delivery thread, and what happens to records emitted after shutdown', async () => {
    const d = captureDiag();
    try {
      const { processor } = threaded({
        recordAttributes: true,
        exporter: { export() {} } as never,
      });
      const provider = new LoggerProvider({ processors: [processor] });
      await processor.forceFlush();
      await provider.shutdown();
      provider.getLogger('t'); // the provider is shut down: emit straight into the processor
      processor.onEmit(
        Object.assign(Object.create(null), {
          attributes: auditAttributes('late:0', 'late'),
          body: auditBody('late:0'),
          eventName: 'gateway.signal.received',
        }),
      );
      expect(d.messages.some((m) => /recordAttributes is not supported/.test(m))).toBe(true);
      expect(d.messages.some((m) => /not a KubernautAuditExporter/.test(m))).toBe(true);
      expect(d.messages.some((m) => /emitted after shutdown/.test(m))).toBe(true);
    } finally {
      d.restore();
    }
  });

  it('delivers the records of a spool its predecessor left, as AuditLogRecordProcessor does', async () => {
    const dir = tempDir();
    const own = await FaultServer.start();
    const port = own.port;
    await own.close(); // down: the predecessor delivers nothing
    const first = new AuditLogRecordProcessor({
      exporter: fastExporter(own),
      spool: { directory: dir },
      shutdownTimeoutMillis: 200,
    });
    const p1 = new LoggerProvider({ processors: [first] });
    for (let i = 0; i < 20; i++) p1.getLogger('t').emit(auditRecord(`pr-0:${i}`, 'pr-0'));
    await p1.shutdown();
    const back = await FaultServer.start({ port });
    try {
      const processor = new ThreadedAuditLogRecordProcessor({
        exporter: fastExporter(back),
        spool: { directory: dir },
      });
      const p2 = new LoggerProvider({ processors: [processor] });
      await processor.forceFlush();
      expect(deliveredIds(back).sort()).toEqual(
        Array.from({ length: 20 }, (_, i) => `pr-0:${i}`).sort(),
      );
      await p2.shutdown();
    } finally {
      await back.close();
    }
  });

  it('a forceFlush that times out rejects with a TimeoutError saying where the records are; shutdown keeps its bound', async () => {
    const own = await FaultServer.start();
    await own.close(); // down
    const processor = new ThreadedAuditLogRecordProcessor({
      exporter: fastExporter(own),
      spool: { directory: tempDir() },
      shutdownTimeoutMillis: 300,
    });
    const provider = new LoggerProvider({ processors: [processor] });
    for (let i = 0; i < 10; i++) provider.getLogger('t').emit(auditRecord(`to-0:${i}`, 'to-0'));
    const err = await processor.forceFlush({ timeoutMillis: 200 }).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(err?.name).toBe('TimeoutError');
    expect(err?.message).toMatch(/10 record\(s\) not yet delivered \(kept in the spool\)/);
    const started = Date.now();
    await provider.shutdown();
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it.each([
    ['Infinity', Number.POSITIVE_INFINITY],
    ['1e12', 1e12],
    ['the longest timer', 2_147_483_647],
  ])('a forceFlush with a timeout of %s waits for DataStorage (no timer overflow into a 1 ms timeout)', async (_what, timeoutMillis) => {
    const own = await FaultServer.start();
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(`${w.name}: ${w.message}`);
    process.on('warning', onWarning);
    try {
      own.inject({ type: 'unavailable' }, 3); // refused three times, then accepted
      for (const Processor of [ThreadedAuditLogRecordProcessor, AuditLogRecordProcessor]) {
        const processor = new Processor({
          exporter: fastExporter(own),
          spool: { directory: tempDir() },
        });
        const provider = new LoggerProvider({ processors: [processor] });
        provider.getLogger('t').emit(auditRecord(`inf-0:${Processor.name}`, 'inf-0'));
        await processor.forceFlush({ timeoutMillis });
        await provider.shutdown();
      }
      expect(
        own.received().map((s) => (s.event.event_data as { fingerprint: string }).fingerprint),
      ).toEqual(['inf-0:ThreadedAuditLogRecordProcessor', 'inf-0:AuditLogRecordProcessor']);
      expect(warnings.filter((w) => /TimeoutOverflow/.test(w))).toEqual([]);
    } finally {
      process.off('warning', onWarning);
      await own.close();
    }
  });

  it('when its delivery thread ends unexpectedly, records go to a processor on this thread: none is lost', async () => {
    const d = captureDiag();
    try {
      const { processor } = threaded();
      const provider = new LoggerProvider({ processors: [processor] });
      const logger = provider.getLogger('t');
      for (let i = 0; i < 50; i++) logger.emit(auditRecord(`wd-0:${i}`, 'wd-0'));
      await processor.forceFlush();
      // The thread dies (as from an out-of-memory error of its own), with records pending here.
      for (let i = 50; i < 80; i++) logger.emit(auditRecord(`wd-0:${i}`, 'wd-0'));
      const worker = (processor as unknown as { _worker: { terminate(): Promise<number> } })
        ._worker;
      await worker.terminate();
      await d.waitFor(/ended unexpectedly/);
      expect(processor.deliveryThreadId).toBeUndefined();
      for (let i = 80; i < 100; i++) logger.emit(auditRecord(`wd-0:${i}`, 'wd-0'));
      await processor.forceFlush();
      const got = new Set(deliveredIds(ds).filter((id) => id.startsWith('wd-')));
      expect(got.size).toBe(100);
      await provider.shutdown();
    } finally {
      d.restore();
    }
  });

  it('a delivery thread whose module is missing (a bundled application) runs on this thread from the start: emit never waits for it', async () => {
    const d = captureDiag();
    let provider: LoggerProvider | undefined;
    try {
      const missing = join(tempDir(), 'bundle', 'delivery-thread.js');
      const processor = createThreadedProcessor(
        { exporter: fastExporter(ds), spool: { directory: tempDir() } },
        { threadFile: missing },
      );
      // Decided in the constructor: no thread to wait for (the first emit would otherwise wait
      // up to 10 s for provenance seqs from a thread that never starts).
      expect(processor.deliveryThreadId).toBeUndefined();
      expect(d.messages.join('\n')).toContain(`its module ${missing} is missing`);
      provider = new LoggerProvider({ processors: [processor] });
      const logger = provider.getLogger('t');
      for (let i = 0; i < 30; i++) logger.emit(auditRecord(`mf-0:${i}`, 'mf-0'));
      await processor.forceFlush();
      expect(new Set(deliveredIds(ds).filter((id) => id.startsWith('mf-'))).size).toBe(30);
      expect(processor.spoolKind).toBe('file');
    } finally {
      await provider?.shutdown(); // also when an expectation failed: no processor outlives the test
      d.restore();
    }
  });

  it('a delivery thread that cannot load its modules (a broken installation) does not hold emit: its records reach a processor on this thread', async () => {
    const d = captureDiag();
    let provider: LoggerProvider | undefined;
    try {
      const broken = join(tempDir(), 'broken-main.mjs');
      writeFileSync(broken, "throw new Error('broken installation');\n");
      const processor = createThreadedProcessor(
        {
          exporter: fastExporter(ds),
          spool: { directory: tempDir() },
          exportTimeoutMillis: 600_000,
        },
        { threadMainFile: broken },
      );
      provider = new LoggerProvider({ processors: [processor] });
      const logger = provider.getLogger('t');
      // The first emit waits for provenance seqs (at most 10 s); the thread's failure, flagged
      // in shared memory, ends the wait (the test's timeout is shorter than two such waits).
      logger.emit(auditRecord('bi-0:0', 'bi-0'));
      expect(d.messages.join('\n')).toContain('could not load its modules');
      await d.waitFor(/ended unexpectedly/);
      for (let i = 1; i < 20; i++) logger.emit(auditRecord(`bi-0:${i}`, 'bi-0'));
      await processor.forceFlush();
      expect(new Set(deliveredIds(ds).filter((id) => id.startsWith('bi-'))).size).toBe(20);
    } finally {
      await provider?.shutdown(); // also when an expectation failed: no processor outlives the test
      d.restore();
    }
  }, 15_000);

  it("checks records against the exporter's openapiSpec on the application thread", async () => {
    const dir = tempDir();
    const processor = new ThreadedAuditLogRecordProcessor({
      exporter: new KubernautAuditExporter({
        url: ds.url,
        openapiSpec: specPath(),
        retry: { initialDelayMillis: 5, maxDelayMillis: 50 },
      }),
      spool: { directory: dir },
    });
    await loadSpec(specPath()); // the same load the processor started: it has the validator now
    const provider = new LoggerProvider({ processors: [processor] });
    const logger = provider.getLogger('t');
    logger.emit(auditRecord('oa-0:0', 'oa-0'));
    const { signal_name: _left, ...withoutName } = auditBody('oa-0:1');
    logger.emit({
      eventName: 'gateway.signal.received',
      body: withoutName as LogRecord['body'],
      attributes: auditAttributes('oa-0:1', 'oa-0') as LogRecord['attributes'],
    });
    await processor.forceFlush();
    expect(deliveredIds(ds).filter((id) => id.startsWith('oa-'))).toEqual(['oa-0:0']);
    const letters = readJsonLines(join(dir, 'dead-letter.jsonl')) as Array<{ reason: string }>;
    expect(letters.map((l) => l.reason)).toEqual(['schema']);
    await provider.shutdown();
  });

  it.each([
    [
      'waits for a delivery thread that falls behind (a slow disk): the backlog here stays bounded',
      2,
      2,
    ],
    ['without a bound the backlog here would grow (the check can fail)', 1000, 8],
  ])('%s', async (_what, bound, expectedMax) => {
    const processor = createThreadedProcessor(
      { exporter: fastExporter(ds), spool: { directory: tempDir() }, maxExportBatchSize: 10 },
      { maxUnconfirmedBatches: bound, commitDelayMillis: 40 },
    );
    const provider = new LoggerProvider({ processors: [processor] });
    const logger = provider.getLogger('t');
    const internals = processor as unknown as {
      _unconfirmed: unknown[];
      _intake: { drainAll(): void };
    };
    const backlog = () => internals._unconfirmed.length;
    let most = 0;
    for (let round = 0; round < 12; round++) {
      for (let i = 0; i < 10; i++)
        logger.emit(auditRecord(`bk-${bound}:${round * 10 + i}`, `bk-${bound}`));
      internals._intake.drainAll(); // as OTel's batch timer would: the batch is posted, not awaited
      most = Math.max(most, backlog());
    }
    if (bound === 2) expect(most).toBeLessThanOrEqual(expectedMax);
    else expect(most).toBeGreaterThanOrEqual(expectedMax);
    await processor.forceFlush();
    expect(deliveredIds(ds).filter((id) => id.startsWith(`bk-${bound}:`))).toHaveLength(120);
    await provider.shutdown();
  });

  it('serves the next seq block after the batch it is writing, not after the batches queued before the ask', async () => {
    // Blocks of 8 batches of 10; the ask goes out with 4 batches queued; each batch takes the
    // thread 100 ms. Asked by message only, the block came after those 4 batches: emit() waited
    // for seqs as long as the thread was behind (seq-blocks.ts says it seldom waits).
    const processor = createThreadedProcessor(
      { exporter: fastExporter(ds), spool: { directory: tempDir() }, maxExportBatchSize: 10 },
      { commitDelayMillis: 100 },
    );
    const provider = new LoggerProvider({ processors: [processor] });
    const logger = provider.getLogger('t');
    const internals = processor as unknown as {
      _progress: Int32Array;
      _intake: { drainAll(): void };
    };
    let handledWhenServed = -1;
    for (let i = 0; i < 90; i++) {
      logger.emit(auditRecord(`sq-0:${i}`, 'sq-0')); // the 81st waits for the second block
      if (i === 80) handledWhenServed = Atomics.load(internals._progress, 0);
      if (i % 10 === 9) internals._intake.drainAll(); // a batch posted, as OTel's timer would
    }
    expect(handledWhenServed).toBeGreaterThanOrEqual(0);
    expect(handledWhenServed).toBeLessThanOrEqual(2);
    await processor.forceFlush();
    const got = ds
      .received()
      .filter((s) => String(s.event.event_data.fingerprint).startsWith('sq-'));
    expect(got).toHaveLength(90);
    const seqs = got.map(
      (s) => (s.event.event_data.audit_provenance as { seq: number } | undefined)?.seq ?? 0,
    );
    expect(seqs).toEqual(seqs.map((_, k) => (seqs[0] as number) + k)); // one gap-free run
    await provider.shutdown();
  });

  it("a user's exporter without a MeterProvider of its own reports on the application's global one, as on this thread", async () => {
    const m = testMetrics();
    metrics.setGlobalMeterProvider(m.meterProvider);
    try {
      const { processor } = threaded(); // fastExporter(ds): no meterProvider
      const provider = new LoggerProvider({ processors: [processor] });
      for (let i = 0; i < 12; i++) provider.getLogger('t').emit(auditRecord(`gm-0:${i}`, 'gm-0'));
      await processor.forceFlush();
      expect(await m.sum('otel.sdk.exporter.log.exported')).toBeGreaterThanOrEqual(12);
      await provider.shutdown();
    } finally {
      metrics.disable();
    }
  });
});
