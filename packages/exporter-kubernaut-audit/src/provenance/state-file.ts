// SPDX-License-Identifier: Apache-2.0
/*
 * `provenance.state`: what the stamper must survive a crash with. Two fixed 512-byte slots
 * written alternately, one positional write each (no fsync: a killed process's writes are in
 * the OS already):
 *
 *   slot = "<crc32 hex8> <json>" padded with spaces to 511 bytes, then "\n"
 *   json = {"v":2,"gen":N,"producer_id":"…","session_id":"…","reserved_through":N,
 *           "drained_through":N,"last_hash":"…"|null,"clean":bool}
 *
 * Loading takes the valid slot (checksum matches) with the highest `gen`, so a torn write falls
 * back to the other slot. Format 1 slots (256 bytes, `{"v":1,"seq":N,…}`, written by earlier
 * versions on every stamp) load as a clean state at that seq. Writes go through the spool's
 * filesystem seam.
 *
 * A new file is created empty and its first slot is written by the stamper's open(), before any
 * seq is handed out: an empty file is what a kill between the two leaves, never a state that was
 * lost. A file that holds bytes but no valid slot (overwritten, zero-filled, truncated, or of an
 * unknown format) is a lost state: open() reports its size and never writes to it; the stamper
 * decides (./stamper.ts).
 */
import { crc32 } from 'node:zlib';
import type { SpoolFs } from '../spool/fs.ts';

export const STATE_FILE = 'provenance.state';
const SLOT_BYTES = 512;
/** Slots of format 1. */
const V1_SLOT_BYTES = 256;

/** What the state file remembers. */
export interface StampState {
  producerId: string;
  /** Session that wrote the state. */
  sessionId: string;
  /** Highest seq that may have been handed out (block reservation). */
  reservedThrough: number;
  /** Highest seq whose record reached the spool or the dead-letter file. */
  drainedThrough: number;
  /** Hash of the last stamped record that reached the spool (null before the first). */
  lastHash: string | null;
  /** Written by a clean shutdown: every seq handed out was drained. */
  clean: boolean;
}

function encodeSlot(state: StampState, gen: number, buf: Buffer): Buffer {
  const json = JSON.stringify({
    v: 2,
    gen,
    producer_id: state.producerId,
    session_id: state.sessionId,
    reserved_through: state.reservedThrough,
    drained_through: state.drainedThrough,
    last_hash: state.lastHash,
    clean: state.clean,
  });
  const text = `${crc32(json).toString(16).padStart(8, '0')} ${json}`;
  if (Buffer.byteLength(text) > SLOT_BYTES - 1) throw new Error('provenance state too large');
  const n = buf.write(text, 0, 'utf8');
  buf.fill(0x20, n, SLOT_BYTES - 1);
  buf[SLOT_BYTES - 1] = 0x0a;
  return buf;
}

const isSeq = (v: unknown): v is number =>
  typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

function decodeSlot(buf: Buffer): { state: StampState; gen: number } | undefined {
  const text = buf.toString('utf8').trimEnd();
  if (text.indexOf(' ') !== 8) return undefined;
  const json = text.slice(9);
  if (crc32(json).toString(16).padStart(8, '0') !== text.slice(0, 8)) return undefined;
  try {
    const o = JSON.parse(json) as Record<string, unknown>;
    if (typeof o.producer_id !== 'string') return undefined;
    const lastHash = typeof o.last_hash === 'string' ? o.last_hash : null;
    if (o.v === 1 && isSeq(o.seq)) {
      // Written on every stamp by earlier versions: nothing beyond `seq` was handed out.
      const state = {
        producerId: o.producer_id,
        sessionId: '',
        reservedThrough: o.seq,
        drainedThrough: o.seq,
        lastHash,
        clean: true,
      };
      return { state, gen: o.seq };
    }
    if (o.v !== 2 || !isSeq(o.gen) || !isSeq(o.reserved_through) || !isSeq(o.drained_through)) {
      return undefined;
    }
    return {
      gen: o.gen,
      state: {
        producerId: o.producer_id,
        sessionId: typeof o.session_id === 'string' ? o.session_id : '',
        reservedThrough: o.reserved_through,
        drainedThrough: o.drained_through,
        lastHash,
        clean: o.clean === true,
      },
    };
  } catch {
    return undefined;
  }
}

/** The open state file. Methods throw on I/O errors; the stamper catches them. */
export class StateFile {
  private readonly _fs: SpoolFs;
  private readonly _fd: number;
  private _gen: number;
  private readonly _buf = Buffer.allocUnsafe(SLOT_BYTES);

  private constructor(fs: SpoolFs, fd: number, gen: number) {
    this._fs = fs;
    this._fd = fd;
    this._gen = gen;
  }

  /**
   * Opens (creating with mode 0600) the state file at `path`: the state of its valid slot with
   * the highest gen (undefined when none is valid) and the file's size (0: empty or created now).
   * Throws on I/O errors.
   */
  static open(
    fs: SpoolFs,
    path: string,
  ): { file: StateFile; state: StampState | undefined; size: number } {
    const fd = fs.openSync(path, fs.exists(path) ? 'r+' : 'w+', 0o600);
    let best: { state: StampState; gen: number } | undefined;
    let bytes: number;
    try {
      bytes = fs.fstatSync(fd).size;
      for (const size of [SLOT_BYTES, V1_SLOT_BYTES]) {
        for (let i = 0; i < 2; i++) {
          const buf = Buffer.alloc(size);
          const n = fs.readSync(fd, buf, 0, size, i * size);
          const slot = n === size ? decodeSlot(buf) : undefined;
          if (slot !== undefined && (best === undefined || slot.gen > best.gen)) best = slot;
        }
        if (best !== undefined) break;
      }
    } catch (err) {
      fs.closeSync(fd);
      throw err;
    }
    return { file: new StateFile(fs, fd, best?.gen ?? 0), state: best?.state, size: bytes };
  }

  /** Writes `state` into the slot after the current one (one positional write). */
  write(state: StampState): void {
    const gen = this._gen + 1;
    encodeSlot(state, gen, this._buf);
    const n = this._fs.writeSync(this._fd, this._buf, 0, SLOT_BYTES, (gen % 2) * SLOT_BYTES);
    if (n !== SLOT_BYTES) throw new Error(`short write to the provenance state (${n} bytes)`);
    this._gen = gen;
  }

  close(): void {
    this._fs.closeSync(this._fd);
  }
}
