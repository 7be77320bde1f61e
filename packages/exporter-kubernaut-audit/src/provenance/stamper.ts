// SPDX-License-Identifier: Apache-2.0
/*
 * provenance/: the producer side of completeness evidence (DESIGN §11). Every delivered event
 * carries `event_data.audit_provenance = { producer_id, session_id, seq, prev_hash, hash }`.
 *
 * Invariants:
 * - seq is assigned at emit, in memory, O(1): 1, 2, 3 … per producer (the spool's producer id),
 *   continuing across restarts, never handed out twice. Before the first seq of a block of B
 *   seqs is handed out, the block is reserved durably in `provenance.state` (one positional
 *   write per B records; the processor's B = max(2 × maxExportBatchSize, 512): a drain, which
 *   writes the state anyway, reserves the next block ahead once less than half of one is left,
 *   and a drain comes about once per batch, so emit() pays that write only when a burst outruns
 *   the drains by more than a batch).
 * - The hash chain is built at drain, in seq order (the FIFO is in emit order): prev_hash is the
 *   hash of the producer's previous record that was stamped. A record dead-lettered at drain
 *   consumes its seq and is not part of the chain (its dead letter keeps the seq).
 * - After each drain — once its frames are on the spool and its dead letters written — the
 *   state records the highest seq drained and the chain head (one positional write per drain).
 * - A clean shutdown drains everything and marks the state clean: the next session continues
 *   at the next seq, with no gap. After a crash the next session starts after the reserved
 *   block and declares the crash on the first record it stamps:
 *   `recovered: { session_id, spooled_through, reserved_through }` — seqs in
 *   (spooled_through, reserved_through] were handed out (or not) and never reached the spool:
 *   the verifier reports them as unaccounted at a crash, distinct from gaps below
 *   spooled_through (lost or deleted). spooled_through also takes the highest seq found on the
 *   spool (its frames' index), and the chain continues from that record's hash.
 * - Signed chain heads (issue 16), with a `signer` only: a drain asks for the signed chain head
 *   (drainHead: {producer_id, session_id, seq, hash, time, key_id}, Ed25519), which travels in
 *   the stamp of the drain's last record; after the append, the head is anchored in
 *   `<directory>/digest.log` (anchor). Never per record: with `signEveryDrain` (durability
 *   'batch', whose drains are batches) every drain's head is signed; otherwise (durability
 *   'sync', the bridge: a drain per record) a drain's head is signed when SIGN_EVERY_RECORDS
 *   records were linked since the last signature or SIGN_INTERVAL_MILLIS passed, and a head
 *   left unsigned is signed by an unref'd timer after the interval and anchored in the digest
 *   log only (signLater). After signAll() (shutdown) every drain signs; close() signs and
 *   anchors the head once more.
 * - Never throws: when the state file cannot be used the stamper continues in memory under a
 *   fresh producer id (so that no seq of the persisted producer is reused) and warns.
 * - A lost state is such a state file: one that holds bytes but no valid slot (overwritten,
 *   zero-filled, truncated), or one missing or empty while the spool holds stamped records (a
 *   first start has none). The seqs the producer handed out cannot be bounded without it — seqs
 *   handed out at emit and seqs dead-lettered at drain may lie past the spool's highest, and the
 *   verifier takes a crash declaration only with its `reserved_through` — so the stamper never
 *   continues that producer (not even past the spool tail): it moves to a fresh producer id in
 *   memory, warns with both ids, and leaves the file as it is, so that every later start finds
 *   the state lost too. Writing the fresh id into the file instead would let the next start,
 *   which takes a state of another producer for a replaced spool, reuse the spool producer's
 *   seqs from 1. An empty file alone is a first start: the stamper writes the first slot in
 *   open(), before any seq is handed out, so only a kill between creating the file and that
 *   write leaves one (./state-file.ts).
 */
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { computeProvenanceHash, type SignedChainHead } from '@kubernaut/audit-provenance';
import { AUDIT_EVENT_DATA_PROVENANCE_KEY } from '@kubernaut/audit-semantic-conventions';
import type { AuditEventRequest, JsonObject } from '@kubernaut/datastorage-contract';
import { errorText } from '@kubernaut/datastorage-contract/config';
import type { Logger } from '@opentelemetry/api';
import type { ProvenanceFields, RecoveredDeclaration } from '../map/index.ts';
import { ComponentDiag } from '../measure/diag.ts';
import { nodeFs, type SpoolFs } from '../spool/fs.ts';
import { DigestLog } from './digest-log.ts';
import type { HeadSigner } from './signer.ts';
import { STATE_FILE, type StampState, StateFile } from './state-file.ts';

/** The highest provenance seq found on the spool at recovery, with that record's hash. */
export interface SpoolTail {
  provSeq: number;
  hash: string | null;
}

/** Options of {@link ProvenanceStamper.open}. */
export interface ProvenanceStamperOptions {
  /** Directory of `provenance.state` (the spool directory); without it, memory only. */
  directory?: string;
  /** Producer id: the spool's. */
  producerId: string;
  /** Seqs reserved per durable write [512]. */
  blockSize?: number;
  /** What recovery found on the spool. */
  spoolTail?: SpoolTail | undefined;
  /** Filesystem seam [node:fs]. */
  fs?: SpoolFs;
  /** Signs chain heads (and anchors them in `<directory>/digest.log`); unsigned without it. */
  signer?: HeadSigner | undefined;
  /** A second destination of the signed heads: each is emitted as a log record. */
  digestLogger?: Logger | undefined;
  /** Sign every drain's head (drains are batches) [true]; else at most one per interval. */
  signEveryDrain?: boolean;
}

/** A drain's head is signed when this many records were linked since the last signature… */
export const SIGN_EVERY_RECORDS = 256;
/** …or this much time passed since it. */
export const SIGN_INTERVAL_MILLIS = 100;

/** The event name of a signed chain head emitted to `digestLogger`. */
export const CHAIN_HEAD_EVENT_NAME = 'kubernaut.audit.chain_head';

/** The provenance of a record dead-lettered at drain (no hash: it is not part of the chain). */
export interface ReservedSeq {
  producer_id: string;
  session_id: string;
  seq: number;
}

const log = new ComponentDiag('kubernaut-audit provenance');
const MIN_BLOCK = 512;

export class ProvenanceStamper {
  /** This process's session id (uuid). */
  readonly sessionId: string = randomUUID();
  private _producerId: string;
  private _assigned: number;
  private _reserved: number;
  private _drained: number;
  private _lastHash: string | null;
  private _declaration: RecoveredDeclaration | undefined;
  private readonly _block: number;
  private _file: StateFile | undefined;
  /** Where the state file is, and through which filesystem (for reopen()). */
  private _statePath: string | undefined;
  private _fs: SpoolFs = nodeFs;
  private _failures = 0;
  private _lastLinkedSeq = 0;
  private _signer: HeadSigner | undefined;
  private _digest: DigestLog | undefined;
  private _digestLogger: Logger | undefined;
  private _signedSeq = 0;
  private _signedAt = 0;
  private _signAll = false;
  private _signTimer: NodeJS.Timeout | undefined;

  private constructor(producerId: string, block: number) {
    this._producerId = producerId;
    this._block = block;
    this._assigned = 0;
    this._reserved = 0;
    this._drained = 0;
    this._lastHash = null;
  }

  /** Opens the stamper, recovering from `directory` (see the module comment). Never throws. */
  static open(options: ProvenanceStamperOptions): ProvenanceStamper {
    const block = Math.max(MIN_BLOCK, Math.floor(options.blockSize ?? MIN_BLOCK));
    const s = new ProvenanceStamper(options.producerId, block);
    s._signer = options.signer;
    s._digestLogger = options.signer === undefined ? undefined : options.digestLogger;
    s._signAll = options.signEveryDrain !== false;
    if (options.directory === undefined) return s;
    if (options.signer !== undefined) {
      s._digest = new DigestLog({ directory: options.directory, fs: options.fs ?? nodeFs });
    }
    const path = join(options.directory, STATE_FILE);
    s._statePath = path;
    s._fs = options.fs ?? nodeFs;
    try {
      const { file, state, size } = StateFile.open(s._fs, path);
      s._file = file;
      const tailSeq = options.spoolTail?.provSeq ?? 0;
      if (state === undefined && (size > 0 || tailSeq > 0)) {
        // A lost state (see the module comment): nothing is written to the file.
        s._toMemory();
        const what =
          size > 0 ? `${path} holds no valid state (${size} bytes)` : `${path} is missing or empty`;
        const tail = tailSeq > 0 ? `; the spool holds stamped records through seq ${tailSeq}` : '';
        log.warn(
          `${what}${tail}: the seqs producer ${options.producerId} handed out are unknown, so provenance continues in memory under a new producer id ${s._producerId} (nothing is written to the file)`,
        );
        return s;
      }
      if (state !== undefined && state.producerId === options.producerId) {
        s._recover(state, options.spoolTail);
      }
      s._persist();
    } catch (err) {
      log.warn(
        `cannot use ${path} (${errorText(err)}); provenance continues in memory under a new producer id`,
      );
      s._toMemory();
    }
    return s;
  }

  private _recover(state: StampState, tail: SpoolTail | undefined): void {
    const tailSeq = tail?.provSeq ?? 0;
    const spooled = Math.max(state.drainedThrough, tailSeq);
    this._lastHash = tailSeq > state.drainedThrough ? (tail?.hash ?? null) : state.lastHash;
    if (state.clean) {
      this._assigned = Math.max(state.drainedThrough, tailSeq);
    } else {
      this._assigned = Math.max(state.reservedThrough, spooled);
      if (spooled < this._assigned) {
        this._declaration = {
          session_id: state.sessionId,
          spooled_through: spooled,
          reserved_through: this._assigned,
        };
      }
    }
    this._reserved = this._assigned;
    // While the declaration is not yet stamped, the state keeps pointing at its start.
    this._drained = this._declaration === undefined ? this._assigned : spooled;
  }

  get producerId(): string {
    return this._producerId;
  }

  /** The last seq handed out (0 before the first). */
  get lastSeq(): number {
    return this._assigned;
  }

  /** The hash of the last stamped record (null before the first). */
  get lastHash(): string | null {
    return this._lastHash;
  }

  /** The crash declaration the next stamped record carries, if any. */
  get pendingDeclaration(): RecoveredDeclaration | undefined {
    return this._declaration;
  }

  /**
   * The spool directory was re-created under the same path (removed while in use): the state
   * file is opened again by its path (created when it is gone) and the current state written
   * into it, and the digest log is opened again at its next append, so that a restart finds this
   * producer's state rather than a lost one. Nothing to do for a state in memory only. Never
   * throws: a failure moves to a fresh producer id, as any failed persist does.
   */
  reopen(): void {
    const old = this._file;
    const path = this._statePath;
    if (old === undefined || path === undefined) return;
    this._digest?.close();
    try {
      this._file = StateFile.open(this._fs, path).file;
    } catch (err) {
      log.report(
        'warn',
        'persist',
        `cannot re-create ${path} (${errorText(err)}); continuing in memory under a new producer id`,
      );
      this._toMemory();
      return;
    }
    try {
      old.close();
    } catch {
      // closed already
    }
    this._persist();
  }

  /** False once the state is kept in memory only. */
  get persistent(): boolean {
    return this._file !== undefined;
  }

  /** The next seq (at emit). Reserves a block durably when needed. */
  next(): number {
    const seq = ++this._assigned;
    if (seq > this._reserved) {
      this._reserved = seq - 1 + this._block;
      this._persist();
    }
    return seq;
  }

  /**
   * Hands out the next `count` seqs at once, reserved durably: [first, last]. For an
   * application thread that assigns seqs at emit while this stamper lives on a delivery thread
   * (ThreadedAuditLogRecordProcessor); records then reach stamping with their seq.
   */
  handOut(count: number): [number, number] {
    const first = this._assigned + 1;
    this._assigned += Math.max(1, Math.floor(count));
    if (this._assigned > this._reserved) {
      this._reserved = this._assigned + this._block;
      this._persist();
    }
    return [first, this._assigned];
  }

  /**
   * Takes back the seqs handed out above `lastUsed` that were never used (a clean shutdown of
   * the thread that held them): the next session continues right after `lastUsed`.
   */
  giveBack(lastUsed: number): void {
    if (lastUsed >= this._drained && lastUsed < this._assigned) this._assigned = lastUsed;
  }

  /** The provenance to stamp on the record with `seq` (at drain, in seq order). */
  fields(seq: number, originalTimestamp?: string, recordId?: string): ProvenanceFields {
    return {
      producer_id: this._producerId,
      session_id: this.sessionId,
      seq,
      prev_hash: this._lastHash,
      recovered: this._declaration,
      original_timestamp: originalTimestamp,
      record_id: recordId,
    };
  }

  /**
   * fields() written into `out` (a drain's one object, read before its next record is stamped:
   * no object per record). Returns `out`.
   */
  fieldsInto(
    out: ProvenanceFields,
    seq: number,
    originalTimestamp: string | undefined,
    recordId: string | undefined,
  ): ProvenanceFields {
    out.producer_id = this._producerId;
    out.session_id = this.sessionId;
    out.seq = seq;
    out.prev_hash = this._lastHash;
    out.recovered = this._declaration;
    out.original_timestamp = originalTimestamp;
    out.record_id = recordId;
    return out;
  }

  /** The record with `seq` was stamped with `hash`: it is the chain head now. */
  linked(seq: number, hash: string): void {
    this._lastHash = hash;
    this._lastLinkedSeq = seq;
    this._declaration = undefined;
  }

  /** True when chain heads are signed. */
  get signing(): boolean {
    return this._signer !== undefined;
  }

  /** The digest log's path, when heads are anchored in one. */
  get digestLogPath(): string | undefined {
    return this._digest?.path;
  }

  /**
   * The signed head of the chain as it is now (the last record linked), or undefined without a
   * signer, before the first record, or when signing failed. Never throws.
   */
  signHead(): SignedChainHead | undefined {
    if (this._signer === undefined || this._lastHash === null || this._lastLinkedSeq === 0) {
      return undefined;
    }
    return this._signer.sign(this._producerId, this.sessionId, this._lastLinkedSeq, this._lastHash);
  }

  /** The signed head for a drain's last record, when one is due (see the module comment). */
  drainHead(): SignedChainHead | undefined {
    if (this._signer === undefined || this._lastLinkedSeq <= this._signedSeq) return undefined;
    const now = Date.now();
    if (
      !this._signAll &&
      this._lastLinkedSeq - this._signedSeq < SIGN_EVERY_RECORDS &&
      now - this._signedAt < SIGN_INTERVAL_MILLIS
    ) {
      return undefined;
    }
    return this._signed(now);
  }

  /** A drain's head was not signed: sign it after the interval, into the digest log only. */
  signLater(): void {
    if (this._signer === undefined || this._signTimer !== undefined) return;
    this._signTimer = setTimeout(() => {
      this._signTimer = undefined;
      if (this._lastLinkedSeq <= this._signedSeq) return;
      const head = this._signed(Date.now());
      if (head !== undefined) this.anchor(head);
    }, SIGN_INTERVAL_MILLIS);
    this._signTimer.unref();
  }

  /** From now on every drain's head is signed (shutdown: the last records carry a signature). */
  signAll(): void {
    this._signAll = true;
  }

  private _signed(now: number): SignedChainHead | undefined {
    const head = this.signHead();
    if (head === undefined) return undefined;
    this._signedSeq = head.seq;
    this._signedAt = now;
    if (this._signTimer !== undefined) clearTimeout(this._signTimer);
    this._signTimer = undefined;
    return head;
  }

  /** The head's records reached the spool: append it to the digest log. Never throws. */
  anchor(head: SignedChainHead): void {
    this._digest?.append(head);
    const logger = this._digestLogger;
    if (logger === undefined) return;
    try {
      logger.emit({
        eventName: CHAIN_HEAD_EVENT_NAME,
        body: { ...head },
        attributes: { 'audit.sequence.number': head.seq },
      });
    } catch (err) {
      log.report('warn', 'digest-logger', `emitting a chain head failed: ${errorText(err, 200)}`);
    }
  }

  /** The provenance a record dead-lettered at drain records (its seq, consumed). */
  rejected(seq: number): ReservedSeq {
    return { producer_id: this._producerId, session_id: this.sessionId, seq };
  }

  /** Every record up to `seq` reached the spool or the dead-letter file (one write). */
  drained(seq: number): void {
    if (this._declaration !== undefined || seq <= this._drained) return;
    this._drained = seq;
    // The drain writes the state anyway: when less than half a block is left, the next block is
    // reserved in the same write, so that emit() seldom pays a durable write of its own.
    if (this._reserved - this._assigned < this._block / 2) {
      this._reserved = this._assigned + this._block;
    }
    this._persist();
  }

  /**
   * Stamps a whole AuditEventRequest object (for tools and tests; the processor stamps encoded
   * events at drain): takes the next seq, returns a copy with `event_data.audit_provenance` set
   * (any value under that key is replaced), hashed with the reference `computeProvenanceHash`.
   * On an event that cannot be canonicalised returns it unchanged and warns. Never throws.
   */
  stamp(event: AuditEventRequest): AuditEventRequest {
    try {
      const seq = this._assigned + 1;
      const f = this.fields(seq);
      const provenance: JsonObject = {
        producer_id: f.producer_id,
        session_id: f.session_id,
        seq,
        prev_hash: f.prev_hash,
        ...(f.recovered === undefined ? {} : { recovered: { ...f.recovered } }),
      };
      const out: AuditEventRequest = {
        ...event,
        event_data: { ...event.event_data, [AUDIT_EVENT_DATA_PROVENANCE_KEY]: provenance },
      };
      provenance.hash = computeProvenanceHash(out as unknown as Record<string, unknown>);
      this.next();
      this.linked(seq, provenance.hash);
      this.drained(seq);
      return out;
    } catch (err) {
      log.report('warn', 'stamp', `stamp failed: ${errorText(err)}`);
      return event;
    }
  }

  /** Takes the next seq for a record rejected before stamping (for tools and tests). */
  reserveRejected(_reason?: string): ReservedSeq {
    const seq = this.next();
    this.drained(seq);
    return this.rejected(seq);
  }

  /**
   * Clean shutdown: everything handed out was drained (the caller drained it). The next session
   * continues at the next seq. Releases the state file.
   */
  close(clean: boolean): void {
    if (this._signTimer !== undefined) clearTimeout(this._signTimer);
    this._signTimer = undefined;
    const head = this.signHead();
    if (head !== undefined) this.anchor(head);
    this._digest?.close();
    this._digest = undefined;
    if (clean && this._declaration === undefined) {
      this._drained = this._assigned;
      this._persist(true);
    }
    const f = this._file;
    this._file = undefined;
    try {
      f?.close();
    } catch {
      // nothing to do
    }
  }

  private _persist(clean = false): void {
    if (this._file === undefined) return;
    try {
      this._file.write({
        producerId: this._producerId,
        sessionId: this.sessionId,
        reservedThrough: this._reserved,
        drainedThrough: this._drained,
        lastHash: this._lastHash,
        clean,
      });
    } catch (err) {
      // Continuing under the same id could reuse seqs after a restart: a new producer starts here.
      this._failures++;
      log.report(
        'warn',
        'persist',
        `persisting the provenance state failed (${this._failures} time(s) so far): ${errorText(err)}; continuing in memory under a new producer id`,
      );
      this._toMemory();
    }
  }

  private _toMemory(): void {
    const f = this._file;
    this._file = undefined;
    try {
      f?.close();
    } catch {
      // nothing to do
    }
    // A new producer whose seqs continue from here: records already handed a seq keep theirs.
    this._producerId = randomUUID();
    this._declaration = undefined;
  }
}
