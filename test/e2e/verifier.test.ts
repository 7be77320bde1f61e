// SPDX-License-Identifier: Apache-2.0
/*
 * The completeness verifier end to end (DESIGN §11): stamped events are delivered by the real
 * exporter into the reference DataStorage on the machine's PostgreSQL (a scratch database,
 * dropped afterwards; the test fails when PostgreSQL is down), then `kubernaut-audit verify`
 * reads them back through the query API:
 *
 * - a clean run is complete (exit 0);
 * - a row deleted directly in PostgreSQL (superuser, triggers bypassed) shows as a gap with
 *   its seq;
 * - an event_data value altered the same way shows as a chain break;
 * - a batch resent shows as duplicates.
 *
 * Each case uses its own producer and correlation id and verifies with --correlation-id.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DataStorageReader, main, type VerifyReport } from '@kubernaut/audit-verifier';
import type { AuditEventRequest } from '@kubernaut/datastorage-contract';
import { type DataStorageServer, startDataStorageServer } from '@kubernaut/datastorage-server';
import {
  AuditLogRecordProcessor,
  KubernautAuditExporter,
  ThreadedAuditLogRecordProcessor,
} from '@kubernaut/exporter-kubernaut-audit';
import { deliverEvents, ProvenanceStamper } from '@kubernaut/exporter-kubernaut-audit/experimental';
import {
  auditLogRecord,
  REPO_ROOT,
  realisticPayload,
  sampleEventTypes,
  TEST_TOKEN,
  testAuth,
  testTokenFile,
} from '@kubernaut/test-kit';
import { LoggerProvider } from '@opentelemetry/sdk-logs';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const PG_ADMIN_URL = process.env.DATABASE_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const CHILD = fileURLToPath(new URL('./fixtures/verifier-child.ts', import.meta.url));
const BIN = fileURLToPath(new URL('../../packages/audit-verifier/src/bin.ts', import.meta.url));

let dbName: string;
let dbUrl: string;
let server: DataStorageServer;
let exporter: KubernautAuditExporter;
let workDir: string;

async function admin<T>(url: string, f: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return await f(c);
  } finally {
    await c.end();
  }
}

beforeAll(async () => {
  dbName = `verifier_e2e_${randomUUID().replaceAll('-', '').slice(0, 16)}`;
  await admin(PG_ADMIN_URL, (c) => c.query(`CREATE DATABASE ${dbName}`));
  const u = new URL(PG_ADMIN_URL);
  u.pathname = `/${dbName}`;
  dbUrl = u.toString();
  server = await startDataStorageServer({
    port: 0,
    storage: { kind: 'postgres', connectionString: dbUrl },
    quiet: true,
    auth: testAuth(),
  });
  workDir = mkdtempSync(join(tmpdir(), 'verifier-e2e-'));
  exporter = new KubernautAuditExporter({
    url: server.url,
    bearerTokenFile: testTokenFile(),
    retry: { initialDelayMillis: 5, maxDelayMillis: 50 },
  });
});

afterAll(async () => {
  await exporter?.shutdown();
  await server?.close();
  if (dbName)
    await admin(PG_ADMIN_URL, (c) => c.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`));
  if (workDir) rmSync(workDir, { recursive: true, force: true });
});

/** n stamped events of one producer and correlation, in timestamp order. */
function stampedEvents(n: number, correlationId: string, t0: number): AuditEventRequest[] {
  const stamper = ProvenanceStamper.open({ producerId: randomUUID() });
  const info = sampleEventTypes()[0];
  if (info === undefined) throw new Error('no event types');
  return Array.from({ length: n }, (_, i) =>
    stamper.stamp({
      version: '1.0',
      event_type: info.eventType,
      event_timestamp: new Date(t0 + i * 10).toISOString(),
      event_category: info.category,
      event_action: 'verify-e2e',
      event_outcome: 'success',
      correlation_id: correlationId,
      actor_type: 'service',
      actor_id: 'verifier-e2e',
      event_data: realisticPayload(info.eventType, { n: i }),
    }),
  );
}

async function deliver(events: AuditEventRequest[]): Promise<void> {
  const r = await deliverEvents(exporter, events);
  expect(r.outcomes.every((o) => o === 'accepted')).toBe(true);
}

// Each case of the first suite owns a ten-minute slot in the past and verifies that window
// alone (no filter: gaps are judged); the others filter by correlation id.
let nextSlot = 0;
function slot(): number {
  return Date.now() - (55 - 10 * nextSlot++) * 60_000;
}

function windowArgs(t0: number): string[] {
  return [
    '--since',
    new Date(t0 - 1000).toISOString(),
    '--until',
    new Date(t0 + 60_000).toISOString(),
  ];
}

async function verify(correlationId: string): Promise<{ code: number; report: VerifyReport }> {
  return verifyArgs(['--since', '1h', '--correlation-id', correlationId]);
}

/** `kubernaut-audit verify` against the suite's server, with its token, and `args`. */
const verifyCommand = (...args: string[]): string[] => [
  'verify',
  '--url',
  server.url,
  '--bearer-token-file',
  testTokenFile(),
  ...args,
];

async function verifyArgs(args: string[]): Promise<{ code: number; report: VerifyReport }> {
  let out = '';
  let err = '';
  const code = await main(verifyCommand(...args, '--json'), {
    stdout: (t) => (out += t),
    stderr: (t) => (err += t),
  });
  if (code === 2) throw new Error(`verify failed: ${err}`);
  return { code, report: JSON.parse(out) as VerifyReport };
}

/** Runs the real bin (asynchronously: the server lives in this process). */
function runBin(
  ...args: string[]
): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(nodeBinary(), ['--conditions=@kubernaut/source', BIN, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

function nodeBinary(): string {
  return Number(process.versions.node.split('.')[0]) >= 23
    ? process.execPath
    : join(REPO_ROOT, 'node_modules/.bin/node');
}

async function superuserSql(sql: string, params: unknown[]): Promise<number> {
  return admin(dbUrl, async (c) => {
    await c.query('SET session_replication_role = replica');
    const r = await c.query(sql, params);
    return r.rowCount ?? 0;
  });
}

describe('kubernaut-audit verify against the reference DataStorage on PostgreSQL', () => {
  it('a clean run is complete (exit 0), also through the bin', async () => {
    const corr = `clean-${randomUUID()}`;
    const t0 = slot();
    await deliver(stampedEvents(25, corr, t0));
    const { code, report } = await verifyArgs(windowArgs(t0));
    expect(code).toBe(0);
    expect(report.complete).toBe(true);
    expect(report.producers).toHaveLength(1);
    expect(report.producers[0]).toMatchObject({
      delivered: 25,
      first_seq: 1,
      last_seq: 25,
      gaps: [],
      duplicates: [],
      chain_breaks: [],
    });
    expect(report.server_chains).toMatchObject([{ correlation_id: corr, is_valid: true }]);

    const bin = await runBin(...verifyCommand(...windowArgs(t0)));
    expect(bin.stderr).toBe('');
    expect(bin.status).toBe(0);
    expect(bin.stdout).toContain('COMPLETE');
  });

  it('an empty window, or a correlation id it does not hold, is NOTHING VERIFIED (exit 3), never COMPLETE', async () => {
    const empty = await verifyArgs([
      '--since',
      '2020-01-01T00:00:00Z',
      '--until',
      '2020-01-02T00:00:00Z',
    ]);
    expect(empty.code).toBe(3);
    expect(empty.report).toMatchObject({ verdict: 'empty', complete: false, events_total: 0 });
    const unknown = await verify(`no-such-correlation-${randomUUID()}`);
    expect(unknown.code).toBe(3);
    expect(unknown.report.verdict).toBe('empty');
    const bin = await runBin(
      ...verifyCommand('--since', '2020-01-01T00:00:00Z', '--until', '2020-01-02T00:00:00Z'),
    );
    expect(bin.status).toBe(3);
    expect(bin.stdout).toContain('NOTHING VERIFIED');
    expect(bin.stdout).not.toContain('COMPLETE');
  });

  it('a row deleted in PostgreSQL (triggers bypassed) is reported as a gap with its seq', async () => {
    const corr = `deleted-${randomUUID()}`;
    const t0 = slot();
    await deliver(stampedEvents(12, corr, t0));
    const deleted = await superuserSql(
      `DELETE FROM audit_events WHERE correlation_id = $1 AND (event_data->'audit_provenance'->>'seq')::int = 7`,
      [corr],
    );
    expect(deleted).toBe(1);
    const { code, report } = await verifyArgs(windowArgs(t0));
    expect(code).toBe(1);
    expect(report.producers[0]?.gaps).toMatchObject([{ from: 7, to: 7 }]);
    expect(report.producers[0]).toMatchObject({ missing: 1, gaps_judged: true, complete: false });
    // DataStorage's own chain sees the removal too.
    expect(report.server_chains[0]?.is_valid).toBe(false);

    const bin = await runBin(...verifyCommand(...windowArgs(t0)));
    expect(bin.status).toBe(1);
    expect(bin.stdout).toMatch(/lost seqs \(gaps\):\s+7 /);

    // Filtered by correlation id, the seq is listed but not judged (it could sit in another
    // correlation); the server's chain still fails the run.
    const filtered = await verify(corr);
    expect(filtered.code).toBe(1);
    expect(filtered.report.producers[0]).toMatchObject({ gaps_judged: false, complete: true });
    expect(filtered.report.producers[0]?.gaps).toMatchObject([{ from: 7, to: 7 }]);
  });

  it('an event_data value altered in PostgreSQL is reported as a chain break', async () => {
    const corr = `altered-${randomUUID()}`;
    const t0 = slot();
    await deliver(stampedEvents(10, corr, t0));
    const updated = await superuserSql(
      `UPDATE audit_events SET event_data = jsonb_set(event_data, '{n}', '999')
        WHERE correlation_id = $1 AND (event_data->'audit_provenance'->>'seq')::int = 4`,
      [corr],
    );
    expect(updated).toBe(1);
    const { code, report } = await verifyArgs(windowArgs(t0));
    expect(code).toBe(1);
    expect(report.producers[0]?.gaps).toEqual([]);
    expect(report.producers[0]?.chain_breaks).toMatchObject([{ seq: 4, kind: 'altered' }]);
  });

  it('a batch resent is reported as duplicates', async () => {
    const corr = `resent-${randomUUID()}`;
    const t0 = slot();
    const events = stampedEvents(8, corr, t0);
    await deliver(events.slice(0, 5));
    await deliver(events.slice(3, 5)); // the retry of an ambiguous attempt
    await deliver(events.slice(5));
    const { code, report } = await verifyArgs(windowArgs(t0));
    expect(code).toBe(1);
    expect(
      report.producers[0]?.duplicates.map((d) => [d.seq, d.event_ids.length, d.conflicting]),
    ).toEqual([
      [4, 2, false],
      [5, 2, false],
    ]);
    expect(report.producers[0]?.gaps).toEqual([]);
    expect(report.producers[0]?.chain_breaks).toEqual([]);
  });
});

/** Runs the child emitter on `spoolDir` and SIGKILLs it after `after` emits; returns the ns it printed. */
async function emitAndKill(
  durability: 'batch' | 'sync',
  spoolDir: string,
  corr: string,
  after: number,
  kind: Kind,
): Promise<number[]> {
  const child = spawn(nodeBinary(), ['--conditions=@kubernaut/source', CHILD], {
    env: {
      ...process.env,
      DS_URL: server.url,
      KUBERNAUT_AUDIT_BEARER_TOKEN_FILE: testTokenFile(),
      SPOOL_DIR: spoolDir,
      DURABILITY: durability,
      DELAY: '200',
      CORRELATION_ID: corr,
      PROCESSOR: kind,
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const printed: number[] = [];
  let buf = '';
  const take = (text: string) => {
    buf += text;
    const lines = buf.split('\n');
    buf = lines.pop() ?? '';
    for (const l of lines) if (l.startsWith('E ')) printed.push(Number(l.slice(2)));
  };
  const closed = new Promise<void>((resolve) => child.once('close', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    child.once('exit', (code, signal) => {
      if (signal !== 'SIGKILL') reject(new Error(`child exited early (${code})`));
    });
    child.stdout.on('data', (d: Buffer) => {
      take(d.toString());
      if (printed.length >= after && child.exitCode === null && !child.killed) {
        child.kill('SIGKILL');
        resolve();
      }
    });
  });
  await closed;
  return printed;
}

/** A second session on the same spool: delivers what the first left, emits `n` more. */
async function secondSession(spoolDir: string, corr: string, n: number, kind: Kind): Promise<void> {
  const Processor = kind === 'threaded' ? ThreadedAuditLogRecordProcessor : AuditLogRecordProcessor;
  const processor = new Processor({
    exporter: new KubernautAuditExporter({
      url: server.url,
      bearerTokenFile: testTokenFile(),
      retry: { initialDelayMillis: 5, maxDelayMillis: 50 },
    }),
    spool: { directory: spoolDir },
    scheduledDelayMillis: 50,
  });
  const provider = new LoggerProvider({ processors: [processor] });
  const logger = provider.getLogger('verifier-e2e');
  const payload = realisticPayload('gateway.signal.received');
  for (let i = 0; i < n; i++)
    logger.emit(auditLogRecord({ correlationId: corr, data: { ...payload, n: 1_000_000 + i } }));
  await provider.forceFlush();
  await provider.shutdown();
}

/** The `n` of every stored event of a correlation (read with the verifier's own pager). */
async function deliveredNs(corr: string): Promise<Set<number>> {
  const reader = new DataStorageReader({ url: server.url, bearerToken: TEST_TOKEN });
  const { events } = await reader.readEvents({
    since: new Date(Date.now() - 3_600_000),
    until: new Date(Date.now() + 3_600_000),
    correlationId: corr,
  });
  const out = new Set<number>();
  for (const e of events) {
    const n = (e.event_data as Record<string, unknown> | undefined)?.n;
    if (typeof n === 'number') out.add(n);
  }
  return out;
}

/** '' = AuditLogRecordProcessor, 'threaded' = ThreadedAuditLogRecordProcessor (seqs from blocks). */
type Kind = '' | 'threaded';

describe.each([
  ['AuditLogRecordProcessor', ''],
  ['ThreadedAuditLogRecordProcessor', 'threaded'],
] as const)('kubernaut-audit verify after SIGKILL (real processor: %s)', (_name, kind) => {
  it('sync: two sessions, no gap, no chain break; the crash window holds no lost record', async () => {
    const spoolDir = mkdtempSync(join(workDir, 'spool-sync-'));
    const corr = `kill-sync-${randomUUID()}`;
    const printed = await emitAndKill('sync', spoolDir, corr, 600, kind);
    await secondSession(spoolDir, corr, 20, kind);
    const { report } = await verify(corr);
    const p = report.producers[0];
    expect(report.producers).toHaveLength(1);
    expect(p?.sessions).toHaveLength(2);
    expect(p?.gaps).toEqual([]);
    expect(p?.chain_breaks).toEqual([]);
    expect(p?.first_seq).toBe(1);
    const [s1, s2] = p?.sessions ?? [];
    // The restarted session declared the crash: the window lies between the sessions and
    // starts right after the killed session's last record (everything it emitted was spooled).
    expect(p?.crash_windows).toHaveLength(1);
    const w = p?.crash_windows[0];
    expect(w?.session_id).toBe(s1?.session_id);
    expect(w?.declared_by).toBe(s2?.session_id);
    expect(w?.from).toBe((s1?.last_seq ?? 0) + 1);
    expect(w?.to).toBe((s2?.first_seq ?? 0) - 1);
    // Every record the child emitted before the kill was delivered: seqs 1..S1 without a hole.
    expect(s1?.last_seq ?? 0).toBeGreaterThanOrEqual(printed.length);
    expect(p?.delivered).toBe((p?.last_seq ?? 0) - (p?.crash_unaccounted ?? 0));
    const ns = await deliveredNs(corr);
    expect(printed.filter((n) => !ns.has(n))).toEqual([]);
  });

  it('batch: the records really lost lie in the declared crash window, no gap, none invented', async () => {
    const spoolDir = mkdtempSync(join(workDir, 'spool-batch-'));
    const corr = `kill-batch-${randomUUID()}`;
    const printed = await emitAndKill('batch', spoolDir, corr, 1500, kind);
    await secondSession(spoolDir, corr, 20, kind);
    const { report } = await verify(corr);
    const p = report.producers[0];
    expect(report.producers).toHaveLength(1);
    expect(p?.chain_breaks).toEqual([]);
    expect(p?.gaps).toEqual([]);
    expect(p?.sessions).toHaveLength(2);
    const [s1, s2] = p?.sessions ?? [];
    expect(p?.crash_windows).toHaveLength(1);
    const w = p?.crash_windows[0];
    expect(w?.from).toBe((s1?.last_seq ?? 0) + 1);
    expect(w?.to).toBe((s2?.first_seq ?? 0) - 1);
    const ns = await deliveredNs(corr);
    const lostPrinted = printed.filter((n) => !ns.has(n));
    // Every real loss is within the window …
    expect(w?.unaccounted ?? 0).toBeGreaterThanOrEqual(lostPrinted.length);
    // … the records lost are the last ones emitted (a prefix of the emits reached the spool) …
    expect(lostPrinted).toEqual(printed.slice(printed.length - lostPrinted.length));
    // … and the delivered ones of the killed session are exactly seqs 1..s1.last_seq.
    expect(s1?.records).toBe(s1?.last_seq);
  });
});

describe('the processor stamps provenance', () => {
  it('a record dead-lettered at emit consumes a seq the verifier counts as rejected; provenance: false stamps nothing', async () => {
    const spoolDir = mkdtempSync(join(workDir, 'spool-dl-'));
    const deadLetters = join(spoolDir, 'dead-letter.jsonl');
    const corr = `dl-${randomUUID()}`;
    const processor = new AuditLogRecordProcessor({
      exporter: new KubernautAuditExporter({
        url: server.url,
        bearerTokenFile: testTokenFile(),
        retry: { initialDelayMillis: 5, maxDelayMillis: 50 },
      }),
      spool: { directory: spoolDir },
      scheduledDelayMillis: 20,
    });
    const provider = new LoggerProvider({ processors: [processor] });
    const logger = provider.getLogger('verifier-e2e');
    logger.emit(auditLogRecord({ correlationId: corr }));
    // Invalid: an outcome DataStorage does not know → dead-lettered at emit.
    logger.emit(auditLogRecord({ correlationId: corr, outcome: 'maybe' }));
    logger.emit(auditLogRecord({ correlationId: corr }));
    await provider.forceFlush();
    await provider.shutdown();

    const without = await verify(corr);
    expect(without.report.producers[0]?.gaps).toMatchObject([{ from: 2, to: 2 }]);
    let out = '';
    const code = await main(
      verifyCommand('--correlation-id', corr, '--dead-letters', deadLetters, '--json'),
      { stdout: (t) => (out += t), stderr: () => undefined },
    );
    const report = JSON.parse(out) as VerifyReport;
    expect(code).toBe(0);
    expect(report.producers[0]).toMatchObject({
      delivered: 2,
      rejected_count: 1,
      gaps: [],
      chain_breaks: [],
    });
    expect(report.producers[0]?.rejected).toMatchObject([{ from: 2, to: 2 }]);

    const plainCorr = `plain-${randomUUID()}`;
    const plain = new AuditLogRecordProcessor({
      exporter: new KubernautAuditExporter({
        url: server.url,
        bearerTokenFile: testTokenFile(),
        retry: { initialDelayMillis: 5, maxDelayMillis: 50 },
      }),
      spool: { directory: mkdtempSync(join(workDir, 'spool-plain-')) },
      provenance: false,
    });
    const plainProvider = new LoggerProvider({ processors: [plain] });
    plainProvider.getLogger('verifier-e2e').emit(auditLogRecord({ correlationId: plainCorr }));
    await plainProvider.shutdown();
    const r = await verify(plainCorr);
    expect(r.report.producers).toEqual([]);
    expect(r.report.without_provenance.count).toBe(1);
  });
});
