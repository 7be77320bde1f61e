// SPDX-License-Identifier: Apache-2.0
/*
 * The management port: Prometheus metrics (requests by route and status with their latency,
 * events written and queued, the DLQ's depth and age, the database pool), /healthz, /livez
 * and /readyz, without authentication; readiness follows the database.
 */
import { randomUUID } from 'node:crypto';
import {
  createScratchDatabase,
  minimalEvent,
  parsePrometheusText,
  postBatch,
  request,
  type ScratchDatabase,
  testAuth,
} from '@kubernaut/test-kit';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DataStorageServer, startDataStorageServer } from '../src/index.ts';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

/** One sample of the exposition, or undefined. */
const sample = (text: string, name: string, labels: Record<string, string> = {}) =>
  parsePrometheusText(text).value(name, labels);

describe('management port', () => {
  let db: ScratchDatabase;
  let server: DataStorageServer;
  const stream = `test:dlq:${randomUUID()}`;
  beforeAll(async () => {
    db = await createScratchDatabase('ds_mgmt');
    server = await startDataStorageServer({
      port: 0,
      quiet: true,
      auth: testAuth(),
      managementPort: 0,
      storage: { kind: 'postgres', connectionString: db.connectionString },
      redis: { url: REDIS_URL, stream, retryMaxDelayMillis: 100 },
    });
  });
  afterAll(async () => {
    await server?.close();
    const redis = new Redis(REDIS_URL);
    await redis.del(stream, `${stream}:lease`, `${stream}:backlog`, `${stream}:stats`);
    redis.disconnect();
    await db?.drop();
  });

  const metrics = async () => {
    const r = await fetch(`${server.managementUrl}/metrics`);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/^text\/plain/);
    return r.text();
  };

  it('serves Prometheus metrics of requests, events, the DLQ and the pool, without auth', async () => {
    expect(server.managementUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(server.managementUrl).not.toBe(server.url);
    const events = [0, 1, 2].map((n) => minimalEvent({}, n));
    expect((await postBatch(server.url, events)).status).toBe(201);
    expect((await postBatch(server.url, '[]')).status).toBe(400);
    const anonymous = await request(server.url, 'GET', '/api/v1/audit/events', undefined, {
      authorization: null,
    });
    expect(anonymous.status).toBe(401);

    const text = await metrics();
    const route = (r: string, status: string) => ({
      http_request_method: r.split(' ')[0]!,
      http_route: r.split(' ')[1]!,
      http_response_status_code: status,
    });
    expect(
      sample(
        text,
        'http_server_request_duration_count',
        route('POST /api/v1/audit/events/batch', '201'),
      ),
    ).toBe(1);
    expect(
      sample(
        text,
        'http_server_request_duration_count',
        route('POST /api/v1/audit/events/batch', '400'),
      ),
    ).toBe(1);
    expect(
      sample(text, 'http_server_request_duration_count', route('GET /api/v1/audit/events', '401')),
    ).toBe(1);
    expect(
      sample(
        text,
        'http_server_request_duration_sum',
        route('POST /api/v1/audit/events/batch', '201'),
      ),
    ).toBeGreaterThan(0);
    expect(text).toContain('# UNIT http_server_request_duration s');
    expect(
      sample(text, 'kubernaut_datastorage_events_written_total', {
        kubernaut_datastorage_write_path: 'direct',
      }),
    ).toBe(3);
    expect(sample(text, 'kubernaut_datastorage_dlq_entries')).toBe(0);
    expect(sample(text, 'kubernaut_datastorage_dlq_oldest_age')).toBe(0);
    expect(sample(text, 'db_client_connection_max')).toBe(10);
    expect(
      sample(text, 'db_client_connection_count', { db_client_connection_state: 'idle' }),
    ).toBeGreaterThan(0);
    expect(text).toContain('service_name="kubernaut-datastorage"');
  });

  it('answers /healthz, /livez and /readyz; readyz follows the database, liveness does not', async () => {
    expect((await fetch(`${server.managementUrl}/healthz`)).status).toBe(200);
    expect((await fetch(`${server.managementUrl}/livez`)).status).toBe(200);
    expect((await fetch(`${server.managementUrl}/readyz`)).status).toBe(200);
    try {
      await db.outage(true);
      const down = await fetch(`${server.managementUrl}/readyz`);
      expect(down.status).toBe(503);
      expect(((await down.json()) as { detail: string }).detail).toBe('database unavailable');
      expect((await fetch(`${server.managementUrl}/healthz`)).status).toBe(200);
      expect((await fetch(`${server.managementUrl}/livez`)).status).toBe(200);
      // Queued while down: the DLQ gauges and the queued counter move.
      expect((await postBatch(server.url, [minimalEvent()])).status).toBe(202);
    } finally {
      await db.outage(false);
    }
    expect(sample(await metrics(), 'kubernaut_datastorage_events_queued_total')).toBe(1);
    await server.whenDlqDrained();
    const text = await metrics();
    expect(
      sample(text, 'kubernaut_datastorage_events_written_total', {
        kubernaut_datastorage_write_path: 'dlq',
      }),
    ).toBe(1);
    expect((await fetch(`${server.managementUrl}/readyz`)).status).toBe(200);
  });
});
