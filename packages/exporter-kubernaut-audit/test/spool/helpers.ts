// SPDX-License-Identifier: Apache-2.0
/* Helpers of the spool tests: segment files, deterministic payloads. */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

/** Segment file paths of a spool directory, oldest first. */
export function segmentFiles(dir: string): string[] {
  return readdirSync(dir)
    .filter((n) => n.endsWith('.seg'))
    .sort()
    .map((n) => join(dir, n));
}

/** A payload that names its index and has `size` characters (multi-byte chars included). */
export function payload(i: number, size = 200): string {
  const head = `{"i":${i},"s":"é€😀`;
  return `${head}${'x'.repeat(Math.max(0, size - head.length - 2))}"}`;
}

/** Index encoded by `payload`. */
export function payloadIndex(p: string): number {
  return (JSON.parse(p) as { i: number }).i;
}
