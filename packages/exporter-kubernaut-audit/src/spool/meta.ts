// SPDX-License-Identifier: Apache-2.0
/* `meta.json`: the spool's format version and stable producer id, written once, atomically. */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from './fsutil.ts';

export const META_FILE = 'meta.json';
/** On-disk format version written and understood by this code. */
export const SPOOL_FORMAT = 1;

export interface SpoolMeta {
  format: number;
  producerId: string;
  createdAt: string;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Outcome of `loadMeta`. */
export type MetaResult =
  | { ok: true; meta: SpoolMeta; created: boolean; replacedDamaged: boolean }
  | { ok: false; reason: string };

/** Reads meta.json, creating it when missing or damaged. Throws on I/O errors. */
export function loadMeta(directory: string): MetaResult {
  const path = join(directory, META_FILE);
  let text: string | undefined;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  let replacedDamaged = false;
  if (text !== undefined) {
    try {
      const m = JSON.parse(text) as Partial<SpoolMeta>;
      if (typeof m.format === 'number' && m.format > SPOOL_FORMAT) {
        return {
          ok: false,
          reason: `spool format ${m.format} is newer than supported (${SPOOL_FORMAT})`,
        };
      }
      if (typeof m.producerId === 'string' && UUID.test(m.producerId)) {
        return {
          ok: true,
          meta: {
            format: SPOOL_FORMAT,
            producerId: m.producerId,
            createdAt: String(m.createdAt ?? ''),
          },
          created: false,
          replacedDamaged: false,
        };
      }
    } catch {
      // damaged: replaced below
    }
    replacedDamaged = true;
  }
  const meta: SpoolMeta = {
    format: SPOOL_FORMAT,
    producerId: randomUUID(),
    createdAt: new Date().toISOString(),
  };
  writeFileAtomic(directory, path, `${JSON.stringify(meta, null, 2)}\n`);
  return { ok: true, meta, created: true, replacedDamaged };
}
