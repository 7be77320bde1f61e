// SPDX-License-Identifier: Apache-2.0
/* Client of the loopback benchmark sink (sink-process.ts), which runs in a child process. */
import { type ChildProcess, fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export interface SinkStats {
  /** Distinct record ids received. */
  distinct: number;
  /** Record ids received, counting repeats. */
  total: number;
  duplicates: number;
  outOfRange: number;
  requests: number;
  bytes: number;
  /** Date.now() of the first and last accepted request since reset (0 when none). */
  firstAt: number;
  lastAt: number;
}

/** The marker a benchmark record carries so the sink can count it. */
export function recordMarker(id: number): string {
  return `bnid:${id};`;
}

export class Sink {
  private readonly _child: ChildProcess;
  private _next = 1;
  private readonly _waiting = new Map<number, (m: Record<string, unknown>) => void>();
  readonly port: number;

  private constructor(child: ChildProcess, port: number) {
    this._child = child;
    this.port = port;
    child.on('message', (m: { id: number } & Record<string, unknown>) => {
      const w = this._waiting.get(m.id);
      if (w) {
        this._waiting.delete(m.id);
        w(m);
      }
    });
  }

  /** Base URL (DataStorage style: the exporter appends /api/v1/audit/events/batch). */
  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  static async start(): Promise<Sink> {
    const child = fork(fileURLToPath(new URL('./sink-process.ts', import.meta.url)), [], {
      execPath: process.execPath,
      execArgv: ['--conditions=@kubernaut/source'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const port = await new Promise<number>((resolve, reject) => {
      child.once('message', (m: { port: number }) => resolve(m.port));
      child.once('exit', (code) => reject(new Error(`sink exited (${code})`)));
    });
    return new Sink(child, port);
  }

  private _call(
    cmd: string,
    extra: Record<string, unknown> = {},
  ): Promise<Record<string, unknown>> {
    const id = this._next++;
    return new Promise((resolve) => {
      this._waiting.set(id, resolve);
      this._child.send({ id, cmd, ...extra });
    });
  }

  /** Forgets what was received; ids must be < capacity. */
  async reset(capacity: number): Promise<void> {
    await this._call('reset', { capacity });
  }

  async stats(): Promise<SinkStats> {
    return (await this._call('stats')) as unknown as SinkStats;
  }

  /** Refuses connections (and drops open ones) until up(). */
  async down(): Promise<void> {
    await this._call('down');
  }

  async up(): Promise<void> {
    await this._call('up');
  }

  async close(): Promise<void> {
    await this._call('exit');
    await new Promise<void>((resolve) => {
      if (this._child.exitCode !== null) resolve();
      else this._child.once('exit', () => resolve());
    });
  }
}
