// SPDX-License-Identifier: Apache-2.0
/*
 * The reference DataStorage server (packages/datastorage-server) in its own process, on the
 * PostgreSQL database named by DATABASE_URL. Sends `{ port }` over IPC once listening; closes
 * on the message `{ cmd: 'exit' }`.
 */
import { startDataStorageServer } from '@kubernaut/datastorage-server';
import { serveOverIpc } from './ipc-child.ts';

const connectionString = process.env.DATABASE_URL;
if (!connectionString) throw new Error('DATABASE_URL is required');
const server = await startDataStorageServer({
  port: 0,
  storage: { kind: 'postgres', connectionString },
  quiet: true,
});
serveOverIpc(server.port, () => server.close());
