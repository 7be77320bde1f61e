// SPDX-License-Identifier: Apache-2.0
/*
 * Scenario 8 — the Collector route (DESIGN §2's OTLP bridge): what the bridge process costs per
 * audit record, from OTLP/HTTP requests as OpenTelemetry's own exporters send them to records
 * accepted by a loopback sink. The requests are made once by a real LoggerProvider with a
 * BatchLogRecordProcessor and the real OTLPLogExporter (protobuf and JSON), captured, then POSTed
 * to the bridge (its own process: the figures are its CPU alone) as a Collector's
 * otlphttp exporter would, with 1 or 4 requests in flight. The bridge answers once the records
 * are on its spool; the run ends when forceFlush() in the bridge process resolved (the sink
 * accepted every record, counted there by id).
 *
 * No goal: the in-process processor's cost of the same records is scenario 7's; this table
 * says what the route through a Collector adds.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { OTLPLogExporter as OtlpJsonExporter } from '@opentelemetry/exporter-logs-otlp-http';
import { OTLPLogExporter as OtlpProtoExporter } from '@opentelemetry/exporter-logs-otlp-proto';
import { BatchLogRecordProcessor, LoggerProvider } from '@opentelemetry/sdk-logs';
import { auditRecord, averagePayloadBytes, benchResource, loadTemplates } from '../lib/records.ts';
import { fmt, fmtRange, QUICK, Reporter } from '../lib/result.ts';
import { Sink } from '../lib/sink.ts';
import { rotate, summarize } from '../lib/stats.ts';

const N = QUICK ? 10_000 : 50_000;
const ROUNDS = QUICK ? 2 : 5;
const BATCH = 512;

type Encoding = 'protobuf' | 'json';
const CONTENT_TYPE: Record<Encoding, string> = {
  protobuf: 'application/x-protobuf',
  json: 'application/json',
};

const rep = new Reporter('8', '8. The Collector route: OTLP/HTTP → bridge → loopback sink');
await loadTemplates();
const sink = await Sink.start();
const dirs: string[] = [];

/** The request bodies OpenTelemetry's OTLPLogExporter sends for N records, in batches of 512. */
async function captureBodies(encoding: Encoding): Promise<Buffer[]> {
  const bodies: Buffer[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      bodies.push(Buffer.concat(chunks));
      res.writeHead(200, { 'content-type': CONTENT_TYPE[encoding] });
      res.end(encoding === 'json' ? '{}' : undefined);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/logs`;
  const exporter =
    encoding === 'protobuf' ? new OtlpProtoExporter({ url }) : new OtlpJsonExporter({ url });
  const provider = new LoggerProvider({
    resource: benchResource(),
    processors: [
      new BatchLogRecordProcessor({ exporter, maxQueueSize: N, maxExportBatchSize: BATCH }),
    ],
  });
  const logger = provider.getLogger('bench', '1.0.0');
  for (let i = 0; i < N; i++) logger.emit(auditRecord(i));
  await provider.shutdown();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return bodies;
}

interface Usage {
  process: number;
  thread: number;
}

class BridgeProcess {
  private readonly _child: ChildProcess;
  readonly url: string;

  private constructor(child: ChildProcess, url: string) {
    this._child = child;
    this.url = url;
  }

  static async start(): Promise<BridgeProcess> {
    const dir = mkdtempSync(join(tmpdir(), 'bench-bridge-'));
    dirs.push(dir);
    const child = fork(fileURLToPath(new URL('../lib/bridge-process.ts', import.meta.url)), [], {
      execPath: process.execPath,
      execArgv: ['--conditions=@kubernaut/source'],
      env: { ...process.env, SINK_URL: sink.url, SPOOL_DIR: dir },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const port = await new Promise<number>((resolve, reject) => {
      child.once('message', (m: { port: number }) => resolve(m.port));
      child.once('exit', (code) => reject(new Error(`the bridge exited (${code})`)));
    });
    return new BridgeProcess(child, `http://127.0.0.1:${port}/v1/logs`);
  }

  private _ask(cmd: string): Promise<Usage> {
    return new Promise((resolve) => {
      this._child.once('message', (m: { usage: Usage }) => resolve(m.usage));
      this._child.send({ cmd });
    });
  }

  usage(): Promise<Usage> {
    return this._ask('usage');
  }

  /** The bridge's usage once every record it acknowledged was accepted by the sink. */
  flushed(): Promise<Usage> {
    return this._ask('flush');
  }

  async close(): Promise<void> {
    const exited = new Promise<void>((resolve) => this._child.once('exit', () => resolve()));
    this._child.send({ cmd: 'exit' });
    await exited;
  }
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });

/** POSTs one body; resolves with the status once the answer was read. */
function post(url: string, body: Buffer, encoding: Encoding): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, {
      method: 'POST',
      agent,
      headers: { 'content-type': CONTENT_TYPE[encoding], 'content-length': body.length },
    });
    req.on('response', (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end(body);
  });
}

interface Run {
  recordsPerSecond: number;
  processUs: number;
  threadUs: number;
}

async function run(
  bridge: BridgeProcess,
  bodies: Buffer[],
  encoding: Encoding,
  inFlight: number,
): Promise<Run> {
  await sink.reset(N);
  const before = await bridge.usage();
  const t0 = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next < bodies.length) {
        const body = bodies[next++] as Buffer;
        // 503 (the spool is full for now) is retried after a pause, as the Collector does.
        for (let status = 0; status !== 200; ) {
          if (status === 503) await new Promise((resolve) => setTimeout(resolve, 100));
          status = await post(bridge.url, body, encoding);
          if (status !== 200 && status !== 503) throw new Error(`the bridge answered ${status}`);
        }
      }
    }),
  );
  const after = await bridge.flushed();
  const seconds = (performance.now() - t0) / 1000;
  const s = await sink.stats();
  if (s.distinct !== N) throw new Error(`${encoding}: the sink counted ${s.distinct} of ${N}`);
  return {
    recordsPerSecond: N / seconds,
    processUs: (after.process - before.process) / N,
    threadUs: (after.thread - before.thread) / N,
  };
}

const bodies: Record<Encoding, Buffer[]> = {
  protobuf: await captureBodies('protobuf'),
  json: await captureBodies('json'),
};
const bytesPerRecord = (e: Encoding) => bodies[e].reduce((n, b) => n + b.length, 0) / N;

type Variant = `${Encoding}/${number}`;
const variants: Variant[] = ['protobuf/1', 'protobuf/4', 'json/4'];
const results = new Map<Variant, Run[]>(variants.map((v) => [v, []]));
const bridge = await BridgeProcess.start();
try {
  // Warm-up (JIT, connections), untimed.
  for (const v of variants) {
    const [encoding, inFlight] = v.split('/') as [Encoding, string];
    await run(bridge, bodies[encoding], encoding, Number(inFlight));
  }
  for (let r = 0; r < ROUNDS; r++) {
    for (const v of rotate(variants, r)) {
      const [encoding, inFlight] = v.split('/') as [Encoding, string];
      results.get(v)?.push(await run(bridge, bodies[encoding], encoding, Number(inFlight)));
    }
    rep.progress(`round ${r + 1}/${ROUNDS}`);
  }
} finally {
  await bridge.close();
}

rep.table({
  title: `OTLP/HTTP requests of ${BATCH} records (${fmt(N, 0)} records per run) → bridge → sink, median (min–max) of ${ROUNDS} runs`,
  headers: [
    'requests',
    'bytes/record in',
    'records/s',
    'bridge process CPU µs/record',
    'bridge main-thread CPU µs/record',
  ],
  rows: variants.map((v) => {
    const [encoding, inFlight] = v.split('/') as [Encoding, string];
    const rs = results.get(v) ?? [];
    return [
      `OTLP/HTTP ${encoding === 'protobuf' ? 'protobuf' : 'JSON'}, ${inFlight} in flight`,
      fmt(bytesPerRecord(encoding), 0),
      fmtRange(summarize(rs.map((x) => x.recordsPerSecond)), 0),
      fmtRange(summarize(rs.map((x) => x.processUs))),
      fmtRange(summarize(rs.map((x) => x.threadUs))),
    ];
  }),
});
rep.note(
  `Records: the same 14 realistic event types as scenario 7 (≈ ${averagePayloadBytes()} B of event_data, 15 attributes each), emitted once through a real LoggerProvider, BatchLogRecordProcessor and OTLPLogExporter (protobuf: @opentelemetry/exporter-logs-otlp-proto; JSON: -http), whose request bodies were captured and are replayed here. The bridge runs in its own process with its defaults (spool 'batch', provenance on) and answers 200 once a request's records are on its spool; its CPU is read from process.cpuUsage() and process.threadCpuUsage() in that process.`,
);
rep.note(
  'Per record the bridge decodes OTLP (protobufjs), converts to the SDK record shape, then does what the in-process processor does (map, validate, stamp, spool, send): compare with scenario 7, whose "process CPU" column is the in-process pipeline with the SDK emit() included.',
);
await sink.close();
for (const d of dirs) rmSync(d, { recursive: true, force: true });
rep.finish();
