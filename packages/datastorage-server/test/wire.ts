// SPDX-License-Identifier: Apache-2.0
/* A loopback proxy to PostgreSQL that watches what the server sends on the wire. */
import { createServer, connect as netConnect, type Server, type Socket } from 'node:net';

/**
 * A loopback proxy to PostgreSQL that counts the frontend messages ending a round trip: a
 * simple Query ('Q') or an extended-protocol Sync ('S').
 */
export class RoundTripCounter {
  port = 0;
  roundTrips = 0;
  readonly statements: string[] = [];
  #server: Server | undefined;
  readonly #sockets = new Set<Socket>();

  async start(target: URL): Promise<void> {
    const host = target.hostname;
    const port = Number(target.port || 5432);
    const server = createServer((client) => {
      const upstream = netConnect(port, host);
      for (const s of [client, upstream]) {
        this.#sockets.add(s);
        s.on('close', () => this.#sockets.delete(s));
        s.on('error', () => {
          client.destroy();
          upstream.destroy();
        });
      }
      let pending = Buffer.alloc(0);
      let startup = true;
      client.on('data', (chunk: Buffer) => {
        pending = Buffer.concat([pending, chunk]);
        for (;;) {
          // The startup message has no type byte; every later one does.
          const head = startup ? 0 : 1;
          if (pending.length < head + 4) break;
          const length = pending.readInt32BE(head);
          if (pending.length < head + length) break;
          if (!startup) {
            const type = String.fromCharCode(pending[0]!);
            if (type === 'Q' || type === 'S') this.roundTrips++;
            if (type === 'Q') this.statements.push(pending.toString('utf8', 5, head + length - 1));
          }
          pending = pending.subarray(head + length);
          startup = false;
        }
      });
      client.pipe(upstream);
      upstream.pipe(client);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    this.port = (server.address() as { port: number }).port;
    this.#server = server;
  }

  reset(): void {
    this.roundTrips = 0;
    this.statements.length = 0;
  }

  async stop(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    await new Promise<void>((resolve) => this.#server?.close(() => resolve()) ?? resolve());
  }
}

/** The connection string of `url` through the proxy on `port`. */
export function viaProxy(url: string, port: number): string {
  const u = new URL(url);
  u.host = `127.0.0.1:${port}`;
  return u.toString();
}

/** A FATAL ErrorResponse (SQLSTATE 57P01), as PostgreSQL sends when a session is terminated. */
function fatalTerminated(): Buffer {
  const fields = Buffer.from(
    'SFATAL\0VFATAL\0C57P01\0Mterminating connection due to administrator command\0\0',
    'latin1',
  );
  const head = Buffer.alloc(5);
  head[0] = 0x45; // 'E'
  head.writeInt32BE(4 + fields.length, 1);
  return Buffer.concat([head, fields]);
}

/**
 * A loopback proxy to PostgreSQL that, while `terminateNewSessions` is set, ends each new session
 * the way `pg_terminate_backend` does right after it started: the FATAL error travels in the same
 * TCP segment as the startup's ReadyForQuery, so the client reads both in one go.
 */
export class TerminatingProxy {
  port = 0;
  terminateNewSessions = false;
  /** Sessions ended so. */
  terminated = 0;
  #server: Server | undefined;
  readonly #sockets = new Set<Socket>();

  async start(target: URL): Promise<void> {
    const server = createServer((client) => {
      const upstream = netConnect(Number(target.port || 5432), target.hostname);
      for (const s of [client, upstream]) {
        this.#sockets.add(s);
        s.on('close', () => this.#sockets.delete(s));
        s.on('error', () => {
          client.destroy();
          upstream.destroy();
        });
      }
      client.pipe(upstream);
      const terminate = this.terminateNewSessions;
      let pending = Buffer.alloc(0);
      upstream.on('data', (chunk: Buffer) => {
        if (!terminate) {
          client.write(chunk);
          return;
        }
        // Until the first ReadyForQuery ('Z'), messages are held and parsed.
        pending = Buffer.concat([pending, chunk]);
        let at = 0;
        while (pending.length >= at + 5) {
          const type = pending[at]!;
          const end = at + 1 + pending.readInt32BE(at + 1);
          if (pending.length < end) break;
          at = end;
          if (type === 0x5a) {
            this.terminated++;
            client.end(Buffer.concat([pending.subarray(0, at), fatalTerminated()]));
            upstream.destroy();
            return;
          }
        }
      });
      upstream.on('end', () => client.end());
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    this.port = (server.address() as { port: number }).port;
    this.#server = server;
  }

  /** Cuts every open session (the pool must open new ones). */
  cutAll(): void {
    for (const s of this.#sockets) s.destroy();
  }

  async stop(): Promise<void> {
    this.cutAll();
    await new Promise<void>((resolve) => this.#server?.close(() => resolve()) ?? resolve());
  }
}
