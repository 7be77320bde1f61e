// SPDX-License-Identifier: Apache-2.0
/*
 * Something other than a regular file under a spool file's name, or given as the signing key
 * file — a FIFO (reading one blocks until a writer comes) or a device such as /dev/zero (a read
 * that never ends) — must not hang the application: the processor's constructor returns, the file is reported as unusable, and
 * records are still delivered. Each case runs in a child process, so that a hang is a timeout
 * of that child, not of the test worker.
 */
import { execFile, execFileSync } from 'node:child_process';
import { readdirSync, rmSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { nodeBinary, tempDir } from '@kubernaut/test-kit';
import { LoggerProvider } from '@opentelemetry/sdk-logs';
import { describe, expect, it } from 'vitest';
import { deliveredIds, faultServerForFile, processorFor } from './fixtures/harness.ts';
import { auditRecord } from './fixtures/support.ts';

const ds = await faultServerForFile();
const CHILD = fileURLToPath(new URL('./fixtures/odd-files-child.ts', import.meta.url));

/** A spool directory with every file a running processor leaves (a dead letter included). */
async function usedSpool(): Promise<string> {
  const dir = tempDir();
  const processor = processorFor(ds, { spool: { directory: dir } });
  const provider = new LoggerProvider({ processors: [processor] });
  const logger = provider.getLogger('odd-files');
  logger.emit(auditRecord('odd-0:0', 'odd-0'));
  const invalid = auditRecord('odd-0:00', 'odd-0');
  delete (invalid.attributes as Record<string, unknown>)['audit.correlation.id'];
  logger.emit(invalid);
  await provider.shutdown();
  return dir;
}

const SEGMENT = '00000000000000000001.kaf';
/** The case of the signing key file (signingKeyFile) given as a FIFO. */
const KEY = 'the signing key file';

describe('a file the processor reads that is not a regular file', () => {
  it.each([
    [SEGMENT, 'fifo'],
    [SEGMENT, '/dev/zero'],
    ['meta.json', 'fifo'],
    ['sent-ack.log', 'fifo'],
    ['provenance.state', 'fifo'],
    ['lock.owner', 'fifo'],
    ['lock.db', 'fifo'],
    ['dead-letter.jsonl', 'fifo'],
    [KEY, 'fifo'],
  ])(
    '%s as %s: the constructor returns, the record is delivered, nothing hangs',
    async (name, what) => {
      const dir = await usedSpool();
      expect(readdirSync(dir)).toContain('meta.json');
      const path = name === KEY ? join(tempDir(), 'signing.pem') : join(dir, name);
      rmSync(path, { force: true });
      if (what === 'fifo') execFileSync('mkfifo', [path]);
      else symlinkSync(what, path);
      const before = deliveredIds(ds).length;
      const env = { ...process.env, DS_URL: ds.url, SPOOL_DIR: dir };
      const { stdout, stderr } = await promisify(execFile)(
        nodeBinary(),
        ['--conditions=@kubernaut/source', CHILD],
        {
          env: name === KEY ? { ...env, SIGNING_KEY_FILE: path } : env,
          timeout: 30_000,
          killSignal: 'SIGKILL', // a process blocked in a syscall runs no SIGTERM listener
        },
      ).catch((err: { stdout?: string; stderr?: string; killed?: boolean }) => {
        throw new Error(
          `child ${err.killed ? 'hung (killed at 30 s)' : 'failed'}: ${err.stdout}${err.stderr}`,
        );
      });
      expect(stdout).toContain('CONSTRUCTED');
      expect(stdout).toContain('FLUSHED ok');
      expect(deliveredIds(ds).slice(before)).toContain('odd-0:1');
      if (name !== 'lock.owner' && name !== 'lock.db' && name !== 'dead-letter.jsonl') {
        // Said so, naming the file (lock.owner is for information only; the kernel lock and
        // the dead-letter file report their own errors).
        expect(stderr).toContain(`${path} is a`);
      }
    },
    60_000,
  );
});
