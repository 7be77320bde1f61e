// SPDX-License-Identifier: Apache-2.0
/*
 * The processors' process listeners: one `exit`, SIGTERM, SIGINT and SIGHUP listener each for all
 * live processors together (many providers must not reach the listener limit), gone once the
 * last processor has shut down. What they do is tested with real child processes in
 * exit.test.ts. Counted by name: a processor another test file of the same worker left running
 * keeps them installed, and other code may listen too.
 */
import { cleanupTempDirs, FaultServer, tempDir } from '@kubernaut/test-kit';
import { LoggerProvider } from '@opentelemetry/sdk-logs';
import { afterAll, describe, expect, it } from 'vitest';
import { processorFor } from './fixtures/harness.ts';

afterAll(() => cleanupTempDirs());

const OURS = [
  ['exit', 'onExit'],
  ['SIGTERM', 'onSignal'],
  ['SIGINT', 'onSignal'],
  ['SIGHUP', 'onSignal'],
] as const;
/** How many of the processors' listeners each event has. */
const ours = () =>
  OURS.map(
    ([e, name]) =>
      (process.listeners as (event: string) => Array<(...a: unknown[]) => void>)
        .call(process, e)
        .filter((l) => l.name === name).length,
  );

describe('process listeners', () => {
  it('twenty processors add one exit, SIGTERM, SIGINT and SIGHUP listener each, removed at the last shutdown', async () => {
    const ds = await FaultServer.start();
    const before = ours();
    const providers = Array.from(
      { length: 20 },
      () =>
        new LoggerProvider({
          processors: [processorFor(ds, { spool: { directory: tempDir() } })],
        }),
    );
    expect(ours()).toEqual([1, 1, 1, 1]);
    for (const p of providers.slice(1)) await p.shutdown();
    expect(ours()).toEqual([1, 1, 1, 1]); // one processor is still live
    await providers[0]?.shutdown();
    expect(ours()).toEqual(before); // none, unless a processor of another file is still live
    await ds.close();
  });
});
