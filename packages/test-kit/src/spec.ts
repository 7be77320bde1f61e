// SPDX-License-Identifier: Apache-2.0
/*
 * Where tests find the upstream DataStorage OpenAPI spec (DESIGN §5): the path in
 * KUBERNAUT_DATASTORAGE_SPEC, else ../shared/kubernaut/data-storage-v1.yaml beside the
 * repository. A missing spec fails the run; it is never skipped.
 */
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository's root directory. */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

export function specPath(): string {
  const p = process.env.KUBERNAUT_DATASTORAGE_SPEC
    ? resolve(process.env.KUBERNAUT_DATASTORAGE_SPEC)
    : resolve(REPO_ROOT, '../shared/kubernaut/data-storage-v1.yaml');
  if (!existsSync(p)) {
    throw new Error(
      `DataStorage OpenAPI spec not found at ${p}; set KUBERNAUT_DATASTORAGE_SPEC to its path`,
    );
  }
  return p;
}

/** The event-type table beside the spec (event_type, schema, category). */
export function eventTypesPath(): string {
  return resolve(dirname(specPath()), 'event_types.tsv');
}
