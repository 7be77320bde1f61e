// SPDX-License-Identifier: Apache-2.0
/*
 * The hash chain under concurrency and against a database writer (PostgreSQL): one linear
 * chain per correlation in commit order, whatever the timestamps and however many writers and
 * server processes; a database-enforced unique (correlation_id, chain_position); verification
 * in chain order; HMAC-SHA256 with a chain key; the legal-hold and immutability triggers.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { canonicalize } from '@kubernaut/audit-provenance';
import {
  createScratchDatabase,
  minimalEvent,
  postBatch,
  queryEvents,
  request,
  type ScratchDatabase,
  testAuth,
  testTokenFile,
  verifyChain,
} from '@kubernaut/test-kit';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canonicalEventDocument } from '../src/hash.ts';
import { startDataStorageServer } from '../src/index.ts';
import { backends, type Harness, postgresBackend } from './backends.ts';
import { type RunningCommand, startCommand, stopCommand } from './command.ts';

/** The kubernaut-datastorage command on `databaseUrl`, with the suite's token file. */
const startProcess = (databaseUrl: string) =>
  startCommand([
    '--port',
    '0',
    '--database-url',
    databaseUrl,
    '--auth-token-file',
    testTokenFile(),
    '--management-port',
    '0',
  ]);

async function sql<T = Record<string, unknown>>(
  url: string,
  text: string,
  params: unknown[] = [],
): Promise<T[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query(text, params)).rows as T[];
  } finally {
    await c.end();
  }
}

describe('one linear chain per correlation under concurrency (two server processes)', () => {
  let db: ScratchDatabase;
  const servers: RunningCommand[] = [];
  beforeAll(async () => {
    db = await createScratchDatabase('ds_chain');
    servers.push(await startProcess(db.connectionString));
    servers.push(await startProcess(db.connectionString));
  });
  afterAll(async () => {
    await Promise.all(servers.map((s) => stopCommand(s)));
    await db?.drop();
  });

  it('keeps every chain valid with concurrent producers, skewed clocks and both servers', async () => {
    const run = randomUUID().slice(0, 8);
    const cids = Array.from({ length: 8 }, (_, i) => `conc-${run}-${i}`);
    const PRODUCERS = 6;
    const BATCHES = 15;
    // Each producer stamps events with its own clock, some of them minutes apart: the
    // timestamps of one correlation arrive in no particular order.
    const producer = async (p: number) => {
      const skew = (p - PRODUCERS / 2) * 90_000;
      for (let b = 0; b < BATCHES; b++) {
        const events = Array.from({ length: 12 }, (_, i) =>
          minimalEvent(
            {
              correlation_id: cids[(p + b + i) % cids.length],
              event_timestamp: new Date(Date.now() + skew).toISOString(),
            },
            p * 1000 + b * 20 + i,
          ),
        );
        const r = await postBatch(servers[(p + b) % 2]!.url, events);
        expect(r.status).toBe(201);
      }
    };
    await Promise.all(Array.from({ length: PRODUCERS }, (_, p) => producer(p)));

    let total = 0;
    for (const cid of cids) {
      const v = await verifyChain(servers[0]!.url, cid);
      expect(v.tampered_events).toEqual([]);
      expect(v.is_valid).toBe(true);
      total += v.total_events;
      const [row] = await sql<{ n: number; positions: number; min: string; max: string }>(
        db.connectionString,
        `SELECT count(*)::int AS n, count(DISTINCT chain_position)::int AS positions,
                min(chain_position)::text AS min, max(chain_position)::text AS max
         FROM audit_events WHERE correlation_id = $1`,
        [cid],
      );
      // Positions 1..n, each once: no reuse, no fork.
      expect(row).toEqual({
        n: v.total_events,
        positions: v.total_events,
        min: '1',
        max: String(v.total_events),
      });
    }
    expect(total).toBe(PRODUCERS * BATCHES * 12);
  });
});

describe.each(backends)('the chain on $name', (backend) => {
  let h: Harness;
  beforeAll(async () => {
    h = await backend.start();
  });
  afterAll(async () => {
    await h?.stop();
  });

  it('verifies in chain (commit) order, whatever the timestamps', async () => {
    const cid = `late-${randomUUID()}`;
    const at = (ms: number) => new Date(Date.now() + ms).toISOString();
    for (const offset of [-1000, -5000, -3000]) {
      const r = await postBatch(h.server.url, [
        minimalEvent({ correlation_id: cid, event_timestamp: at(offset) }),
      ]);
      expect(r.status).toBe(201);
    }
    // Within a batch, the events of a correlation are chained in the order sent.
    const batch = [-100, -9000, -50].map((o, n) =>
      minimalEvent({ correlation_id: cid, event_timestamp: at(o) }, n),
    );
    expect((await postBatch(h.server.url, batch)).status).toBe(201);
    const rows = await h.sql(
      `SELECT chain_position::int AS p, (event_data->>'n')::int AS n FROM audit_events
       WHERE correlation_id = '${cid}' AND chain_position > 3 ORDER BY chain_position`,
    );
    expect(rows).toEqual([
      { p: 4, n: 0 },
      { p: 5, n: 1 },
      { p: 6, n: 2 },
    ]);
    const v = await verifyChain(h.server.url, cid);
    expect(v).toMatchObject({ is_valid: true, total_events: 6, verified_events: 6 });
  });

  it('verifies events whose strings need JSON escaping, next to plain ones', async () => {
    const cid = `esc-${randomUUID()}`;
    const escaped = minimalEvent(
      { correlation_id: cid, resource_id: 'a"b\\c\td', namespace: 'ü\n' },
      0,
    );
    const plain = minimalEvent({ correlation_id: cid }, 1);
    expect((await postBatch(h.server.url, [plain])).status).toBe(201);
    expect((await postBatch(h.server.url, [escaped, plain])).status).toBe(201);
    const v = await verifyChain(h.server.url, cid);
    expect(v).toMatchObject({ is_valid: true, total_events: 3, verified_events: 3 });
  });

  it('stores duration_ms 0 as NULL, as upstream: read back without the member, the chain verifies', async () => {
    const cid = `dur0-${randomUUID()}`;
    const single = await request(
      h.server.url,
      'POST',
      '/api/v1/audit/events',
      minimalEvent({ correlation_id: cid, duration_ms: 0 }, 0),
    );
    expect(single.status).toBe(201);
    const batch = [
      minimalEvent({ correlation_id: cid, duration_ms: 0 }, 1),
      minimalEvent({ correlation_id: cid, duration_ms: 7 }, 2),
      minimalEvent({ correlation_id: cid }, 3),
    ];
    expect((await postBatch(h.server.url, batch)).status).toBe(201);
    const rows = await h.sql(
      `SELECT (event_data->>'n')::int AS n, duration_ms FROM audit_events
       WHERE correlation_id = '${cid}' ORDER BY chain_position`,
    );
    expect(rows).toEqual([
      { n: 0, duration_ms: null },
      { n: 1, duration_ms: null },
      { n: 2, duration_ms: 7 },
      { n: 3, duration_ms: null },
    ]);
    const q = await queryEvents(h.server.url, { correlation_id: cid });
    const byN = new Map(q.data.map((e) => [(e.event_data as { n: number }).n, e]));
    for (const n of [0, 1, 3]) expect(byN.get(n)).not.toHaveProperty('duration_ms');
    expect(byN.get(2)).toHaveProperty('duration_ms', 7);
    expect(await verifyChain(h.server.url, cid)).toMatchObject({
      is_valid: true,
      total_events: 4,
      verified_events: 4,
    });
  });

  it('refuses a second row at a chain position already taken', async () => {
    const cid = `dup-${randomUUID()}`;
    const r = await postBatch(h.server.url, [minimalEvent({ correlation_id: cid })]);
    const id = (r.body.event_ids as string[])[0]!;
    await expect(
      h.sql(`INSERT INTO audit_events
        SELECT (md5(random()::text))::uuid, event_version, event_timestamp, event_date, event_type,
          event_category, event_action, event_outcome, actor_type, actor_id, actor_ip,
          resource_type, resource_id, correlation_id, parent_event_id, parent_event_date,
          namespace, cluster_id, event_data, severity, duration_ms, error_code, error_message,
          retention_days, is_sensitive, event_hash, previous_event_hash, chain_position
        FROM audit_events WHERE event_id = '${id}'`),
    ).rejects.toThrow(/duplicate key|unique/i);
  });

  it('reports the newest events of a chain deleted behind its back', async () => {
    const cid = `tail-${randomUUID()}`;
    const events = [0, 1, 2, 3].map((n) => minimalEvent({ correlation_id: cid }, n));
    const ids = (await postBatch(h.server.url, events)).body.event_ids as string[];
    await h.sql(`DELETE FROM audit_events WHERE event_id IN ('${ids[2]}', '${ids[3]}')`);
    const v = await verifyChain(h.server.url, cid);
    expect(v.is_valid).toBe(false);
    expect(v.total_events).toBe(2);
    expect(v.tampered_events.map((t) => t.event_id)).toEqual([ids[1]]);
    expect(v.tampered_events[0]!.message).toMatch(/newest 2 events .*missing/i);
  });

  it('refuses to DELETE an event under legal hold', async () => {
    const r = await postBatch(h.server.url, [minimalEvent()]);
    const id = (r.body.event_ids as string[])[0]!;
    await h.sql(`UPDATE audit_events SET legal_hold = true, legal_hold_reason = 'case 42'
      WHERE event_id = '${id}'`);
    await expect(h.sql(`DELETE FROM audit_events WHERE event_id = '${id}'`)).rejects.toThrow(
      /legal hold/i,
    );
    const rows = await h.sql(
      `SELECT count(*)::int AS n FROM audit_events WHERE event_id = '${id}'`,
    );
    expect(rows[0]!.n).toBe(1);
  });

  it.each([
    ['namespace', "'other'"],
    ['cluster_id', "'other'"],
    ['severity', "'other'"],
    ['duration_ms', '7'],
    ['error_code', "'E1'"],
    ['error_message', "'other'"],
    ['retention_days', '30'],
    ['is_sensitive', 'true'],
    ['actor_ip', "'10.0.0.9'"],
    ['event_version', "'2.0'"],
    ['hash_algorithm', "'hmac-sha256'"],
    ['event_date', 'event_date + 1'],
  ])('refuses an UPDATE of the hashed column %s', async (column, value) => {
    const r = await postBatch(h.server.url, [minimalEvent({ namespace: 'ns', severity: 'low' })]);
    const id = (r.body.event_ids as string[])[0]!;
    await expect(
      h.sql(`UPDATE audit_events SET ${column} = ${value} WHERE event_id = '${id}'`),
    ).rejects.toThrow(/immutable|partition/);
  });
});

describe('HMAC-SHA256 chain with a chain key (PostgreSQL)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ds-chain-key-'));
  const keyFile = join(dir, 'chain.key');
  writeFileSync(keyFile, `${randomBytes(48).toString('base64')}\n`, { mode: 0o600 });
  let keyed: Harness;
  let plain: Harness;
  beforeAll(async () => {
    keyed = await postgresBackend.start({ chainKeyFile: keyFile });
    plain = await postgresBackend.start();
  });
  afterAll(async () => {
    await keyed?.stop();
    await plain?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  /**
   * What a database writer without the key can do: alter event_data of the second event and
   * recompute SHA-256 hashes of it and of every event after it, so that each link holds.
   */
  async function forge(h: Harness, cid: string, algorithm?: string): Promise<void> {
    const rows = await h.sql(`SELECT event_id::text AS event_id, event_version AS version,
        to_char(event_timestamp AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS event_timestamp,
        event_type, event_category, event_action, event_outcome, actor_type, actor_id,
        host(actor_ip) AS actor_ip, resource_type, resource_id, correlation_id,
        parent_event_id::text AS parent_event_id, namespace, cluster_id, event_data, severity,
        duration_ms, error_code, error_message, retention_days, is_sensitive, event_hash,
        previous_event_hash, chain_position::int AS chain_position
      FROM audit_events WHERE correlation_id = '${cid}' ORDER BY chain_position`);
    let prev = String(rows[0]!.event_hash);
    const updates: string[] = [];
    for (const row of rows.slice(1)) {
      const data = row.event_data as Record<string, unknown>;
      if (row.chain_position === 2) data.n = 999;
      const doc = canonicalEventDocument(row as never, canonicalize(data));
      const hash = createHash('sha256')
        .update(prev + doc, 'utf8')
        .digest('hex');
      updates.push(`UPDATE audit_events SET event_data = '${JSON.stringify(data)}'::jsonb,
        previous_event_hash = '${prev}', event_hash = '${hash}'
        ${algorithm ? `, hash_algorithm = '${algorithm}'` : ''}
        WHERE event_id = '${row.event_id}';`);
      prev = hash;
    }
    await h.sql(`BEGIN; SET LOCAL session_replication_role = replica; ${updates.join('\n')}
      UPDATE audit_event_chain_heads SET event_hash = '${prev}' WHERE correlation_id = '${cid}';
      COMMIT;`);
  }

  const write = async (h: Harness) => {
    const cid = `forge-${randomUUID()}`;
    const events = [0, 1, 2].map((n) => minimalEvent({ correlation_id: cid }, n));
    expect((await postBatch(h.server.url, events)).status).toBe(201);
    expect((await verifyChain(h.server.url, cid)).is_valid).toBe(true);
    return cid;
  };

  it('without a key, a forged row with recomputed hashes verifies (the limit of SHA-256)', async () => {
    const cid = await write(plain);
    await forge(plain, cid);
    expect((await verifyChain(plain.server.url, cid)).is_valid).toBe(true);
  });

  it('with a key, the same forgery is reported', async () => {
    const cid = await write(keyed);
    const rows = await keyed.sql(
      `SELECT DISTINCT hash_algorithm FROM audit_events WHERE correlation_id = '${cid}'`,
    );
    expect(rows).toEqual([{ hash_algorithm: 'hmac-sha256' }]);
    await forge(keyed, cid);
    const v = await verifyChain(keyed.server.url, cid);
    expect(v.is_valid).toBe(false);
    expect(v.tampered_events.map((t) => t.message)).toEqual([
      expect.stringMatching(/hash mismatch/i),
      expect.stringMatching(/hash mismatch/i),
    ]);
  });

  it('with a key, a forgery that downgrades rows to unkeyed SHA-256 is reported', async () => {
    const cid = await write(keyed);
    await forge(keyed, cid, 'sha256-unkeyed');
    const v = await verifyChain(keyed.server.url, cid);
    expect(v.is_valid).toBe(false);
    expect(v.tampered_events.length).toBeGreaterThanOrEqual(2);
    expect(v.tampered_events[0]!.message).toMatch(/without the chain key/i);
  });

  it('a server without the key cannot vouch for a keyed chain: 500 as upstream', async () => {
    const cid = await write(keyed);
    // The same database, read by a server started without the key.
    const other = await startDataStorageServer({
      port: 0,
      quiet: true,
      auth: testAuth(),
      storage: { kind: 'postgres', connectionString: keyed.connectionString! },
    });
    try {
      const r = await request(other.url, 'POST', '/api/v1/audit/verify-chain', {
        correlation_id: cid,
      });
      expect(r.status).toBe(500);
      expect(r.body.type).toBe('https://kubernaut.ai/problems/verify-chain/internal-error');
      expect(r.body.detail).toMatch(/no chain key/);
    } finally {
      await other.close();
    }
  });

  it('refuses to start with a chain key file that is missing or too short', async () => {
    await expect(postgresBackend.start({ chainKeyFile: join(dir, 'absent') })).rejects.toThrow(
      /chain key/i,
    );
    const short = join(dir, 'short.key');
    writeFileSync(short, 'too short\n');
    await expect(postgresBackend.start({ chainKeyFile: short })).rejects.toThrow(
      /at least 32 bytes/,
    );
  });
});
