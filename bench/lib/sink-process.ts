// SPDX-License-Identifier: Apache-2.0
/*
 * A minimal loopback HTTP sink, run in its own process (forked by sink.ts) so that its CPU
 * does not count against the client under test. It does NOT validate: it measures clients,
 * not a validator. It answers 201 to `POST /api/v1/audit/events/batch` (a DataStorage-style
 * body) and to any other POST (e.g. OTLP `/v1/logs`), after reading the whole body.
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

function scan(body: Buffer): void {
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
      total++;
      if (n >= seen.length) outOfRange++;
      else if (seen[n] === 0) {
        seen[n] = 1;
        distinct++;
      } else duplicates++;
    }
    pos = body.indexOf(MARKER, i);
  }
}

const OK_BODY = JSON.stringify({ event_ids: [], message: 'accepted (benchmark sink)' });

const server = http.createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const body = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks);
    requests++;
    bytes += body.length;
    scan(body);
    const now = Date.now();
    if (firstAt === 0) firstAt = now;
    lastAt = now;
    res.writeHead(201, { 'content-type': 'application/json' });
    res.end(OK_BODY);
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
