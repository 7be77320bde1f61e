// SPDX-License-Identifier: Apache-2.0
/*
 * `provenance.state`: the stamper's persistent state, written on every stamp so that a seq is
 * never reused, even after SIGKILL. Two fixed 256-byte slots, written alternately with one
 * positional write each (no fsync: a killed process's writes are in the OS already):
 *
 *   slot = "<crc32 hex8> <json>" padded with spaces to 255 bytes, then "\n"
 *   json = {"v":1,"producer_id":"…","seq":N,"last_hash":"…"|null}
 *
 * Loading takes the valid slot (checksum matches) with the highest seq, so a torn write
 * (power loss in the middle of a slot) falls back to the other slot. A power loss can still
 * roll the file back to what the OS had flushed: the next session would then reuse seqs,
 * and the verifier reports them as conflicting duplicates, never silently.
 */
import { closeSync, openSync, readSync, writeSync } from 'node:fs';
import { crc32 } from 'node:zlib';

export const STATE_FILE = 'provenance.state';
const SLOT_BYTES = 256;

/** What the state file remembers. */
export interface StampState {
  producerId: string;
  /** Last seq handed out (stamped or reserved); 0 before the first. */
  seq: number;
  /** Hash of the last stamped record; null before the first. */
  lastHash: string | null;
}

function encodeSlot(state: StampState, buf: Buffer = Buffer.allocUnsafe(SLOT_BYTES)): Buffer {
  const json = JSON.stringify({
    v: 1,
    producer_id: state.producerId,
    seq: state.seq,
    last_hash: state.lastHash,
  });
  const crc = crc32(json).toString(16).padStart(8, '0');
  const text = `${crc} ${json}`;
  if (Buffer.byteLength(text) > SLOT_BYTES - 1) throw new Error('provenance state too large');
  const n = buf.write(text, 0, 'utf8');
  buf.fill(0x20, n, SLOT_BYTES - 1);
  buf[SLOT_BYTES - 1] = 0x0a;
  return buf;
}

function decodeSlot(buf: Buffer): StampState | undefined {
  const text = buf.toString('utf8').trimEnd();
  const sp = text.indexOf(' ');
  if (sp !== 8) return undefined;
  const json = text.slice(9);
  if (crc32(json).toString(16).padStart(8, '0') !== text.slice(0, 8)) return undefined;
  try {
    const o = JSON.parse(json) as Record<string, unknown>;
    if (o.v !== 1 || typeof o.producer_id !== 'string') return undefined;
    if (typeof o.seq !== 'number' || !Number.isSafeInteger(o.seq) || o.seq < 0) return undefined;
    const lastHash = typeof o.last_hash === 'string' ? o.last_hash : null;
    return { producerId: o.producer_id, seq: o.seq, lastHash };
  } catch {
    return undefined;
  }
}

/** The open state file. Methods throw on I/O errors; the stamper catches them. */
export class StateFile {
  private readonly _fd: number;
  private _next = 0;
  private readonly _buf = Buffer.allocUnsafe(SLOT_BYTES);

  private constructor(fd: number) {
    this._fd = fd;
  }

  /** Opens (creating with mode 0600) the state file at `path`. Throws on I/O errors. */
  static open(path: string): { file: StateFile; state: StampState | undefined } {
    const fd = openSync(path, 'a+', 0o600);
    try {
      // 'a+' would append on Linux for positional writes too: reopen read-write.
      closeSync(fd);
    } catch {
      // ignore
    }
    const rw = openSync(path, 'r+');
    const file = new StateFile(rw);
    const slots: Array<StampState | undefined> = [];
    for (let i = 0; i < 2; i++) {
      const buf = Buffer.alloc(SLOT_BYTES);
      const n = readSync(rw, buf, 0, SLOT_BYTES, i * SLOT_BYTES);
      slots.push(n === SLOT_BYTES ? decodeSlot(buf) : undefined);
    }
    const [a, b] = slots;
    let state: StampState | undefined;
    if (a && b) state = b.seq > a.seq ? b : a;
    else state = a ?? b;
    // Overwrite the older (or invalid) slot next.
    file._next = state === undefined || state === a ? 1 : 0;
    if (a && b && a.seq === b.seq) file._next = 1;
    return { file, state };
  }

  /** Writes `state` into the next slot (one positional write). */
  write(state: StampState): void {
    const buf = encodeSlot(state, this._buf);
    const off = this._next * SLOT_BYTES;
    const n = writeSync(this._fd, buf, 0, SLOT_BYTES, off);
    if (n !== SLOT_BYTES) throw new Error(`short write to the provenance state (${n} bytes)`);
    this._next = 1 - this._next;
  }

  close(): void {
    closeSync(this._fd);
  }
}
