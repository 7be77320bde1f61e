// SPDX-License-Identifier: Apache-2.0
/* A tiny in-memory DataStorage for verifier tests: query (newest first), batch, verify-chain. */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { StoredEvent } from '../src/analyze.ts';

export interface StubDataStorage {
  url: string;
  events: StoredEvent[];
  requests: Array<{ method: string; path: string; authorization?: string; body?: unknown }>;
  /** Called before each GET page is answered (to inject events while paging). */
  onQuery?: (offset: number) => void;
  /** Answer every request with this status instead. */
  failWith?: number;
  /** Answer every request this much later (a DataStorage far away or busy). */
  delayMillis?: number;
  close(): Promise<void>;
}

async function body(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  const text = Buffer.concat(chunks).toString();
  return text === '' ? undefined : JSON.parse(text);
}

export async function startStub(
  toStored: (e: Record<string, unknown>) => StoredEvent,
): Promise<StubDataStorage> {
  const stub = { events: [], requests: [] } as unknown as StubDataStorage;
  const server: Server = createServer(async (req, res) => {
    const u = new URL(req.url ?? '/', 'http://x');
    const b = req.method === 'POST' ? await body(req) : undefined;
    if (stub.delayMillis) await new Promise((r) => setTimeout(r, stub.delayMillis));
    stub.requests.push({
      method: req.method ?? '',
      path: u.pathname,
      ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}),
      ...(b !== undefined ? { body: b } : {}),
    });
    const send = (status: number, payload: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(payload));
    };
    if (stub.failWith)
      return send(stub.failWith, {
        type: 'x',
        title: 'Unauthorized',
        status: stub.failWith,
        detail: 'no',
      });
    if (req.method === 'GET' && u.pathname === '/api/v1/audit/events') {
      const since = Date.parse(u.searchParams.get('since') ?? '1970-01-01T00:00:00Z');
      const until = Date.parse(u.searchParams.get('until') ?? '9999-01-01T00:00:00Z');
      const limit = Number(u.searchParams.get('limit') ?? 50);
      const offset = Number(u.searchParams.get('offset') ?? 0);
      stub.onQuery?.(offset);
      const inWindow = stub.events
        .filter((e) => {
          const t = Date.parse(String(e.event_timestamp));
          return t >= since && t <= until;
        })
        .sort((a, b) => String(b.event_timestamp).localeCompare(String(a.event_timestamp)));
      return send(200, {
        data: inWindow.slice(offset, offset + limit),
        pagination: {
          limit,
          offset,
          total: inWindow.length,
          has_more: offset + limit < inWindow.length,
        },
      });
    }
    if (req.method === 'POST' && u.pathname === '/api/v1/audit/events/batch') {
      const list = b as Array<Record<string, unknown>>;
      const ids = list.map((e) => {
        const s = toStored(e);
        stub.events.push(s);
        return s.event_id;
      });
      return send(201, { event_ids: ids, message: 'ok' });
    }
    if (req.method === 'POST' && u.pathname === '/api/v1/audit/verify-chain') {
      const c = (b as { correlation_id: string }).correlation_id;
      return send(200, {
        correlation_id: c,
        is_valid: true,
        total_events: 1,
        tampered_events: [],
        message: 'ok',
      });
    }
    send(404, { title: 'not found' });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  stub.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  stub.close = () => new Promise<void>((r) => server.close(() => r()));
  return stub;
}

export { randomUUID };
