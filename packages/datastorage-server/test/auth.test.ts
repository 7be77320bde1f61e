// SPDX-License-Identifier: Apache-2.0
/*
 * Authentication of /api/v1/*: a token file (re-read when it changes), or Kubernetes
 * TokenReview + SubjectAccessReview per route against a loopback stand-in of the Kubernetes
 * API that answers as the real one does. /readyz stays open; tokens never reach the log.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PROBLEM_CONTENT_TYPE } from '@kubernaut/datastorage-contract';
import {
  minimalEvent,
  postBatch,
  queryEvents,
  request,
  TEST_TOKEN,
  verifyChain,
} from '@kubernaut/test-kit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createJsonLogger } from '../src/logger.ts';
import { type Harness, pgliteBackend } from './backends.ts';

const dir = mkdtempSync(join(tmpdir(), 'ds-auth-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

/** Every kind of missing or wrong credential. */
const BAD_CREDENTIALS: Array<[string, Record<string, string | null>]> = [
  ['no Authorization header', { authorization: null }],
  ['Bearer nope', { authorization: 'Bearer nope' }],
  ['Basic credentials', { authorization: 'Basic dXNlcjpwYXNz' }],
  ['an empty bearer token', { authorization: 'Bearer ' }],
];

const API_CALLS: Array<[string, string, unknown]> = [
  ['GET', '/api/v1/audit/events', undefined],
  ['POST', '/api/v1/audit/events/batch', [minimalEvent()]],
  ['POST', '/api/v1/audit/events', minimalEvent()],
  ['POST', '/api/v1/audit/verify-chain', { correlation_id: 'x' }],
  ['GET', '/api/v1/no/such/route', undefined],
];

function capture() {
  const lines: string[] = [];
  return {
    lines,
    logger: createJsonLogger({ level: 'debug', stream: { write: (l: string) => lines.push(l) } }),
  };
}

describe('token file authentication', () => {
  const tokenA = `a-${randomUUID()}`;
  const tokenB = `b-${randomUUID()}`;
  const file = join(dir, 'tokens');
  let h: Harness;
  const log = capture();

  beforeAll(async () => {
    writeFileSync(file, `# DataStorage clients\n\n  ${tokenA}  \n${tokenB}\n`);
    h = await pgliteBackend.start({
      auth: { tokenFile: file, reloadCheckMillis: 0 },
      quiet: false,
      logger: log.logger,
    });
  });
  afterAll(async () => {
    await h?.stop();
  });

  describe.each(BAD_CREDENTIALS)('with %s', (_label, headers) => {
    it.each(API_CALLS)('%s %s answers 401 with WWW-Authenticate: Bearer', async (m, p, body) => {
      const r = await request(h.server.url, m, p, body, headers);
      expect(r.status).toBe(401);
      expect(r.contentType).toBe(PROBLEM_CONTENT_TYPE);
      expect(r.body.type).toBe('https://kubernaut.ai/problems/unauthorized');
      expect(r.headers.get('www-authenticate')).toMatch(/^Bearer realm="kubernaut-datastorage"/);
      if (Array.isArray(body)) {
        const cid = (body[0] as { correlation_id: string }).correlation_id;
        const q = await request(
          h.server.url,
          'GET',
          `/api/v1/audit/events?correlation_id=${cid}`,
          undefined,
          bearer(tokenA),
        );
        expect(q.body.pagination).toMatchObject({ total: 0 });
      }
    });
  });

  it('keeps /readyz open', async () => {
    const r = await request(h.server.url, 'GET', '/readyz', undefined, { authorization: null });
    expect(r.status).toBe(200);
  });

  it('accepts every token of the file (blank lines and comments ignored)', async () => {
    for (const t of [tokenA, tokenB]) {
      const ev = minimalEvent();
      const w = await request(h.server.url, 'POST', '/api/v1/audit/events/batch', [ev], bearer(t));
      expect(w.status).toBe(201);
      const q = await request(h.server.url, 'GET', '/api/v1/audit/events?limit=1', undefined, {
        authorization: `bearer ${t}`,
      });
      expect(q.status).toBe(200);
    }
    const comment = await request(h.server.url, 'GET', '/api/v1/audit/events', undefined, {
      authorization: 'Bearer # DataStorage clients',
    });
    expect(comment.status).toBe(401);
  });

  it('re-reads the file when it changes, and keeps the last tokens when it vanishes', async () => {
    const tokenC = `c-${randomUUID()}`;
    writeFileSync(file, `${tokenC}\n`);
    const get = (t: string) =>
      request(h.server.url, 'GET', '/api/v1/audit/events?limit=1', undefined, bearer(t));
    expect((await get(tokenA)).status).toBe(401);
    expect((await get(tokenC)).status).toBe(200);
    unlinkSync(file);
    expect((await get(tokenC)).status).toBe(200);
    expect((await get(tokenB)).status).toBe(401);
    writeFileSync(file, `${tokenA}\n${tokenB}\n`);
    expect((await get(tokenA)).status).toBe(200);
    expect((await get(tokenC)).status).toBe(401);
  });

  it('never writes a token, good or bad, to the log', async () => {
    expect(log.lines.length).toBeGreaterThan(10);
    const text = log.lines.join('');
    for (const t of [tokenA, tokenB, 'nope', 'dXNlcjpwYXNz']) expect(text).not.toContain(t);
    expect(text).toContain('request not authenticated');
  });

  it('refuses to start with a missing or an empty token file', async () => {
    await expect(pgliteBackend.start({ auth: { tokenFile: join(dir, 'absent') } })).rejects.toThrow(
      /cannot read the auth token file/,
    );
    const empty = join(dir, 'empty');
    writeFileSync(empty, '# nothing here\n\n');
    await expect(pgliteBackend.start({ auth: { tokenFile: empty } })).rejects.toThrow(
      /holds no token/,
    );
  });
});

/**
 * A loopback stand-in of the Kubernetes API: TokenReview and SubjectAccessReview as the real
 * API server answers them, for the users and RBAC rules given.
 */
class FakeKubernetesApi {
  server: Server | undefined;
  url = '';
  readonly reviews: Array<{ kind: string; spec: Record<string, unknown>; auth: string }> = [];
  failing = false;
  readonly ownToken: string;
  readonly users: Record<string, { username: string; groups: string[] }>;
  readonly rules: Record<string, string[]>;
  constructor(
    ownToken: string,
    users: Record<string, { username: string; groups: string[] }>,
    rules: Record<string, string[]>,
  ) {
    this.ownToken = ownToken;
    this.users = users;
    this.rules = rules;
  }

  async start(tls?: { key: Buffer; cert: Buffer }): Promise<void> {
    const handler = (req: IncomingMessage, res: import('node:http').ServerResponse) =>
      void this.#handle(req, res);
    this.server = tls ? createHttpsServer(tls, handler) : createServer(handler);
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    const port = (this.server.address() as AddressInfo).port;
    this.url = `${tls ? 'https' : 'http'}://127.0.0.1:${port}`;
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => this.server?.close(() => resolve()));
  }

  async #handle(req: IncomingMessage, res: import('node:http').ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const send = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (this.failing) {
      send(500, { kind: 'Status', apiVersion: 'v1', status: 'Failure', code: 500 });
      return;
    }
    if (req.headers.authorization !== `Bearer ${this.ownToken}`) {
      send(401, { kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'Unauthorized' });
      return;
    }
    const body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    this.reviews.push({ kind: body.kind, spec: body.spec, auth: req.headers.authorization });
    if (req.method === 'POST' && req.url === '/apis/authentication.k8s.io/v1/tokenreviews') {
      const user = this.users[body.spec.token];
      send(201, {
        kind: 'TokenReview',
        apiVersion: 'authentication.k8s.io/v1',
        metadata: { creationTimestamp: null },
        spec: body.spec,
        status: user
          ? { authenticated: true, user: { ...user, uid: `uid-${user.username}` } }
          : { user: {}, error: '[invalid bearer token, token lookup failed]' },
      });
      return;
    }
    if (req.method === 'POST' && req.url === '/apis/authorization.k8s.io/v1/subjectaccessreviews') {
      const a = body.spec.resourceAttributes;
      const allowed =
        a.namespace === 'audit' &&
        a.resource === 'services' &&
        a.name === 'data-storage-service' &&
        (this.rules[body.spec.user] ?? []).includes(a.verb);
      send(201, {
        kind: 'SubjectAccessReview',
        apiVersion: 'authorization.k8s.io/v1',
        metadata: { creationTimestamp: null },
        spec: body.spec,
        status: allowed ? { allowed: true, reason: 'RBAC: allowed' } : { allowed: false },
      });
      return;
    }
    send(404, { kind: 'Status', apiVersion: 'v1', status: 'Failure', code: 404 });
  }
}

describe('Kubernetes authentication (TokenReview + SubjectAccessReview)', () => {
  const own = `sa-${randomUUID()}`;
  const writer = `w-${randomUUID()}`;
  const reader = `r-${randomUUID()}`;
  const person = `p-${randomUUID()}`;
  // A user name JSON must escape: the server's canonical document must escape it even when
  // nothing in the request body needed escaping.
  const quoted = `q-${randomUUID()}`;
  const QUOTED_USER = 'o"brien\\corp@example.com';
  const api = new FakeKubernetesApi(
    own,
    {
      [writer]: {
        username: 'system:serviceaccount:prod:gateway',
        groups: ['system:serviceaccounts'],
      },
      [reader]: { username: 'system:serviceaccount:prod:auditor', groups: [] },
      [person]: { username: 'alice@example.com', groups: ['sre'] },
      [quoted]: { username: QUOTED_USER, groups: ['sre'] },
      [TEST_TOKEN]: { username: 'system:serviceaccount:test:suite', groups: [] },
    },
    {
      'system:serviceaccount:prod:gateway': ['get', 'create'],
      'system:serviceaccount:prod:auditor': ['get'],
      'alice@example.com': ['get', 'create'],
      [QUOTED_USER]: ['get', 'create'],
      'system:serviceaccount:test:suite': ['get', 'create'],
    },
  );
  let h: Harness;
  const log = capture();

  beforeAll(async () => {
    await api.start();
    const ownFile = join(dir, 'sa-token');
    writeFileSync(ownFile, `${own}\n`);
    h = await pgliteBackend.start({
      auth: {
        kubernetes: {
          apiServerUrl: api.url,
          tokenFile: ownFile,
          namespace: 'audit',
          cacheTtlMillis: 0,
        },
      },
      quiet: false,
      logger: log.logger,
    });
  });
  afterAll(async () => {
    await h?.stop();
    await api.stop();
  });

  it('lets a writer write, query and verify: SubjectAccessReviews get and create', async () => {
    const ev = minimalEvent();
    api.reviews.length = 0;
    const w = await request(
      h.server.url,
      'POST',
      '/api/v1/audit/events/batch',
      [ev],
      bearer(writer),
    );
    expect(w.status).toBe(201);
    expect(api.reviews.map((r) => r.kind)).toEqual([
      'TokenReview',
      'SubjectAccessReview',
      'SubjectAccessReview',
    ]);
    expect(api.reviews[0]!.spec).toEqual({ token: writer });
    expect(api.reviews.slice(1).map((r) => r.spec.resourceAttributes)).toEqual([
      { namespace: 'audit', verb: 'get', resource: 'services', name: 'data-storage-service' },
      { namespace: 'audit', verb: 'create', resource: 'services', name: 'data-storage-service' },
    ]);
    expect(api.reviews[1]!.spec).toMatchObject({
      user: 'system:serviceaccount:prod:gateway',
      groups: ['system:serviceaccounts'],
    });
    // The server calls the API with its own service-account token.
    for (const r of api.reviews) expect(r.auth).toBe(`Bearer ${own}`);
    const cid = ev.correlation_id as string;
    const q = await request(
      h.server.url,
      'GET',
      `/api/v1/audit/events?correlation_id=${cid}`,
      undefined,
      bearer(writer),
    );
    expect(q.status).toBe(200);
    const v = await request(
      h.server.url,
      'POST',
      '/api/v1/audit/verify-chain',
      { correlation_id: cid },
      bearer(writer),
    );
    expect(v.status).toBe(200);
    expect(v.body.is_valid).toBe(true);
  });

  it('lets a reader read but not write or verify (403)', async () => {
    const q = await request(h.server.url, 'GET', '/api/v1/audit/events', undefined, bearer(reader));
    expect(q.status).toBe(200);
    const ev = minimalEvent();
    const w = await request(
      h.server.url,
      'POST',
      '/api/v1/audit/events/batch',
      [ev],
      bearer(reader),
    );
    expect(w.status).toBe(403);
    expect(w.body.type).toBe('https://kubernaut.ai/problems/forbidden');
    const v = await request(
      h.server.url,
      'POST',
      '/api/v1/audit/verify-chain',
      { correlation_id: 'x' },
      bearer(reader),
    );
    expect(v.status).toBe(403);
    const stored = await queryEvents(h.server.url, { correlation_id: ev.correlation_id as string });
    expect(stored.pagination.total).toBe(0);
  });

  it('answers 401 to a token the API server does not know', async () => {
    const r = await request(h.server.url, 'GET', '/api/v1/audit/events', undefined, bearer('nope'));
    expect(r.status).toBe(401);
    expect(r.headers.get('www-authenticate')).toBe(
      'Bearer realm="kubernaut-datastorage", error="invalid_token"',
    );
  });

  it('answers 503 with Retry-After while the API server fails, and recovers', async () => {
    api.failing = true;
    try {
      const r = await request(
        h.server.url,
        'GET',
        '/api/v1/audit/events',
        undefined,
        bearer(writer),
      );
      expect(r.status).toBe(503);
      expect(r.headers.get('retry-after')).toBe('5');
    } finally {
      api.failing = false;
    }
    const ok = await request(
      h.server.url,
      'GET',
      '/api/v1/audit/events',
      undefined,
      bearer(writer),
    );
    expect(ok.status).toBe(200);
  });

  it("records a person's write as the person's action, as upstream does", async () => {
    const ev = minimalEvent({ actor_type: 'service', actor_id: 'gateway' });
    const w = await request(h.server.url, 'POST', '/api/v1/audit/events', ev, bearer(person));
    expect(w.status).toBe(201);
    const q = await queryEvents(h.server.url, { correlation_id: ev.correlation_id as string });
    expect(q.data[0]).toMatchObject({ actor_type: 'user', actor_id: 'alice@example.com' });
    expect((await verifyChain(h.server.url, ev.correlation_id as string)).is_valid).toBe(true);
    // A service account's write keeps the actor it names.
    const sa = minimalEvent({ actor_type: 'service', actor_id: 'gateway' });
    expect((await postBatchAs(writer, [sa])).status).toBe(201);
    const q2 = await queryEvents(h.server.url, { correlation_id: sa.correlation_id as string });
    expect(q2.data[0]).toMatchObject({ actor_type: 'service', actor_id: 'gateway' });
  });

  it('hashes a user name that needs JSON escaping as it is stored (the chain verifies)', async () => {
    const ev = minimalEvent({ actor_type: 'service', actor_id: 'gateway' });
    // A body without a backslash: its own strings need no escaping, the user's name does.
    expect(JSON.stringify(ev)).not.toContain('\\');
    const w = await request(h.server.url, 'POST', '/api/v1/audit/events', ev, bearer(quoted));
    expect(w.status).toBe(201);
    const q = await queryEvents(h.server.url, { correlation_id: ev.correlation_id as string });
    expect(q.data[0]).toMatchObject({ actor_type: 'user', actor_id: QUOTED_USER });
    expect((await verifyChain(h.server.url, ev.correlation_id as string)).is_valid).toBe(true);
  });

  it('never writes a token to the log', () => {
    const text = log.lines.join('');
    for (const t of [own, writer, reader, person]) expect(text).not.toContain(t);
  });

  const postBatchAs = (token: string, events: unknown[]) =>
    request(h.server.url, 'POST', '/api/v1/audit/events/batch', events, bearer(token));
});

describe('Kubernetes authentication over HTTPS', () => {
  // A self-signed certificate for 127.0.0.1 (test fixture, valid until 2126).
  const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));
  const own = `sa-${randomUUID()}`;
  const api = new FakeKubernetesApi(
    own,
    { [TEST_TOKEN]: { username: 'system:serviceaccount:test:suite', groups: [] } },
    { 'system:serviceaccount:test:suite': ['get', 'create'] },
  );
  const ownFile = join(dir, 'sa-token-tls');
  beforeAll(async () => {
    await api.start({
      key: readFileSync(fixture('kube-api-test.key')),
      cert: readFileSync(fixture('kube-api-test.crt')),
    });
    writeFileSync(ownFile, own);
  });
  afterAll(async () => {
    await api.stop();
  });

  it('trusts the API server through the CA file, and refuses it without (503)', async () => {
    const kubernetes = {
      apiServerUrl: api.url,
      tokenFile: ownFile,
      namespace: 'audit',
      cacheTtlMillis: 0,
    };
    const trusted = await pgliteBackend.start({
      auth: { kubernetes: { ...kubernetes, caFile: fixture('kube-api-test.crt') } },
    });
    try {
      expect((await postBatch(trusted.server.url, [minimalEvent()])).status).toBe(201);
    } finally {
      await trusted.stop();
    }
    const untrusted = await pgliteBackend.start({ auth: { kubernetes } });
    try {
      const r = await request(untrusted.server.url, 'GET', '/api/v1/audit/events');
      expect(r.status).toBe(503);
    } finally {
      await untrusted.stop();
    }
  });
});

describe('the suite itself', () => {
  it('runs its servers with authentication on', async () => {
    const h = await pgliteBackend.start();
    try {
      const r = await request(h.server.url, 'GET', '/api/v1/audit/events', undefined, {
        authorization: null,
      });
      expect(r.status).toBe(401);
      expect((await postBatch(h.server.url, [minimalEvent()])).status).toBe(201);
    } finally {
      await h.stop();
    }
  });
});
