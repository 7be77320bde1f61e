/*
 * The kubernaut-datastorage command: flags and environment, structured logs, data kept in a
 * PGlite directory across restarts (migrations applied once), graceful shutdown on SIGTERM.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { type AddressInfo, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../../test/support/spec.ts';
import {
  auditEvent,
  postBatch,
  queryEvents,
  request,
  TEST_TOKEN_FILE,
  verifyChain,
} from './support.ts';

const BIN = fileURLToPath(new URL('../src/bin.ts', import.meta.url));
// The project's Node 24 (type stripping), whatever node runs the test runner itself.
const PROJECT_NODE = join(REPO_ROOT, 'node_modules', '.bin', 'node');
const NODE = existsSync(PROJECT_NODE) ? PROJECT_NODE : process.execPath;

interface Running {
  child: ChildProcess;
  url: string;
  lines: Array<Record<string, unknown>>;
  exited: Promise<number | null>;
}

/** The command's own variables: the child gets only those a test gives it. */
const SERVER_VARIABLES = [
  'PORT',
  'HOST',
  'DATABASE_URL',
  'PGLITE_DIR',
  'KUBERNAUT_DATASTORAGE_SPEC',
  'REDIS_URL',
  'REDIS_STREAM',
  'LOG_LEVEL',
  'KUBERNAUT_DATASTORAGE_AUTH_TOKEN_FILE',
  'KUBERNAUT_DATASTORAGE_AUTH_KUBERNETES',
  'KUBERNAUT_DATASTORAGE_ALLOW_UNAUTHENTICATED',
  'KUBERNAUT_DATASTORAGE_MANAGEMENT_PORT',
  'KUBERNAUT_DATASTORAGE_CHAIN_KEY_FILE',
];

function childEnv(env: Record<string, string>): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = { ...process.env };
  for (const name of SERVER_VARIABLES) delete out[name];
  return { ...out, ...env };
}

/** A port nothing listens on right now. */
async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const { port } = srv.address() as AddressInfo;
  await new Promise((resolve) => srv.close(resolve));
  return port;
}

/** Starts the command and resolves once it logs that it listens. */
function startBin(args: string[], env: Record<string, string> = {}): Promise<Running> {
  const child = spawn(NODE, ['--conditions=@kubernaut/source', BIN, ...args], {
    env: childEnv(env),
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const lines: Array<Record<string, unknown>> = [];
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    let buffer = '';
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (chunk: string) => {
      buffer += chunk;
      let nl = buffer.indexOf('\n');
      while (nl >= 0) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        nl = buffer.indexOf('\n');
        let parsed: Record<string, unknown>;
        try {
          parsed = JSON.parse(line);
        } catch {
          reject(new Error(`not a JSON log line: ${line}`));
          continue;
        }
        lines.push(parsed);
        if (parsed.msg === 'datastorage listening') {
          resolve({ child, url: parsed.url as string, lines, exited });
        }
      }
    });
    exited.then((code) => reject(new Error(`exited with ${code}: ${JSON.stringify(lines)}`)));
  });
}

describe('kubernaut-datastorage command', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ds-bin-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('serves from a PGlite directory, keeps the data across restarts and stops cleanly on SIGTERM', async () => {
    const cid = `bin-${Date.now()}`;
    const managementPort = await freePort();
    const first = await startBin([
      '--port',
      '0',
      '--pglite-dir',
      dir,
      '--auth-token-file',
      TEST_TOKEN_FILE,
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
    const events = [0, 1, 2].map((n) => auditEvent({ correlation_id: cid }, n));
    expect((await postBatch(first.url, events)).status).toBe(201);
    expect(await (await fetch(`${management}/metrics`)).text()).toMatch(
      /^http_server_request_duration_count\{[^}]*http_route="\/api\/v1\/audit\/events\/batch",http_response_status_code="201"/m,
    );
    first.child.kill('SIGTERM');
    expect(await first.exited).toBe(0);
    expect(first.lines.map((l) => l.msg)).toContain('datastorage stopped');

    // Second start: configured through the environment this time.
    const second = await startBin([], {
      PORT: '0',
      PGLITE_DIR: dir,
      KUBERNAUT_DATASTORAGE_AUTH_TOKEN_FILE: TEST_TOKEN_FILE,
      KUBERNAUT_DATASTORAGE_MANAGEMENT_PORT: '0',
    });
    expect(second.lines[0]).toMatchObject({ management: null });
    try {
      const q = await queryEvents(second.url, { correlation_id: cid });
      expect(q.data.map((e) => e.event_data.n).sort()).toEqual([0, 1, 2]);
      expect((await verifyChain(second.url, cid)).is_valid).toBe(true);
      expect((await postBatch(second.url, [auditEvent({ correlation_id: cid })])).status).toBe(201);
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
    await expect(startBin(['--port', '0', '--management-port', '70000'])).rejects.toThrow(
      /exited with 1.*invalid management port/,
    );
    await expect(startBin(['--port', 'eighty'])).rejects.toThrow(/exited with 1.*invalid port/);
  });

  it('refuses to listen beyond loopback without authentication', async () => {
    await expect(startBin(['--port', '0', '--host', '0.0.0.0'])).rejects.toThrow(
      /exited with 1.*refusing to serve audit events without authentication/,
    );
  });
});
