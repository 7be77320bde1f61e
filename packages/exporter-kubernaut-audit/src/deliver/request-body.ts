// SPDX-License-Identifier: Apache-2.0
/*
 * A request body: one buffer, or buffers written in order as one body without being joined
 * (spool frame bytes sent as they are; no copy, no allocation per request). Pure.
 *
 * Invariant: the bytes on the wire are the concatenation of the parts, in order; the
 * Content-Length is their total.
 */

/** One buffer, or parts that make up the body in order. */
export type RequestBody = Buffer | readonly Buffer[];

/** Total bytes of a body. */
export function bodyBytes(body: RequestBody): number {
  if (Buffer.isBuffer(body)) return body.length;
  let n = 0;
  for (const part of body as readonly Buffer[]) n += part.length;
  return n;
}

/** The body as one buffer (a copy only when it has several parts): for tests and diagnostics. */
export function bodyBuffer(body: RequestBody): Buffer {
  if (Buffer.isBuffer(body)) return body;
  const parts = body as readonly Buffer[];
  return parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts);
}
