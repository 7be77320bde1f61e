// SPDX-License-Identifier: Apache-2.0
/*
 * The README's first command runs this demo: it starts the reference DataStorage on embedded
 * PGlite, runs a service wired through NodeSDK with AuditLogRecordProcessor that plays realistic
 * remediations, reads the events back, verifies every correlation's hash chain, prints a summary
 * and exits 0 when nothing was lost and every chain verifies.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  ATTR_AUDIT_ACTOR_ID,
  ATTR_AUDIT_CORRELATION_ID,
  ATTR_AUDIT_EVENT_ACTION,
  ATTR_AUDIT_EVENT_CATEGORY,
  ATTR_AUDIT_EVENT_OUTCOME,
  ATTR_AUDIT_RESOURCE_ID,
  ATTR_AUDIT_RESOURCE_TYPE,
} from '@kubernaut/audit-semantic-conventions';
import { startDataStorageServer } from '@kubernaut/datastorage-server';
import {
  AuditLogRecordProcessor,
  KubernautAuditExporter,
} from '@kubernaut/exporter-kubernaut-audit';
import { logs } from '@opentelemetry/api';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import { NodeSDK } from '@opentelemetry/sdk-node';
import { remediation } from './scenario.ts';
import { fmtMs, quantile } from './stats.ts';

const REMEDIATIONS = Number(process.env.DEMO_REMEDIATIONS ?? 24);
/** Where the demo keeps its spool and dead letters, for you to look at after it ran. */
const DEMO_DIR = resolve(process.env.DEMO_DIR ?? join(tmpdir(), 'kubernaut-audit-demo'));
const PACE_MS = 100; // one remediation every 100 ms
const VERIFY_CLI = fileURLToPath(
  new URL('../../../packages/audit-verifier/src/bin.ts', import.meta.url),
);

/** A pull reader so the demo can read its own metrics at the end. */
class SummaryReader extends MetricReader {
  protected override async onForceFlush(): Promise<void> {}
  protected override async onShutdown(): Promise<void> {}
}

interface QueriedEvent {
  event_id: string;
  correlation_id: string;
  event_data: { demo_seq?: number };
}

const log = (s: string) => process.stdout.write(`${s}\n`);
const delay = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function main(): Promise<number> {
  // OTel env defaults would also export traces/metrics over OTLP to localhost; the demo needs none.
  process.env.OTEL_TRACES_EXPORTER ??= 'none';
  process.env.OTEL_METRICS_EXPORTER ??= 'none';
  process.env.OTEL_LOGS_EXPORTER ??= 'none';

  const specDefault = resolve(process.cwd(), '../shared/kubernaut/data-storage-v1.yaml');
  const spec =
    process.env.KUBERNAUT_DATASTORAGE_SPEC ?? (existsSync(specDefault) ? specDefault : undefined);

  // DataStorage requires a bearer token, as in production: a fresh one in a token file that
  // the server reads and the exporter and the verifier send.
  // A fresh spool for each run (the previous run's is replaced), kept when the demo ends.
  const spoolDir = join(DEMO_DIR, 'spool');
  rmSync(DEMO_DIR, { recursive: true, force: true });
  mkdirSync(spoolDir, { recursive: true });
  const tokenDir = mkdtempSync(join(tmpdir(), 'kubernaut-datastorage-demo-'));
  const tokenFile = join(tokenDir, 'tokens');
  const token = randomBytes(32).toString('base64url');
  writeFileSync(tokenFile, `${token}\n`, { mode: 0o600 });
  const authorization = `Bearer ${token}`;

  log('▸ starting the reference DataStorage on embedded PGlite …');
  const server = await startDataStorageServer({
    port: 0,
    storage: { kind: 'pglite' },
    ...(spec ? { openapiSpec: spec } : {}),
    auth: { tokenFile },
    quiet: true,
  });
  log(
    `  DataStorage at ${server.url} (bearer-token auth on${spec ? ', full OpenAPI validation on' : ''})`,
  );

  log(`  spool and dead letters in ${spoolDir}`);
  const reader = new SummaryReader();
  const meterProvider = new MeterProvider({ readers: [reader] });
  const processor = new AuditLogRecordProcessor({
    exporter: new KubernautAuditExporter({
      url: server.url,
      bearerTokenFile: tokenFile,
      meterProvider,
    }),
    spool: { directory: spoolDir },
    meterProvider,
  });
  const sdk = new NodeSDK({
    resource: resourceFromAttributes({ 'service.name': 'kubernaut-demo' }),
    logRecordProcessors: [processor],
  });
  sdk.start();

  const emittedAt = new Map<number, number>();
  const firstSeen = new Map<number, number>();
  const correlations: string[] = [];
  let seq = 0;

  const readBack = async (): Promise<QueriedEvent[]> => {
    const res = await fetch(`${server.url}/api/v1/audit/events?limit=1000`, {
      headers: { authorization },
    });
    if (!res.ok) throw new Error(`query failed: ${res.status}`);
    const body = (await res.json()) as { data: QueriedEvent[] };
    const now = performance.now();
    for (const e of body.data) {
      const s = e.event_data.demo_seq;
      if (typeof s === 'number' && !firstSeen.has(s)) firstSeen.set(s, now);
    }
    return body.data;
  };

  // A reader that watches DataStorage while the service emits, to time emit → queryable.
  let emitting = true;
  const watcher = (async () => {
    while (emitting || firstSeen.size < emittedAt.size) {
      await readBack();
      if (!emitting && firstSeen.size >= emittedAt.size) break;
      await delay(50);
    }
  })();

  log(`▸ playing ${REMEDIATIONS} remediations through NodeSDK → AuditLogRecordProcessor …`);
  for (let i = 0; i < REMEDIATIONS; i++) {
    const { correlationId, steps } = remediation(i);
    correlations.push(correlationId);
    for (const step of steps) {
      const s = seq++;
      emittedAt.set(s, performance.now());
      logs.getLogger(step.service).emit({
        eventName: step.eventType,
        body: { ...step.data, demo_seq: s },
        attributes: {
          [ATTR_AUDIT_EVENT_CATEGORY]: step.category,
          [ATTR_AUDIT_EVENT_ACTION]: step.action,
          [ATTR_AUDIT_EVENT_OUTCOME]: step.outcome,
          [ATTR_AUDIT_CORRELATION_ID]: correlationId,
          [ATTR_AUDIT_ACTOR_ID]: `${step.service}-controller`,
          [ATTR_AUDIT_RESOURCE_TYPE]: step.resourceType,
          [ATTR_AUDIT_RESOURCE_ID]: step.resourceId,
        },
      });
    }
    if ((i + 1) % 6 === 0 || i + 1 === REMEDIATIONS) {
      log(
        `  emitted ${i + 1}/${REMEDIATIONS} remediations (${seq} events), ${firstSeen.size} queryable so far`,
      );
    }
    await delay(PACE_MS);
  }
  // One deliberately invalid audit record (unknown category): it must be dead-lettered, not lost.
  logs.getLogger('gateway').emit({
    eventName: 'gateway.signal.received',
    body: { signal_type: 'alert', signal_name: 'Bogus', namespace: 'x', fingerprint: 'bad' },
    attributes: {
      [ATTR_AUDIT_EVENT_CATEGORY]: 'not-a-category',
      [ATTR_AUDIT_EVENT_ACTION]: 'received',
      [ATTR_AUDIT_EVENT_OUTCOME]: 'success',
      [ATTR_AUDIT_CORRELATION_ID]: 'rr-invalid',
    },
  });

  log('▸ forceFlush(): waiting until DataStorage has accepted every record …');
  await processor.forceFlush({ timeoutMillis: 60_000 });
  emitting = false;
  await watcher;
  const stored = (await readBack()).filter((e) => typeof e.event_data.demo_seq === 'number');

  log('▸ verifying the hash chain of every correlation …');
  let chainsValid = 0;
  for (const correlationId of correlations) {
    const res = await fetch(`${server.url}/api/v1/audit/verify-chain`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization },
      body: JSON.stringify({ correlation_id: correlationId }),
    });
    const body = (await res.json()) as { is_valid?: boolean };
    if (res.ok && body.is_valid === true) chainsValid++;
  }

  // The completeness evidence: the verifier reads the trail back and checks every producer's
  // sequence numbers and hash chain (the invalid record's dead letter accounts for its seq).
  const deadLetterFile = join(spoolDir, 'dead-letter.jsonl');
  log('▸ kubernaut-audit verify: is the trail complete and unaltered? …');
  // Asynchronously: the reference DataStorage runs in this very process.
  const child = spawn(
    process.execPath,
    [
      '--conditions=@kubernaut/source',
      VERIFY_CLI,
      'verify',
      '--url',
      server.url,
      '--bearer-token-file',
      tokenFile,
      '--since',
      '1h',
      ...(existsSync(deadLetterFile) ? ['--dead-letters', deadLetterFile] : []),
    ],
    { stdio: ['ignore', 'inherit', 'inherit'] },
  );
  const verifier = {
    status: await new Promise<number | null>((done) => child.once('close', (code) => done(code))),
  };

  const { resourceMetrics } = await reader.collect();
  const metric = (name: string) =>
    resourceMetrics.scopeMetrics.flatMap((s) => s.metrics).find((m) => m.descriptor.name === name);
  const drift = metric('kubernaut.audit.timer.drift')?.dataPoints[0]?.value as
    | { count: number; sum: number; max?: number }
    | undefined;

  const deadLetters = existsSync(deadLetterFile)
    ? readFileSync(deadLetterFile, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { reason: string; detail: string })
    : [];
  const deadLettered = deadLetters.length;

  await sdk.shutdown();
  await server.close();
  rmSync(tokenDir, { recursive: true, force: true });

  const latencies = [...firstSeen].map(([s, t]) => t - emittedAt.get(s)!);
  const distinct = new Set(stored.map((e) => e.event_data.demo_seq)).size;
  const lost = emittedAt.size - distinct;
  const duplicates = stored.length - distinct;

  log('');
  log('Summary');
  log('───────────────────────────────────────────────');
  log(`  audit events emitted           ${emittedAt.size} valid + 1 invalid (on purpose)`);
  log(`  accepted and queryable         ${distinct}`);
  log(`  lost                           ${lost}`);
  log(`  duplicates                     ${duplicates}`);
  log(`  dead-lettered (invalid)        ${deadLettered}`);
  for (const d of deadLetters) log(`    why: ${d.detail}`);
  log(`  emit → queryable latency p50   ${fmtMs(quantile(latencies, 0.5))}`);
  log(`  emit → queryable latency p99   ${fmtMs(quantile(latencies, 0.99))}`);
  log(
    `  timer drift                    ${
      drift && drift.count > 0
        ? `mean ${fmtMs(drift.sum / drift.count)}, max ${fmtMs(drift.max ?? Number.NaN)} over ${drift.count} timer exports`
        : 'no timer-driven exports measured'
    }`,
  );
  log(`  hash chains verified           ${chainsValid}/${correlations.length}`);
  log(
    `  verifier                       ${verifier.status === 0 ? 'complete' : `exit ${verifier.status}`}`,
  );
  log('───────────────────────────────────────────────');

  const ok =
    lost === 0 &&
    chainsValid === correlations.length &&
    deadLettered === 1 &&
    verifier.status === 0;
  log(ok ? 'OK: nothing lost, every chain verified.' : 'FAILED: see the summary above.');
  log('');
  log(`Kept in ${DEMO_DIR} (replaced by the next run):`);
  log(`  spool:        ${spoolDir} (every record in it was delivered)`);
  log(`  dead letters: ${deadLetterFile}`);
  log("Look at the dead letters with the auditor's tool:");
  log(`  npx kubernaut-audit dead-letters list ${deadLetterFile}`);
  return ok ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
