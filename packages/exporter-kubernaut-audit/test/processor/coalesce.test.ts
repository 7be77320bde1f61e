// SPDX-License-Identifier: Apache-2.0
/*
 * The sender's coalescing under load (fuller requests) never delays what a caller waits for:
 * forceFlush() and shutdown() send at once, however long the window. Real LoggerProvider,
 * real HTTP to the fault-injecting DataStorage.
 */
import { cleanupTempDirs, FaultServer, tempDir } from '@kubernaut/test-kit';
import { LoggerProvider } from '@opentelemetry/sdk-logs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createProcessor } from '../../src/processor/create.ts';
import { deliveredIds, fastExporter } from './fixtures/harness.ts';
import { auditRecord } from './fixtures/support.ts';

let ds: FaultServer;
beforeEach(async () => {
  ds = await FaultServer.start();
});
afterEach(async () => {
  await ds.close();
  cleanupTempDirs();
});

describe('coalescing and the caller who waits', () => {
  it('forceFlush() and shutdown() do not wait for a lane’s coalescing window (an hour here)', async () => {
    const processor = createProcessor(
      {
        exporter: fastExporter(ds),
        spool: { directory: tempDir() },
        shutdownTimeoutMillis: 10_000,
      },
      { coalesceMillis: 3_600_000 },
    );
    const provider = new LoggerProvider({ processors: [processor] });
    const logger = provider.getLogger('coalesce');
    for (let i = 0; i < 20; i++) logger.emit(auditRecord(`a${i}`, `c${i % 5}`));
    await processor.forceFlush({ timeoutMillis: 10_000 }); // the lanes were quiet: sent at once
    for (let i = 0; i < 20; i++) logger.emit(auditRecord(`b${i}`, `c${i % 5}`));
    // The lanes sent moments ago: without sendNow() they would wait an hour and this times out.
    await processor.forceFlush({ timeoutMillis: 10_000 });
    expect(new Set(deliveredIds(ds)).size).toBe(40);
    for (let i = 0; i < 20; i++) logger.emit(auditRecord(`c${i}`, `c${i % 5}`));
    await provider.shutdown();
    expect(new Set(deliveredIds(ds)).size).toBe(60);
  });
});
