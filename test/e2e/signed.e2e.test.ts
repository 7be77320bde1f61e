// SPDX-License-Identifier: Apache-2.0
/*
 * A trail an auditor can verify with a public key (issue 16), end to end on PostgreSQL: the real
 * processor (OTel SDK, spool, signing key) delivers to the reference DataStorage on the
 * machine's PostgreSQL (a scratch database per case, dropped afterwards), then an attacker with
 * the database rewrites it, and `kubernaut-audit verify` judges what is left:
 *
 * - a forged record with every hash recomputed — the provenance chain AND DataStorage's own chain
 *   — is reported with the public key, and (as documented) not without it;
 * - a deleted tail (the server's chain head rewritten too) is reported against the digest log;
 * - a producer whose records were all deleted fails verification (named by its digest log);
 * - key rotation (a new key from a given time) verifies across the boundary.
 */
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { canonicalize, computeProvenanceHash } from '@kubernaut/audit-provenance';
import { main, type VerifyReport } from '@kubernaut/audit-verifier';
import {
  computeEventHash,
  type DataStorageServer,
  startDataStorageServer,
} from '@kubernaut/datastorage-server';
import {
  AuditLogRecordProcessor,
  KubernautAuditExporter,
} from '@kubernaut/exporter-kubernaut-audit';
import {
  auditLogRecord,
  createScratchDatabase,
  type ScratchDatabase,
  testAuth,
  testTokenFile,
} from '@kubernaut/test-kit';
import { LoggerProvider } from '@opentelemetry/sdk-logs';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';

let db: ScratchDatabase | undefined;
let server: DataStorageServer | undefined;
const dirs: string[] = [];

afterEach(async () => {
  await server?.close();
  server = undefined;
  await db?.drop();
  db = undefined;
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function dir(): string {
  const d = mkdtempSync(join(tmpdir(), 'signed-e2e-'));
  dirs.push(d);
  return d;
}

async function startDataStorage(): Promise<DataStorageServer> {
  db = await createScratchDatabase('signed_e2e');
  server = await startDataStorageServer({
    port: 0,
    storage: { kind: 'postgres', connectionString: db.connectionString },
    quiet: true,
    auth: testAuth(),
  });
  return server;
}

/** A key pair on disk: the producer's private key, the auditor's public key. */
function keyPair(d: string, name: string): { priv: string; pub: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const priv = join(d, `${name}.pem`);
  const pub = join(d, `${name}.pub.pem`);
  writeFileSync(priv, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  writeFileSync(pub, publicKey.export({ type: 'spki', format: 'pem' }));
  return { priv, pub };
}

/** One process's session: `batches` spool writes of records of correlation `cid`, then shutdown. */
async function produce(
  ds: DataStorageServer,
  spool: string,
  cid: string,
  batches: number[],
  signingKeyFile?: string,
): Promise<void> {
  const processor = new AuditLogRecordProcessor({
    exporter: new KubernautAuditExporter({
      url: ds.url,
      bearerTokenFile: testTokenFile(),
      retry: { initialDelayMillis: 5, maxDelayMillis: 50 },
    }),
    spool: { directory: spool },
    shutdownTimeoutMillis: 10_000,
    ...(signingKeyFile ? { signingKeyFile } : {}),
  });
  const provider = new LoggerProvider({ processors: [processor] });
  const logger = provider.getLogger('signed-e2e');
  let n = 0;
  for (const size of batches) {
    for (let i = 0; i < size; i++) {
      logger.emit(auditLogRecord({ correlationId: cid, data: { n: n++, cid } }));
    }
    await processor.forceFlush({ timeoutMillis: 10_000 });
  }
  await provider.shutdown();
}

async function verify(...args: string[]): Promise<{ code: number; report: VerifyReport }> {
  let out = '';
  const code = await main(
    [
      'verify',
      '--url',
      (server as DataStorageServer).url,
      '--bearer-token-file',
      testTokenFile(),
      '--since',
      '1h',
      '--json',
      ...args,
    ],
    { stdout: (t) => (out += t), stderr: () => undefined },
  );
  return { code, report: JSON.parse(out) as VerifyReport };
}

async function sql<T>(f: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: (db as ScratchDatabase).connectionString });
  await c.connect();
  try {
    await c.query('SET session_replication_role = replica'); // the attacker bypasses triggers
    return await f(c);
  } finally {
    await c.end();
  }
}

type Row = { event_id: string; seq: number; event: Record<string, unknown> };

/** The producer's rows as the query API returns them, by seq. */
async function rowsOf(ds: DataStorageServer, cid: string): Promise<Row[]> {
  const res = await fetch(`${ds.url}/api/v1/audit/events?correlation_id=${cid}&limit=1000`, {
    headers: { authorization: `Bearer ${readFileSync(testTokenFile(), 'utf8').trim()}` },
  });
  const body = (await res.json()) as { data: Array<Record<string, unknown>> };
  return body.data
    .map((event) => {
      const p = (event.event_data as Record<string, Record<string, unknown>>).audit_provenance;
      return { event_id: event.event_id as string, seq: p?.seq as number, event };
    })
    .sort((a, b) => a.seq - b.seq);
}

// The hashed columns in the form the reference DataStorage reads them back.
const HASHED_COLUMNS = `event_id::text AS event_id, event_version AS version,
  to_char(event_timestamp AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS event_timestamp,
  event_type, event_category, event_action, event_outcome, actor_type, actor_id,
  host(actor_ip) AS actor_ip, resource_type, resource_id, correlation_id,
  parent_event_id::text AS parent_event_id, namespace, cluster_id, event_data, severity,
  duration_ms, error_code, error_message, retention_days, is_sensitive`;

/** Recomputes DataStorage's own chain of a correlation (unkeyed), and its recorded head. */
async function recomputeServerChain(c: pg.Client, cid: string): Promise<void> {
  const { rows } = await c.query(
    `SELECT ${HASHED_COLUMNS} FROM audit_events WHERE correlation_id = $1 ORDER BY chain_position, event_id`,
    [cid],
  );
  let prev = '';
  for (const row of rows) {
    const h = computeEventHash(
      prev,
      { ...row, duration_ms: row.duration_ms === null ? null : Number(row.duration_ms) },
      canonicalize(row.event_data),
    );
    await c.query(
      'UPDATE audit_events SET event_hash = $2, previous_event_hash = $3 WHERE event_id = $1',
      [row.event_id, h, prev],
    );
    prev = h;
  }
  const last = rows[rows.length - 1];
  await c.query(
    `UPDATE audit_event_chain_heads SET event_hash = $2, event_id = $3,
       chain_position = (SELECT chain_position FROM audit_events WHERE event_id = $3)
     WHERE correlation_id = $1`,
    [cid, prev, last?.event_id],
  );
}

const provOf = (e: Record<string, unknown>) =>
  (e.event_data as Record<string, Record<string, unknown>>).audit_provenance as Record<
    string,
    unknown
  >;

describe('signed chain heads end to end on PostgreSQL', () => {
  it('a forged record with every hash recomputed is reported with the public key, and not without it', async () => {
    const ds = await startDataStorage();
    const d = dir();
    const k = keyPair(d, 'signing');
    const spool = join(d, 'spool');
    const cid = `forged-${randomUUID()}`;
    await produce(ds, spool, cid, [5, 5, 5], k.priv);
    const digest = join(spool, 'digest.log');

    const clean = await verify('--public-key', k.pub, '--digest-log', digest);
    expect(clean.code).toBe(0);
    expect(clean.report.producers[0]?.signatures).toMatchObject({ unsigned_count: 0, altered: [] });

    // The attacker alters seq 7 and recomputes every provenance hash after it, then
    // DataStorage's own chain and its recorded head.
    const rows = await rowsOf(ds, cid);
    expect(rows.map((r) => r.seq)).toEqual(Array.from({ length: 15 }, (_, i) => i + 1));
    (rows[6]?.event.event_data as Record<string, unknown>).n = 999_999;
    for (let i = 6; i < rows.length; i++) {
      const e = (rows[i] as Row).event;
      provOf(e).prev_hash = provOf((rows[i - 1] as Row).event).hash;
      provOf(e).hash = computeProvenanceHash(e);
    }
    await sql(async (c) => {
      for (const r of rows.slice(6)) {
        await c.query('UPDATE audit_events SET event_data = $2::jsonb WHERE event_id = $1', [
          r.event_id,
          JSON.stringify(r.event.event_data),
        ]);
      }
      await recomputeServerChain(c, cid);
    });

    // Without the key the forgery is invisible: COMPLETE, DataStorage's chain valid (documented).
    const blind = await verify();
    expect(blind.code).toBe(0);
    expect(blind.report.server_chains).toMatchObject([{ correlation_id: cid, is_valid: true }]);
    expect(blind.report.producers[0]?.chain_breaks).toEqual([]);

    // With the public key: INCOMPLETE, the altered range bounded by the signed heads, its first
    // seq and event named.
    const md = join(d, 'report.md');
    const seen = await verify('--public-key', k.pub, '--report', md);
    expect(seen.code).toBe(1);
    expect(seen.report.producers[0]?.signatures?.altered).toMatchObject([
      { from: 6, to: 15, first_event_id: rows[5]?.event_id },
    ]);
    const page = readFileSync(md, 'utf8');
    expect(page).toContain('# Audit trail verification: INCOMPLETE');
    expect(page).toContain('| producer | sessions | seqs |');
    expect(page).toContain('6-15');
    const html = join(d, 'report.html');
    await verify('--public-key', k.pub, '--report', html);
    expect(readFileSync(html, 'utf8')).toContain('<td>INCOMPLETE</td>');
  });

  it('a deleted tail is reported against the digest log (and not without it)', async () => {
    const ds = await startDataStorage();
    const d = dir();
    const spool = join(d, 'spool');
    const cid = `tail-${randomUUID()}`;
    const k = keyPair(d, 'signing');
    await produce(ds, spool, cid, [4, 4], k.priv);
    const rows = await rowsOf(ds, cid);
    await sql(async (c) => {
      const gone = rows.filter((r) => r.seq > 5).map((r) => r.event_id);
      const res = await c.query('DELETE FROM audit_events WHERE event_id = ANY($1::uuid[])', [
        gone,
      ]);
      expect(res.rowCount).toBe(3);
      await recomputeServerChain(c, cid);
    });
    const blind = await verify();
    expect(blind.code).toBe(0); // the remaining records show no gap
    const { code, report } = await verify('--digest-log', join(spool, 'digest.log'));
    expect(code).toBe(1);
    expect(report.producers[0]?.signatures?.truncated).toMatchObject({ from: 6, to: 8 });
  });

  it('a producer whose records were all deleted fails verification (expected by its digest log)', async () => {
    const ds = await startDataStorage();
    const d = dir();
    const k = keyPair(d, 'signing');
    const a = join(d, 'spool-a');
    const b = join(d, 'spool-b');
    await produce(ds, a, `a-${randomUUID()}`, [3], k.priv);
    const cidB = `b-${randomUUID()}`;
    await produce(ds, b, cidB, [3], k.priv);
    const producerB = JSON.parse(readFileSync(join(b, 'digest.log'), 'utf8').split('\n')[0] ?? '')
      .producer_id as string;
    await sql((c) => c.query('DELETE FROM audit_events WHERE correlation_id = $1', [cidB]));
    const digests = ['--digest-log', join(a, 'digest.log'), '--digest-log', join(b, 'digest.log')];
    const { code, report } = await verify('--public-key', k.pub, ...digests);
    expect(code).toBe(1);
    expect(report.missing_producers).toEqual([producerB]);
    expect(report.producers.map((p) => p.complete)).toEqual([true]);
    const named = await verify('--public-key', k.pub, '--expect-producer', 'never-seen');
    expect(named.code).toBe(1);
    expect(named.report.missing_producers).toEqual(['never-seen']);
  });

  it('key rotation: a new key from a given time verifies across the boundary', async () => {
    const ds = await startDataStorage();
    const d = dir();
    const spool = join(d, 'spool');
    const cid = `rotation-${randomUUID()}`;
    const oldKey = keyPair(d, 'old');
    const newKey = keyPair(d, 'new');
    await produce(ds, spool, cid, [3, 3], oldKey.priv);
    const boundary = new Date().toISOString();
    await produce(ds, spool, cid, [3, 3], newKey.priv);
    const digest = join(spool, 'digest.log');
    const both = await verify(
      '--public-key',
      oldKey.pub,
      '--public-key',
      `${newKey.pub}@${boundary}`,
      '--digest-log',
      digest,
    );
    expect(both.code).toBe(0);
    const p = both.report.producers[0];
    expect(p?.sessions).toHaveLength(2);
    expect(p).toMatchObject({ delivered: 12, first_seq: 1, last_seq: 12 });
    expect(p?.signatures?.keys).toHaveLength(2);
    expect(p?.signatures?.unsigned_count).toBe(0);
    // Only the old key: the new session's heads are by an unknown key.
    const old = await verify('--public-key', oldKey.pub);
    expect(old.code).toBe(1);
    // The new key claimed valid only from a later time: its heads are refused.
    const later = new Date(Date.now() + 3_600_000).toISOString();
    const early = await verify(
      '--public-key',
      oldKey.pub,
      '--public-key',
      `${newKey.pub}@${later}`,
    );
    expect(early.code).toBe(1);
    expect(early.report.producers[0]?.signatures?.problems[0]?.reason).toContain('before key');
  });
});
