// SPDX-License-Identifier: Apache-2.0
/*
 * Test support around a DataStorage: the suites' bearer token and its token file, scratch
 * PostgreSQL databases, minimal valid events, HTTP helpers for the audit API (authenticated with
 * that token), the two storage backends a reference server runs on (the server is passed in:
 * this kit does not depend on it), and a loopback TCP proxy that can be stopped to make the
 * database unreachable, cut its connections, or let a test watch and rewrite what passes.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import { eventEnvelope } from './events.ts';
import { REPO_ROOT } from './spec.ts';

/** The bearer token the suites' reference servers accept (one per test process). */
export const TEST_TOKEN = `test-${randomBytes(24).toString('base64url')}`;

/** Headers every request of the helpers below carries: the suites' bearer token. */
export const TEST_AUTH_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  authorization: `Bearer ${TEST_TOKEN}`,
});

let tokenFile: string | undefined;

const TOKEN_DIR_PREFIX = 'ds-auth-';

/**
 * The token file that lists TEST_TOKEN alone (written on first use): a reference server accepts
 * it, and an exporter or a verifier reads it as its token. Its directory is named after this
 * process and removed when it exits; Vitest's workers end without running `exit` handlers, so
 * each new one also removes the directories of processes that are gone.
 */
export function testTokenFile(): string {
  if (tokenFile === undefined) {
    removeStaleTokenDirs();
    const dir = mkdtempSync(join(tokenDirParent(), `${TOKEN_DIR_PREFIX}${process.pid}-`));
    process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
    tokenFile = join(dir, 'tokens');
    writeFileSync(tokenFile, `${TEST_TOKEN}\n`, { mode: 0o600 });
  }
  return tokenFile;
}

/**
 * Where token directories are made: the run's own directory when the suite's global setup made
 * one (`KUBERNAUT_TEST_RUN_DIR`, removed with everything in it by its teardown, even while the
 * last workers still run), else the temporary directory.
 */
function tokenDirParent(): string {
  return process.env.KUBERNAUT_TEST_RUN_DIR || tmpdir();
}

/** Removes the token directories of processes that no longer run. */
function removeStaleTokenDirs(): void {
  let names: string[];
  const parent = tokenDirParent();
  try {
    names = readdirSync(parent);
  } catch {
    return;
  }
  for (const name of names) {
    if (!name.startsWith(TOKEN_DIR_PREFIX)) continue;
    const pid = Number(/^(\d+)-/.exec(name.slice(TOKEN_DIR_PREFIX.length))?.[1] ?? Number.NaN);
    if (!Number.isInteger(pid) || pid === process.pid || isAlive(pid)) continue;
    rmSync(join(parent, name), { recursive: true, force: true });
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'; // alive, another user's
  }
}

/** The `auth` option of a reference server that accepts TEST_TOKEN. */
export const testAuth = (): { tokenFile: string } => ({ tokenFile: testTokenFile() });

export const PG_ADMIN_URL =
  process.env.DATABASE_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

export interface ScratchDatabase {
  name: string;
  connectionString: string;
  /**
   * Simulates an outage of this database alone (the shared cluster keeps running): `true`
   * refuses new connections (ALLOW_CONNECTIONS false) and ends its sessions except `keepPids`;
   * `false` allows connections again.
   */
  outage(down: boolean, keepPids?: number[]): Promise<void>;
  drop(): Promise<void>;
}

/** Runs `work` on a connection to the admin database. */
async function asAdmin<T>(work: (admin: pg.Client) => Promise<T>): Promise<T> {
  const admin = new pg.Client({ connectionString: PG_ADMIN_URL });
  await admin.connect();
  try {
    return await work(admin);
  } finally {
    await admin.end();
  }
}

/** Creates a uniquely named database (fails when PostgreSQL is down: never skipped). */
export async function createScratchDatabase(prefix = 'ds_test'): Promise<ScratchDatabase> {
  const name = `${prefix}_${randomUUID().replaceAll('-', '').slice(0, 16)}`;
  await asAdmin((admin) => admin.query(`CREATE DATABASE ${name}`));
  const url = new URL(PG_ADMIN_URL);
  url.pathname = `/${name}`;
  return {
    name,
    connectionString: url.toString(),
    outage: (down, keepPids = []) =>
      asAdmin(async (admin) => {
        await admin.query(`ALTER DATABASE ${name} ALLOW_CONNECTIONS ${down ? 'false' : 'true'}`);
        if (down) {
          await admin.query(
            `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE datname = $1 AND pid <> pg_backend_pid() AND NOT (pid = ANY($2::int[]))`,
            [name, keepPids],
          );
        }
      }),
    async drop() {
      await asAdmin((admin) => admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
    },
  };
}

/**
 * A minimal valid AuditEventRequest of a type outside the spec's mapping (for servers that do
 * not validate against the spec); `n` is recorded in event_data to identify it later.
 */
export function minimalEvent(
  overrides: Record<string, unknown> = {},
  n = 0,
): Record<string, unknown> {
  const eventType = (overrides.event_type as string | undefined) ?? 'test.event.recorded';
  return { ...eventEnvelope(eventType, 'recorded', { event_type: eventType, n }), ...overrides };
}

/** ISO timestamp `ms` milliseconds from now. */
export const at = (ms: number): string => new Date(Date.now() + ms).toISOString();

export interface JsonResponse {
  status: number;
  contentType: string | null;
  headers: Headers;
  body: Record<string, unknown> & { [k: string]: unknown };
}

/**
 * An HTTP request with a JSON body (Content-Type application/json unless `headers` says
 * otherwise; a header given as null is not sent). Requests carry the suite's bearer token.
 */
export async function request(
  base: string,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string | null> = {},
): Promise<JsonResponse> {
  const init: RequestInit = { method };
  const h: Record<string, string> = { ...TEST_AUTH_HEADERS };
  if (body !== undefined) {
    init.body = typeof body === 'string' ? body : JSON.stringify(body);
    h['content-type'] = 'application/json';
  }
  for (const [k, v] of Object.entries(headers)) {
    if (v === null) delete h[k.toLowerCase()];
    else h[k.toLowerCase()] = v;
  }
  init.headers = h;
  const r = await fetch(`${base}${path}`, init);
  const text = await r.text();
  let parsed: Record<string, unknown> = {};
  if (text) {
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = { text };
    }
  }
  return {
    status: r.status,
    contentType: r.headers.get('content-type'),
    headers: r.headers,
    body: parsed,
  };
}

export const postBatch = (base: string, events: unknown) =>
  request(base, 'POST', '/api/v1/audit/events/batch', events);

export interface QueriedEvent {
  event_id: string;
  event_timestamp: string;
  correlation_id: string;
  event_type: string;
  event_data: { n?: number } & Record<string, unknown>;
  event_hash: string;
  previous_event_hash: string;
  [k: string]: unknown;
}

export async function queryEvents(
  base: string,
  params: Record<string, string | number>,
): Promise<{ data: QueriedEvent[]; pagination: Record<string, unknown>; status: number }> {
  const qs = new URLSearchParams(
    Object.entries(params).map(([k, v]): [string, string] => [k, String(v)]),
  );
  const r = await request(base, 'GET', `/api/v1/audit/events?${qs}`);
  return {
    status: r.status,
    data: (r.body.data ?? []) as QueriedEvent[],
    pagination: (r.body.pagination ?? {}) as Record<string, unknown>,
  };
}

export async function verifyChain(base: string, correlationId: string) {
  const r = await request(base, 'POST', '/api/v1/audit/verify-chain', {
    correlation_id: correlationId,
  });
  const body = r.body as {
    is_valid: boolean;
    total_events: number;
    verified_events: number;
    tampered_events: Array<{ event_id: string; message: string }>;
  };
  // Upstream (and this server) leave an empty tampered_events list out of the answer.
  return { ...body, tampered_events: body.tampered_events ?? [] };
}

/** A running server plus superuser SQL access to its database. */
export interface Harness<S> {
  server: S;
  /** The server's database (PostgreSQL only). */
  connectionString?: string;
  /** Runs statements as a superuser on the server's database. */
  sql(text: string): Promise<Record<string, unknown>[]>;
  stop(): Promise<void>;
}

/** Where a reference server stores events (the server's `storage` option). */
export type StorageOption =
  | { kind: 'pglite'; instance: PGlite }
  | { kind: 'postgres'; connectionString: string };

/** Starts a reference server (`startDataStorageServer`) with the given options. */
export type StartServer<O, S> = (options: O & { storage: StorageOption }) => Promise<S>;

export interface Backend<O, S> {
  name: 'pglite' | 'postgres';
  start(options?: Partial<O>): Promise<Harness<S>>;
}

/**
 * Where tests keep the reference server's cached fresh PGlite cluster (the server's
 * `storage.cacheDir`, `--pglite-cache`): PGLITE_CACHE_DIR, else `.cache/pglite` in the
 * repository (the demo's default too). The test configuration exports it to child processes.
 */
export const testPgliteCacheDir = (): string =>
  process.env.PGLITE_CACHE_DIR?.trim() || join(REPO_ROOT, '.cache/pglite');

/** What the PGlite backend needs of an in-memory PGlite made elsewhere (a `PGlite` is one). */
export interface OpenedPglite {
  exec(text: string): Promise<Array<{ rows: unknown[] }>>;
  close(): Promise<void>;
}

/**
 * The two backends of the shared server suites, for the server `start` starts: in-memory
 * PGlite, and a scratch database on the machine's PostgreSQL (dropped on stop). `defaults` are
 * options of every server started (e.g. `{ auth: testAuth() }`); a start's own options win.
 * `createPglite` makes each fresh PGlite (the server's `createCachedPglite`, for one; a new
 * `PGlite` by default): it must return a `PGlite`.
 */
export function storageBackends<O, S extends { close(): Promise<void> }>(
  start: StartServer<O, S>,
  defaults: Partial<O> = {},
  createPglite: () => Promise<OpenedPglite> = () => PGlite.create(),
): [Backend<O, S>, Backend<O, S>] {
  const run = (options: Partial<O>, storage: StorageOption) =>
    start({ port: 0, quiet: true, ...defaults, ...options, storage } as unknown as O & {
      storage: StorageOption;
    });
  const pglite: Backend<O, S> = {
    name: 'pglite',
    async start(options = {}) {
      const db = await createPglite();
      // A PGlite, typed here by what the kit uses of it (see createPglite).
      const server = await run(options, { kind: 'pglite', instance: db as PGlite });
      return {
        server,
        // exec runs simple-protocol statements (several per call) on the same database.
        async sql(text) {
          const results = await db.exec(text);
          return (results.at(-1)?.rows ?? []) as Record<string, unknown>[];
        },
        async stop() {
          await server.close();
          await db.close();
        },
      };
    },
  };
  const postgres: Backend<O, S> = {
    name: 'postgres',
    async start(options = {}) {
      const scratch = await createScratchDatabase();
      const client = new pg.Client({ connectionString: scratch.connectionString });
      try {
        await client.connect();
        const server = await run(options, {
          kind: 'postgres',
          connectionString: scratch.connectionString,
        });
        return {
          server,
          connectionString: scratch.connectionString,
          async sql(text) {
            const r = await client.query(text);
            const last = Array.isArray(r) ? r.at(-1) : r;
            return (last?.rows ?? []) as Record<string, unknown>[];
          },
          async stop() {
            await server.close();
            await client.end();
            await scratch.drop();
          },
        };
      } catch (err) {
        await client.end().catch(() => {});
        await scratch.drop();
        throw err;
      }
    },
  };
  return [pglite, postgres];
}

/** What a {@link TcpProxy} hook does with one connection's bytes. */
export interface TcpProxyRoute {
  /** `false`: the hook forwards the upstream's bytes to the client itself [piped]. */
  upstreamToClient?: boolean;
}

export interface TcpProxyOptions {
  /**
   * Called for each connection before any byte flows, e.g. to watch the bytes (a 'data'
   * listener) or to take over the upstream-to-client direction (return `{ upstreamToClient:
   * false }`) and speak for the target. The client's bytes are always piped to the target.
   */
  onConnection?: (client: Socket, upstream: Socket) => TcpProxyRoute | undefined;
}

/**
 * A loopback TCP proxy to `target` that can be stopped (connections refused) and restarted, cut
 * its connections while listening, and let a hook watch or rewrite a connection's bytes.
 */
export class TcpProxy {
  readonly targetHost: string;
  readonly targetPort: number;
  port = 0;
  readonly #options: TcpProxyOptions;
  #server: Server | undefined;
  #sockets = new Set<Socket>();

  constructor(targetHost: string, targetPort: number, options: TcpProxyOptions = {}) {
    this.targetHost = targetHost;
    this.targetPort = targetPort;
    this.#options = options;
  }

  /** A proxy to the host and port of a URL (a PostgreSQL connection string: port 5432 if none). */
  static to(target: URL | string, options: TcpProxyOptions = {}): TcpProxy {
    const u = typeof target === 'string' ? new URL(target) : target;
    return new TcpProxy(u.hostname, Number(u.port || 5432), options);
  }

  /** Listens (again, on the same port after a stop); a no-op while listening. */
  async start(): Promise<void> {
    if (this.#server) return;
    const server = createServer((client) => {
      const upstream = connect(this.targetPort, this.targetHost);
      for (const s of [client, upstream]) {
        this.#sockets.add(s);
        s.on('close', () => this.#sockets.delete(s));
        s.on('error', () => {
          client.destroy();
          upstream.destroy();
        });
      }
      const route = this.#options.onConnection?.(client, upstream);
      client.pipe(upstream);
      if (route?.upstreamToClient !== false) upstream.pipe(client);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.port = (server.address() as { port: number }).port;
    this.#server = server;
  }

  /** Cuts every open connection; new ones are still accepted. */
  cutConnections(): void {
    for (const s of this.#sockets) s.destroy();
  }

  /** Closes the listener (new connections are refused) and cuts every open connection. */
  async stop(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    this.cutConnections();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
