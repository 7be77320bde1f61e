// SPDX-License-Identifier: Apache-2.0
/*
 * Part b of scenario 4, in its own process so that its peak RSS is its own: N records
 * emitted as fast as the application can while the sink is down for S seconds, then back.
 * Reports JSON to --result-file. Args: --records N --outage S [--max-bytes B] [--baseline]
 * `--baseline`: the same burst into OTel's plain BatchLogRecordProcessor with an exporter that
 * counts and drops (the SDK alone, nothing kept, no sink): what the harness and the SDK weigh.
 * `--pace-seconds S`: the emits are spread over S seconds (chunk by chunk, waiting on a timer when
 * ahead): the SDK alone at the pace of a pipeline that does real work per record. V8 touches more
 * of the young generation it committed the longer a burst allocates, so a burst that ends in
 * 3 s weighs less than the same one over 13 s, whatever the processor.
 */
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { getHeapSpaceStatistics } from 'node:v8';
import {
  AuditLogRecordProcessor,
  KubernautAuditExporter,
} from '@kubernaut/exporter-kubernaut-audit';
import { DiagLogLevel, diag } from '@opentelemetry/api';
import {
  BatchLogRecordProcessor,
  LoggerProvider,
  type LogRecordExporter,
  type LogRecordProcessor,
} from '@opentelemetry/sdk-logs';
import { auditRecord, benchResource, loadTemplates } from '../lib/records.ts';
import { Sink } from '../lib/sink.ts';
import { nowNs, secondsSince, yieldToLoop } from '../lib/stats.ts';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}
const BIG = Number(arg('--records') ?? 1_000_000);
const OUTAGE_SECONDS = Number(arg('--outage') ?? 60);
const maxBytesArg = arg('--max-bytes');
const MAX_BYTES = maxBytesArg === undefined ? undefined : Number(maxBytesArg);
const dir = arg('--dir') as string;
const BASELINE = process.argv.includes('--baseline');
const PACE_SECONDS = Number(arg('--pace-seconds') ?? 0);

/** What the processor and the SDK reported through diag (warnings and errors), deduplicated. */
const diagLines = new Map<string, number>();
const keep = (level: string) => (message: string) => {
  const key = `${level}: ${message}`.slice(0, 240);
  diagLines.set(key, (diagLines.get(key) ?? 0) + 1);
};
diag.setLogger(
  {
    error: keep('error'),
    warn: keep('warn'),
    info: () => {},
    debug: () => {},
    verbose: () => {},
  },
  DiagLogLevel.WARN,
);

function dirBytes(d: string): number {
  let n = 0;
  for (const e of readdirSync(d, { withFileTypes: true })) {
    const p = join(d, e.name);
    n += e.isDirectory() ? dirBytes(p) : statSync(p).size;
  }
  return n;
}

await loadTemplates();
let exported = 0;
const sink = BASELINE ? undefined : await Sink.start();
const processor: LogRecordProcessor = sink
  ? new AuditLogRecordProcessor({
      exporter: new KubernautAuditExporter({ url: sink.url }),
      spool: { directory: dir, ...(MAX_BYTES === undefined ? {} : { maxBytes: MAX_BYTES }) },
      deadLetter: { path: join(dir, 'dead-letter.jsonl') },
      shutdownTimeoutMillis: 10_000,
    })
  : new BatchLogRecordProcessor({
      exporter: {
        export: (batch, done) => {
          exported += batch.length;
          done({ code: 0 });
        },
        shutdown: async () => {},
        forceFlush: async () => {},
      } satisfies LogRecordExporter,
    });
const provider = new LoggerProvider({ resource: benchResource(), processors: [processor] });
const logger = provider.getLogger('big-burst');
await sink?.reset(BIG);
await sink?.down();
const rssBefore = process.memoryUsage.rss();
let peakRss = rssBefore;
let peakHeap = 0;
const rssTimer = setInterval(
  () => {
    const m = process.memoryUsage();
    peakRss = Math.max(peakRss, m.rss);
    peakHeap = Math.max(peakHeap, m.heapUsed);
    if (process.env.BENCH_TRACE_MEMORY) {
      const mb = (n: number) => Math.round(n / 2 ** 20);
      const spaces = getHeapSpaceStatistics()
        .filter((s) => s.space_size >= 2 ** 20)
        .map(
          (s) =>
            `${s.space_name.replace('_space', '')} ${mb(s.space_used_size)}/${mb(s.space_size)}`,
        )
        .join(' ');
      // Linux: resident memory by kind (anonymous, file-backed code and data, shared memory).
      let kinds = '';
      try {
        const status = readFileSync('/proc/self/status', 'utf8');
        kinds = ['RssAnon', 'RssFile', 'RssShmem']
          .map((k) => {
            const kb = Number(new RegExp(`${k}:\\s+(\\d+)`).exec(status)?.[1] ?? Number.NaN);
            return `${k.slice(3).toLowerCase()} ${Math.round(kb / 1024)}`;
          })
          .join(' ');
      } catch {
        // not Linux
      }
      process.stderr.write(
        `rss ${mb(m.rss)} (${kinds}) heap ${mb(m.heapUsed)}/${mb(m.heapTotal)} ext ${mb(m.external)} ab ${mb(m.arrayBuffers)} | ${spaces}\n`,
      );
    }
  },
  process.env.BENCH_TRACE_MEMORY ? 1000 : 100,
);
const outageStart = Date.now();
const upTimer = sink
  ? new Promise<number>((resolve) =>
      setTimeout(async () => {
        await sink.up();
        resolve(Date.now());
      }, OUTAGE_SECONDS * 1000),
    )
  : Promise.resolve(Date.now());
const t0 = nowNs();
for (let i = 0; i < BIG; i += 1000) {
  const end = Math.min(BIG, i + 1000);
  for (let j = i; j < end; j++) logger.emit(auditRecord(j));
  await yieldToLoop();
  if (PACE_SECONDS > 0) {
    const aheadMs = ((end / BIG) * PACE_SECONDS * 1e9 - Number(nowNs() - t0)) / 1e6;
    if (aheadMs >= 1) await new Promise((resolve) => setTimeout(resolve, aheadMs));
  }
}
const emitSeconds = secondsSince(t0);
const emitEndAt = Date.now();
const rssAfterBurst = process.memoryUsage.rss();
const spoolBytesAfterBurst = sink ? dirBytes(dir) : 0;
process.stderr.write(
  `  [4] emitted ${BIG} records in ${emitSeconds.toFixed(1)} s${sink ? '; waiting for the sink to come back' : ''}\n`,
);
const upAt = await upTimer;
await (sink
  ? (processor as AuditLogRecordProcessor).forceFlush({ timeoutMillis: 600_000 })
  : processor.forceFlush());
const doneAt = Date.now();
// Drain: from when both the sink is back and the burst is over, until all is delivered.
const drainFrom = Math.max(upAt, emitEndAt);
const drainSeconds = (doneAt - drainFrom) / 1000;
clearInterval(rssTimer);
const s = sink ? await sink.stats() : { distinct: exported, duplicates: 0, firstAt: 0 };
await provider.shutdown();
const maxRssMb = process.resourceUsage().maxRSS / 1024;
peakRss = Math.max(peakRss, process.memoryUsage.rss());
const peakMb = Math.max(maxRssMb, peakRss / 2 ** 20);
await sink?.close();
const result = {
  records: BIG,
  outageSeconds: OUTAGE_SECONDS,
  maxBytes: MAX_BYTES,
  emitSeconds,
  distinct: s.distinct,
  duplicates: s.duplicates,
  drainSeconds,
  totalSeconds: (doneAt - outageStart) / 1000,
  firstAfterUpSeconds: s.firstAt > 0 ? (s.firstAt - upAt) / 1000 : undefined,
  upAfterSeconds: (upAt - outageStart) / 1000,
  emitEndAfterSeconds: (emitEndAt - outageStart) / 1000,
  peakRssMb: peakMb,
  rssBeforeMb: rssBefore / 2 ** 20,
  rssAfterBurstMb: rssAfterBurst / 2 ** 20,
  peakHeapMb: peakHeap / 2 ** 20,
  spoolBytesAfterBurst,
  diag: [...diagLines].map(([k, n]) => (n > 1 ? `${k} (×${n})` : k)),
};
writeFileSync(arg('--result-file') as string, JSON.stringify(result));
