// SPDX-License-Identifier: Apache-2.0
/*
 * The UTF-8 bytes of a drain's stamped events, held from their stamp until the drain's one spool
 * append copies them into its frames (drain.ts).
 *
 * Why: a drain stamps a batch's records one after the other and appends them together. Kept as
 * strings until then, a batch's events (≈ 1 KB each) live through the drain, and the scavenges
 * that fall in it promote them to the old space: most of what the pipeline promotes. Written
 * here as soon as it is stamped, an event's string dies young. The encoding is not extra work:
 * the frame writer then copies bytes instead of encoding the string.
 *
 * Invariants:
 * - One buffer, reused drain after drain: staged bytes are valid until the next begin(). An
 *   event holds the buffer it was written to, so a buffer outgrown within a drain stays valid
 *   for that drain's earlier events.
 * - Bounded: at most MAX_STAGED_BYTES staged per drain, in buffers that at most double; put()
 *   answers -1 beyond (the event keeps its string). A buffer grown past KEPT_BYTES is let go at
 *   the next begin().
 * - reserve(room) then commit(bytes): a writer that knows only a bound of what it will write
 *   (the stamp written straight into the buffer, map/encode.ts stampPreparedInto) gets `room`
 *   bytes at `offset` and keeps the `bytes` it used; the bound counts against MAX_STAGED_BYTES.
 * - Never throws.
 */

/** Bytes staged per drain at most (a batch of 512 realistic events takes ≈ 0.6 MB). */
export const MAX_STAGED_BYTES = 16 * 1024 * 1024;
/** The largest buffer kept from one drain to the next. */
const KEPT_BYTES = 2 * 1024 * 1024;
const FIRST_BYTES = 1024 * 1024;

export class Staging {
  private _buf: Buffer | undefined;
  private _at = 0;
  /** Bytes staged in this drain (over every buffer it wrote to). */
  private _staged = 0;

  /** The buffer the last put() wrote to. */
  get buffer(): Buffer {
    return this._buf as Buffer;
  }

  /** Starts a drain: what was staged before is no longer needed. */
  begin(): void {
    this._at = 0;
    this._staged = 0;
    if (this._buf !== undefined && this._buf.length > KEPT_BYTES) this._buf = undefined;
  }

  /** Where the next event goes in `buffer`. */
  get offset(): number {
    return this._at;
  }

  /** Writes `json` (`bytes` UTF-8 bytes); returns its offset in `buffer`, or -1 (not staged). */
  put(json: string, bytes: number): number {
    const buf = this.reserve(bytes);
    if (buf === undefined) return -1;
    const at = this._at;
    if (buf.write(json, at, bytes, 'utf8') !== bytes) return -1;
    return this.commit(bytes);
  }

  /** The buffer with `room` bytes free at `offset`, or undefined (over the bound). */
  reserve(room: number): Buffer | undefined {
    if (this._staged + room > MAX_STAGED_BYTES) return undefined;
    const buf = this._buf;
    if (buf !== undefined && this._at + room <= buf.length) return buf;
    // A new buffer; earlier events of this drain keep the one they were written to.
    const size = Math.max(FIRST_BYTES, 2 * (buf?.length ?? 0), room);
    try {
      this._buf = Buffer.allocUnsafeSlow(Math.min(MAX_STAGED_BYTES, size));
    } catch {
      return undefined;
    }
    this._at = 0;
    return this._buf;
  }

  /** Keeps `bytes` written at `offset` (after reserve()); returns where they start. */
  commit(bytes: number): number {
    const at = this._at;
    this._at = at + bytes;
    this._staged += bytes;
    return at;
  }
}
