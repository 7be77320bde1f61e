// SPDX-License-Identifier: Apache-2.0
/*
 * The suite's global teardown, in Vitest's own process once every worker has ended: removes the
 * token directories the last workers left in the temporary directory (a worker ends without
 * running its `exit` handlers; each new one removes those of ended processes, but the last ones
 * have no successor).
 */
import { removeStaleTokenDirs } from '@kubernaut/test-kit';

export function teardown(): void {
  removeStaleTokenDirs();
}
