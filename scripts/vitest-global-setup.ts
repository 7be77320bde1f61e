// SPDX-License-Identifier: Apache-2.0
/*
 * The suite's global setup, in Vitest's own process: a directory of the run's own in the
 * temporary directory (`KUBERNAUT_TEST_RUN_DIR`, which the workers and their children inherit),
 * where the test kit keeps its token files; the teardown removes it with everything in it. A
 * worker ends without running its `exit` handlers, and the last ones may still be ending when
 * the teardown runs, so what they made cannot be left to them.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

let runDir: string | undefined;

export function setup(): void {
  runDir = mkdtempSync(join(tmpdir(), 'kubernaut-test-run-'));
  process.env.KUBERNAUT_TEST_RUN_DIR = runDir;
}

export function teardown(): void {
  if (runDir !== undefined) rmSync(runDir, { recursive: true, force: true });
}
