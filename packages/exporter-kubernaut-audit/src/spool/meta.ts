// SPDX-License-Identifier: Apache-2.0
/*
 * `meta.json`: what a spool directory is. Format 2:
 *   { "format": 2, "producerId": "<uuid>", "createdAt": "<ISO 8601>",
 *     "destination": "<normalised DataStorage base URL>" | null, "service": "<name>" | null,
 *     "lanes": <n> }
 * written atomically (temp file, fsync, rename, fsync of the directory). The producer id is the
 * stable producer of DESIGN §11; the destination binds the spool's records to one DataStorage;
 * the lanes are fixed when the spool is created. Format 1 (`{format: 1, producerId, createdAt}`)
 * is read for migration.
 */
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import type { SpoolFs } from './fs.ts';
import { writeFileAtomic } from './fsutil.ts';
import type { SpoolMeta } from './types.ts';

export const META_FILE = 'meta.json';
/** On-disk format written by this code. */
export const SPOOL_FORMAT = 2;
export const MAX_LANES = 64;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export type MetaRead =
  | { kind: 'missing' }
  | { kind: 'damaged' }
  | { kind: 'newer'; format: number }
  | { kind: 'ok'; meta: SpoolMeta; createdAt: string };

/** Reads meta.json. Throws on I/O errors other than ENOENT. */
export function readMeta(fs: SpoolFs, directory: string): MetaRead {
  let text: string;
  try {
    text = fs.readFileSync(join(directory, META_FILE)).toString('utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'missing' };
    throw err;
  }
  try {
    const m = JSON.parse(text) as Record<string, unknown>;
    const format = typeof m.format === 'number' ? m.format : 1;
    if (format > SPOOL_FORMAT) return { kind: 'newer', format };
    if (typeof m.producerId !== 'string' || !UUID.test(m.producerId)) return { kind: 'damaged' };
    const lanes =
      typeof m.lanes === 'number' &&
      Number.isInteger(m.lanes) &&
      m.lanes >= 1 &&
      m.lanes <= MAX_LANES
        ? m.lanes
        : 4;
    return {
      kind: 'ok',
      createdAt: String(m.createdAt ?? ''),
      meta: {
        format,
        producerId: m.producerId,
        destination: typeof m.destination === 'string' ? m.destination : undefined,
        service: typeof m.service === 'string' ? m.service : undefined,
        lanes,
      },
    };
  } catch {
    return { kind: 'damaged' };
  }
}

/** A new format 2 meta. */
export function newMeta(
  lanes: number,
  destination: string | undefined,
  service: string | undefined,
): SpoolMeta {
  return { format: SPOOL_FORMAT, producerId: randomUUID(), destination, service, lanes };
}

/** Writes meta.json atomically. Throws on I/O errors. */
export function writeMeta(
  fs: SpoolFs,
  directory: string,
  meta: SpoolMeta,
  createdAt: string,
): void {
  const doc = {
    format: meta.format,
    producerId: meta.producerId,
    createdAt,
    destination: meta.destination ?? null,
    service: meta.service ?? null,
    lanes: meta.lanes,
  };
  writeFileAtomic(fs, directory, join(directory, META_FILE), `${JSON.stringify(doc, null, 2)}\n`);
}
