// SPDX-License-Identifier: Apache-2.0
/*
 * Scenario 5 — the spool per durability mode (DESIGN §6): for spool off (memory only),
 * 'batch' and 'sync', the synchronous emit() cost and the throughput emit→accepted at the
 * loopback sink (first emit() until forceFlush() resolves, counted at the sink by id), with
 * records emitted in chunks of 1,000 (a busier producer than scenario 1). Then the spool's
 * own micro-benchmark, bench/spool.ts (engineer P1: segment log vs node:sqlite), folded in.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  AuditLogRecordProcessor,
  KubernautAuditExporter,
} from '@kubernaut/exporter-kubernaut-audit';
import type { LogRecord } from '@opentelemetry/api';
import { LoggerProvider } from '@opentelemetry/sdk-logs';
import { runTs } from '../lib/child.ts';
import { auditRecord, benchResource, loadTemplates } from '../lib/records.ts';
import { fmt, fmtRange, fmtRatio, QUICK, Reporter } from '../lib/result.ts';
import { Sink } from '../lib/sink.ts';
import { nowNs, percentile, rotate, secondsSince, summarize, yieldToLoop } from '../lib/stats.ts';

const N = QUICK ? 10_000 : 50_000;
const ROUNDS = QUICK ? 1 : 3;
const CHUNK = 1_000;

const rep = new Reporter('5', '5. Spool: emit cost and throughput per durability mode');
await loadTemplates();
const sink = await Sink.start();

type Mode = 'memory' | 'batch' | 'sync';
const LABEL: Record<Mode, string> = {
  memory: 'spool off (memory only, baseline)',
  batch: "spool 'batch' (default)",
  sync: "spool 'sync'",
};
const records: LogRecord[] = Array.from({ length: N }, (_, i) => auditRecord(i));

async function run(mode: Mode, count: number) {
  const dir = mkdtempSync(join(tmpdir(), 'bench-spool-'));
  const processor = new AuditLogRecordProcessor({
    exporter: new KubernautAuditExporter({ url: sink.url }),
    spool: mode === 'memory' ? false : { directory: dir, durability: mode },
    deadLetter: { path: join(dir, 'dead-letter.jsonl') },
  });
  const provider = new LoggerProvider({ resource: benchResource(), processors: [processor] });
  const logger = provider.getLogger('bench-spool');
  await sink.reset(count);
  const samples = new Float64Array(count);
  const start = nowNs();
  for (let i = 0; i < count; i += CHUNK) {
    const end = Math.min(count, i + CHUNK);
    for (let j = i; j < end; j++) {
      const t0 = process.hrtime.bigint();
      logger.emit(records[j] as LogRecord);
      samples[j] = Number(process.hrtime.bigint() - t0);
    }
    await yieldToLoop();
  }
  await processor.forceFlush({ timeoutMillis: 120_000 });
  const seconds = secondsSince(start);
  const s = await sink.stats();
  await provider.shutdown();
  // Removed now: a run's files left to the kernel's writeback slow the next run's writes.
  rmSync(dir, { recursive: true, force: true });
  if (s.distinct !== count) throw new Error(`${mode}: sink counted ${s.distinct} of ${count}`);
  let sum = 0;
  for (const x of samples) sum += x;
  return {
    meanUs: sum / count / 1000,
    p99Us: percentile(samples, 99) / 1000,
    rate: count / seconds,
  };
}

const modes: Mode[] = ['memory', 'batch', 'sync'];
for (const m of modes) await run(m, 5_000); // warm-up
const res: Record<Mode, Array<Awaited<ReturnType<typeof run>>>> = {
  memory: [],
  batch: [],
  sync: [],
};
for (let r = 0; r < ROUNDS; r++) {
  for (const m of rotate(modes, r)) res[m].push(await run(m, N));
  rep.progress(`round ${r + 1}/${ROUNDS}`);
}
const baseMean = summarize(res.memory.map((x) => x.meanUs)).median;
const baseRate = summarize(res.memory.map((x) => x.rate)).median;
rep.table({
  title: `AuditLogRecordProcessor per durability mode, ${fmt(N, 0)} records in chunks of ${CHUNK}, median (min–max) of ${ROUNDS}`,
  headers: [
    'mode',
    'emit() mean µs',
    'emit() p99 µs',
    'emit ratio',
    'emit→accepted records/s',
    'throughput ratio',
  ],
  rows: modes.map((m) => {
    const mean = summarize(res[m].map((x) => x.meanUs));
    const rate = summarize(res[m].map((x) => x.rate));
    return [
      LABEL[m],
      fmtRange(mean),
      fmt(summarize(res[m].map((x) => x.p99Us)).median),
      fmtRatio(mean.median / baseMean),
      fmtRange(rate, 0),
      fmtRatio(rate.median / baseRate),
    ];
  }),
});
rep.note(
  "Throughput is from the first emit() until forceFlush() resolves (every record accepted by the sink, counted by id). In 'sync' mode every emit() writes its record to the spool file before returning; in 'batch' mode the inner BatchLogRecordProcessor writes batches of up to 512.",
);
await sink.close();

// ---- bench/spool.ts (P1) ----
const here = fileURLToPath(new URL('.', import.meta.url));
const micro = await runTs(join(here, '../spool.ts'), QUICK ? ['--quick'] : [], {
  timeoutMillis: 90_000,
});
const lines = micro.stdout.split('\n').filter((l) => l.startsWith('|'));
const title = micro.stdout.split('\n').find((l) => l.startsWith('spool micro-benchmark'));
if (micro.code === 0 && lines.length > 2) {
  const split = (l: string) =>
    l
      .slice(1, -1)
      .split('|')
      .map((c) => c.trim());
  rep.table({
    title: `bench/spool.ts — ${title ?? 'spool micro-benchmark'}`,
    headers: split(lines[0] as string),
    rows: lines.slice(2).map(split),
  });
} else {
  rep.table({
    title: 'bench/spool.ts',
    headers: ['status'],
    rows: [
      [
        `not available: exit ${micro.code ?? micro.signal}: ${micro.stderr.trim().split('\n').slice(-2).join(' ')}`.slice(
          0,
          300,
        ),
      ],
    ],
  });
}
rep.finish();
