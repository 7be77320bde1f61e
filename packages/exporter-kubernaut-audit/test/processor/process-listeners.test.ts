// SPDX-License-Identifier: Apache-2.0
/*
 * The processors' process listeners: one `exit`, SIGTERM, SIGINT and SIGHUP listener each for all
 * live processors together (many providers must not reach the listener limit), gone once the
 * last processor has shut down. What they do is tested with real child processes in
 * exit.test.ts.
 */
import { cleanupTempDirs, FaultServer, tempDir } from '@kubernaut/test-kit';
import { LoggerProvider } from '@opentelemetry/sdk-logs';
import { afterAll, describe, expect, it } from 'vitest';
import { processorFor } from './fixtures/harness.ts';

afterAll(() => cleanupTempDirs());

const EVENTS = ['exit', 'SIGTERM', 'SIGINT', 'SIGHUP'] as const;
const counts = () => EVENTS.map((e) => process.listenerCount(e));

describe('process listeners', () => {
  it('twenty processors add one exit, SIGTERM, SIGINT and SIGHUP listener each, removed at the last shutdown', async () => {
    const ds = await FaultServer.start();
    const before = counts();
    const providers = Array.from(
      { length: 20 },
      () =>
        new LoggerProvider({
          processors: [processorFor(ds, { spool: { directory: tempDir() } })],
        }),
    );
    expect(counts()).toEqual(before.map((n) => n + 1));
    for (const p of providers.slice(1)) await p.shutdown();
    expect(counts()).toEqual(before.map((n) => n + 1)); // one processor is still live
    await providers[0]?.shutdown();
    expect(counts()).toEqual(before);
    await ds.close();
  });
});
