// SPDX-License-Identifier: Apache-2.0
/*
 * What the tests see and do on the wire to PostgreSQL, on the test kit's TcpProxy: count the
 * round trips the server makes, and end new sessions as `pg_terminate_backend` does.
 */
import { TcpProxy } from '@kubernaut/test-kit';

/**
 * A loopback proxy to PostgreSQL that counts the frontend messages ending a round trip: a
 * simple Query ('Q') or an extended-protocol Sync ('S').
 */
export class RoundTripCounter {
  roundTrips = 0;
  readonly statements: string[] = [];
  #proxy: TcpProxy | undefined;

  get port(): number {
    return this.#proxy?.port ?? 0;
  }

  async start(target: URL): Promise<void> {
    this.#proxy = TcpProxy.to(target, {
      onConnection: (client) => {
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
              if (type === 'Q') {
                this.statements.push(pending.toString('utf8', 5, head + length - 1));
              }
            }
            pending = pending.subarray(head + length);
            startup = false;
          }
        });
        return undefined;
      },
    });
    await this.#proxy.start();
  }

  reset(): void {
    this.roundTrips = 0;
    this.statements.length = 0;
  }

  async stop(): Promise<void> {
    await this.#proxy?.stop();
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
  terminateNewSessions = false;
  /** Sessions ended so. */
  terminated = 0;
  #proxy: TcpProxy | undefined;

  get port(): number {
    return this.#proxy?.port ?? 0;
  }

  async start(target: URL): Promise<void> {
    this.#proxy = TcpProxy.to(target, {
      onConnection: (client, upstream) => {
        if (!this.terminateNewSessions) return undefined;
        // Until the first ReadyForQuery ('Z'), messages are held and parsed.
        let pending = Buffer.alloc(0);
        upstream.on('data', (chunk: Buffer) => {
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
        return { upstreamToClient: false };
      },
    });
    await this.#proxy.start();
  }

  /** Cuts every open session (the pool must open new ones). */
  cutAll(): void {
    this.#proxy?.cutConnections();
  }

  async stop(): Promise<void> {
    await this.#proxy?.stop();
  }
}
