// SPDX-License-Identifier: Apache-2.0
/*
 * The IPC side of a benchmark's server child process (ds-server-process.ts,
 * bridge-process.ts): sends `{ port }` once listening, closes and exits when the benchmark
 * process goes away (crashed or killed: it must not linger), and answers `{ cmd: 'exit' }` by
 * closing, then `{ closed: true }`. Other commands go to `onCommand`.
 */
export function serveOverIpc(
  port: number,
  closeServer: () => Promise<void>,
  onCommand: (cmd: string | undefined) => Promise<void> | void = () => {},
): void {
  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= closeServer().catch(() => {});
    return closing;
  };
  process.send?.({ port });
  process.on('disconnect', () => {
    void close().then(() => process.exit(0));
  });
  process.on('message', async (m: { cmd?: string }) => {
    if (m.cmd === 'exit') {
      await close();
      process.send?.({ closed: true });
      process.disconnect?.();
    } else {
      await onCommand(m.cmd);
    }
  });
}
