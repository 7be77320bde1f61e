// SPDX-License-Identifier: Apache-2.0
/*
 * Request forming: consecutive runs of serialised events of at most `maxEvents` events
 * whose JSON array body stays strictly below `maxBytes`. Order is kept. Pure.
 */

/** Byte size of the JSON array body holding elements of these sizes. */
export function arrayBodyBytes(sizes: readonly number[]): number {
  if (sizes.length === 0) return 2;
  let total = 2 + sizes.length - 1; // brackets and commas
  for (const s of sizes) total += s;
  return total;
}

/**
 * Splits items (given by their serialised sizes) into consecutive chunks; returns
 * `[start, end)` index pairs. A single item is always a chunk of its own even when
 * it alone reaches `maxBytes` (the server then answers 413 and it is dead-lettered).
 */
export function chunkBySize(
  sizes: readonly number[],
  maxEvents: number,
  maxBytes: number,
): Array<[number, number]> {
  const chunks: Array<[number, number]> = [];
  let start = 0;
  let bytes = 2;
  for (let i = 0; i < sizes.length; i++) {
    const add = (i > start ? 1 : 0) + (sizes[i] ?? 0);
    if (i > start && (i - start >= maxEvents || bytes + add >= maxBytes)) {
      chunks.push([start, i]);
      start = i;
      bytes = 2 + (sizes[i] ?? 0);
      continue;
    }
    bytes += add;
  }
  if (sizes.length > start) chunks.push([start, sizes.length]);
  return chunks;
}

/** Joins serialised JSON elements into an array body. */
export function arrayBody(parts: readonly string[]): Buffer {
  return Buffer.from(`[${parts.join(',')}]`, 'utf8');
}
