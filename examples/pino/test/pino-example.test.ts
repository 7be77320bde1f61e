// SPDX-License-Identifier: Apache-2.0
/* examples/pino end to end: the program runs and delivers its three audit lines. */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { cleanupTempDirs, FaultServer, nodeBinary, tempDir } from '@kubernaut/test-kit';
import { afterAll, describe, expect, it } from 'vitest';

afterAll(() => cleanupTempDirs());

describe('examples/pino', () => {
  it('examples/pino runs and delivers its audit lines', async () => {
    const sink = await FaultServer.start();
    try {
      const main = fileURLToPath(new URL('../main.ts', import.meta.url));
      // Asynchronous: the FaultServer lives in this process and must keep answering.
      await promisify(execFile)(nodeBinary(), ['--conditions=@kubernaut/source', main], {
        env: {
          ...process.env,
          KUBERNAUT_AUDIT_ENDPOINT: sink.url,
          KUBERNAUT_AUDIT_SPOOL_DIR: tempDir(),
          OTEL_SERVICE_NAME: 'pino-example',
        },
        timeout: 30_000,
      });
      expect(sink.received().length).toBe(3);
      expect(sink.specViolations).toEqual([]);
    } finally {
      await sink.close();
    }
  });
});
