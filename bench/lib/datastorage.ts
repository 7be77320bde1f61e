// SPDX-License-Identifier: Apache-2.0
/* A scratch PostgreSQL database and the reference DataStorage server on it, in a child process. */
import { type ChildProcess, fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import pg from 'pg';

export const ADMIN_URL =
  process.env.DATABASE_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/** Creates a uniquely named database; `drop()` removes it (WITH FORCE). */
export async function createScratchDatabase(prefix: string): Promise<{
  url: string;
  name: string;
  drop: () => Promise<void>;
}> {
  const name = `${prefix}_${process.pid}_${Date.now()}`;
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    name,
    drop: async () => {
      try {
        await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await admin.end();
      }
    },
  };
}

export class DataStorageProcess {
  private readonly _child: ChildProcess;
  readonly url: string;

  private constructor(child: ChildProcess, port: number) {
    this._child = child;
    this.url = `http://127.0.0.1:${port}`;
  }

  static async start(databaseUrl: string): Promise<DataStorageProcess> {
    const child = fork(fileURLToPath(new URL('./ds-server-process.ts', import.meta.url)), [], {
      execPath: process.execPath,
      execArgv: ['--conditions=@kubernaut/source'],
      env: { ...process.env, DATABASE_URL: databaseUrl },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const port = await new Promise<number>((resolve, reject) => {
      child.once('message', (m: { port: number }) => resolve(m.port));
      child.once('exit', (code) => reject(new Error(`DataStorage server exited (${code})`)));
    });
    return new DataStorageProcess(child, port);
  }

  async close(): Promise<void> {
    if (this._child.exitCode !== null) return;
    const exited = new Promise<void>((resolve) => this._child.once('exit', () => resolve()));
    this._child.send({ cmd: 'exit' });
    const timer = setTimeout(() => this._child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  }
}
