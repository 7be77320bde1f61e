// SPDX-License-Identifier: Apache-2.0
/*
 * The reference server on the two storage backends of the shared suites, with authentication
 * on: it accepts the kit's test token, which the kit's request helpers send.
 */
import {
  type Backend as KitBackend,
  type Harness as KitHarness,
  storageBackends,
  testAuth,
  testPgliteCacheDir,
} from '@kubernaut/test-kit';
import {
  createCachedPglite,
  type DataStorageServer,
  type DataStorageServerOptions,
  startDataStorageServer,
} from '../src/index.ts';

export type Harness = KitHarness<DataStorageServer>;
export type Backend = KitBackend<DataStorageServerOptions, DataStorageServer>;

export const [pgliteBackend, postgresBackend] = storageBackends(
  startDataStorageServer,
  { auth: testAuth() },
  async () => (await createCachedPglite({ cacheDir: testPgliteCacheDir() })).db,
) as [Backend, Backend];
export const backends: Backend[] = [pgliteBackend, postgresBackend];
