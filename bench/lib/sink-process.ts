// SPDX-License-Identifier: Apache-2.0
/*
 * A minimal loopback HTTP sink, run in its own process (forked by sink.ts) so that its CPU
 * does not count against the client under test. It does NOT validate: it measures clients,
 * not a validator. It answers 201 to `POST /api/v1/audit/events/batch` with DataStorage's body
 * (`event_ids`, one per record in the request, counted by their markers) and to any other POST
 * (e.g. OTLP `/v1/logs`), after reading the whole body.
 *
 * Record-id oracle: every benchmark record carries a marker `bnid:<n>;` exactly once; the
 * sink scans each accepted body for markers (byte search, no JSON parse) and keeps a bitmap,
 * so "delivered" is counted at the sink, never assumed.
 *
 * Control over IPC: {id, cmd: 'reset', capacity} | 'stats' | 'down' | 'up' | 'exit'.
 * 'down' closes the listener and destroys open connections (clients get ECONNREFUSED);
 * 'up' listens again on the same port.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

const MARKER = Buffer.from('bnid:');
const SEMI = 0x3b;

let seen = new Uint8Array(1 << 20);
let distinct = 0;
let total = 0;
let duplicates = 0;
let outOfRange = 0;
let requests = 0;
let bytes = 0;
let firstAt = 0;
let lastAt = 0;

/** Counts the body's records (markers); returns how many it carries. */
function scan(body: Buffer): number {
  let found = 0;
  let pos = body.indexOf(MARKER);
  while (pos >= 0) {
    let i = pos + MARKER.length;
    let n = 0;
    let c = body[i];
    while (c !== undefined && c >= 0x30 && c <= 0x39) {
      n = n * 10 + (c - 0x30);
      c = body[++i];
    }
    if (c === SEMI) {
      found++;
      total++;
      if (n >= seen.length) outOfRange++;
      else if (seen[n] === 0) {
        seen[n] = 1;
        distinct++;
      } else duplicates++;
    }
    pos = body.indexOf(MARKER, i);
  }
  return found;
}

const OK_BODY = JSON.stringify({ event_ids: [], message: 'accepted (benchmark sink)' });
/** DataStorage's 201 body for n events (uuid-sized ids), cached per n. */
const created = new Map<number, string>();
function createdBody(n: number): string {
  let body = created.get(n);
  if (body === undefined) {
    const ids = Array.from(
      { length: n },
      (_, i) => `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
    );
    body = JSON.stringify({ event_ids: ids, message: `${n} audit events created successfully` });
    created.set(n, body);
  }
  return body;
}

const server = http.createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const body = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks);
    requests++;
    bytes += body.length;
    const records = scan(body);
    const now = Date.now();
    if (firstAt === 0) firstAt = now;
    lastAt = now;
    res.writeHead(201, { 'content-type': 'application/json' });
    res.end(req.url?.endsWith('/audit/events/batch') ? createdBody(records) : OK_BODY);
  });
  req.on('error', () => res.destroy());
});
server.keepAliveTimeout = 30_000;

let port = 0;

function reply(id: number, data: Record<string, unknown>): void {
  process.send?.({ id, ...data });
}

process.on('message', (m: { id: number; cmd: string; capacity?: number }) => {
  switch (m.cmd) {
    case 'reset':
      seen = new Uint8Array(m.capacity ?? 1 << 20);
      distinct = total = duplicates = outOfRange = requests = bytes = firstAt = lastAt = 0;
      reply(m.id, { ok: true });
      break;
    case 'stats':
      reply(m.id, { distinct, total, duplicates, outOfRange, requests, bytes, firstAt, lastAt });
      break;
    case 'down':
      server.close();
      server.closeAllConnections();
      reply(m.id, { ok: true });
      break;
    case 'up':
      server.listen(port, '127.0.0.1', () => reply(m.id, { ok: true }));
      break;
    case 'exit':
      server.close();
      server.closeAllConnections();
      reply(m.id, { ok: true });
      process.disconnect?.();
      break;
  }
});

// The benchmark process went away (finished, crashed or killed): do not linger.
process.on('disconnect', () => process.exit(0));

server.listen(0, '127.0.0.1', () => {
  port = (server.address() as AddressInfo).port;
  process.send?.({ id: 0, ready: true, port });
});
