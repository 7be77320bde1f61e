// SPDX-License-Identifier: Apache-2.0
/*
 * Scenario 2 — exporter throughput (DESIGN §10): records/s delivered to a loopback sink that
 * answers 201, by KubernautAuditExporter vs OTel's OTLPLogExporter (http/json), on the same
 * ReadableLogRecords, in batches of 500 (DataStorage's limit), one export at a time and four
 * at a time. Delivered records are counted at the sink by id (never assumed).
 */
import { KubernautAuditExporter } from '@kubernaut/exporter-kubernaut-audit';
import { createCapturingLoggerProvider } from '@kubernaut/test-kit';
import { ExportResultCode } from '@opentelemetry/core';
import { OTLPLogExporter } from '@opentelemetry/exporter-logs-otlp-http';
import type { LogRecordExporter, ReadableLogRecord } from '@opentelemetry/sdk-logs';
import { auditRecord, averagePayloadBytes, benchResource, loadTemplates } from '../lib/records.ts';
import { fmt, fmtRange, fmtRatio, QUICK, Reporter } from '../lib/result.ts';
import { Sink } from '../lib/sink.ts';
import { nowNs, rotate, secondsSince, summarize } from '../lib/stats.ts';

const N = QUICK ? 5_000 : 50_000;
const BATCH = 500;
const ROUNDS = QUICK ? 2 : 7;

const rep = new Reporter('2', '2. Exporter throughput to a loopback sink (201)');
await loadTemplates();
const sink = await Sink.start();

// The same SDK records for every variant.
const cap = createCapturingLoggerProvider(benchResource());
for (let i = 0; i < N; i++) cap.logger.emit(auditRecord(i));
const records: ReadableLogRecord[] = cap.records.splice(0);
const batches: ReadableLogRecord[][] = [];
for (let i = 0; i < records.length; i += BATCH) batches.push(records.slice(i, i + BATCH));

type Variant = 'kubernaut' | 'otlp';
function makeExporter(v: Variant): LogRecordExporter {
  return v === 'kubernaut'
    ? new KubernautAuditExporter({ url: sink.url, timeoutMillis: 30_000 })
    : new OTLPLogExporter({ url: `${sink.url}/v1/logs`, timeoutMillis: 30_000 });
}

function exportOnce(exporter: LogRecordExporter, batch: ReadableLogRecord[]): Promise<void> {
  return new Promise((resolve, reject) => {
    exporter.export(batch, (r) => {
      if (r.code === ExportResultCode.SUCCESS) resolve();
      else reject(r.error ?? new Error('export failed'));
    });
  });
}

/** Exports every batch with `inFlight` exports at a time; returns records/s delivered. */
async function run(v: Variant, inFlight: number): Promise<number> {
  const exporter = makeExporter(v);
  await sink.reset(N);
  await exportOnce(exporter, batches[0] as ReadableLogRecord[]); // connection + JIT warm-up
  await sink.reset(N);
  let next = 0;
  const start = nowNs();
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next < batches.length)
        await exportOnce(exporter, batches[next++] as ReadableLogRecord[]);
    }),
  );
  const seconds = secondsSince(start);
  const s = await sink.stats();
  await exporter.shutdown();
  if (s.distinct !== N) throw new Error(`${v}: the sink counted ${s.distinct} of ${N} records`);
  return N / seconds;
}

const rows: string[][] = [];
for (const inFlight of [1, 4]) {
  const rates: Record<Variant, number[]> = { kubernaut: [], otlp: [] };
  const bytes: Record<Variant, number> = { kubernaut: 0, otlp: 0 };
  // Warm-up of both code paths before anything is timed.
  await run('kubernaut', inFlight);
  await run('otlp', inFlight);
  for (let r = 0; r < ROUNDS; r++) {
    for (const v of rotate<Variant>(['kubernaut', 'otlp'], r)) {
      rates[v].push(await run(v, inFlight));
      bytes[v] = (await sink.stats()).bytes;
    }
    rep.progress(`in flight ${inFlight}, round ${r + 1}/${ROUNDS}`);
  }
  const k = summarize(rates.kubernaut);
  const o = summarize(rates.otlp);
  rep.goal(
    `exporter throughput ≥ 1.5× OTLPLogExporter (http/json), ${inFlight} export${inFlight > 1 ? 's' : ''} in flight`,
    `${fmtRatio(k.median / o.median)} (${fmt(k.median, 0)} vs ${fmt(o.median, 0)} records/s)`,
    k.median / o.median >= 1.5,
  );
  rows.push([
    `OTLPLogExporter http/json (baseline), ${inFlight} in flight`,
    fmtRange(o, 0),
    fmt(bytes.otlp / N, 0),
    '1.00×',
  ]);
  rows.push([
    `KubernautAuditExporter, ${inFlight} in flight`,
    fmtRange(k, 0),
    fmt(bytes.kubernaut / N, 0),
    fmtRatio(k.median / o.median),
  ]);
}
rep.table({
  title: `Records/s delivered, ${fmt(N, 0)} records in batches of ${BATCH}, median (min–max) of ${ROUNDS} runs — goal ≥ 1.5×`,
  headers: ['exporter', 'records/s', 'bytes/record on the wire', 'ratio to OTLP'],
  rows,
});
rep.note(
  `Same ${fmt(N, 0)} SDK ReadableLogRecords for both (14 event types, payload ≈ ${averagePayloadBytes()} B of JSON each). The sink runs in its own process, reads each body, counts record ids and answers 201 without validating (it measures the client, not a validator). Every run is checked: the sink saw all ${fmt(N, 0)} ids.`,
);
rep.note(
  'KubernautAuditExporter maps and validates each record against the DataStorage envelope rules inside export(); OTLPLogExporter only serialises. Neither compresses.',
);
await sink.close();
rep.finish();
