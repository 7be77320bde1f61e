// SPDX-License-Identifier: Apache-2.0
/*
 * Scenario 1 — emit cost (DESIGN §6, §10): the synchronous time spent inside `logger.emit()`
 * for an audit record through a real LoggerProvider with
 *   - OTel's plain BatchLogRecordProcessor and a no-op exporter (the baseline),
 *   - AuditLogRecordProcessor, spool on, durability 'batch' (the default),
 *   - AuditLogRecordProcessor, spool off (memory only),
 *   - AuditLogRecordProcessor, spool on, durability 'sync',
 *   - the design floor (bench/lib/floor-processor.ts, a reference, not a product: the
 *     pipeline's own steps and nothing around them), its drains deferred past the emit as
 *     OTel's exports are: what emit() costs beside a real delivery at the least,
 * on the same records. Each emit() is timed on its own (process.hrtime.bigint); records are
 * emitted in chunks of 100 with a turn of the event loop between chunks, so that batches are
 * exported as in a running service (no queue overflow). The audit processors deliver to the
 * loopback sink (its own process) during the run. Also reported: main-thread busy time per
 * record over the whole run including forceFlush() (event-loop utilisation), i.e. the work
 * emit() defers (spool writes, mapping, sending).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  AuditLogRecordProcessor,
  KubernautAuditExporter,
} from '@kubernaut/exporter-kubernaut-audit';
import type { LogRecord } from '@opentelemetry/api';
import { ExportResultCode } from '@opentelemetry/core';
import {
  BatchLogRecordProcessor,
  LoggerProvider,
  type LogRecordExporter,
  type LogRecordProcessor,
} from '@opentelemetry/sdk-logs';
import { FloorProcessor } from '../lib/floor-processor.ts';
import { auditRecord, benchResource, loadTemplates } from '../lib/records.ts';
import { fmt, fmtRange, fmtRatio, QUICK, Reporter } from '../lib/result.ts';
import { Sink } from '../lib/sink.ts';
import { percentile, rotate, summarize, timerOverheadNs, yieldToLoop } from '../lib/stats.ts';

const N = QUICK ? 5_000 : 20_000;
const ROUNDS = QUICK ? 2 : 5;
const CHUNK = 100;

const rep = new Reporter('1', '1. Emit cost');
await loadTemplates();
const sink = await Sink.start();

type Variant = 'blrp' | 'batch' | 'memory' | 'sync' | 'floor';
const LABEL: Record<Variant, string> = {
  blrp: 'OTel BatchLogRecordProcessor + no-op exporter (baseline)',
  batch: "AuditLogRecordProcessor, spool 'batch' (default)",
  memory: 'AuditLogRecordProcessor, spool off (memory only)',
  sync: "AuditLogRecordProcessor, spool 'sync'",
  floor: 'design floor (reference, not a product: bench/lib/floor-processor.ts)',
};

const noopExporter: LogRecordExporter = {
  export: (_records, cb) => cb({ code: ExportResultCode.SUCCESS }),
  forceFlush: () => Promise.resolve(),
  shutdown: () => Promise.resolve(),
};

/** The spool directory of the run under way (removed when the run is over). */
let runDir: string | undefined;

function makeProcessor(v: Variant): LogRecordProcessor {
  runDir = undefined;
  if (v === 'blrp') return new BatchLogRecordProcessor({ exporter: noopExporter });
  const dir = mkdtempSync(join(tmpdir(), 'bench-emit-'));
  runDir = dir;
  if (v === 'floor') return new FloorProcessor({ url: sink.url, directory: dir, deferDrain: true });
  return new AuditLogRecordProcessor({
    exporter: new KubernautAuditExporter({ url: sink.url }),
    spool: v === 'memory' ? false : { directory: dir, durability: v },
    deadLetter: { path: join(dir, 'dead-letter.jsonl') },
  });
}

// The same records for every variant (bodies are shared, never mutated by the SDK).
const records: LogRecord[] = Array.from({ length: N }, (_, i) => auditRecord(i));

interface RunResult {
  meanUs: number;
  p50Us: number;
  p99Us: number;
  busyUsPerRecord: number;
}

async function run(v: Variant, count: number): Promise<RunResult> {
  const processor = makeProcessor(v);
  const provider = new LoggerProvider({ resource: benchResource(), processors: [processor] });
  const logger = provider.getLogger('bench', '1.0.0');
  await sink.reset(count);
  const samples = new Float64Array(count);
  const elu0 = performance.eventLoopUtilization();
  for (let i = 0; i < count; i += CHUNK) {
    const end = Math.min(count, i + CHUNK);
    for (let j = i; j < end; j++) {
      const rec = records[j] as LogRecord;
      const t0 = process.hrtime.bigint();
      logger.emit(rec);
      samples[j] = Number(process.hrtime.bigint() - t0);
    }
    await yieldToLoop();
  }
  await provider.forceFlush();
  const elu = performance.eventLoopUtilization(elu0);
  if (v !== 'blrp') {
    const s = await sink.stats();
    if (s.distinct !== count) throw new Error(`${v}: sink counted ${s.distinct} of ${count}`);
  }
  await provider.shutdown();
  // Removed now: a run's files left to the kernel's writeback slow the next run's writes.
  if (runDir !== undefined) rmSync(runDir, { recursive: true, force: true });
  let sum = 0;
  for (const x of samples) sum += x;
  return {
    meanUs: sum / count / 1000,
    p50Us: percentile(samples, 50) / 1000,
    p99Us: percentile(samples, 99) / 1000,
    busyUsPerRecord: (elu.active * 1000) / count,
  };
}

const variants: Variant[] = ['blrp', 'batch', 'memory', 'sync', 'floor'];
for (const v of variants) await run(v, Math.min(N, 5_000)); // warm-up (JIT), untimed
const results: Record<Variant, RunResult[]> = {
  blrp: [],
  batch: [],
  memory: [],
  sync: [],
  floor: [],
};
for (let r = 0; r < ROUNDS; r++) {
  for (const v of rotate(variants, r)) results[v].push(await run(v, N));
  rep.progress(`round ${r + 1}/${ROUNDS}`);
}
const overhead = timerOverheadNs();

const base = summarize(results.blrp.map((x) => x.meanUs));
const baseBusy = summarize(results.blrp.map((x) => x.busyUsPerRecord));
rep.table({
  title: `Synchronous time inside emit(), µs per record: median (min–max) of ${ROUNDS} runs × ${fmt(N, 0)} records — goal in 'batch' mode: mean ≤ 1.1×, p99 ≤ 1.5×`,
  headers: [
    'processor',
    'mean µs',
    'p50 µs',
    'p99 µs',
    'ratio (mean)',
    'main-thread µs/record incl. deferred work',
  ],
  rows: variants.map((v) => {
    const mean = summarize(results[v].map((x) => x.meanUs));
    const busy = summarize(results[v].map((x) => x.busyUsPerRecord));
    return [
      LABEL[v],
      fmtRange(mean),
      fmt(summarize(results[v].map((x) => x.p50Us)).median),
      fmt(summarize(results[v].map((x) => x.p99Us)).median),
      v === 'blrp' ? '1.00×' : fmtRatio(mean.median / base.median),
      `${fmt(busy.median)} (${fmtRatio(busy.median / baseBusy.median)})`,
    ];
  }),
});
{
  const batch = summarize(results.batch.map((x) => x.meanUs)).median;
  rep.goal(
    "emit cost in 'batch' mode, mean ≤ 1.1× plain BatchLogRecordProcessor",
    `${fmtRatio(batch / base.median)} (${fmt(batch)} µs vs ${fmt(base.median)} µs)`,
    batch / base.median <= 1.1,
  );
  const p99 = summarize(results.batch.map((x) => x.p99Us)).median;
  const baseP99 = summarize(results.blrp.map((x) => x.p99Us)).median;
  rep.goal(
    "emit cost in 'batch' mode, p99 ≤ 1.5× plain BatchLogRecordProcessor",
    `${fmtRatio(p99 / baseP99)} (${fmt(p99)} µs vs ${fmt(baseP99)} µs)`,
    p99 / baseP99 <= 1.5,
  );
}
{
  // Paired by round (each round runs every variant once, back to back): a round's ratio cancels
  // what the shared machine did to that round's speed.
  const paired = (v: Variant, of: (x: RunResult) => number, to: Variant = 'blrp') =>
    summarize(results[v].map((x, i) => of(x) / of(results[to][i] as RunResult)));
  const ratios = (s: ReturnType<typeof summarize>) =>
    `${fmtRatio(s.median)} (${fmtRatio(s.min)}–${fmtRatio(s.max)})`;
  const mean = (x: RunResult) => x.meanUs;
  const p99 = (x: RunResult) => x.p99Us;
  rep.note(
    `Paired by round (median (min–max) of the ${ROUNDS} rounds' ratios): 'batch' mean ${ratios(paired('batch', mean))}, p99 ${ratios(paired('batch', p99))} the baseline's; the design floor mean ${ratios(paired('floor', mean))}, p99 ${ratios(paired('floor', p99))} the baseline's; 'batch' over the floor: mean ${ratios(paired('batch', mean, 'floor'))}, p99 ${ratios(paired('batch', p99, 'floor'))}. The floor is what emit() costs beside a real delivery at the least (the pipeline's own steps and nothing around them, bench/lib/floor-processor.ts; its drains run after the emit that fills a batch, as OTel's exports do): its ratios are how far the goals are from the machine's limit in this run.`,
  );
}
rep.note(
  `Per-call timing includes one process.hrtime.bigint() pair (${fmt(overhead / 1000, 3)} µs on this machine), not subtracted. Records: 14 realistic event types, ${fmt(N, 0)} per run, emitted in chunks of ${CHUNK} with a turn of the event loop between chunks.`,
);
rep.note(
  "'Main-thread µs/record' is event-loop active time over the whole run (emits, the batch exports they trigger, spool writes, HTTP sends to the sink, up to forceFlush()) divided by records: the total CPU the application thread pays per audit record. For the baseline the export is a no-op, so this compares a real delivery pipeline with none.",
);
await sink.close();
rep.finish();
