// SPDX-License-Identifier: Apache-2.0
/*
 * The README's first command runs this demo: it starts the reference DataStorage on embedded
 * PGlite, runs a service wired through NodeSDK with AuditLogRecordProcessor that plays realistic
 * remediations, reads the events back, verifies every correlation's hash chain, prints a summary
 * and exits 0 when nothing was lost and every chain verifies.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { constants, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
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
import { remediation } from './scenario.ts';
import { fmtMs, quantile } from './stats.ts';

/** Where the demo keeps its spool and dead letters, for you to look at after it ran. */
const DEMO_DIR = resolve(process.env.DEMO_DIR || join(tmpdir(), 'kubernaut-audit-demo'));
const MAX_PACE_MS = 10_000;
const MAX_REMEDIATIONS = 1000;
const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const VERIFY_CLI = join(REPO_ROOT, 'packages/audit-verifier/src/bin.ts');
/**
 * Where the reference DataStorage keeps a freshly initialised PGlite cluster, so that a run
 * after the first starts it in under a second instead of running initdb (PGLITE_CACHE_DIR
 * overrides it, as for the server's command).
 */
const PGLITE_CACHE = process.env.PGLITE_CACHE_DIR?.trim() || join(REPO_ROOT, '.cache/pglite');
/** The spec beside the repository (as the test suites look for it), wherever the demo runs from. */
const DEFAULT_SPEC = resolve(REPO_ROOT, '../shared/kubernaut/data-storage-v1.yaml');
/** DataStorage's largest page of GET /api/v1/audit/events. */
const PAGE = 1000;

/** A problem with the demo's settings or machine: printed as one line, without a stack trace. */
class DemoError extends Error {}

/** DEMO_REMEDIATIONS: a whole number from 1 to MAX_REMEDIATIONS, 24 when unset. */
function remediationsFromEnv(): number {
  const raw = process.env.DEMO_REMEDIATIONS;
  if (raw === undefined || raw.trim() === '') return 24;
  const n = Number(raw);
  if (!/^\s*\d+\s*$/.test(raw) || n < 1 || n > MAX_REMEDIATIONS) {
    throw new DemoError(
      `DEMO_REMEDIATIONS="${raw}": expected a whole number from 1 to ${MAX_REMEDIATIONS} (default 24)`,
    );
  }
  return n;
}

/** DEMO_PACE_MS: milliseconds between two remediations, a whole number up to MAX_PACE_MS, 100 when unset. */
function paceFromEnv(): number {
  const raw = process.env.DEMO_PACE_MS;
  if (raw === undefined || raw.trim() === '') return 100;
  const n = Number(raw);
  if (!/^\s*\d+\s*$/.test(raw) || n > MAX_PACE_MS) {
    throw new DemoError(
      `DEMO_PACE_MS="${raw}": expected a whole number of milliseconds from 0 to ${MAX_PACE_MS} (default 100)`,
    );
  }
  return n;
}

/**
 * Whether DEMO_DIR may be replaced: it does not exist, or holds what a run left there (a spool)
 * and nothing else. `DEMO_DIR=.` or `DEMO_DIR=$HOME` must never be removed.
 */
function replaceable(): boolean {
  try {
    return readdirSync(DEMO_DIR).every((f) => f === 'spool');
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ENOENT';
  }
}

const notReplaceable = () =>
  new DemoError(
    `DEMO_DIR=${DEMO_DIR} holds more than a previous demo's spool: the demo replaces that directory at the end, so it leaves this one alone; set DEMO_DIR to a new directory`,
  );

/**
 * A private directory for this run, beside DEMO_DIR (so that two runs at once never share a
 * spool, and it can be renamed to DEMO_DIR at the end). The token file lives in it too (0700).
 */
function makeRunDir(): string {
  if (!replaceable()) throw notReplaceable();
  try {
    mkdirSync(dirname(DEMO_DIR), { recursive: true });
    return mkdtempSync(`${DEMO_DIR}.run-`);
  } catch (err) {
    throw new DemoError(
      `cannot create the demo's directory beside ${DEMO_DIR} (${describe(err)}): set DEMO_DIR to a directory you can write (default: <os tmpdir>/kubernaut-audit-demo, see TMPDIR)`,
    );
  }
}

/** Moves this run's directory to DEMO_DIR, replacing what an earlier run left there. */
function publish(runDir: string): void {
  const old = `${runDir}.old`;
  for (let attempt = 1; ; attempt++) {
    try {
      renameSync(runDir, DEMO_DIR);
      return;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      // Another run may publish between our two renames: try again a few times.
      if (attempt >= 5 || (code !== 'ENOTEMPTY' && code !== 'EEXIST')) throw err;
    }
    if (!replaceable()) throw notReplaceable();
    try {
      renameSync(DEMO_DIR, old);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    rmSync(old, { recursive: true, force: true });
  }
}

/** An error's message, with its cause's (fetch failed → connect ECONNREFUSED …). */
function describe(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  return err.cause instanceof Error ? `${err.message}: ${err.cause.message}` : err.message;
}

/** What an interruption must clean up: the run's directory and the verifier, if running. */
const running: { runDir?: string; verifier?: ChildProcess } = {};

/**
 * Ctrl-C, SIGTERM, or `npm start` gone: stop at once, verify nothing, leave no process and no
 * token behind, and exit with 128 + the signal's number, as a shell reports a process killed by it.
 */
function stop(signal: NodeJS.Signals, why: string = signal): void {
  process.stderr.write(`\n${why}: the demo stops here (nothing was verified)\n`);
  running.verifier?.kill('SIGTERM');
  const { runDir } = running;
  // Removed last, after the processor's own exit hook has written what it holds to the spool.
  if (runDir !== undefined)
    process.on('exit', () => rmSync(runDir, { recursive: true, force: true }));
  process.exit(128 + constants.signals[signal]);
}

interface QueriedEvent {
  event_id: string;
  correlation_id: string;
  event_data: { demo_seq?: number };
}

const log = (s: string) => process.stdout.write(`${s}\n`);
const delay = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function main(): Promise<number> {
  const REMEDIATIONS = remediationsFromEnv();
  const PACE_MS = paceFromEnv();
  if (process.env.OTEL_SDK_DISABLED?.trim().toLowerCase() === 'true') {
    throw new DemoError(
      'OTEL_SDK_DISABLED=true is set: it turns the OpenTelemetry SDK off, so the demo would emit nothing. Run it without: env -u OTEL_SDK_DISABLED npm start',
    );
  }
  // OTel env defaults would also export traces/metrics over OTLP to localhost; the demo needs none.
  process.env.OTEL_TRACES_EXPORTER ??= 'none';
  process.env.OTEL_METRICS_EXPORTER ??= 'none';
  process.env.OTEL_LOGS_EXPORTER ??= 'none';

  const spec =
    process.env.KUBERNAUT_DATASTORAGE_SPEC || (existsSync(DEFAULT_SPEC) ? DEFAULT_SPEC : undefined);

  // A fresh spool for each run, in a directory of its own while the demo runs; at the end it
  // replaces the previous run's in DEMO_DIR, where it is kept.
  // DataStorage requires a bearer token, as in production: a fresh one in a token file that
  // the server reads and the exporter and the verifier send (removed at the end).
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const)
    process.on(signal, () => stop(signal));
  // Its output piped into a program that stops reading (`npm start | head`): the next line
  // fails with EPIPE. Stop as a process killed by SIGPIPE would (141), but tidily: no stack
  // trace, no run directory or token left.
  process.stdout.on('error', () => stop('SIGPIPE', 'its output is closed'));
  // Started by `npm start` (scripts/start.ts) with an IPC channel: when that launcher dies, even
  // by SIGKILL, the channel closes and the demo stops too instead of running on unattended.
  if (process.channel !== undefined) {
    process.channel.unref();
    process.once('disconnect', () => stop('SIGHUP', '`npm start` is gone'));
  }
  const runDir = makeRunDir();
  running.runDir = runDir;
  const spoolDir = join(runDir, 'spool');
  mkdirSync(spoolDir);
  const tokenFile = join(runDir, 'token');
  const token = randomBytes(32).toString('base64url');
  writeFileSync(tokenFile, `${token}\n`, { mode: 0o600 });
  const authorization = `Bearer ${token}`;
  let failed = true;
  try {
    const code = await demo(REMEDIATIONS, PACE_MS, spec, spoolDir, tokenFile, authorization);
    failed = false;
    return code;
  } finally {
    rmSync(tokenFile, { force: true });
    running.runDir = undefined;
    if (!failed) publish(runDir);
    else {
      // The SDK still holds the spool: it is moved to DEMO_DIR, for a look at what it kept, once
      // the processor's own exit hook has run.
      process.on('exit', () => {
        try {
          publish(runDir);
          process.stderr.write(`The spool is kept in ${join(DEMO_DIR, 'spool')}\n`);
        } catch (err) {
          process.stderr.write(`The spool is kept in ${spoolDir} (${describe(err)})\n`);
        }
      });
    }
  }
}

async function demo(
  REMEDIATIONS: number,
  PACE_MS: number,
  spec: string | undefined,
  runSpoolDir: string,
  tokenFile: string,
  authorization: string,
): Promise<number> {
  // The server, the SDK and the pipeline load only now, once the settings are checked: a wrong
  // setting is told at once, not after a second or two of loading them.
  const [
    { startDataStorageServer },
    { AuditFlushTimeoutError, AuditLogRecordProcessor, KubernautAuditExporter },
    { logs },
    { resourceFromAttributes },
    { MeterProvider, MetricReader },
    { NodeSDK },
  ] = await Promise.all([
    import('@kubernaut/datastorage-server'),
    import('@kubernaut/exporter-kubernaut-audit'),
    import('@opentelemetry/api'),
    import('@opentelemetry/resources'),
    import('@opentelemetry/sdk-metrics'),
    import('@opentelemetry/sdk-node'),
  ]);
  /** A pull reader so the demo can read its own metrics at the end. */
  class SummaryReader extends MetricReader {
    protected override async onForceFlush(): Promise<void> {}
    protected override async onShutdown(): Promise<void> {}
  }

  log('▸ starting the reference DataStorage on embedded PGlite …');
  const server = await startDataStorageServer({
    port: 0,
    storage: { kind: 'pglite', cacheDir: PGLITE_CACHE },
    ...(spec ? { openapiSpec: spec } : {}),
    auth: { tokenFile },
    quiet: true,
  });
  log(
    `  DataStorage at ${server.url} (bearer-token auth on${spec ? ', full OpenAPI validation on' : ''})`,
  );

  log(`  spool and dead letters of this run in ${runSpoolDir} (moved to ${DEMO_DIR} at the end)`);
  const reader = new SummaryReader();
  const meterProvider = new MeterProvider({ readers: [reader] });
  const processor = new AuditLogRecordProcessor({
    exporter: new KubernautAuditExporter({
      url: server.url,
      bearerTokenFile: tokenFile,
      meterProvider,
    }),
    spool: { directory: runSpoolDir },
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

  /** Every event DataStorage holds, page by page (it returns at most PAGE per query). */
  const readBack = async (): Promise<QueriedEvent[]> => {
    const events: QueriedEvent[] = [];
    for (let offset = 0; ; offset += PAGE) {
      const res = await fetch(`${server.url}/api/v1/audit/events?limit=${PAGE}&offset=${offset}`, {
        headers: { authorization },
      });
      if (!res.ok) throw new Error(`reading the events back failed: HTTP ${res.status}`);
      const body = (await res.json()) as {
        data: QueriedEvent[];
        pagination?: { has_more?: boolean };
      };
      events.push(...body.data);
      if (body.pagination?.has_more !== true || body.data.length === 0) break;
    }
    const now = performance.now();
    for (const e of events) {
      const s = e.event_data.demo_seq;
      if (typeof s === 'number' && !firstSeen.has(s)) firstSeen.set(s, now);
    }
    return events;
  };

  // A reader that watches DataStorage while the service emits, to time emit → queryable. It
  // stops when the emitting is over: forceFlush() below waits for the rest, and whatever never
  // arrives is counted as lost from the final read-back (it must not be waited for forever).
  let emitting = true;
  const watcher = (async () => {
    while (emitting) {
      await readBack();
      await delay(50);
    }
  })();
  // Its failure is reported when it is awaited, not as an unhandled rejection meanwhile.
  watcher.catch(() => {});

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
  try {
    await processor.forceFlush({ timeoutMillis: 60_000 });
  } catch (err) {
    // DataStorage did not accept the records in time; the processor said why on stderr.
    if (err instanceof AuditFlushTimeoutError) throw new DemoError(err.message);
    throw err;
  }
  emitting = false;
  await watcher;
  // What the summary counts: the demo's events as DataStorage returns them now.
  const stored = (await readBack()).filter(
    (e) => typeof e.event_data.demo_seq === 'number' && emittedAt.has(e.event_data.demo_seq),
  );

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
  const deadLetterFile = join(runSpoolDir, 'dead-letter.jsonl');
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
  running.verifier = child;
  const verifier = {
    status: await new Promise<number | null>((done) => {
      child.once('error', (err) => {
        process.stderr.write(`kubernaut-audit verify did not start: ${err.message}\n`);
        done(null);
      });
      child.once('close', (code) => done(code));
    }),
  };
  running.verifier = undefined;

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
  const keptSpool = join(DEMO_DIR, 'spool');
  const keptDeadLetters = join(keptSpool, 'dead-letter.jsonl');
  log(`Kept in ${DEMO_DIR} (replaced by the next run):`);
  log(`  spool:        ${keptSpool}${lost === 0 ? ' (every record in it was delivered)' : ''}`);
  log(`  dead letters: ${keptDeadLetters}`);
  log("Look at the dead letters with the auditor's tool:");
  log(`  npx kubernaut-audit dead-letters list ${keptDeadLetters}`);
  return ok ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    // A setting or machine problem, or DataStorage not accepting the records in time (the
    // processor said why on stderr), is one line; anything else keeps its stack for a bug report.
    if (err instanceof DemoError) {
      process.stderr.write(`npm start: ${err.message}\n`);
    } else console.error('npm start failed:', err);
    process.stderr.write('FAILED: the demo did not complete.\n');
    process.exit(1);
  },
);
