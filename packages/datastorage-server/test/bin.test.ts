// SPDX-License-Identifier: Apache-2.0
/*
 * The kubernaut-datastorage command: flags and environment, structured logs, data kept in a
 * PGlite directory across restarts (migrations applied once), graceful shutdown on SIGTERM.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  freePort,
  minimalEvent,
  postBatch,
  queryEvents,
  request,
  testTokenFile,
  verifyChain,
} from '@kubernaut/test-kit';
import { afterAll, describe, expect, it } from 'vitest';
import { startCommand } from './command.ts';

describe('kubernaut-datastorage command', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ds-bin-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('serves from a PGlite directory, keeps the data across restarts and stops cleanly on SIGTERM', async () => {
    const cid = `bin-${Date.now()}`;
    const managementPort = await freePort();
    const first = await startCommand([
      '--port',
      '0',
      '--pglite-dir',
      dir,
      '--auth-token-file',
      testTokenFile(),
      '--management-port',
      String(managementPort),
    ]);
    const management = `http://127.0.0.1:${managementPort}`;
    expect(first.lines[0]).toMatchObject({ management });
    expect((await fetch(`${management}/healthz`)).status).toBe(200);
    expect((await fetch(`${management}/readyz`)).status).toBe(200);
    expect(first.lines[0]).toMatchObject({
      level: 'info',
      storage: 'pglite',
      data_dir: dir,
      auth: 'token-file',
    });
    const anonymous = await request(first.url, 'GET', '/api/v1/audit/events', undefined, {
      authorization: null,
    });
    expect(anonymous.status).toBe(401);
    const events = [0, 1, 2].map((n) => minimalEvent({ correlation_id: cid }, n));
    expect((await postBatch(first.url, events)).status).toBe(201);
    expect(await (await fetch(`${management}/metrics`)).text()).toMatch(
      /^http_server_request_duration_count\{[^}]*http_route="\/api\/v1\/audit\/events\/batch",http_response_status_code="201"/m,
    );
    first.child.kill('SIGTERM');
    expect(await first.exited).toBe(0);
    expect(first.lines.map((l) => l.msg)).toContain('datastorage stopped');

    // Second start: configured through the environment this time.
    const second = await startCommand([], {
      PORT: '0',
      PGLITE_DIR: dir,
      KUBERNAUT_DATASTORAGE_AUTH_TOKEN_FILE: testTokenFile(),
      KUBERNAUT_DATASTORAGE_MANAGEMENT_PORT: '0',
    });
    expect(second.lines[0]).toMatchObject({ management: null });
    try {
      const q = await queryEvents(second.url, { correlation_id: cid });
      expect(q.data.map((e) => e.event_data.n).sort()).toEqual([0, 1, 2]);
      expect((await verifyChain(second.url, cid)).is_valid).toBe(true);
      expect((await postBatch(second.url, [minimalEvent({ correlation_id: cid })])).status).toBe(
        201,
      );
      expect((await verifyChain(second.url, cid)).total_events).toBe(4);
      expect((await request(second.url, 'GET', '/readyz')).status).toBe(200);
      const anonymous2 = await request(second.url, 'POST', '/api/v1/audit/events/batch', [], {
        authorization: null,
      });
      expect(anonymous2.status).toBe(401);
    } finally {
      second.child.kill('SIGINT');
      expect(await second.exited).toBe(0);
    }
  });

  it('exits 1 with a structured error on bad arguments', async () => {
    await expect(startCommand(['--port', '0', '--management-port', '70000'])).rejects.toThrow(
      /exited with 1.*invalid management port/,
    );
    await expect(startCommand(['--port', 'eighty'])).rejects.toThrow(/exited with 1.*invalid port/);
  });

  it('refuses to listen beyond loopback without authentication', async () => {
    await expect(startCommand(['--port', '0', '--host', '0.0.0.0'])).rejects.toThrow(
      /exited with 1.*refusing to serve audit events without authentication/,
    );
  });
});
