// SPDX-License-Identifier: Apache-2.0
/*
 * The reference DataStorage server (packages/datastorage-server) in its own process, on the
 * PostgreSQL database named by DATABASE_URL. Sends `{ port }` over IPC once listening; closes
 * on the message `{ cmd: 'exit' }`.
 */
import { startDataStorageServer } from '@kubernaut/datastorage-server';

const connectionString = process.env.DATABASE_URL;
if (!connectionString) throw new Error('DATABASE_URL is required');
const server = await startDataStorageServer({
  port: 0,
  storage: { kind: 'postgres', connectionString },
  quiet: true,
});
process.send?.({ port: server.port });
// The benchmark process went away (crashed or killed): do not linger.
let closing: Promise<void> | undefined;
const close = () => {
  closing ??= server.close().catch(() => {});
  return closing;
};
process.on('disconnect', () => {
  void close().then(() => process.exit(0));
});
process.on('message', async (m: { cmd?: string }) => {
  if (m.cmd === 'exit') {
    await close();
    process.send?.({ closed: true });
    process.disconnect?.();
  }
});
