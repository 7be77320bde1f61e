// SPDX-License-Identifier: Apache-2.0
/*
 * A spool on a memory filesystem loses its records with the machine, one on a container's own
 * filesystem (overlayfs) with the container: the processor says so once, when the directory opens
 * (also when it opens late), and says nothing for a spool on a disk.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { captureDiag, type DiagCapture, REPO_ROOT } from '@kubernaut/test-kit';
import { LoggerProvider } from '@opentelemetry/sdk-logs';
import { afterAll, afterEach, beforeEach, expect, it } from 'vitest';
import { ComponentDiag } from '../../src/measure/diag.ts';
import {
  checkSpoolVolume,
  memoryFilesystemOf,
  volumeKindOf,
} from '../../src/setup-checks/spool-volume.ts';
import { deliveredIds, faultServerForFile, processorFor } from '../processor/fixtures/harness.ts';
import { auditRecord } from '../processor/fixtures/support.ts';

const ds = await faultServerForFile();
const made: string[] = [];
afterAll(() => {
  for (const d of made) rmSync(d, { recursive: true, force: true });
});

/** A fresh directory under `parent`. */
function dirIn(parent: string): string {
  mkdirSync(parent, { recursive: true });
  const d = mkdtempSync(join(parent, 'spool-volume-'));
  made.push(d);
  return d;
}

let log: DiagCapture;
beforeEach(() => {
  log = captureDiag();
});
afterEach(() => log.restore());

const ON_MEMORY =
  /audit spool .* is on (tmpfs|ramfs) \(memory\).*not a reboot.*KUBERNAUT_AUDIT_SPOOL_DIR/;

async function runWithSpool(directory: string): Promise<void> {
  const processor = processorFor(ds, { spool: { directory } });
  const provider = new LoggerProvider({ processors: [processor] });
  provider.getLogger('t').emit(auditRecord(`volume-${directory}`, 'volume'));
  await processor.forceFlush();
  await provider.shutdown();
}

it('warns once for a spool on tmpfs, with what to do', async () => {
  const shm = dirIn('/dev/shm');
  expect(memoryFilesystemOf(shm)).toBe('tmpfs'); // the premise: /dev/shm is tmpfs on Linux
  await runWithSpool(shm);
  await runWithSpool(shm);
  expect(log.messages.filter((m) => ON_MEMORY.test(m))).toHaveLength(1);
  expect(deliveredIds(ds)).toContain(`volume-${shm}`); // still works: a warning, not a refusal
});

it('warns when a spool directory on tmpfs opens late', async () => {
  const path = join(dirIn('/dev/shm'), 'spool');
  writeFileSync(path, 'not a directory'); // the spool cannot open: memory-only, retried
  const processor = processorFor(ds, { spool: { directory: path } });
  const provider = new LoggerProvider({ processors: [processor] });
  try {
    expect(log.messages.filter((m) => ON_MEMORY.test(m))).toEqual([]);
    rmSync(path);
    // The spool's background retry (first after 1 s) opens it.
    const warned = await Promise.race([
      log.waitFor(ON_MEMORY),
      new Promise<string>((r) => setTimeout(() => r('not within 10 s'), 10_000)),
    ]);
    expect(warned).toMatch(ON_MEMORY);
  } finally {
    await provider.shutdown();
  }
});

it('says nothing for a spool on a disk', async () => {
  const disk = dirIn(join(REPO_ROOT, 'node_modules', '.cache', 'kubernaut-test'));
  expect(memoryFilesystemOf(disk)).toBeUndefined();
  await runWithSpool(disk);
  expect(log.messages.filter((m) => ON_MEMORY.test(m))).toEqual([]);
});

const ON_CONTAINER =
  /audit spool .* is on overlay, a container's own filesystem: .*not a restart of the container.*mount a volume.*KUBERNAUT_AUDIT_SPOOL_DIR/;

it("warns once for a spool on overlayfs (a container's own filesystem), with what to do", () => {
  // overlayfs's statfs type (linux/magic.h), as the directory's filesystem would report it.
  const OVERLAYFS = 0x794c7630;
  expect(volumeKindOf(OVERLAYFS)).toEqual({ kind: 'container', fs: 'overlay' });
  expect(volumeKindOf(0xef53)).toBeUndefined(); // ext4: a disk
  const diag = new ComponentDiag('kubernaut-audit');
  const dir = `/tmp/kubernaut-audit/overlay-${process.pid}`;
  expect(checkSpoolVolume(dir, diag, () => OVERLAYFS)).toBe(true);
  expect(checkSpoolVolume(dir, diag, () => OVERLAYFS)).toBe(false); // once per directory
  expect(log.messages.filter((m) => ON_CONTAINER.test(m))).toHaveLength(1);
  expect(log.messages.filter((m) => ON_MEMORY.test(m))).toEqual([]);
});
